/* res_querylog.c -- query-log search for SOC analysts: filters, keyset pagination, and a
 * streamed CSV export of any size.
 *
 * Rules (docs/portal-api.md quotes them):
 *  1. Only soc_analyst and ministry_admin search, and only rows of tenants their grants reach
 *     (rows of no tenant are not searchable here).
 *  2. Every search is audited before any row is returned (querylog.search, with the filters
 *     in details): who looked at which client's data is on record even if the transfer fails.
 *  3. The time range defaults to the last 24 hours before `until` (default now); pages are
 *     newest first, the cursor is the last row's (ts, event_id).
 *  4. In CSV, names come from the network and are attacker-chosen: a name a spreadsheet would
 *     take for a formula is written with a leading apostrophe.
 */
#include <ldns/ldns.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "cleanup.h"
#include "handlers.h"
#include "listio.h"
#include "pg.h"
#include "snapshot.h"
#include "valid.h"

#define QL_ROLES (ROLE_SOC_ANALYST | ROLE_MINISTRY_ADMIN)
#define QL_FETCH "1000"

/* Parameters $1..$15 of the search, in order: scope (3), since, until, tenant, client
 * prefix, pseudonym, name, subtree, qtype, action, category, cursor micros, cursor id. */
#define QL_WHERE                                                                           \
	" FROM query_log q"                                                                 \
	" WHERE q.tenant_id IN (SELECT s FROM portal_scope($1, $2, $3) s)"                           \
	"   AND q.ts >= coalesce($4::timestamptz,"                                           \
	"                        coalesce($5::timestamptz, now()) - interval '1 day')"       \
	"   AND q.ts < coalesce($5::timestamptz, now())"                                     \
	"   AND ($6::uuid IS NULL OR q.tenant_id = $6::uuid)"                                \
	"   AND ($7::inet IS NULL OR q.client_ip <<= $7::inet)"                              \
	"   AND ($8::text IS NULL OR q.client_pseudonym = $8)"                               \
	"   AND ($9::text IS NULL OR NOT $10::bool OR dns_name_in_subtree(q.qname, $9))"    \
	"   AND ($9::text IS NULL OR $10::bool OR q.qname = $9)"                             \
	"   AND ($11::integer IS NULL OR q.qtype = $11::integer)"                            \
	"   AND ($12::text IS NULL OR q.action = $12)"                                       \
	"   AND ($13::text IS NULL OR q.category = $13)"                                     \
	"   AND ($14::bigint IS NULL OR (q.ts, q.event_id) <"                                \
	"        ('epoch'::timestamptz + $14::bigint * interval '1 microsecond', $15::uuid))"

#define QL_JSON                                                                            \
	"json_build_object('ts', q.ts, 'event_id', q.event_id, 'node', q.node,"             \
	" 'tenant_id', q.tenant_id, 'client_ip', abbrev(q.client_ip),"                      \
	" 'client_pseudonym', q.client_pseudonym, 'transport', q.transport,"                \
	" 'qname', q.qname, 'qtype', q.qtype, 'rcode', q.rcode, 'action', q.action,"        \
	" 'category', q.category, 'rule_kind', q.rule_kind, 'matched_name', q.matched_name," \
	" 'ede', q.ede, 'cache_hit', q.cache_hit, 'snapshot_version', q.snapshot_version)::text"

#define QL_CURSOR                                                                          \
	"(extract(epoch FROM q.ts) * 1000000)::bigint || '_' || q.event_id"

struct ql_filters {
	const char *since, *until, *tenant, *client, *pseudonym, *name, *subtree, *qtype,
		*action, *category, *cursor_us, *cursor_id;
	char client_buf[64], name_buf[SNAPSHOT_NAME_TEXT_MAX], qtype_buf[16], cursor_buf[80];
};

static int bad_arg(struct req *r, const char *name, const char *msg)
{
	return req_error(r, 400, "invalid_parameter", name, "%s", msg);
}

