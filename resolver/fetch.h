/* fetch.h -- keeps a node's policy current by long-polling tenantd.
 *
 * One request at a time: GET <url>/v1/snapshot?wait=N with the node's token, the version
 * it runs (If-None-Match and X-Aegis-Running) and its last load error (X-Aegis-Error). A
 * new version arrives as soon as tenantd publishes it; 304 means none came during the wait.
 * The body (zstd or gzip accepted) goes to the apply callback, which validates, persists and
 * publishes it. When apply says the snapshot needs a feed base the node lacks, the snapshot
 * is kept aside and GET <url>/v1/snapshot/base/<sha256 hex> follows; the base goes to
 * apply_base, then the snapshot to apply again (a 404 means tenantd moved on: poll again).
 * Failures back off from 1 s to 30 s; the node keeps its snapshot meanwhile. Runs on the main
 * thread's event loop.
 */
#ifndef AEGIS_FETCH_H
#define AEGIS_FETCH_H

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct fetch;

/* Returns 0 when the snapshot was taken, 1 when it needs the feed base whose checksum it
 * wrote into need_base (apply only; apply_base gets NULL), or negative with the reason in
 * err. */
typedef int (*fetch_apply_fn)(void *arg, const uint8_t *data, size_t len, uint8_t *need_base,
			      char *err, size_t errlen);
/* The version the node runs now, 0 for none. */
typedef uint64_t (*fetch_version_fn)(void *arg);

struct fetch_config {
	const char *url;        /* "http://127.0.0.1:8053" */
	const char *token;
	unsigned wait_s;        /* long-poll duration asked of tenantd */
};

struct fetch *fetch_start(struct event_base *base, const struct fetch_config *cfg,
			  fetch_version_fn version, fetch_apply_fn apply, fetch_apply_fn apply_base,
			  void *arg);
void fetch_stop(struct fetch *f);

#endif
