/* distribute.h -- serves the current policy snapshot to resolver nodes over HTTP.
 *
 *   GET /v1/snapshot[?wait=SECONDS]   Authorization: Bearer <node token>
 *   GET /v1/snapshot/base/<sha256 hex>
 *
 * The first answers the current snapshot (zstd, else gzip, as accepted) with ETag
 * "<version>"; with If-None-Match naming the current version and wait > 0 it holds the
 * request until a new version is published or the wait ends (then 304), so a node hears of a
 * change at once. The second answers the feed base that snapshot names (404 for any other),
 * which a node fetches only when it lacks it.
 * Every request records the node's last contact, address, the version it says it runs
 * (X-Aegis-Running) and its last error (X-Aegis-Error). GET /healthz answers 200 once a
 * snapshot is being served. Runs on libmicrohttpd's own threads; distribute_publish() may be
 * called from any thread. The distribute object owns the published snapshot's bytes.
 */
#ifndef AEGIS_DISTRIBUTE_H
#define AEGIS_DISTRIBUTE_H

#include <stdbool.h>
#include <stdint.h>

struct distribute_config {
	const char *listen;    /* ADDRESS:PORT, e.g. "127.0.0.1:8053" */
	const char *dsn;       /* for node authentication and reports */
	unsigned max_wait_s;   /* upper bound of ?wait= */
};

struct distribute;

struct distribute *distribute_start(const struct distribute_config *cfg);
/* Loads path (a validated snapshot) as the version to serve and wakes waiting nodes. For an
 * overlay, base_sha256 names its base (serial base_version), which is read from base_path
 * only when it is not the base already served; NULLs for a self-contained snapshot. */
int distribute_publish(struct distribute *d, uint64_t version, const char *path,
		       uint64_t base_version, const char *base_path, const uint8_t *base_sha256)
	__attribute__((warn_unused_result));
/* The checksum of the base being served, false when none. */
bool distribute_base_checksum(struct distribute *d, uint8_t out[32]);
uint64_t distribute_version(struct distribute *d);
/* Shown in /healthz so a failed compile is visible while the old snapshot keeps serving. */
void distribute_set_compile_error(struct distribute *d, const char *error);
void distribute_stop(struct distribute *d);

#endif
