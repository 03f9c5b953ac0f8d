/* store.c -- batches into query_log and the rollups, partitions, retention (see store.h). */
#include "store.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "log.h"
#include "pg.h"
#include "row.h"

/* Days whose partition this process has seen to; a full cache is simply emptied. */
#define KNOWN_DAYS 64

struct store {
	char *dsn;
	PGconn *conn;
	int32_t known[KNOWN_DAYS];
	size_t nknown;
};

/* Session-level, so that of several logpipe processes one applies retention at a time;
 * key = ASCII "AEGISRET". */
#define RETENTION_LOCK "4703243766114436436"

static const char staging_sql[] =
	"CREATE TEMP TABLE IF NOT EXISTS logpipe_staging "
	"(LIKE query_log INCLUDING DEFAULTS) ON COMMIT DELETE ROWS";

static const char copy_sql[] = "COPY logpipe_staging (" ROW_COLUMNS ") FROM STDIN";

/* The three rollups, counted from the rows of src (the rows this statement inserted). Each
 * rollup's rows are upserted in key order, so two logpipe processes updating the same
 * counters lock them in the same order and cannot deadlock on them. */
#define ROLLUPS(src)                                                                        \
	" hourly AS ("                                                                      \
	" INSERT INTO query_rollup_hourly AS r (tenant_id, hour, category, action, count)"   \
	" SELECT tenant_id, date_trunc('hour', ts, 'UTC'), coalesce(category, ''), action,"  \
	" count(*) FROM " src " WHERE tenant_id IS NOT NULL"                                 \
	" GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"                                          \
	" ON CONFLICT (tenant_id, hour, category, action)"                                  \
	" DO UPDATE SET count = r.count + EXCLUDED.count),"                                 \
	" names AS ("                                                                       \
	" INSERT INTO rollup_blocked_names AS r (tenant_id, hour, qname, action, category, count)" \
	" SELECT tenant_id, date_trunc('hour', ts, 'UTC'), qname, action, coalesce(category, ''),"  \
	" count(*) FROM " src " WHERE tenant_id IS NOT NULL AND action IN ('block', 'monitor')"    \
	" GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"                                    \
	" ON CONFLICT (tenant_id, hour, qname, action, category)"                           \
	" DO UPDATE SET count = r.count + EXCLUDED.count),"                                 \
	" clients AS ("                                                                     \
	" INSERT INTO rollup_threat_clients AS r"                                           \
	" (tenant_id, hour, client_ip, client_pseudonym, category, count)"                  \
	" SELECT tenant_id, date_trunc('hour', ts, 'UTC'), client_ip, client_pseudonym, category,"  \
	" count(*) FROM " src " WHERE tenant_id IS NOT NULL AND action IN ('block', 'monitor')"    \
	" AND category IS NOT NULL"                                                         \
	" GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5"                                    \
	" ON CONFLICT ON CONSTRAINT rollup_threat_clients_key"                              \
	" DO UPDATE SET count = r.count + EXCLUDED.count)"

/* The usual case, no record seen before: a plain insert, and the rollups counted from the
 * staging table. A single row already in query_log (a re-delivery) fails it with 23505 and
 * the whole transaction goes, so nothing can be counted that was not inserted. */
static const char insert_new_sql[] =
	"WITH ins AS ("
	" INSERT INTO query_log (" ROW_COLUMNS ")"
	" SELECT " ROW_COLUMNS " FROM logpipe_staging),"
	ROLLUPS("logpipe_staging")
	" SELECT count(*) FROM logpipe_staging";

/* After a 23505: only the rows that are new go in (ON CONFLICT DO NOTHING), and only those
 * (RETURNING) are counted. A third slower than the plain insert, so it is the fallback. */
static const char insert_some_sql[] =
	"WITH ins AS ("
	" INSERT INTO query_log (" ROW_COLUMNS ")"
	" SELECT " ROW_COLUMNS " FROM logpipe_staging"
	" ON CONFLICT DO NOTHING"
	" RETURNING ts, tenant_id, client_ip, client_pseudonym, qname, action, category),"
	ROLLUPS("ins")
	" SELECT count(*) FROM ins";

struct store *store_new(const char *dsn)
{
	struct store *s = calloc(1, sizeof *s);
	if (!s || !(s->dsn = strdup(dsn))) {
		free(s);
		return NULL;
	}
	return s;
}

