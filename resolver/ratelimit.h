/* ratelimit.h -- per-client-address query rate limiting, shared lock-free by every worker.
 * ratelimit_new() allocates the limiter and its bucket table, ratelimit_free() releases both;
 * add exemptions before workers start. The rule is above ratelimit_check(), docs/ratelimit.md.
 */
#ifndef AEGIS_RATELIMIT_H
#define AEGIS_RATELIMIT_H

#include <stdint.h>

struct sockaddr;
struct ratelimit;

/* A zero burst, table_bits, v4_prefix or v6_prefix takes the default given beside it. */
struct ratelimit_config {
	uint32_t qps;        /* average queries per second per client; 0 disables limiting */
	uint32_t burst;      /* queries a quiet client may send at once; default qps (1 s worth) */
	unsigned table_bits; /* 2^table_bits buckets of 8 bytes, 8..24; default 20 (8 MiB) */
	uint8_t v4_prefix;   /* IPv4 clients are grouped by this prefix, 1..32; default 32 */
	uint8_t v6_prefix;   /* IPv6 clients are grouped by this prefix, 1..128; default 56 */
	unsigned slip;       /* answer every slip-th limited UDP query with TC=1, drop the rest;
			      * 0 = drop all */
};

/* NULL (errno EINVAL or ENOMEM, logged) if the config is out of range or memory is short. */
struct ratelimit *ratelimit_new(const struct ratelimit_config *config)
	__attribute__((warn_unused_result));

/* Gives clients inside cidr their own per-client limit (burst = 1 s worth), qps 0 meaning
 * unlimited; the most specific exemption wins. Call before the first ratelimit_check().
 * -EINVAL on a bad CIDR (see netaddr_parse_prefix), -ENOMEM. */
int ratelimit_add_exemption(struct ratelimit *rl, const char *cidr, uint32_t qps)
	__attribute__((warn_unused_result));

enum ratelimit_verdict {
	RATELIMIT_PASS, /* answer normally */
	RATELIMIT_SLIP, /* over the limit: answer with an empty TC=1 reply (UDP only) */
	RATELIMIT_DROP, /* over the limit: send nothing */
};

/* Counts one UDP query from client at now_us, a CLOCK_MONOTONIC time in microseconds (any
 * clock that never jumps will do). Never call it for TCP: a TCP client has proven its
 * address, and SLIP exists to move clients there. */
enum ratelimit_verdict ratelimit_check(struct ratelimit *rl, const struct sockaddr *client,
				       uint64_t now_us);

void ratelimit_free(struct ratelimit *rl);

#endif
