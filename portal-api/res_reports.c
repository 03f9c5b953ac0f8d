/* res_reports.c -- reports from the hourly rollups of migration 0009 (filled by logpipe):
 * queries and blocks by category over time, top blocked names, top clients with threat hits;
 * per tenant (optionally with the tenants below it) or across every tenant the caller reaches,
 * as JSON or CSV.
 *
 * Rules: administrators and SOC analysts read reports of the tenants their grants reach; the
 * range is at most 366 days (default the last 7); top-clients names client addresses, so each
 * such report is audited like a query-log search (report.top_clients).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "cleanup.h"
#include "handlers.h"
#include "listio.h"
#include "pg.h"
#include "valid.h"

/* $1..$3 scope, $4 since, $5 until, $6 tenant, $7 subtree. */
#define REPORT_WHERE                                                                       \
	" WHERE x.tenant_id IN (SELECT s FROM portal_scope($1, $2, $3) s)"                           \
	"   AND x.hour >= coalesce($4::timestamptz,"                                         \
	"                          coalesce($5::timestamptz, now()) - interval '7 days')"    \
	"   AND x.hour < coalesce($5::timestamptz, now())"                                   \
	"   AND ($6::uuid IS NULL OR x.tenant_id IN (SELECT c.descendant_id"                \
	"        FROM tenant_closure c WHERE c.ancestor_id = $6::uuid"                       \
	"        AND ($7::bool OR c.depth = 0)))"

struct report_args {
	const char *since, *until, *tenant, *subtree;
	unsigned limit;
	bool csv, daily;
};

static int read_args(struct req *r, struct report_args *a, bool top)
{
	char roles[80];
	memset(a, 0, sizeof *a);
	if (!req_require(r, ROLES_READ) || valid_arg_time(r, "since", &a->since) < 0 ||
	    valid_arg_time(r, "until", &a->until) < 0 || valid_arg_limit(r, 20, 1000, &a->limit) < 0)
		return -1;
	a->tenant = req_arg(r, "tenant_id");
	if (a->tenant && !valid_is_uuid(a->tenant))
		return req_error(r, 400, "invalid_parameter", "tenant_id", "tenant_id must be a UUID");
	const char *sub = req_arg(r, "subtree"), *format = req_arg(r, "format"),
		   *bucket = req_arg(r, "bucket");
	if (sub && strcmp(sub, "true") != 0 && strcmp(sub, "false") != 0)
		return req_error(r, 400, "invalid_parameter", "subtree", "subtree is true or false");
	a->subtree = sub && strcmp(sub, "true") == 0 ? "true" : "false";
	if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)
		return req_error(r, 400, "invalid_parameter", "format", "format is json or csv");
	a->csv = format && strcmp(format, "csv") == 0;
	if (!top && bucket && strcmp(bucket, "hour") != 0 && strcmp(bucket, "day") != 0)
		return req_error(r, 400, "invalid_parameter", "bucket", "bucket is hour or day");
	a->daily = bucket && strcmp(bucket, "day") == 0;
	if (!req_db(r))
		return -1;
	/* The range check and the tenant check in one round trip. */
	auto_pqclear PGresult *t = pg_query(r->pg,
		"SELECT coalesce($5::timestamptz, now()) - coalesce($4::timestamptz,"
		"         coalesce($5::timestamptz, now()) - interval '7 days')"
		"         BETWEEN interval '0' AND interval '366 days',"
		"       $6::uuid IS NULL OR $6::uuid IN (SELECT s FROM portal_scope($1, $2, $3) s)",
		REQ_SCOPE(r, ROLES_READ, roles), a->since, a->until, a->tenant);
	if (!t)
		return req_db_failed(r);
	if (PQgetvalue(t, 0, 0)[0] != 't')
		return req_error(r, 400, "invalid_parameter", "since",
				 "the range runs forward and spans at most 366 days");
	if (PQgetvalue(t, 0, 1)[0] != 't')
		return req_error(r, 404, "not_found", NULL, "no such tenant");
	return 0;
}

/* Writes res (all columns, text) as CSV with header; columns listed in formula are
 * attacker-chosen names to defuse. */
static int reply_csv(struct req *r, PGresult *res, const char *header, int formula_col)
{
	int n = PQntuples(res), nf = PQnfields(res);
	size_t cap = strlen(header) + 3;
	for (int i = 0; i < n; i++)
		for (int c = 0; c < nf; c++)
			cap += 2 * (size_t)PQgetlength(res, i, c) + 4;
	char *out = malloc(cap);
	if (!out)
		return req_error(r, 500, "internal", NULL, "out of memory");
	size_t len = (size_t)snprintf(out, cap, "%s\r\n", header);
	for (int i = 0; i < n; i++) {
		for (int c = 0; c < nf; c++) {
			if (c)
				out[len++] = ',';
			len += listio_csv_field(out + len, cap - len, PQgetvalue(res, i, c),
						c == formula_col);
		}
		out[len++] = '\r';
		out[len++] = '\n';
	}
	r->text = out;
	r->text_len = len;
	r->text_type = "text/csv; charset=utf-8";
	r->status = 200;
	return 0;
}

