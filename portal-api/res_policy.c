/* res_policy.c -- a tenant's policy (block action, EDE contact, categories, safe search,
 * log privacy, retention) and the category catalogue.
 *
 * The policy is read through policy_categories_effective, the one place that says what a
 * category's mode is when the tenant set none. "default" in a PATCH removes the tenant's own
 * setting. Every change bumps policies.revision (the ETag), and the tables' NOTIFY triggers
 * tell tenantd to recompile at commit.
 */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "cleanup.h"
#include "handlers.h"
#include "pg.h"
#include "pgpool.h"
#include "valid.h"

#define POLICY_SELECT                                                                      \
	"SELECT json_build_object('tenant_id', p.tenant_id, 'block_action', p.block_action," \
	" 'sinkhole_v4', host(p.sinkhole_v4), 'sinkhole_v6', host(p.sinkhole_v6),"        \
	" 'ede_contact', p.ede_contact, 'safe_search', p.safe_search,"                     \
	" 'log_privacy', p.log_privacy, 'log_truncate_v4', p.log_truncate_v4,"             \
	" 'log_truncate_v6', p.log_truncate_v6, 'retention_days', p.retention_days,"       \
	" 'categories', (SELECT json_object_agg(e.category, json_build_object('mode', e.mode," \
	"     'kind', e.kind, 'explicit', e.explicit) ORDER BY e.category)"                 \
	"     FROM policy_categories_effective e WHERE e.tenant_id = p.tenant_id),"         \
	" 'updated_at', p.updated_at, 'revision', p.revision)::text,"                      \
	" p.revision, p.block_action, host(p.sinkhole_v4), host(p.sinkhole_v6)"              \
	" FROM policies p"                                                                 \
	" WHERE p.tenant_id = $4 AND p.tenant_id IN (SELECT s FROM portal_scope($1, $2, $3) s)"

static PGresult *fetch_policy(struct req *r, unsigned roles, bool lock)
{
	char rl[80];
	return db_query(r->pg, lock ? POLICY_SELECT " FOR UPDATE OF p" : POLICY_SELECT,
			REQ_SCOPE(r, roles, rl), r->params[0]);
}

int h_policy_get(struct req *r)
{
	if (!req_require(r, ROLES_READ) || !req_db(r))
		return -1;
	auto_pqclear PGresult *res = fetch_policy(r, ROLES_READ, false);
	if (!res)
		return req_db_failed(r);
	if (PQntuples(res) == 0)
		return req_error(r, 404, "not_found", NULL, "no such tenant");
	req_set_etag(r, PQgetvalue(res, 0, 1));
	return req_reply_json_text(r, 200, PQgetvalue(res, 0, 0));
}

/* Checks "categories": {"<name>": "block"|"monitor"|"off"|"default"} against the catalogue. */
static int check_categories(struct req *r, json_t *cats)
{
	static const char *const modes[] = { "block", "monitor", "off", "default", NULL };
	const char *name, *mode;
	json_t *v;

	if (!json_is_object(cats) || json_object_size(cats) > 64)
		return req_error(r, 422, "invalid_field", "categories",
				 "must be an object mapping category names to modes");
	json_object_foreach(cats, name, v) {
		char field[96];
		snprintf(field, sizeof field, "categories.%s", name);
		auto_pqclear PGresult *c = pg_query(r->pg,
			"SELECT 1 FROM categories WHERE name = $1", name);
		if (!c)
			return req_db_failed(r);
		if (PQntuples(c) == 0)
			return req_error(r, 422, "invalid_field", field, "no such category");
		if (valid_enum(r, cats, name, "categories", true, modes, &mode) < 0)
			return -1;
	}
	return 0;
}

