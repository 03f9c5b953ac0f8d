/* res_users.c -- people who log in: accounts, passwords, role grants, unlocking.
 *
 * Rules (docs/portal-api.md quotes them):
 *  1. A ministry administrator manages every user. A tenant administrator manages the users
 *     whose grants all lie in its own scope (tenant grants, not ministry_admin); any other
 *     user answers 404 to it.
 *  2. Nobody grants more than it holds: a tenant administrator grants only tenant_admin,
 *     soc_analyst and auditor, only for tenants in its scope, never globally.
 *  3. Users are disabled, never deleted (the audit trail keeps naming them). Disabling a user
 *     or changing its password ends all its sessions.
 *  4. The password hash never leaves the database; the audit trail records that a password
 *     changed, not what it is.
 *  5. An administrator can reset a lost second factor (reset_totp); the user enrols again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "cleanup.h"
#include "handlers.h"
#include "password.h"
#include "pg.h"
#include "portal.h"
#include "valid.h"

#define USER_JSON                                                                          \
	"json_build_object('id', u.id, 'email', u.email, 'display_name', u.display_name,"   \
	" 'disabled', u.disabled, 'totp_enabled', u.totp_enabled_at IS NOT NULL,"           \
	" 'has_password', u.password_hash IS NOT NULL, 'failed_logins', u.failed_logins,"   \
	" 'locked_until', u.locked_until, 'last_login_at', u.last_login_at,"                \
	" 'created_at', u.created_at, 'updated_at', u.updated_at, 'revision', u.revision,"  \
	" 'grants', coalesce((SELECT json_agg(json_build_object('role', g.role,"            \
	"     'tenant_id', g.tenant_id) ORDER BY g.role, g.tenant_id)"                      \
	"   FROM role_grants g WHERE g.user_id = u.id), '[]'))::text"

/* $1..$3 scope (tenant_admin), $4 caller is a global ministry administrator. */
#define USER_VISIBLE                                                                       \
	" ($4::bool OR (EXISTS (SELECT 1 FROM role_grants g WHERE g.user_id = u.id)"        \
	"   AND NOT EXISTS (SELECT 1 FROM role_grants g WHERE g.user_id = u.id"             \
	"     AND (g.tenant_id IS NULL OR g.role = 'ministry_admin'"                        \
	"          OR g.tenant_id NOT IN (SELECT s FROM portal_scope($1, $2, $3) s)))))"

static const char *global_ministry(const struct req *r)
{
	return r->who.global[0] ? "true" : "false";
}

static PGresult *fetch_user(struct req *r, const char *id, bool lock)
{
	char roles[80];
	return pg_query(r->pg,
		lock ? "SELECT " USER_JSON ", u.revision FROM users u WHERE u.id = $5 AND"
		       USER_VISIBLE " FOR UPDATE OF u"
		     : "SELECT " USER_JSON ", u.revision FROM users u WHERE u.id = $5 AND"
		       USER_VISIBLE,
		REQ_SCOPE(r, ROLE_TENANT_ADMIN, roles), global_ministry(r), id);
}

int h_users_list(struct req *r)
{
	char roles[80];
	if (!req_require(r, ROLES_ADMIN) || !req_db(r))
		return -1;
	auto_pqclear PGresult *res = pg_query(r->pg,
		"SELECT " USER_JSON " FROM users u WHERE" USER_VISIBLE " ORDER BY u.email",
		REQ_SCOPE(r, ROLE_TENANT_ADMIN, roles), global_ministry(r));
	if (!res)
		return req_db_failed(r);
	return req_reply_items(r, res, 0, -1, 0);
}

int h_user_get(struct req *r)
{
	if (!req_require(r, ROLES_ADMIN) || !req_db(r))
		return -1;
	auto_pqclear PGresult *res = fetch_user(r, r->params[0], false);
	if (!res)
		return req_db_failed(r);
	if (PQntuples(res) == 0)
		return req_error(r, 404, "not_found", NULL, "no such user");
	req_set_etag(r, PQgetvalue(res, 0, 1));
	return req_reply_json_text(r, 200, PQgetvalue(res, 0, 0));
}

/* Checks "grants" (rule 2) against the caller, inside the open transaction. Returns the number
 * of grants (>= 0), or -1 after answering. */
