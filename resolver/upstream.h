/* upstream.h -- forwarding cache misses to the upstream recursors (Unbound on the node).
 *
 * Each query goes out from a fresh UDP socket (a kernel-chosen random source port) with a
 * random ID, and an answer counts only if it comes from the server asked, with that ID and
 * that question (RFC 5452); anything else is ignored and counted. A truncated answer is
 * retried over TCP to the same server. A timeout moves to the next server; a server that
 * keeps timing out is skipped for a while (health), then probed with one query.
 * upstream_set is shared by all workers; an upstream_client belongs to one worker thread.
 */
#ifndef AEGIS_UPSTREAM_H
#define AEGIS_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"
#include "wire.h"

struct upstream_set_config {
	unsigned timeout_ms;    /* per attempt */
	unsigned attempts;      /* attempts per query, across servers */
	unsigned down_after;    /* consecutive failures that mark a server down */
	unsigned down_ms;       /* how long a down server is skipped before a probe */
};

struct upstream_set *upstream_set_new(const struct sockaddr_any *servers, unsigned n,
				      const struct upstream_set_config *cfg);
void upstream_set_free(struct upstream_set *set);
unsigned upstream_set_count(const struct upstream_set *set);
/* "127.0.0.1:53" form of server i, and whether it is currently considered up. */
const char *upstream_set_name(const struct upstream_set *set, unsigned i);
const struct sockaddr_any *upstream_set_addr(const struct upstream_set *set, unsigned i);
int upstream_set_healthy(const struct upstream_set *set, unsigned i);

enum upstream_status {
	UPSTREAM_OK,        /* msg holds a sound answer to the question (OPT stripped) */
	UPSTREAM_FAILED,    /* every attempt timed out or failed */
	UPSTREAM_CANCELLED, /* the worker is stopping: free what you hold, send nothing */
};

struct upstream_result {
	enum upstream_status status;
	uint8_t *msg;              /* the answer; the callback may rewrite it in place... */
	size_t len;
	size_t cap;                /* ...up to cap bytes */
	struct wire_response info;
	int server;                /* index of the server that answered or last failed; -1 */
	uint64_t latency_us;       /* of the attempt that answered */
};

typedef void (*upstream_done_fn)(void *arg, struct upstream_result *result);

struct upstream_client *upstream_client_new(struct event_base *base, struct upstream_set *set,
					    struct worker_stats *stats);
/* Cancels every query in flight (their callbacks see UPSTREAM_CANCELLED) and frees. */
void upstream_client_free(struct upstream_client *c);

/* Starts resolving q; done is called exactly once, from the worker's loop, or before this
 * returns if every attempt fails at once (no socket): the caller must not touch arg after
 * the call. Returns 0, or a negative errno when nothing was started (done is not called). */
int upstream_resolve(struct upstream_client *c, const struct wire_query *q,
		     upstream_done_fn done, void *arg) __attribute__((warn_unused_result));

#endif