/* Reads and checks the query arguments into f. 0, or -1 after answering 400. */
static int read_filters(struct req *r, struct ql_filters *f)
{
	static const char *const actions[] = { "allow", "block", "monitor", "refused",
					       "ratelimited", "local", "error", NULL };
	memset(f, 0, sizeof *f);
	if (valid_arg_time(r, "since", &f->since) < 0 || valid_arg_time(r, "until", &f->until) < 0)
		return -1;
	f->tenant = req_arg(r, "tenant_id");
	if (f->tenant && !valid_is_uuid(f->tenant))
		return bad_arg(r, "tenant_id", "tenant_id must be a UUID");

	const char *client = req_arg(r, "client"), *why;
	if (client) {
		/* An address alone is the prefix of one host. */
		if (!strchr(client, '/') && strlen(client) < 48)
			snprintf(f->client_buf, sizeof f->client_buf, "%s/%d", client,
				 strchr(client, ':') ? 128 : 32);
		else
			snprintf(f->client_buf, sizeof f->client_buf, "%s", client);
		if (strlen(client) >= 48 || (valid_cidr_text(f->client_buf, &why) < 0 &&
					     strstr(why, "wider") == NULL))
			return bad_arg(r, "client", "client must be an IP address or a prefix");
		f->client = f->client_buf;
	}
	f->pseudonym = req_arg(r, "client_pseudonym");
	if (f->pseudonym && (strlen(f->pseudonym) > 128 || !*f->pseudonym))
		return bad_arg(r, "client_pseudonym", "client_pseudonym is 1 to 128 characters");

	const char *name = req_arg(r, "name");
	if (name) {
		if (snapshot_name_text(name, strlen(name), f->name_buf) < 0)
			return bad_arg(r, "name", "name must be a domain name");
		f->name = f->name_buf;
	}
	const char *sub = req_arg(r, "subdomains");
	if (sub && strcmp(sub, "true") != 0 && strcmp(sub, "false") != 0)
		return bad_arg(r, "subdomains", "subdomains is true or false");
	f->subtree = sub && strcmp(sub, "false") == 0 ? "false" : "true";

	const char *qtype = req_arg(r, "qtype");
	if (qtype) {
		unsigned long n = 0;
		char *end;
		if (qtype[0] >= '0' && qtype[0] <= '9') {
			n = strtoul(qtype, &end, 10);
			if (*end || n > 65535 || strlen(qtype) > 5)
				n = 0;
		} else if (strlen(qtype) < 16) {
			n = ldns_get_rr_type_by_name(qtype);
		}
		if (n == 0)
			return bad_arg(r, "qtype", "qtype is a type name (A, AAAA, ...) or number");
		snprintf(f->qtype_buf, sizeof f->qtype_buf, "%lu", n);
		f->qtype = f->qtype_buf;
	}
	f->action = req_arg(r, "action");
	if (f->action) {
		const char *const *a = actions;
		while (*a && strcmp(*a, f->action) != 0)
			a++;
		if (!*a)
			return bad_arg(r, "action", "action is allow, block, monitor, refused, "
						    "ratelimited, local or error");
		f->action = *a;
	}
	f->category = req_arg(r, "category");
	if (f->category && (strlen(f->category) > 63 ||
			    strspn(f->category, "abcdefghijklmnopqrstuvwxyz0123456789_") !=
				    strlen(f->category) || !*f->category))
		return bad_arg(r, "category", "category is a category name");

	const char *cursor = req_arg(r, "after");
	if (cursor) {
		const char *us = cursor, *sep = strchr(cursor, '_');
		if (!sep || sep - us < 1 || sep - us > 18 ||
		    strspn(us, "0123456789") != (size_t)(sep - us) || !valid_is_uuid(sep + 1))
			return bad_arg(r, "after", "after is the next cursor of a previous page");
		snprintf(f->cursor_buf, sizeof f->cursor_buf, "%s", cursor);
		f->cursor_buf[sep - us] = '\0';
		f->cursor_us = f->cursor_buf;
		f->cursor_id = f->cursor_buf + (sep - us) + 1;
	}
	return 0;
}