int h_policy_patch(struct req *r)
{
	static const char *const allowed[] = { "block_action", "sinkhole_v4", "sinkhole_v6",
					       "ede_contact", "safe_search", "log_privacy",
					       "log_truncate_v4", "log_truncate_v6",
					       "retention_days", "categories", NULL };
	static const char *const actions[] = { "nxdomain", "nodata", "refused", "sinkhole", NULL };
	static const char *const privacy[] = { "full", "pseudonym", "truncated", NULL };
	const char *action = NULL, *v4 = NULL, *v6 = NULL, *ede = NULL, *priv = NULL;
	bool safe = false;
	long long t4 = 0, t6 = 0, days = 0;
	char t4s[8], t6s[8], dayss[8];
	json_t *b = r->body;

	if (!req_require(r, ROLES_ADMIN))
		return -1;
	int has_v4, has_v6, has_safe, has_t4, has_t6, has_days;
	if (valid_only(r, b, "", allowed) < 0 ||
	    valid_enum(r, b, "block_action", "", false, actions, &action) < 0 ||
	    (has_v4 = valid_address(r, b, "sinkhole_v4", "", 4, &v4)) < 0 ||
	    (has_v6 = valid_address(r, b, "sinkhole_v6", "", 6, &v6)) < 0 ||
	    valid_string(r, b, "ede_contact", "", false, 0, 200, &ede) < 0 ||
	    (has_safe = valid_bool(r, b, "safe_search", "", false, &safe)) < 0 ||
	    valid_enum(r, b, "log_privacy", "", false, privacy, &priv) < 0 ||
	    (has_t4 = valid_int(r, b, "log_truncate_v4", "", false, 0, 32, &t4)) < 0 ||
	    (has_t6 = valid_int(r, b, "log_truncate_v6", "", false, 0, 128, &t6)) < 0 ||
	    (has_days = valid_int(r, b, "retention_days", "", false, 1, 3650, &days)) < 0)
		return -1;
	snprintf(t4s, sizeof t4s, "%lld", t4);
	snprintf(t6s, sizeof t6s, "%lld", t6);
	snprintf(dayss, sizeof dayss, "%lld", days);

	if (req_begin(r) < 0)
		return -1;
	json_t *cats = json_object_get(b, "categories");
	if (cats && check_categories(r, cats) < 0)
		return -1;
	auto_pqclear PGresult *before = fetch_policy(r, ROLES_ADMIN, true);
	if (!before)
		return req_db_failed(r);
	if (PQntuples(before) == 0)
		return req_error(r, 404, "not_found", NULL, "no such tenant");
	if (!req_if_match(r, PQgetvalue(before, 0, 1)))
		return req_error(r, 412, "precondition_failed", "If-Match",
				 "the policy changed since you read it (revision %s)",
				 PQgetvalue(before, 0, 1));
	/* A sinkhole needs somewhere to send clients: check the policy as it will be. */
	const char *new_action = action ? action : PQgetvalue(before, 0, 2);
	bool v4_after = has_v4 ? v4 != NULL : !PQgetisnull(before, 0, 3);
	bool v6_after = has_v6 ? v6 != NULL : !PQgetisnull(before, 0, 4);
	if (strcmp(new_action, "sinkhole") == 0 && !v4_after && !v6_after)
		return req_error(r, 422, "invalid_field", action ? "block_action" : "sinkhole_v4",
				 "the sinkhole action needs sinkhole_v4 or sinkhole_v6");

	if (pg_command(r->pg,
		       "UPDATE policies SET block_action = coalesce($2, block_action),"
		       "  sinkhole_v4 = CASE WHEN $3::bool THEN $4::inet ELSE sinkhole_v4 END,"
		       "  sinkhole_v6 = CASE WHEN $5::bool THEN $6::inet ELSE sinkhole_v6 END,"
		       "  ede_contact = coalesce($7, ede_contact),"
		       "  safe_search = coalesce($8::bool, safe_search),"
		       "  log_privacy = coalesce($9, log_privacy),"
		       "  log_truncate_v4 = coalesce($10::smallint, log_truncate_v4),"
		       "  log_truncate_v6 = coalesce($11::smallint, log_truncate_v6),"
		       "  retention_days = coalesce($12::integer, retention_days)"
		       " WHERE tenant_id = $1",
		       r->params[0], action, has_v4 ? "true" : "false", v4,
		       has_v6 ? "true" : "false", v6, ede,
		       has_safe ? (safe ? "true" : "false") : NULL, priv, has_t4 ? t4s : NULL,
		       has_t6 ? t6s : NULL, has_days ? dayss : NULL) < 0)
		return req_db_failed(r);

	const char *name;
	json_t *v;
	json_object_foreach(cats, name, v) {
		const char *mode = json_string_value(v);
		int rc = strcmp(mode, "default") == 0 ?
			pg_command(r->pg, "DELETE FROM policy_categories"
					  " WHERE tenant_id = $1 AND category = $2",
				   r->params[0], name) :
			pg_command(r->pg, "INSERT INTO policy_categories (tenant_id, category, mode)"
					  " VALUES ($1, $2, $3) ON CONFLICT (tenant_id, category)"
					  " DO UPDATE SET mode = EXCLUDED.mode",
				   r->params[0], name, mode);
		if (rc < 0)
			return req_db_failed(r);
	}
	/* Category rows live in their own table: touch the policy so its revision (the ETag)
	 * moves with them. A no-op when the UPDATE above already changed the row. */
	if (cats && pg_command(r->pg, "UPDATE policies SET updated_at = now()"
				      " WHERE tenant_id = $1", r->params[0]) < 0)
		return req_db_failed(r);

	auto_pqclear PGresult *after = fetch_policy(r, ROLES_ADMIN, false);
	if (!after || PQntuples(after) != 1)
		return req_db_failed(r);
	if (strcmp(PQgetvalue(before, 0, 0), PQgetvalue(after, 0, 0)) != 0 &&
	    audit_write(r, ROLES_ADMIN, "policy.update", r->params[0], "policy", r->params[0],
			PQgetvalue(before, 0, 0), PQgetvalue(after, 0, 0), NULL) < 0)
		return -1;
	if (req_commit(r) < 0)
		return -1;
	req_set_etag(r, PQgetvalue(after, 0, 1));
	return req_reply_json_text(r, 200, PQgetvalue(after, 0, 0));
}

int h_categories_list(struct req *r)
{
	if (!req_require(r, ROLES_ANY) || !req_db(r))
		return -1;
	auto_pqclear PGresult *res = pg_query(r->pg,
		"SELECT json_build_object('name', name, 'kind', kind, 'default_mode',"
		"  CASE WHEN default_enabled THEN 'block' ELSE 'off' END,"
		"  'description', description)::text FROM categories ORDER BY name");
	if (!res)
		return req_db_failed(r);
	return req_reply_items(r, res, 0, -1, 0);
}
