/* pg.c -- parameterised statements over libpq, with errors logged once. */
#include "pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

PGconn *pg_connect(const char *dsn)
{
	char quoted[512];
	PGconn *conn = PQconnectdb(dsn);

	if (!conn) {
		log_err("db_connect_failed", "error=\"out of memory\"");
		return NULL;
	}
	if (PQstatus(conn) != CONNECTION_OK) {
		log_err("db_connect_failed", "error=%s",
			log_quote(quoted, sizeof quoted, PQerrorMessage(conn)));
		PQfinish(conn);
		return NULL;
	}
	return conn;
}

static void log_failure(PGconn *conn, const PGresult *res, const char *sql)
{
	char msg[512], stmt[256];
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *text = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);

	log_err("db_query_failed", "sqlstate=%s error=%s sql=%s", state ? state : "none",
		log_quote(msg, sizeof msg, text), log_quote(stmt, sizeof stmt, sql));
}

PGresult *pg_query_params(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	return pg_query_binary(conn, sql, nparams, params, NULL, false);
}

PGresult *pg_query_binary(PGconn *conn, const char *sql, int nparams, const char *const *params,
			  const int *lengths, bool binary_result)
{
	int formats[16] = { 0 };
	for (int i = 0; lengths && i < nparams && i < 16; i++)
		formats[i] = lengths[i] > 0;
	PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, lengths,
				     lengths ? formats : NULL, binary_result ? 1 : 0);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	log_failure(conn, res, sql);
	PQclear(res);
	return NULL;
}

int pg_command_params(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	PGresult *res = pg_query_params(conn, sql, nparams, params);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

int pg_run_script(PGconn *conn, const char *script, char *errbuf, unsigned long errlen)
{
	PGresult *res = PQexec(conn, script);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY) {
		PQclear(res);
		return 0;
	}
	if (errbuf && errlen) {
		const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
		const char *pos = res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL;
		int line = 0;
		if (pos) {
			/* Turn the character offset into a line number a person can look up. */
			long off = strtol(pos, NULL, 10);
			line = 1;
			for (long i = 0; i < off - 1 && script[i]; i++)
				line += script[i] == '\n';
		}
		if (line)
			snprintf(errbuf, errlen, "line %d: %s", line, msg);
		else
			snprintf(errbuf, errlen, "%s", msg);
		/* Drop libpq's trailing newline. */
		size_t n = strlen(errbuf);
		while (n && (errbuf[n - 1] == '\n' || errbuf[n - 1] == ' '))
			errbuf[--n] = '\0';
	}
	PQclear(res);
	return -1;
}

int pg_copy_out(PGconn *conn, const char *copy_sql, pg_row_fn fn, void *arg)
{
	PGresult *res = PQexec(conn, copy_sql);
	if (!res || PQresultStatus(res) != PGRES_COPY_OUT) {
		log_failure(conn, res, copy_sql);
		PQclear(res);
		return -1;
	}
	PQclear(res);

	int rc = 0;
	char *line;
	int n;
	while ((n = PQgetCopyData(conn, &line, 0)) > 0) {
		if (rc == 0) {
			size_t len = (size_t)n;
			if (len && line[len - 1] == '\n')
				line[--len] = '\0';
			rc = fn(arg, line, len);
		}
		/* After a callback failure keep draining: the connection must get back to idle. */
		PQfreemem(line);
	}
	if (n == -2) {
		log_failure(conn, NULL, copy_sql);
		return -1;
	}
	while ((res = PQgetResult(conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			log_failure(conn, res, copy_sql);
			rc = rc ? rc : -1;
		}
		PQclear(res);
	}
	return rc;
}

int pg_copy_in(PGconn *conn, const char *copy_sql, pg_copy_in_fn fn, void *arg)
{
	PGresult *res = PQexec(conn, copy_sql);
	if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
		log_failure(conn, res, copy_sql);
		PQclear(res);
		return -1;
	}
	PQclear(res);

	char buf[64 * 1024];
	int more, failed = 0;
	do {
		size_t len = 0;
		more = fn(arg, buf, sizeof buf, &len);
		if (more < 0)
			failed = 1;
		else if (len && PQputCopyData(conn, buf, (int)len) != 1)
			failed = 1;
	} while (more > 0 && !failed);
	if (PQputCopyEnd(conn, failed ? "aborted by the sender" : NULL) != 1)
		failed = 1;
	while ((res = PQgetResult(conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			if (!failed)
				log_failure(conn, res, copy_sql);
			failed = 1;
		}
		PQclear(res);
	}
	return failed ? -1 : 0;
}
