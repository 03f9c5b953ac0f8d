/* pgpool.c -- lend and take back PostgreSQL connections, reconnecting broken ones. */
#include "pgpool.h"

#include <errno.h>
#include <libpq-events.h>
#include <stdio.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pg.h"

struct pgpool {
	pthread_mutex_t lock;
	pthread_cond_t freed;
	char *dsn;
	unsigned size, wait_ms;
	unsigned idle_count, lent;
	PGconn **idle;                  /* connections ready to lend; NULL slots not yet made */
	unsigned long failures;
};

/* ---- prepared statements, per connection ---- */

#define STMT_MAX 64

struct stmt_cache {
	const char *sql[STMT_MAX];      /* the literals prepared on this connection, by index */
	unsigned n;
};

/* libpq calls this when the connection is closed: the cache goes with it. */
static int stmt_event(PGEventId id, void *info, void *arg)
{
	(void)arg;
	if (id == PGEVT_CONNDESTROY) {
		PGEventConnDestroy *e = info;
		free(PQinstanceData(e->conn, stmt_event));
	}
	return 1;
}

static void log_failure(PGconn *conn, const PGresult *res, const char *sql)
{
	char msg[512], stmt[256];
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	log_err("db_query_failed", "sqlstate=%s error=%s sql=%s", state ? state : "none",
		log_quote(msg, sizeof msg, res ? PQresultErrorMessage(res) : PQerrorMessage(conn)),
		log_quote(stmt, sizeof stmt, sql));
}

PGresult *pgpool_exec(PGconn *conn, const char *sql, int nparams, const char *const *params)
{
	struct stmt_cache *c = PQinstanceData(conn, stmt_event);
	char name[16];
	unsigned i;

	if (!c)
		return pg_query_params(conn, sql, nparams, params);
	for (i = 0; i < c->n && c->sql[i] != sql; i++)
		;
	if (i == c->n) {
		if (c->n == STMT_MAX)
			return pg_query_params(conn, sql, nparams, params);
		snprintf(name, sizeof name, "a%u", i);
		PGresult *prep = PQprepare(conn, name, sql, nparams, NULL);
		if (!prep || PQresultStatus(prep) != PGRES_COMMAND_OK) {
			log_failure(conn, prep, sql);
			PQclear(prep);
			return NULL;
		}
		PQclear(prep);
		c->sql[c->n++] = sql;
	}
	snprintf(name, sizeof name, "a%u", i);
	PGresult *res = PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	log_failure(conn, res, sql);
	PQclear(res);
	return NULL;
}

struct pgpool *pgpool_new(const char *dsn, unsigned size, unsigned wait_ms)
{
	struct pgpool *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->dsn = strdup(dsn);
	p->idle = calloc(size, sizeof *p->idle);
	if (!p->dsn || !p->idle) {
		free(p->dsn);
		free(p->idle);
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->freed, NULL);
	p->size = size;
	p->wait_ms = wait_ms;
	p->idle_count = size;           /* every slot counts as idle until it is made */
	return p;
}

void pgpool_free(struct pgpool *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < p->size; i++)
		if (p->idle[i])
			PQfinish(p->idle[i]);
	pthread_cond_destroy(&p->freed);
	pthread_mutex_destroy(&p->lock);
	free(p->idle);
	free(p->dsn);
	free(p);
}

/* A new connection with the session settings the API's SQL relies on: UTC timestamps in
 * JSON and a bound on any one statement, so a stuck query cannot hold a worker forever. */
static PGconn *connect_one(const char *dsn)
{
	PGconn *c = pg_connect(dsn);
	if (!c)
		return NULL;
	if (pg_command(c, "SELECT set_config('TimeZone', 'UTC', false),"
			  " set_config('statement_timeout', '30s', false),"
			  " set_config('application_name', 'aegis-portal-api', false)") < 0) {
		PQfinish(c);
		return NULL;
	}
	struct stmt_cache *cache = calloc(1, sizeof *cache);
	if (cache && PQregisterEventProc(c, stmt_event, "aegis-portal-stmts", NULL) &&
	    PQsetInstanceData(c, stmt_event, cache))
		cache = NULL;   /* owned by the connection now */
	free(cache);            /* without a cache, pgpool_exec() falls back to pg_query() */
	return c;
}

PGconn *pgpool_get(struct pgpool *p)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += p->wait_ms / 1000;
	until.tv_nsec += (long)(p->wait_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}

	pthread_mutex_lock(&p->lock);
	while (p->idle_count == 0) {
		if (pthread_cond_timedwait(&p->freed, &p->lock, &until) == ETIMEDOUT) {
			pthread_mutex_unlock(&p->lock);
			log_warn("db_pool_exhausted", "size=%u", p->size);
			return NULL;
		}
	}
	PGconn *c = p->idle[--p->idle_count];
	p->idle[p->idle_count] = NULL;
	p->lent++;
	pthread_mutex_unlock(&p->lock);

	if (c && PQstatus(c) != CONNECTION_OK) {
		PQfinish(c);
		c = NULL;
	}
	if (!c)
		c = connect_one(p->dsn);
	if (!c) {
		pthread_mutex_lock(&p->lock);
		p->failures++;
		pthread_mutex_unlock(&p->lock);
		pgpool_put(p, NULL);
	}
	return c;
}

void pgpool_put(struct pgpool *p, PGconn *conn)
{
	if (conn && PQstatus(conn) == CONNECTION_OK &&
	    PQtransactionStatus(conn) != PQTRANS_IDLE) {
		/* A handler that failed mid-transaction: end it here, once. */
		if (pg_command(conn, "ROLLBACK") < 0 || PQtransactionStatus(conn) != PQTRANS_IDLE) {
			PQfinish(conn);
			conn = NULL;
		}
	}
	if (conn && PQstatus(conn) != CONNECTION_OK) {
		PQfinish(conn);
		conn = NULL;
	}
	pthread_mutex_lock(&p->lock);
	p->idle[p->idle_count++] = conn;
	p->lent--;
	pthread_cond_signal(&p->freed);
	pthread_mutex_unlock(&p->lock);
}

unsigned pgpool_in_use(struct pgpool *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned n = p->lent;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned long pgpool_failures(struct pgpool *p)
{
	pthread_mutex_lock(&p->lock);
	unsigned long n = p->failures;
	pthread_mutex_unlock(&p->lock);
	return n;
}

unsigned pgpool_size(const struct pgpool *p)
{
	return p->size;
}
