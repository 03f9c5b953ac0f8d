/* res_preview.c -- policy preview: what a change would have done to the tenant's queries of
 * the last days, answered from the query log before the change is saved.
 *
 * Rules (docs/portal-api.md quotes them):
 *  1. A name to deny counts the queries at or below it that were answered (allow, monitor):
 *     they would have been blocked.
 *  2. A name to allow counts the queries at or below it that were blocked by anything but the
 *     national block list (which no tenant can override): they would have been answered.
 *  3. A category set to block counts its monitored matches; set to monitor or off, its
 *     blocks. A category that is off today leaves no trace in the log, so its effect cannot
 *     be told: "known" is false.
 *  4. Counts only, no client is named: the preview is not a query-log search.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cleanup.h"
#include "handlers.h"
#include "pg.h"
#include "snapshot.h"
#include "valid.h"

#define PREVIEW_MAX_NAMES 100

#define CLIENTS "count(DISTINCT coalesce(abbrev(q.client_ip), q.client_pseudonym))"
#define RANGE "q.tenant_id = $1 AND q.ts >= now() - make_interval(days => $2::int)"

static int names_effect(struct req *r, json_t *names, const char *key, const char *days,
			json_t *out)
{
	size_t i;
	json_t *v;
	char path[32], name[SNAPSHOT_NAME_TEXT_MAX];
	bool deny = strcmp(key, "deny") == 0;

	if (!names)
		return 0;
	if (!json_is_array(names) || json_array_size(names) > PREVIEW_MAX_NAMES)
		return req_error(r, 422, "invalid_field", key,
				 "must be an array of at most 100 domain names");
	json_t *arr = json_array();
	json_object_set_new(out, key, arr);
	json_array_foreach(names, i, v) {
		snprintf(path, sizeof path, "%s[%zu]", key, i);
		if (!json_is_string(v) ||
		    snapshot_name_text(json_string_value(v), json_string_length(v), name) < 0)
			return req_error(r, 422, "invalid_field", path, "must be a domain name");
		auto_pqclear PGresult *res = pg_query(r->pg,
			deny ? "SELECT count(*), " CLIENTS " FROM query_log q WHERE " RANGE
			       " AND dns_name_in_subtree(q.qname, $3)"
			       " AND q.action IN ('allow', 'monitor')"
			     : "SELECT count(*), " CLIENTS " FROM query_log q WHERE " RANGE
			       " AND dns_name_in_subtree(q.qname, $3) AND q.action = 'block'"
			       " AND q.rule_kind IS DISTINCT FROM 'national_block'",
			r->params[0], days, name);
		if (!res)
			return req_db_failed(r);
		json_array_append_new(arr, json_pack("{s:s, s:I, s:I}", "domain", name, "queries",
						     (json_int_t)atoll(PQgetvalue(res, 0, 0)),
						     "clients",
						     (json_int_t)atoll(PQgetvalue(res, 0, 1))));
	}
	return 0;
}

static int categories_effect(struct req *r, json_t *cats, const char *days, json_t *out)
{
	static const char *const modes[] = { "block", "monitor", "off", NULL };
	const char *name, *mode;
	json_t *v;

	if (!cats)
		return 0;
	if (!json_is_object(cats) || json_object_size(cats) > 64)
		return req_error(r, 422, "invalid_field", "categories",
				 "must be an object mapping category names to modes");
	json_t *arr = json_array();
	json_object_set_new(out, "categories", arr);
	json_object_foreach(cats, name, v) {
		char field[96];
		snprintf(field, sizeof field, "categories.%s", name);
		if (valid_enum(r, cats, name, "categories", true, modes, &mode) < 0)
			return -1;
		auto_pqclear PGresult *now = pg_query(r->pg,
			"SELECT mode FROM policy_categories_effective WHERE tenant_id = $1"
			" AND category = $2", r->params[0], name);
		if (!now)
			return req_db_failed(r);
		if (PQntuples(now) == 0)
			return req_error(r, 422, "invalid_field", field, "no such category");
		const char *cur = PQgetvalue(now, 0, 0);
		/* Rule 3: which logged action the change turns into its opposite. */
		const char *counted = strcmp(mode, "block") == 0 && strcmp(cur, "monitor") == 0 ?
			"monitor" : strcmp(mode, "block") != 0 && strcmp(cur, "block") == 0 ?
			"block" : NULL;
		bool known = strcmp(cur, "off") != 0 || strcmp(mode, "off") == 0;
		json_int_t queries = 0, clients = 0;
		if (counted) {
			auto_pqclear PGresult *res = pg_query(r->pg,
				"SELECT count(*), " CLIENTS " FROM query_log q WHERE " RANGE
				" AND q.category = $3 AND q.action = $4",
				r->params[0], days, name, counted);
			if (!res)
				return req_db_failed(r);
			queries = atoll(PQgetvalue(res, 0, 0));
			clients = atoll(PQgetvalue(res, 0, 1));
		}
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:b, s:I, s:I}", "category",
						     name, "from", cur, "to", mode, "known", known,
						     "queries", queries, "clients", clients));
	}
	return 0;
}

int h_policy_preview(struct req *r)
{
	static const char *const allowed[] = { "days", "deny", "allow", "categories", NULL };
	long long days = 7;
	char days_s[8], roles[80];
	json_t *b = r->body;

	if (!req_require(r, ROLES_ADMIN))
		return -1;
	if (valid_only(r, b, "", allowed) < 0 ||
	    valid_int(r, b, "days", "", false, 1, 31, &days) < 0)
		return -1;
	snprintf(days_s, sizeof days_s, "%lld", days);
	if (!req_db(r))
		return -1;
	auto_pqclear PGresult *t = pg_query(r->pg,
		"SELECT 1 WHERE $4::uuid IN (SELECT s FROM portal_scope($1, $2, $3) s)",
		REQ_SCOPE(r, ROLES_ADMIN, roles), r->params[0]);
	if (!t)
		return req_db_failed(r);
	if (PQntuples(t) == 0)
		return req_error(r, 404, "not_found", NULL, "no such tenant");
	/* One snapshot for every count, so the parts of the answer agree with each other. */
	if (pg_command(r->pg, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0)
		return req_db_failed(r);
	json_t *out = json_pack("{s:s, s:I}", "tenant_id", r->params[0], "days", (json_int_t)days);
	if (!out)
		return req_error(r, 500, "internal", NULL, "out of memory");
	r->out = out;
	if (names_effect(r, json_object_get(b, "deny"), "deny", days_s, out) < 0 ||
	    names_effect(r, json_object_get(b, "allow"), "allow", days_s, out) < 0 ||
	    categories_effect(r, json_object_get(b, "categories"), days_s, out) < 0)
		return -1;
	req_rollback(r);
	r->status = 200;
	return 0;
}