static void disconnect(struct store *s)
{
	if (s->conn)
		PQfinish(s->conn);
	s->conn = NULL;
	s->nknown = 0;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	disconnect(s);
	free(s->dsn);
	free(s);
}

bool store_connected(const struct store *s)
{
	return s->conn && PQstatus(s->conn) == CONNECTION_OK;
}

int store_connect(struct store *s)
{
	if (store_connected(s))
		return 0;
	disconnect(s);
	s->conn = pg_connect(s->dsn);
	if (!s->conn)
		return -1;
	/* Logged times are UTC; a session in another zone would only cost conversions. */
	if (pg_command(s->conn, "SET TIME ZONE 'UTC'") < 0 ||
	    pg_command(s->conn, staging_sql) < 0) {
		disconnect(s);
		return -1;
	}
	return 0;
}

/* Decides what a failed statement means for the batch, and notes why. */
/* What a failed statement said, beyond its status. */
struct failure {
	bool no_partition;  /* 23514 "no partition of relation found for row" */
	bool duplicate;     /* 23505: a row already stored */
};

static enum store_status classify(struct store *s, const PGresult *res, struct failure *f,
				  char *why, size_t whylen)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	const char *msg = primary ? primary : res ? PQresultErrorMessage(res)
						  : PQerrorMessage(s->conn);
	char quoted[512];

	snprintf(why, whylen, "%s %s", state ? state : "none", msg ? msg : "");
	size_t n = strlen(why);
	while (n && (why[n - 1] == '\n' || why[n - 1] == ' '))
		why[--n] = '\0';
	if (PQstatus(s->conn) != CONNECTION_OK || !state) {
		log_warn("db_lost", "error=%s", log_quote(quoted, sizeof quoted, why));
		disconnect(s);
		return STORE_DOWN;
	}
	/* 23514 without a constraint is "no partition of relation found for row". */
	if (strcmp(state, "23514") == 0 && !PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME)) {
		f->no_partition = true;
		return STORE_REFUSED;
	}
	if (strcmp(state, "23505") == 0)
		f->duplicate = true;
	if (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 ||
	    strcmp(state, "54000") == 0)
		return STORE_REFUSED;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return STORE_RETRY;
	/* Anything else (privileges, a full disk, an admin shutdown) is not the data's fault:
	 * the batch waits and is tried again. */
	log_warn("db_failed", "error=%s", log_quote(quoted, sizeof quoted, why));
	return STORE_DOWN;
}

/* Runs one statement of the batch transaction; NULL result means failure, already classified. */
static PGresult *exec(struct store *s, const char *sql, ExecStatusType want, enum store_status *st,
		      struct failure *f, char *why, size_t whylen)
{
	PGresult *res = PQexec(s->conn, sql);
	if (res && PQresultStatus(res) == want)
		return res;
	*st = classify(s, res, f, why, whylen);
	PQclear(res);
	return NULL;
}

static void rollback(struct store *s)
{
	if (!s->conn)
		return;
	PGresult *res = PQexec(s->conn, "ROLLBACK");
	PQclear(res);
}

static bool day_known(const struct store *s, int32_t day)
{
	for (size_t i = 0; i < s->nknown; i++)
		if (s->known[i] == day)
			return true;
	return false;
}

int store_ensure_partitions(struct store *s, int32_t from_day, int days)
{
	char day_text[16], days_text[16];
	if (store_connect(s) < 0)
		return -1;
	snprintf(day_text, sizeof day_text, "%d", from_day);
	snprintf(days_text, sizeof days_text, "%d", days);
	auto_pqclear PGresult *res = pg_query(
		s->conn, "SELECT query_log_ensure_partitions(date '1970-01-01' + $1::int, $2::int)",
		day_text, days_text);
	if (!res) {
		if (PQstatus(s->conn) != CONNECTION_OK)
			disconnect(s);
		return -1;
	}
	for (int i = 0; i < days; i++) {
		if (s->nknown == KNOWN_DAYS)
			s->nknown = 0;
		if (!day_known(s, from_day + i))
			s->known[s->nknown++] = from_day + i;
	}
	return atoi(PQgetvalue(res, 0, 0));
}

static int ensure_days(struct store *s, const struct batch *b, size_t lo, size_t hi)
{
	int32_t days[KNOWN_DAYS];
	size_t n = batch_days(b, lo, hi, days, KNOWN_DAYS);
	for (size_t i = 0; i < n && i < KNOWN_DAYS; i++) {
		if (day_known(s, days[i]))
			continue;
		int created = store_ensure_partitions(s, days[i], 1);
		if (created < 0)
			return -1;
		if (created)
			log_info("partition_created", "day=%d", days[i]);
	}
	return 0;
}