static int check_grants(struct req *r, json_t *grants)
{
	static const char *const role_names[] = { "ministry_admin", "tenant_admin", "soc_analyst",
						  "auditor", NULL };
	static const char *const allowed[] = { "role", "tenant_id", NULL };
	char path[32], roles[80];
	size_t i;
	json_t *g;

	if (!json_is_array(grants) || json_array_size(grants) > 20)
		return req_error(r, 422, "invalid_field", "grants",
				 "must be an array of at most 20 grants");
	json_array_foreach(grants, i, g) {
		const char *role, *tenant = NULL;
		snprintf(path, sizeof path, "grants[%zu]", i);
		if (!json_is_object(g))
			return req_error(r, 422, "invalid_field", path, "must be an object");
		if (valid_only(r, g, path, allowed) < 0 ||
		    valid_enum(r, g, "role", path, true, role_names, &role) < 0 ||
		    valid_uuid(r, g, "tenant_id", path, false, true, &tenant) < 0)
			return -1;
		char field[48];
		snprintf(field, sizeof field, "%s.tenant_id", path);
		bool ministry = strcmp(role, "ministry_admin") == 0;
		if (ministry && tenant)
			return req_error(r, 422, "invalid_field", field,
					 "a ministry_admin grant is global: null");
		if (!tenant && strcmp(role, "tenant_admin") == 0)
			return req_error(r, 422, "invalid_field", field,
					 "a tenant_admin grant needs its tenant");
		if (!r->who.global[0] && (ministry || !tenant)) {
			snprintf(field, sizeof field, "%s.role", path);
			return req_error(r, 403, "forbidden", field,
					 "a tenant administrator grants only tenant roles below "
					 "ministry level");
		}
		if (tenant) {
			auto_pqclear PGresult *t = pg_query(r->pg,
				"SELECT 1 WHERE $4::uuid IN (SELECT s FROM portal_scope($1, $2, $3) s)",
				REQ_SCOPE(r, ROLES_ADMIN, roles), tenant);
			if (!t)
				return req_db_failed(r);
			if (PQntuples(t) == 0)
				return req_error(r, 422, "invalid_field", field, "no such tenant");
		}
	}
	return (int)json_array_size(grants);
}

static int write_grants(struct req *r, const char *user_id, json_t *grants)
{
	size_t i;
	json_t *g;
	if (pg_command(r->pg, "DELETE FROM role_grants WHERE user_id = $1", user_id) < 0)
		return req_db_failed(r);
	json_array_foreach(grants, i, g) {
		json_t *t = json_object_get(g, "tenant_id");
		if (pg_command(r->pg,
			       "INSERT INTO role_grants (user_id, role, tenant_id, created_by_user_id)"
			       " VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING", user_id,
			       json_string_value(json_object_get(g, "role")),
			       t && json_is_string(t) ? json_string_value(t) : NULL,
			       strcmp(r->who.type, "user") == 0 ? r->who.id : NULL) < 0)
			return req_db_failed(r);
	}
	return 0;
}

static int check_password(struct req *r, json_t *b, char hash[PASSWORD_HASH_MAX], bool *given)
{
	const char *pw;
	int m = valid_string(r, b, "password", "", false, PASSWORD_MIN_LEN, PASSWORD_MAX_LEN, &pw);
	*given = m > 0;
	if (m <= 0)
		return m;
	if (password_hash(pw, r->portal->cfg->scrypt_ln, 8, 1, hash) < 0)
		return req_error(r, 500, "internal", NULL, "cannot hash the password");
	return 1;
}

int h_users_create(struct req *r)
{
	static const char *const allowed[] = { "email", "display_name", "password", "grants",
					       NULL };
	const char *email, *name = "";
	char lower[256], hash[PASSWORD_HASH_MAX];
	bool has_password;
	json_t *b = r->body;

	if (!req_require(r, ROLES_ADMIN))
		return -1;
	if (valid_only(r, b, "", allowed) < 0 ||
	    valid_string(r, b, "email", "", true, 3, 254, &email) < 0 ||
	    valid_string(r, b, "display_name", "", false, 0, 200, &name) < 0)
		return -1;
	size_t n = strlen(email);
	const char *at = strchr(email, '@');
	if (!at || at == email || !at[1] || strchr(at + 1, '@') || strpbrk(email, " \t"))
		return req_error(r, 422, "invalid_field", "email", "must be an e-mail address");
	for (size_t i = 0; i <= n; i++)
		lower[i] = (char)(email[i] >= 'A' && email[i] <= 'Z' ? email[i] + 32 : email[i]);
	json_t *grants = json_object_get(b, "grants");
	if (!grants)
		return req_error(r, 422, "missing_field", "grants",
				 "a user needs at least one grant to be of use");
	if (check_password(r, b, hash, &has_password) < 0 || req_begin(r) < 0)
		return -1;
	int ng = check_grants(r, grants);
	if (ng < 0)
		return -1;
	if (ng == 0)
		return req_error(r, 422, "invalid_field", "grants", "at least one grant");
	auto_pqclear PGresult *u = pg_query(r->pg,
		"INSERT INTO users (email, display_name, password_hash, password_changed_at)"
		" VALUES ($1, $2, $3::text, CASE WHEN $3::text IS NULL THEN NULL ELSE now() END)"
		" ON CONFLICT ON CONSTRAINT users_email_key DO NOTHING RETURNING id",
		lower, name, has_password ? hash : NULL);
	if (!u)
		return req_db_failed(r);
	if (PQntuples(u) == 0)
		return req_error(r, 409, "conflict", "email", "a user with this e-mail exists");
	const char *id = PQgetvalue(u, 0, 0);
	if (write_grants(r, id, grants) < 0)
		return -1;
	auto_pqclear PGresult *after = fetch_user(r, id, false);
	if (!after || PQntuples(after) != 1)
		return req_db_failed(r);
	if (audit_write(r, ROLES_ADMIN, "user.create", NULL, "user", id, NULL,
			PQgetvalue(after, 0, 0), NULL) < 0 || req_commit(r) < 0)
		return -1;
	req_set_etag(r, PQgetvalue(after, 0, 1));
	snprintf(r->location, sizeof r->location, "/v1/users/%s", id);
	return req_reply_json_text(r, 201, PQgetvalue(after, 0, 0));
}

