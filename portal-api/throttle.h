/* throttle.h -- request rate limits per client address and per API key or user.
 *
 * A token bucket per key (rate per second, burst) in a fixed table of buckets, each guarded
 * by one of a few striped locks, so worker threads rarely contend. Two keys that land in the
 * same slot share it until one of them is idle: the table never grows, whatever an attacker
 * sends. The throttle owns its table; throttle_free() releases it.
 */
#ifndef AEGIS_PORTAL_THROTTLE_H
#define AEGIS_PORTAL_THROTTLE_H

#include <stdbool.h>
#include <stdint.h>

struct throttle;

/* rate 0 disables the limit (throttle_allow always true); burst 0 means one second's worth. */
struct throttle *throttle_new(unsigned rate, unsigned burst) __attribute__((warn_unused_result));
void throttle_free(struct throttle *t);

/* Takes one token for key at now_us (CLOCK_MONOTONIC microseconds). False when the bucket is
 * empty; then *retry_after is the whole seconds until a token is back (at least 1). */
bool throttle_allow(struct throttle *t, const char *key, uint64_t now_us, unsigned *retry_after);

#endif
