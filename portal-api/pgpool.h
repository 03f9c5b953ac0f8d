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

/* Runs sql with text parameters as a prepared statement of conn, preparing it the first time
 * this connection sees it; the statement is named by the address of sql, which must be a
 * string literal. PostgreSQL then stops planning it after a few runs (a generic plan): for
 * the fixed statements of the hot paths (authentication, fetching one object). A statement
 * whose best plan depends on which optional filters are given (the query-log search) stays
 * on pg_query(), which plans every run with its values. Result and errors as pg_query(). */
PGresult *pgpool_exec(PGconn *conn, const char *sql, int nparams, const char *const *params)
	__attribute__((warn_unused_result));

#define db_query(conn, sql, ...)                                                            \
	pgpool_exec(conn, sql,                                                              \
		    (int)(sizeof((const char *const[]){ NULL, ##__VA_ARGS__ }) /            \
			  sizeof(const char *)) - 1,                                        \
		    (const char *const[]){ NULL, ##__VA_ARGS__ } + 1)

/* Connections lent right now, and times a borrower found the database unreachable. */
unsigned pgpool_in_use(struct pgpool *p);
unsigned long pgpool_failures(struct pgpool *p);
unsigned pgpool_size(const struct pgpool *p);

#endif