int h_user_patch(struct req *r)
{
	static const char *const allowed[] = { "display_name", "password", "disabled", "unlock",
					       "reset_totp", "grants", NULL };
	const char *name = NULL;
	bool disabled = false, unlock = false, reset_totp = false, has_password;
	int has_disabled, has_unlock;
	char hash[PASSWORD_HASH_MAX];
	json_t *b = r->body, *grants = json_object_get(b, "grants");
	const char *id = r->params[0];

	if (!req_require(r, ROLES_ADMIN))
		return -1;
	if (valid_only(r, b, "", allowed) < 0 ||
	    valid_string(r, b, "display_name", "", false, 0, 200, &name) < 0 ||
	    (has_disabled = valid_bool(r, b, "disabled", "", false, &disabled)) < 0 ||
	    (has_unlock = valid_bool(r, b, "unlock", "", false, &unlock)) < 0 ||
	    valid_bool(r, b, "reset_totp", "", false, &reset_totp) < 0 ||
	    check_password(r, b, hash, &has_password) < 0)
		return -1;
	if (id && strcmp(id, r->who.id) == 0 && has_disabled && disabled)
		return req_error(r, 409, "conflict", "disabled", "you cannot disable yourself");
	if (req_begin(r) < 0)
		return -1;
	auto_pqclear PGresult *before = fetch_user(r, id, true);
	if (!before)
		return req_db_failed(r);
	if (PQntuples(before) == 0)
		return req_error(r, 404, "not_found", NULL, "no such user");
	if (!req_if_match(r, PQgetvalue(before, 0, 1)))
		return req_error(r, 412, "precondition_failed", "If-Match",
				 "the user changed since you read it");
	if (grants) {
		int ng = check_grants(r, grants);
		if (ng < 0)
			return -1;
		if (ng == 0)
			return req_error(r, 422, "invalid_field", "grants", "at least one grant");
		if (write_grants(r, id, grants) < 0)
			return -1;
	}
	if (pg_command(r->pg,
		       "UPDATE users SET display_name = coalesce($2, display_name),"
		       "  disabled = coalesce($3::bool, disabled),"
		       "  password_hash = coalesce($4::text, password_hash),"
		       "  password_changed_at = CASE WHEN $4::text IS NULL THEN password_changed_at"
		       "                             ELSE now() END,"
		       "  failed_logins = CASE WHEN $5::bool THEN 0 ELSE failed_logins END,"
		       "  locked_until = CASE WHEN $5::bool THEN NULL ELSE locked_until END,"
		       "  totp_secret_enc = CASE WHEN $6::bool THEN NULL ELSE totp_secret_enc END,"
		       "  totp_enabled_at = CASE WHEN $6::bool THEN NULL ELSE totp_enabled_at END,"
		       "  totp_last_step = CASE WHEN $6::bool THEN NULL ELSE totp_last_step END"
		       " WHERE id = $1",
		       id, name, has_disabled ? (disabled ? "true" : "false") : NULL,
		       has_password ? hash : NULL, has_unlock && unlock ? "true" : "false",
		       reset_totp ? "true" : "false") < 0)
		return req_db_failed(r);
	/* Grants live in their own table: touch the user so its revision (the ETag) moves. */
	if (grants && pg_command(r->pg, "UPDATE users SET updated_at = now() WHERE id = $1", id) < 0)
		return req_db_failed(r);
	/* Rule 3: a disabled account or a new password ends every session. */
	if (((has_disabled && disabled) || has_password) &&
	    pg_command(r->pg, "UPDATE sessions SET revoked_at = now()"
			      " WHERE user_id = $1 AND revoked_at IS NULL", id) < 0)
		return req_db_failed(r);
	auto_pqclear PGresult *after = fetch_user(r, id, false);
	if (!after)
		return req_db_failed(r);
	if (PQntuples(after) == 0)   /* the new grants took the user out of the caller's reach */
		return req_error(r, 403, "forbidden", "grants",
				 "these grants would put the user out of your reach");
	const char *details = has_password ? "{\"password_changed\":true}" : NULL;
	if (audit_write(r, ROLES_ADMIN, "user.update", NULL, "user", id, PQgetvalue(before, 0, 0),
			PQgetvalue(after, 0, 0), details) < 0 || req_commit(r) < 0)
		return -1;
	req_set_etag(r, PQgetvalue(after, 0, 1));
	return req_reply_json_text(r, 200, PQgetvalue(after, 0, 0));
}
