/* res_misc.c -- health, Prometheus metrics and the OpenAPI document: the routes that need
 * no caller. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cleanup.h"
#include "handlers.h"
#include "openapi.h"
#include "pg.h"
#include "pgpool.h"
#include "portal.h"

#ifndef AEGIS_VERSION
#define AEGIS_VERSION "0.0.0"
#endif

int h_health(struct req *r)
{
	if (!req_db(r))
		return -1;
	auto_pqclear PGresult *res = pg_query(r->pg, "SELECT 1");
	if (!res)
		return req_db_failed(r);
	r->out = json_pack("{s:s, s:s, s:s}", "status", "ok", "database", "ok", "version",
			   AEGIS_VERSION);
	r->status = 200;
	return 0;
}

int h_metrics(struct req *r)
{
	struct portal *p = r->portal;
	struct portal_metrics *m = &p->metrics;
	static const char *const classes[] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
	size_t cap = 4096, len = 0;
	char *out = malloc(cap);
	if (!out)
		return req_error(r, 500, "internal", NULL, "out of memory");
#define EMIT(...) len += (size_t)snprintf(out + len, len < cap ? cap - len : 0, __VA_ARGS__)
	EMIT("# HELP aegis_portal_requests_total HTTP requests answered, by status class.\n"
	     "# TYPE aegis_portal_requests_total counter\n");
	for (int i = 0; i < PORTAL_STATUS_SLOTS; i++)
		EMIT("aegis_portal_requests_total{class=\"%s\"} %lu\n", classes[i],
		     atomic_load(&m->requests[i]));
	EMIT("# HELP aegis_portal_responses_total Selected statuses answered.\n"
	     "# TYPE aegis_portal_responses_total counter\n"
	     "aegis_portal_responses_total{code=\"401\"} %lu\n"
	     "aegis_portal_responses_total{code=\"403\"} %lu\n"
	     "aegis_portal_responses_total{code=\"404\"} %lu\n"
	     "aegis_portal_responses_total{code=\"429\"} %lu\n"
	     "aegis_portal_responses_total{code=\"503\"} %lu\n",
	     atomic_load(&m->status_401), atomic_load(&m->status_403), atomic_load(&m->status_404),
	     atomic_load(&m->status_429), atomic_load(&m->status_503));
	EMIT("# HELP aegis_portal_auth_failures_total Requests refused for a missing or bad token.\n"
	     "# TYPE aegis_portal_auth_failures_total counter\n"
	     "aegis_portal_auth_failures_total %lu\n"
	     "# HELP aegis_portal_logins_total Password logins, by outcome.\n"
	     "# TYPE aegis_portal_logins_total counter\n"
	     "aegis_portal_logins_total{outcome=\"ok\"} %lu\n"
	     "aegis_portal_logins_total{outcome=\"failed\"} %lu\n"
	     "# HELP aegis_portal_rate_limited_total Requests refused by a rate limit.\n"
	     "# TYPE aegis_portal_rate_limited_total counter\n"
	     "aegis_portal_rate_limited_total %lu\n"
	     "# HELP aegis_portal_audit_rows_total Audit rows written.\n"
	     "# TYPE aegis_portal_audit_rows_total counter\n"
	     "aegis_portal_audit_rows_total %lu\n",
	     atomic_load(&m->auth_failures), atomic_load(&m->logins_ok),
	     atomic_load(&m->logins_failed), atomic_load(&m->rate_limited),
	     atomic_load(&m->audit_rows));
	EMIT("# HELP aegis_portal_db_connections Database connections, lent and in the pool.\n"
	     "# TYPE aegis_portal_db_connections gauge\n"
	     "aegis_portal_db_connections{state=\"lent\"} %u\n"
	     "aegis_portal_db_connections{state=\"max\"} %u\n"
	     "# HELP aegis_portal_db_connect_failures_total Times a connection could not be made.\n"
	     "# TYPE aegis_portal_db_connect_failures_total counter\n"
	     "aegis_portal_db_connect_failures_total %lu\n",
	     pgpool_in_use(p->pool), pgpool_size(p->pool), pgpool_failures(p->pool));
#undef EMIT
	if (len >= cap) {
		free(out);
		return req_error(r, 500, "internal", NULL, "metrics buffer too small");
	}
	r->text = out;
	r->text_len = len;
	r->text_type = "text/plain; version=0.0.4; charset=utf-8";
	r->status = 200;
	return 0;
}

int h_openapi(struct req *r)
{
	size_t len;
	const char *doc = openapi_document(&len);
	r->text = malloc(len);
	if (!r->text)
		return req_error(r, 500, "internal", NULL, "out of memory");
	memcpy(r->text, doc, len);
	r->text_len = len;
	r->text_type = "application/json";
	r->status = 200;
	return 0;
}