int h_report_timeseries(struct req *r)
{
	struct report_args a;
	char roles[80];
	if (read_args(r, &a, false) < 0)
		return -1;
	auto_pqclear PGresult *res = pg_query(r->pg,
		a.csv ? "SELECT to_char(b AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
			"  category, action, n FROM ("
			"  SELECT date_trunc($8, x.hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS b,"
			"    x.category, x.action, sum(x.count)::bigint AS n"
			"  FROM query_rollup_hourly x" REPORT_WHERE
			"  GROUP BY 1, 2, 3) s ORDER BY 1, 2, 3"
		      : "SELECT json_build_object('time', b, 'category', nullif(category, ''),"
			"  'action', action, 'count', n)::text FROM ("
			"  SELECT date_trunc($8, x.hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS b,"
			"    x.category, x.action, sum(x.count)::bigint AS n"
			"  FROM query_rollup_hourly x" REPORT_WHERE
			"  GROUP BY 1, 2, 3) s ORDER BY b, category, action",
		REQ_SCOPE(r, ROLES_READ, roles), a.since, a.until, a.tenant, a.subtree,
		a.daily ? "day" : "hour");
	if (!res)
		return req_db_failed(r);
	return a.csv ? reply_csv(r, res, "time,category,action,count", -1)
		     : req_reply_items(r, res, 0, -1, 0);
}

int h_report_top_blocked(struct req *r)
{
	struct report_args a;
	char roles[80], limit_s[16];
	if (read_args(r, &a, true) < 0)
		return -1;
	snprintf(limit_s, sizeof limit_s, "%u", a.limit);
	auto_pqclear PGresult *res = pg_query(r->pg,
		a.csv ? "SELECT qname, action, category, n FROM ("
			"  SELECT x.qname, x.action, x.category, sum(x.count)::bigint AS n"
			"  FROM rollup_blocked_names x" REPORT_WHERE
			"  GROUP BY 1, 2, 3 ORDER BY n DESC, 1, 2, 3 LIMIT $8) s"
		      : "SELECT json_build_object('qname', qname, 'action', action,"
			"  'category', nullif(category, ''), 'count', n)::text FROM ("
			"  SELECT x.qname, x.action, x.category, sum(x.count)::bigint AS n"
			"  FROM rollup_blocked_names x" REPORT_WHERE
			"  GROUP BY 1, 2, 3 ORDER BY n DESC, 1, 2, 3 LIMIT $8) s",
		REQ_SCOPE(r, ROLES_READ, roles), a.since, a.until, a.tenant, a.subtree, limit_s);
	if (!res)
		return req_db_failed(r);
	return a.csv ? reply_csv(r, res, "qname,action,category,count", 0)
		     : req_reply_items(r, res, 0, -1, 0);
}

int h_report_top_clients(struct req *r)
{
	struct report_args a;
	char roles[80], limit_s[16];
	if (read_args(r, &a, true) < 0)
		return -1;
	json_t *d = json_pack("{s:s?, s:s?, s:s?, s:s}", "tenant_id", a.tenant, "since", a.since,
			      "until", a.until, "format", a.csv ? "csv" : "json");
	auto_free char *details = d ? json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(d);
	if (req_begin(r) < 0 ||
	    audit_write(r, ROLES_READ, "report.top_clients", a.tenant, "report", NULL, NULL, NULL,
			details) < 0 || req_commit(r) < 0)
		return -1;
	snprintf(limit_s, sizeof limit_s, "%u", a.limit);
	auto_pqclear PGresult *res = pg_query(r->pg,
		a.csv ? "SELECT tenant_id, client, categories, n FROM ("
			"  SELECT x.tenant_id, coalesce(abbrev(x.client_ip), x.client_pseudonym) AS client,"
			"    string_agg(DISTINCT x.category, ' ' ORDER BY x.category) AS categories,"
			"    sum(x.count)::bigint AS n"
			"  FROM rollup_threat_clients x" REPORT_WHERE
			"  GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT $8) s"
		      : "SELECT json_build_object('tenant_id', tenant_id, 'client', client,"
			"  'categories', categories, 'count', n)::text FROM ("
			"  SELECT x.tenant_id, coalesce(abbrev(x.client_ip), x.client_pseudonym) AS client,"
			"    array_agg(DISTINCT x.category ORDER BY x.category) AS categories,"
			"    sum(x.count)::bigint AS n"
			"  FROM rollup_threat_clients x" REPORT_WHERE
			"  GROUP BY 1, 2 ORDER BY n DESC, 1, 2 LIMIT $8) s",
		REQ_SCOPE(r, ROLES_READ, roles), a.since, a.until, a.tenant, a.subtree, limit_s);
	if (!res)
		return req_db_failed(r);
	return a.csv ? reply_csv(r, res, "tenant_id,client,categories,count", 1)
		     : req_reply_items(r, res, 0, -1, 0);
}