/* Streams the rows of [lo, hi) as COPY data, a run of adjacent rows per call. */
static int put_rows(struct store *s, const struct batch *b, size_t lo, size_t hi)
{
	size_t i = lo;
	while (i < hi) {
		if (!b->e[i].len) {
			i++;
			continue;
		}
		size_t start = b->e[i].start, end = start;
		for (; i < hi && b->e[i].len && b->e[i].start == end; i++)
			end += b->e[i].len;
		if (PQputCopyData(s->conn, b->text + start, (int)(end - start)) != 1)
			return -1;
	}
	return 0;
}

static enum store_status write_once(struct store *s, const struct batch *b, size_t lo, size_t hi,
				    const char *insert_sql, long long *inserted, struct failure *f,
				    char *why, size_t whylen)
{
	enum store_status st = STORE_DOWN;
	PGresult *res;

	if (!(res = exec(s, "BEGIN", PGRES_COMMAND_OK, &st, f, why, whylen)))
		return st;
	PQclear(res);
	if (!(res = exec(s, copy_sql, PGRES_COPY_IN, &st, f, why, whylen)))
		goto fail;
	PQclear(res);
	int sent = put_rows(s, b, lo, hi);
	if (PQputCopyEnd(s->conn, sent < 0 ? "logpipe could not send the rows" : NULL) != 1)
		sent = -1;
	while ((res = PQgetResult(s->conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			st = classify(s, res, f, why, whylen);
			sent = -1;
		}
		PQclear(res);
	}
	if (sent < 0)
		goto fail;
	if (!(res = exec(s, insert_sql, PGRES_TUPLES_OK, &st, f, why, whylen)))
		goto fail;
	*inserted = atoll(PQgetvalue(res, 0, 0));
	PQclear(res);
	if (!(res = exec(s, "COMMIT", PGRES_COMMAND_OK, &st, f, why, whylen)))
		goto fail;
	PQclear(res);
	return STORE_OK;
fail:
	rollback(s);
	return st;
}

enum store_status store_write(struct store *s, const struct batch *b, size_t lo, size_t hi,
			      long long *inserted, char *why, size_t whylen)
{
	*inserted = 0;
	if (store_connect(s) < 0)
		return STORE_DOWN;
	if (ensure_days(s, b, lo, hi) < 0)
		return STORE_DOWN;
	const char *sql = insert_new_sql;
	bool remade = false;
	for (;;) {
		struct failure f = { 0 };
		enum store_status st = write_once(s, b, lo, hi, sql, inserted, &f, why, whylen);
		if (st != STORE_REFUSED)
			return st;
		if (f.duplicate && sql == insert_new_sql) {
			/* Some of these records were stored before (rule 1 of ingest.c). */
			sql = insert_some_sql;
			continue;
		}
		if (f.no_partition && !remade) {
			/* A partition went (dropped by hand, or by retention under a late record):
			 * make them again and try once more; a second refusal is the data's. */
			remade = true;
			s->nknown = 0;
			if (ensure_days(s, b, lo, hi) < 0)
				return STORE_DOWN;
			continue;
		}
		return st;
	}
}

int store_apply_retention(struct store *s, int default_days, bool *ran, long long *dropped,
			  long long *deleted)
{
	char days_text[16];
	*ran = false;
	if (store_connect(s) < 0)
		return -1;
	auto_pqclear PGresult *lock = pg_query(s->conn,
					       "SELECT pg_try_advisory_lock(" RETENTION_LOCK ")");
	if (!lock)
		return -1;
	if (strcmp(PQgetvalue(lock, 0, 0), "t") != 0)
		return 0;
	snprintf(days_text, sizeof days_text, "%d", default_days);
	PGresult *res = pg_query(s->conn,
				 "SELECT dropped_partitions, deleted_rows"
				 " FROM query_log_apply_retention(default_days => $1::int)",
				 days_text);
	if (res) {
		*ran = true;
		*dropped = atoll(PQgetvalue(res, 0, 0));
		*deleted = atoll(PQgetvalue(res, 0, 1));
		PQclear(res);
	}
	PGresult *unlock = pg_query(s->conn, "SELECT pg_advisory_unlock(" RETENTION_LOCK ")");
	PQclear(unlock);
	return res ? 0 : -1;
}