/* The filters as the audit row's details. */
static char *filters_json(const struct ql_filters *f, const char *format)
{
	json_t *d = json_object();
	const char *keys[] = { "since", "until", "tenant_id", "client", "client_pseudonym", "name",
			       "qtype", "action", "category" };
	const char *vals[] = { f->since, f->until, f->tenant, f->client, f->pseudonym, f->name,
			       f->qtype, f->action, f->category };
	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
		if (vals[i])
			json_object_set_new(d, keys[i], json_string(vals[i]));
	if (f->name)
		json_object_set_new(d, "subdomains", json_boolean(strcmp(f->subtree, "true") == 0));
	json_object_set_new(d, "format", json_string(format));
	char *s = json_dumps(d, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(d);
	return s;
}

static int audit_search(struct req *r, const struct ql_filters *f, const char *format)
{
	auto_free char *details = filters_json(f, format);
	if (!details)
		return req_error(r, 500, "internal", NULL, "out of memory");
	if (req_begin(r) < 0 ||
	    audit_write(r, QL_ROLES, "querylog.search", f->tenant, "query_log", f->client,
			NULL, NULL, details) < 0 || req_commit(r) < 0)
		return -1;
	return 0;
}

/* ---- CSV stream ---- */

struct ql_stream {
	struct req_stream base;    /* first: the HTTP layer sees only this */
	PGresult *batch;
	int row;
	char line[4096];
	size_t line_len, line_off;
	bool exhausted;
};

static void csv_row(struct ql_stream *s, PGresult *b, int i)
{
	size_t o = 0, cap = sizeof s->line;
	for (int c = 0; c < PQnfields(b); c++) {
		const char *v = PQgetisnull(b, i, c) ? "" : PQgetvalue(b, i, c);
		if (c)
			s->line[o++] = ',';
		/* qname (5) and matched_name (11) are chosen by whoever sent the query. */
		size_t need = listio_csv_field(s->line + o, cap - o - 3, v, c == 5 || c == 11);
		o += need < cap - o - 3 ? need : cap - o - 4;
	}
	s->line[o++] = '\r';
	s->line[o++] = '\n';
	s->line_len = o;
	s->line_off = 0;
}

static int ql_fill(struct req_stream *base, char *buf, size_t cap, size_t *len)
{
	struct ql_stream *s = (struct ql_stream *)base;
	*len = 0;
	for (;;) {
		if (s->line_off < s->line_len) {
			size_t n = s->line_len - s->line_off;
			if (n > cap - *len)
				n = cap - *len;
			memcpy(buf + *len, s->line + s->line_off, n);
			*len += n;
			s->line_off += n;
			if (*len == cap)
				return 0;
			continue;
		}
		if (s->batch && s->row < PQntuples(s->batch)) {
			csv_row(s, s->batch, s->row++);
			continue;
		}
		if (s->exhausted)
			return 1;
		PQclear(s->batch);
		s->row = 0;
		s->batch = pg_query(base->pg, "FETCH " QL_FETCH " FROM ql");
		if (!s->batch)
			return -1;
		if (PQntuples(s->batch) == 0) {
			s->exhausted = true;
			if (pg_command(base->pg, "COMMIT") < 0)
				return -1;
		}
	}
}

static void ql_fini(struct req_stream *base)
{
	struct ql_stream *s = (struct ql_stream *)base;
	PQclear(s->batch);
	free(s);
}

static int stream_csv(struct req *r, const struct ql_filters *f)
{
	char roles[80];
	struct ql_stream *s = calloc(1, sizeof *s);
	if (!s)
		return req_error(r, 500, "internal", NULL, "out of memory");
	if (pg_command(r->pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0 ||
	    pg_command(r->pg,
		       "DECLARE ql NO SCROLL CURSOR FOR"
		       " SELECT to_char(q.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'),"
		       "  q.tenant_id, q.node, coalesce(abbrev(q.client_ip), q.client_pseudonym),"
		       "  q.transport, q.qname, q.qtype, q.rcode, q.action, q.category, q.rule_kind,"
		       "  q.matched_name, q.ede, q.cache_hit" QL_WHERE
		       " ORDER BY q.ts DESC, q.event_id DESC",
		       REQ_SCOPE(r, QL_ROLES, roles), f->since, f->until, f->tenant, f->client,
		       f->pseudonym, f->name, f->subtree, f->qtype, f->action, f->category,
		       f->cursor_us, f->cursor_id) < 0) {
		free(s);
		return req_db_failed(r);
	}
	static const char header[] = "ts,tenant_id,node,client,transport,qname,qtype,rcode,action,"
				     "category,rule_kind,matched_name,ede,cache_hit\r\n";
	memcpy(s->line, header, sizeof header - 1);
	s->line_len = sizeof header - 1;
	s->base.fill = ql_fill;
	s->base.fini = ql_fini;
	return req_stream(r, &s->base, "text/csv; charset=utf-8");
}

int h_querylog_search(struct req *r)
{
	struct ql_filters f;
	unsigned limit;
	char roles[80], limit_s[16];
	const char *format = req_arg(r, "format");

	if (!req_require(r, QL_ROLES) || read_filters(r, &f) < 0 ||
	    valid_arg_limit(r, 100, 1000, &limit) < 0)
		return -1;
	if (format && strcmp(format, "json") != 0 && strcmp(format, "csv") != 0)
		return bad_arg(r, "format", "format is json or csv");
	bool csv = format && strcmp(format, "csv") == 0;
	if (!req_db(r))
		return -1;
	if (f.tenant) {
		auto_pqclear PGresult *t = pg_query(r->pg,
			"SELECT 1 WHERE $4::uuid IN (SELECT s FROM portal_scope($1, $2, $3) s)",
			REQ_SCOPE(r, QL_ROLES, roles), f.tenant);
		if (!t)
			return req_db_failed(r);
		if (PQntuples(t) == 0)
			return req_error(r, 404, "not_found", NULL, "no such tenant");
	}
	if (audit_search(r, &f, csv ? "csv" : "json") < 0)
		return -1;
	if (csv)
		return stream_csv(r, &f);
	snprintf(limit_s, sizeof limit_s, "%u", limit);
	auto_pqclear PGresult *res = pg_query(r->pg,
		"SELECT " QL_JSON ", " QL_CURSOR QL_WHERE
		" ORDER BY q.ts DESC, q.event_id DESC LIMIT $16",
		REQ_SCOPE(r, QL_ROLES, roles), f.since, f.until, f.tenant, f.client, f.pseudonym,
		f.name, f.subtree, f.qtype, f.action, f.category, f.cursor_us, f.cursor_id, limit_s);
	if (!res)
		return req_db_failed(r);
	return req_reply_items(r, res, 0, 1, limit);
}
