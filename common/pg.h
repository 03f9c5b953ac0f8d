/* pg.h -- the one way Aegis talks to PostgreSQL: parameterised statements only.
 *
 * pg_query() sends SQL text and its parameters separately (PQexecParams), so a value can
 * never become SQL. Errors are logged here once, with the SQLSTATE, and NULL is returned; a
 * result that comes back belongs to the caller (PQclear it, or declare it auto_pqclear).
 * pg_run_script() is the single exception, for trusted files such as migrations: it runs a
 * multi-statement text with no parameters and must never see user input.
 */
#ifndef AEGIS_PG_H
#define AEGIS_PG_H

#include <libpq-fe.h>
#include <stdbool.h>

/* Connects and checks the connection; logs and returns NULL on failure. */
PGconn *pg_connect(const char *dsn) __attribute__((warn_unused_result));

/* Runs sql with nparams text parameters ($1..$n). Returns the result of a successful command
 * or query, or NULL after logging the error. */
PGresult *pg_query_params(PGconn *conn, const char *sql, int nparams,
			  const char *const *params) __attribute__((warn_unused_result));

/* pg_query(conn, "SELECT ... WHERE id = $1", id): the parameter count is taken from the
 * arguments, which must all be const char * (NULL for SQL NULL). */
#define pg_query(conn, sql, ...)                                                            \
	pg_query_params(conn, sql,                                                          \
			(int)(sizeof((const char *const[]){ NULL, ##__VA_ARGS__ }) /        \
			      sizeof(const char *)) - 1,                                    \
			(const char *const[]){ NULL, ##__VA_ARGS__ } + 1)

/* The same with binary values where lengths[i] > 0 (formats as PQexecParams), and results
 * in text (binary_result false) or binary: for snapshot images stored as bytea, which would
 * double in size as hex text. */
PGresult *pg_query_binary(PGconn *conn, const char *sql, int nparams, const char *const *params,
			  const int *lengths, bool binary_result) __attribute__((warn_unused_result));

/* Runs a statement that returns no rows; 0 on success, -1 (logged) on failure. */
int pg_command_params(PGconn *conn, const char *sql, int nparams, const char *const *params)
	__attribute__((warn_unused_result));

#define pg_command(conn, sql, ...)                                                          \
	pg_command_params(conn, sql,                                                        \
			  (int)(sizeof((const char *const[]){ NULL, ##__VA_ARGS__ }) /      \
				sizeof(const char *)) - 1,                                  \
			  (const char *const[]){ NULL, ##__VA_ARGS__ } + 1)

/* Runs a trusted multi-statement script (no parameters). On failure returns -1 and, if
 * errbuf is given, the server's message and position in it; logging is left to the caller,
 * which knows the script's name. */
int pg_run_script(PGconn *conn, const char *script, char *errbuf, unsigned long errlen)
	__attribute__((warn_unused_result));

/* Streams a constant "COPY (SELECT ...) TO STDOUT" (text format) to fn, one row per call as
 * a NUL-terminated line without its newline, fields separated by tabs; fn may modify it.
 * For large reads (millions of feed names) that must not sit in one PGresult. Returns 0, or
 * -1 after logging; a nonzero return from fn aborts the copy and is returned. */
typedef int (*pg_row_fn)(void *arg, char *line, size_t len);
int pg_copy_out(PGconn *conn, const char *copy_sql, pg_row_fn fn, void *arg)
	__attribute__((warn_unused_result));

/* Sends rows to a constant "COPY table (columns) FROM STDIN" (text format): fn is called
 * until it returns 0, each time filling buf (cap bytes) with one or more complete lines and
 * setting *len; it returns 1 for more, 0 when done, negative to abort the copy. Values must
 * be already escaped for COPY text format (names from a validated set need none). Returns 0
 * or -1 after logging. */
typedef int (*pg_copy_in_fn)(void *arg, char *buf, size_t cap, size_t *len);
int pg_copy_in(PGconn *conn, const char *copy_sql, pg_copy_in_fn fn, void *arg)
	__attribute__((warn_unused_result));

static inline void cleanup_pqclear(PGresult **r)
{
	if (*r)
		PQclear(*r);
}

static inline void cleanup_pqfinish(PGconn **c)
{
	if (*c)
		PQfinish(*c);
}

#define auto_pqclear  __attribute__((cleanup(cleanup_pqclear)))
#define auto_pqfinish __attribute__((cleanup(cleanup_pqfinish)))

#endif
