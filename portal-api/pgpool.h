/* pgpool.h -- a fixed set of PostgreSQL connections shared by the API's worker threads.
 *
 * pgpool_get() lends a connection (waiting up to the pool's timeout when all are lent) and
 * pgpool_put() takes it back: a connection found broken or left inside a transaction is
 * reset there, so the next borrower gets a clean one. A connection that cannot be made (the
 * database is down) makes pgpool_get() return NULL at once, and the caller answers 503. The
 * pool owns every connection; callers never PQfinish() one.
 */
#ifndef AEGIS_PORTAL_PGPOOL_H
#define AEGIS_PORTAL_PGPOOL_H

#include <libpq-fe.h>

struct pgpool;

/* Makes a pool of size connections to dsn, connected lazily. NULL on allocation failure. */
struct pgpool *pgpool_new(const char *dsn, unsigned size, unsigned wait_ms)
	__attribute__((warn_unused_result));
void pgpool_free(struct pgpool *p);

PGconn *pgpool_get(struct pgpool *p);
void pgpool_put(struct pgpool *p, PGconn *conn);

/* Connections lent right now, and times a borrower found the database unreachable. */
unsigned pgpool_in_use(struct pgpool *p);
unsigned long pgpool_failures(struct pgpool *p);
unsigned pgpool_size(const struct pgpool *p);

#endif
