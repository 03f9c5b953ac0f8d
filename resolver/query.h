/* query.h -- the life of one query on a node, from bytes in to bytes out.
 *
 * parse -> tenant by source address -> rate limit -> special-use names -> policy ->
 * cache -> upstream, with an answer (or a deliberate silence) at each step and one
 * query-log event at the end. The caller owns pkt and out; a query that must wait for an
 * upstream copies what it needs and answers later through the reply path.
 */
#ifndef AEGIS_QUERY_H
#define AEGIS_QUERY_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

/* When queries were received: the log's timestamp (wall clock) and the rate limiter's
 * (monotonic), read once for all the datagrams of one recvmmsg(). */
struct query_clock {
	uint64_t wall_us;
	uint64_t now_us;
};

void query_clock_read(struct query_clock *c);

/* Handles the query in pkt from client (the address after any PROXY header), received at
 * clock. Returns the length of the answer written into out, or 0 when nothing is to be sent
 * now: the query was dropped, or it waits for an upstream and will be answered through rp. */
size_t query_handle_at(struct worker *w, const struct reply_path *rp,
		       const struct sockaddr_any *client, const uint8_t *pkt, size_t len,
		       uint8_t *out, size_t cap, const struct query_clock *clock);

/* query_handle_at() for a query received now. */
size_t query_handle(struct worker *w, const struct reply_path *rp,
		    const struct sockaddr_any *client, const uint8_t *pkt, size_t len,
		    uint8_t *out, size_t cap);

#endif
