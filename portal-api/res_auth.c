/* res_auth.c -- logging in and out, TOTP enrolment, who am I, and API keys.
 *
 * Login rules (docs/portal-api.md quotes them):
 *  1. A user past auth.lockout_failures consecutive failures is locked for
 *     auth.lockout_seconds: login answers 429 without checking the password.
 *  2. An address with 50 failures in the current 15-minute window is refused (429) until the
 *     window ends, whatever the account (password spraying).
 *  3. With TOTP enabled the password alone is not enough: a missing code answers 401
 *     "totp_required"; a wrong or replayed code counts as a failure.
 *  4. Every failure and every success is audited; failures as actor "anonymous" with the
 *     e-mail tried in details.
 * API keys: a ministry administrator issues any key; a tenant administrator issues keys of
 * the roles tenant_admin, soc_analyst and auditor for tenants in its scope, never a global
 * one. The key is in the creation answer only.
 */
#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "audit.h"
#include "auth.h"
#include "cleanup.h"
#include "log.h"
#include "handlers.h"
#include "password.h"
#include "pg.h"
#include "pgpool.h"
#include "portal.h"
#include "token.h"
#include "totp.h"
#include "valid.h"

#define IP_FAILURE_LIMIT 50
#define TOTP_KEY_ID 1

/* A well-formed hash to verify against when the user does not exist, so the answer takes
 * as long as for a real account. */
static const char dummy_hash[] =
	"$scrypt$ln=15,r=8,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

static void to_hex(const uint8_t *in, size_t len, char *out)
{
	out[0] = '\\';
	out[1] = 'x';
	for (size_t i = 0; i < len; i++)
		snprintf(out + 2 + 2 * i, 3, "%02x", in[i]);
}

static int from_hex(const char *in, uint8_t *out, size_t cap, size_t *len)
{
	size_t n = strlen(in);
	if (n % 2 || n / 2 > cap)
		return -1;
	for (size_t i = 0; i < n / 2; i++) {
		unsigned v;
		if (sscanf(in + 2 * i, "%2x", &v) != 1)
			return -1;
		out[i] = (uint8_t)v;
	}
	*len = n / 2;
	return 0;
}

/* Records a failed login (user row if known, address window, audit) and commits it. */
static int login_failed(struct req *r, const char *user_id, const char *email, const char *why)
{
	const struct portal_config *cfg = r->portal->cfg;
	char limit[16], secs[16];
	snprintf(limit, sizeof limit, "%u", cfg->lockout_failures);
	snprintf(secs, sizeof secs, "%u", cfg->lockout_seconds);
	atomic_fetch_add(&r->portal->metrics.logins_failed, 1);
	if (user_id && pg_command(r->pg,
			"UPDATE users SET failed_logins = failed_logins + 1,"
			"  locked_until = CASE WHEN failed_logins + 1 >= $2::int"
			"    THEN now() + make_interval(secs => $3::int) ELSE locked_until END"
			" WHERE id = $1", user_id, limit, secs) < 0)
		return req_db_failed(r);
	if (pg_command(r->pg, "DELETE FROM portal_login_failures"
			      " WHERE window_start < now() - interval '1 day'") < 0 ||
	    pg_command(r->pg,
		       "INSERT INTO portal_login_failures (client_ip, window_start, failures)"
		       " VALUES ($1, date_bin('15 minutes', now(), 'epoch'), 1)"
		       " ON CONFLICT (client_ip, window_start)"
		       " DO UPDATE SET failures = portal_login_failures.failures + 1", r->client_ip) < 0)
		return req_db_failed(r);
	json_t *d = json_pack("{s:s, s:s}", "email", email, "reason", why);
	auto_free char *details = d ? json_dumps(d, JSON_COMPACT) : NULL;
	json_decref(d);
	if (audit_write(r, 0, "auth.login_failed", NULL, "user", user_id, NULL, NULL, details) < 0 ||
	    req_commit(r) < 0)
		return -1;
	return 0;
}

int h_login(struct req *r)
{
	static const char *const allowed[] = { "email", "password", "totp_code", NULL };
	const struct portal_config *cfg = r->portal->cfg;
	const char *email, *password, *code = NULL;
	char lower[256], expiry[16];
	json_t *b = r->body;

	if (valid_only(r, b, "", allowed) < 0 ||
	    valid_string(r, b, "email", "", true, 3, 254, &email) < 0 ||
	    valid_string(r, b, "password", "", true, 1, PASSWORD_MAX_LEN, &password) < 0 ||
	    valid_string(r, b, "totp_code", "", false, 6, 6, &code) < 0)
		return -1;
	if (code && strspn(code, "0123456789") != 6)
		return req_error(r, 422, "invalid_field", "totp_code", "must be six digits");
	size_t i;
	for (i = 0; email[i] && i + 1 < sizeof lower; i++)
		lower[i] = (char)(email[i] >= 'A' && email[i] <= 'Z' ? email[i] + 32 : email[i]);
	lower[i] = '\0';

	if (req_begin(r) < 0)
		return -1;
	auto_pqclear PGresult *ipf = pg_query(r->pg,
		"SELECT failures, ceil(extract(epoch FROM date_bin('15 minutes', now(), 'epoch')"
		"   + interval '15 minutes' - now()))::int"
		"  FROM portal_login_failures"
		" WHERE client_ip = $1 AND window_start = date_bin('15 minutes', now(), 'epoch')",
		r->client_ip);
	if (!ipf)
		return req_db_failed(r);
	if (PQntuples(ipf) == 1 && atoi(PQgetvalue(ipf, 0, 0)) >= IP_FAILURE_LIMIT) {
		r->retry_after = (unsigned)atoi(PQgetvalue(ipf, 0, 1));
		return req_error(r, 429, "too_many_failures", NULL,
				 "too many failed logins from your address; try again later");
	}
	auto_pqclear PGresult *u = pg_query(r->pg,
		"SELECT id, password_hash, locked_until > now(),"
		"  ceil(extract(epoch FROM locked_until - now()))::int,"
		"  totp_enabled_at IS NOT NULL, encode(totp_secret_enc, 'hex'),"
		"  coalesce(totp_last_step, 0)"
		"  FROM users WHERE email = $1 AND NOT disabled FOR UPDATE", lower);
	if (!u)
		return req_db_failed(r);
	bool known = PQntuples(u) == 1;
	const char *uid = known ? PQgetvalue(u, 0, 0) : NULL;
	if (known && PQgetvalue(u, 0, 2)[0] == 't') {
		r->retry_after = (unsigned)atoi(PQgetvalue(u, 0, 3));
		if (login_failed(r, NULL, lower, "locked") < 0)
			return -1;
		return req_error(r, 429, "locked_out", NULL,
				 "too many failed logins for this account; try again later");
	}
	const char *stored = known && !PQgetisnull(u, 0, 1) ? PQgetvalue(u, 0, 1) : dummy_hash;
	if (!password_verify(password, stored) || !known || stored == dummy_hash) {
		if (login_failed(r, uid, lower, "bad_password") < 0)
			return -1;
		return req_error(r, 401, "invalid_credentials", NULL, "wrong e-mail or password");
	}
	if (PQgetvalue(u, 0, 4)[0] == 't') {
		uint8_t sealed[TOTP_SEALED_LEN + 8], secret[TOTP_SECRET_LEN];
		size_t slen;
		int64_t last = atoll(PQgetvalue(u, 0, 6));
		char last_s[24];
		if (!code) {
			req_rollback(r);
			return req_error(r, 401, "totp_required", "totp_code",
					 "this account needs a one-time code");
		}
		if (!cfg->totp_key_loaded || from_hex(PQgetvalue(u, 0, 5), sealed, sizeof sealed,
						      &slen) < 0 ||
		    totp_open(cfg->totp_key, uid, sealed, slen, secret) < 0) {
			log_err("totp_unavailable", "user=%s", uid);
			return req_error(r, 500, "internal", NULL, "the one-time code cannot be checked");
		}
		int rc = totp_check(secret, sizeof secret, code, (int64_t)time(NULL), &last);
		OPENSSL_cleanse(secret, sizeof secret);
		if (rc < 0) {
			if (login_failed(r, uid, lower, "bad_totp") < 0)
				return -1;
			return req_error(r, 401, "invalid_credentials", "totp_code",
					 "wrong or already used one-time code");
		}
		snprintf(last_s, sizeof last_s, "%lld", (long long)last);
		if (pg_command(r->pg, "UPDATE users SET totp_last_step = $2 WHERE id = $1", uid,
			       last_s) < 0)
			return req_db_failed(r);
	}

	char token[TOKEN_MAX], hash[TOKEN_HASH_HEX];
	if (token_new_session(token) < 0)
		return req_error(r, 500, "internal", NULL, "no randomness");
	token_hash_hex(token, hash);
	snprintf(expiry, sizeof expiry, "%u", cfg->session_seconds);
	const char *agent = req_header(r, "User-Agent");
	auto_pqclear PGresult *s = pg_query(r->pg,
		"WITH u AS (UPDATE users SET failed_logins = 0, locked_until = NULL,"
		"    last_login_at = now() WHERE id = $1)"
		" INSERT INTO sessions (token_hash, user_id, expires_at, client_ip, user_agent)"
		" VALUES ($2, $1, now() + make_interval(secs => $3::int), $4, left($5, 512))"
		" RETURNING json_build_object('session_id', id, 'expires_at', expires_at)::text, id",
		uid, hash, expiry, r->client_ip, agent);
	if (!s)
		return req_db_failed(r);
	/* The audit row names the user as actor: it is who logged in. */
	r->who.type = "user";
	snprintf(r->who.id, sizeof r->who.id, "%s", uid);
	snprintf(r->who.name, sizeof r->who.name, "%s", lower);
	r->authenticated = true;
	if (audit_write(r, 0, "auth.login", NULL, "session", PQgetvalue(s, 0, 1), NULL, NULL,
			NULL) < 0 || req_commit(r) < 0)
		return -1;
	atomic_fetch_add(&r->portal->metrics.logins_ok, 1);
	if (req_reply_json_text(r, 200, PQgetvalue(s, 0, 0)) < 0)
		return -1;
	json_object_set_new(r->out, "token", json_string(token));
	OPENSSL_cleanse(token, sizeof token);
	return 0;
}

int h_logout(struct req *r)
{
	if (strcmp(r->who.type, "user") != 0)
		return req_error(r, 409, "not_a_session", "Authorization",
				 "log out ends a session; revoke an API key instead");
	if (req_begin(r) < 0)
		return -1;
	if (pg_command(r->pg, "UPDATE sessions SET revoked_at = now() WHERE id = $1",
		       r->who.session_id) < 0)
		return req_db_failed(r);
	if (audit_write(r, ROLES_ANY, "auth.logout", NULL, "session", r->who.session_id, NULL, NULL,
			NULL) < 0 || req_commit(r) < 0)
		return -1;
	r->status = 204;
	return 0;
}

int h_me(struct req *r)
{
	char roles[80];
	if (!req_db(r))
		return -1;
	/* The grants as stored, so a caller sees exactly what it was given. */
	auto_pqclear PGresult *res = db_query(r->pg,
		"SELECT json_build_object('type', $1::text, 'id', $2::uuid, 'name', $4::text,"
		"  'roles', $3::text[], 'grants', coalesce((SELECT json_agg(json_build_object("
		"      'role', g.role, 'tenant_id', g.tenant_id) ORDER BY g.role, g.tenant_id)"
		"    FROM (SELECT role, tenant_id FROM role_grants WHERE $1 = 'user' AND user_id = $2"
		"          UNION ALL SELECT role, tenant_id FROM api_keys"
		"          WHERE $1 = 'api_key' AND id = $2) g), '[]'))::text",
		REQ_SCOPE(r, ROLES_ANY, roles), r->who.name);
	if (!res)
		return req_db_failed(r);
	return req_reply_json_text(r, 200, PQgetvalue(res, 0, 0));
}

/* ---- a user's own sessions ---- */

int h_sessions_list(struct req *r)
{
	if (strcmp(r->who.type, "user") != 0)
		return req_error(r, 409, "not_a_session", "Authorization",
				 "sessions belong to users; API keys have none");
	if (!req_db(r))
		return -1;
	auto_pqclear PGresult *res = pg_query(r->pg,
		"SELECT json_build_object('id', id, 'created_at', created_at,"
		"  'expires_at', expires_at, 'last_used_at', last_used_at,"
		"  'client_ip', host(client_ip), 'user_agent', user_agent,"
		"  'current', id = $2::uuid)::text"
		"  FROM sessions WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()"
		" ORDER BY created_at DESC", r->who.id, r->who.session_id);
	if (!res)
		return req_db_failed(r);
	return req_reply_items(r, res, 0, -1, 0);
}

int h_session_revoke(struct req *r)
{
	if (strcmp(r->who.type, "user") != 0)
		return req_error(r, 409, "not_a_session", "Authorization",
				 "sessions belong to users; API keys have none");
	if (req_begin(r) < 0)
		return -1;
	auto_pqclear PGresult *res = pg_query(r->pg,
		"UPDATE sessions SET revoked_at = now() WHERE id = $1 AND user_id = $2"
		" AND revoked_at IS NULL RETURNING id", r->params[0], r->who.id);
	if (!res)
		return req_db_failed(r);
	if (PQntuples(res) == 0)
		return req_error(r, 404, "not_found", NULL, "no such session");
	if (audit_write(r, ROLES_ANY, "auth.session_revoke", NULL, "session", r->params[0], NULL,
			NULL, NULL) < 0 || req_commit(r) < 0)
		return -1;
	r->status = 204;
	return 0;
}

/* ---- TOTP enrolment (users only) ---- */

int h_totp_enrol(struct req *r)
{
	const struct portal_config *cfg = r->portal->cfg;
	uint8_t secret[TOTP_SECRET_LEN], sealed[TOTP_SEALED_LEN];
	char hex[2 * TOTP_SEALED_LEN + 3], b32[64], uri[512];

	if (strcmp(r->who.type, "user") != 0)
		return req_error(r, 409, "not_a_user", "Authorization",
				 "one-time codes are for people; API keys do not log in");
	if (!cfg->totp_key_loaded)
		return req_error(r, 409, "totp_unavailable", NULL,
				 "this portal has no auth.totp_key_file configured");
	if (token_random(secret, sizeof secret) < 0 ||
	    totp_seal(cfg->totp_key, TOTP_KEY_ID, r->who.id, secret, sealed) < 0)
		return req_error(r, 500, "internal", NULL, "cannot make a secret");
	to_hex(sealed, sizeof sealed, hex);
	totp_base32(secret, sizeof secret, b32, sizeof b32);
	OPENSSL_cleanse(secret, sizeof secret);
	if (req_begin(r) < 0)
		return -1;
	auto_pqclear PGresult *u = pg_query(r->pg,
		"UPDATE users SET totp_secret_enc = $2, totp_enabled_at = NULL, totp_last_step = NULL"
		" WHERE id = $1 AND totp_enabled_at IS NULL RETURNING 1", r->who.id, hex);
	if (!u)
		return req_db_failed(r);
	if (PQntuples(u) == 0)
		return req_error(r, 409, "totp_enabled", NULL, "one-time codes are already on");
	if (audit_write(r, ROLES_ANY, "auth.totp_enrol", NULL, "user", r->who.id, NULL, NULL,
			NULL) < 0 || req_commit(r) < 0)
		return -1;
	snprintf(uri, sizeof uri, "otpauth://totp/Aegis:%s?secret=%s&issuer=Aegis&digits=6&period=30",
		 r->who.name, b32);
	r->out = json_pack("{s:s, s:s}", "secret", b32, "otpauth_uri", uri);
	OPENSSL_cleanse(b32, sizeof b32);
	r->status = 200;
	return r->out ? 0 : req_error(r, 500, "internal", NULL, "out of memory");
}

int h_totp_confirm(struct req *r)
{
	static const char *const allowed[] = { "code", NULL };
	const struct portal_config *cfg = r->portal->cfg;
	const char *code;
	uint8_t sealed[TOTP_SEALED_LEN + 8], secret[TOTP_SECRET_LEN];
	size_t slen;
	char last_s[24];

	if (valid_only(r, r->body, "", allowed) < 0 ||
	    valid_string(r, r->body, "code", "", true, 6, 6, &code) < 0)
		return -1;
	if (strspn(code, "0123456789") != 6)
		return req_error(r, 422, "invalid_field", "code", "must be six digits");
	if (strcmp(r->who.type, "user") != 0 || !cfg->totp_key_loaded)
		return req_error(r, 409, "totp_unavailable", NULL, "no enrolment to confirm");
	if (req_begin(r) < 0)
		return -1;
	auto_pqclear PGresult *u = pg_query(r->pg,
		"SELECT encode(totp_secret_enc, 'hex') FROM users"
		" WHERE id = $1 AND totp_secret_enc IS NOT NULL AND totp_enabled_at IS NULL"
		" FOR UPDATE", r->who.id);
	if (!u)
		return req_db_failed(r);
	if (PQntuples(u) == 0)
		return req_error(r, 409, "totp_unavailable", NULL, "no enrolment to confirm");
	int64_t last = 0;
	if (from_hex(PQgetvalue(u, 0, 0), sealed, sizeof sealed, &slen) < 0 ||
	    totp_open(cfg->totp_key, r->who.id, sealed, slen, secret) < 0)
		return req_error(r, 500, "internal", NULL, "the one-time code cannot be checked");
	int rc = totp_check(secret, sizeof secret, code, (int64_t)time(NULL), &last);
	OPENSSL_cleanse(secret, sizeof secret);
	if (rc < 0)
		return req_error(r, 422, "invalid_field", "code", "wrong one-time code");
	snprintf(last_s, sizeof last_s, "%lld", (long long)last);
	if (pg_command(r->pg, "UPDATE users SET totp_enabled_at = now(), totp_last_step = $2"
			      " WHERE id = $1", r->who.id, last_s) < 0)
		return req_db_failed(r);
	if (audit_write(r, ROLES_ANY, "auth.totp_enable", NULL, "user", r->who.id, NULL, NULL,
			NULL) < 0 || req_commit(r) < 0)
		return -1;
	r->status = 204;
	return 0;
}

/* ---- API keys ---- */

#define KEY_JSON                                                                           \
	"json_build_object('id', k.id, 'name', k.name, 'prefix', k.prefix, 'role', k.role,"  \
	" 'tenant_id', k.tenant_id, 'created_at', k.created_at, 'expires_at', k.expires_at,"\
	" 'revoked_at', k.revoked_at, 'last_used_at', k.last_used_at)::text"

int h_api_keys_list(struct req *r)
{
	char roles[80];
	if (!req_require(r, ROLES_ADMIN) || !req_db(r))
		return -1;
	/* Global keys are listed only to a ministry administrator. */
	auto_pqclear PGresult *res = pg_query(r->pg,
		"SELECT " KEY_JSON " FROM api_keys k"
		" WHERE (k.tenant_id IS NULL AND 'ministry_admin' = ANY ($3::text[]))"
		"    OR k.tenant_id IN (SELECT s FROM portal_scope($1, $2, $3) s)"
		" ORDER BY k.created_at, k.id", REQ_SCOPE(r, ROLES_ADMIN, roles));
	if (!res)
		return req_db_failed(r);
	return req_reply_items(r, res, 0, -1, 0);
}

int h_api_keys_create(struct req *r)
{
	static const char *const allowed[] = { "name", "role", "tenant_id", "expires_in_days",
					       NULL };
	static const char *const role_names[] = { "ministry_admin", "tenant_admin", "soc_analyst",
						  "auditor", NULL };
	const char *name, *role, *tenant = NULL;
	long long days = 90;
	char days_s[16], roles[80], key[TOKEN_MAX], prefix[TOKEN_PREFIX_LEN + 1], hash[TOKEN_HASH_HEX];
	json_t *b = r->body;

	if (!req_require(r, ROLES_ADMIN))
		return -1;
	if (valid_only(r, b, "", allowed) < 0 ||
	    valid_string(r, b, "name", "", true, 1, 200, &name) < 0 ||
	    valid_enum(r, b, "role", "", true, role_names, &role) < 0 ||
	    valid_uuid(r, b, "tenant_id", "", false, true, &tenant) < 0 ||
	    valid_int(r, b, "expires_in_days", "", false, 1, 3650, &days) < 0)
		return -1;
	bool ministry = r->who.roles & ROLE_MINISTRY_ADMIN;
	if (!ministry && (!tenant || strcmp(role, "ministry_admin") == 0))
		return req_error(r, 403, "forbidden", tenant ? "role" : "tenant_id",
				 "a tenant administrator issues only tenant keys below ministry level");
	if (strcmp(role, "ministry_admin") == 0 && tenant)
		return req_error(r, 422, "invalid_field", "tenant_id",
				 "a ministry_admin key is global: tenant_id must be null");
	if (strcmp(role, "tenant_admin") == 0 && !tenant)
		return req_error(r, 422, "invalid_field", "tenant_id",
				 "a tenant_admin key needs its tenant");
	snprintf(days_s, sizeof days_s, "%lld", days);
	if (req_begin(r) < 0)
		return -1;
	if (tenant) {
		auto_pqclear PGresult *t = pg_query(r->pg,
			"SELECT 1 WHERE $4::uuid IN (SELECT s FROM portal_scope($1, $2, $3) s)",
			REQ_SCOPE(r, ROLES_ADMIN, roles), tenant);
		if (!t)
			return req_db_failed(r);
		if (PQntuples(t) == 0)
			return req_error(r, 422, "invalid_field", "tenant_id", "no such tenant");
	}
	if (token_new_api_key(key, prefix) < 0)
		return req_error(r, 500, "internal", NULL, "no randomness");
	token_hash_hex(key, hash);
	auto_pqclear PGresult *res = pg_query(r->pg,
		"INSERT INTO api_keys AS k (name, prefix, key_hash, role, tenant_id,"
		"  created_by_user_id, expires_at)"
		" VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7::int))"
		" RETURNING " KEY_JSON ", k.id",
		name, prefix, hash, role, tenant, strcmp(r->who.type, "user") == 0 ? r->who.id : NULL,
		days_s);
	if (!res)
		return req_db_failed(r);
	if (audit_write(r, ROLES_ADMIN, "api_key.create", tenant, "api_key", PQgetvalue(res, 0, 1),
			NULL, PQgetvalue(res, 0, 0), NULL) < 0 || req_commit(r) < 0)
		return -1;
	if (req_reply_json_text(r, 201, PQgetvalue(res, 0, 0)) < 0)
		return -1;
	json_object_set_new(r->out, "key", json_string(key));
	OPENSSL_cleanse(key, sizeof key);
	return 0;
}

int h_api_key_revoke(struct req *r)
{
	char roles[80];
	if (!req_require(r, ROLES_ADMIN) || req_begin(r) < 0)
		return -1;
	auto_pqclear PGresult *before = pg_query(r->pg,
		"SELECT " KEY_JSON ", k.tenant_id FROM api_keys k WHERE k.id = $4"
		"   AND ((k.tenant_id IS NULL AND 'ministry_admin' = ANY ($3::text[]))"
		"    OR k.tenant_id IN (SELECT s FROM portal_scope($1, $2, $3) s)) FOR UPDATE",
		REQ_SCOPE(r, ROLES_ADMIN, roles), r->params[0]);
	if (!before)
		return req_db_failed(r);
	if (PQntuples(before) == 0)
		return req_error(r, 404, "not_found", NULL, "no such API key");
	auto_pqclear PGresult *after = pg_query(r->pg,
		"UPDATE api_keys AS k SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1"
		" RETURNING " KEY_JSON, r->params[0]);
	if (!after)
		return req_db_failed(r);
	const char *tenant = PQgetisnull(before, 0, 1) ? NULL : PQgetvalue(before, 0, 1);
	if (audit_write(r, ROLES_ADMIN, "api_key.revoke", tenant, "api_key", r->params[0],
			PQgetvalue(before, 0, 0), PQgetvalue(after, 0, 0), NULL) < 0 ||
	    req_commit(r) < 0)
		return -1;
	r->status = 204;
	return 0;
}
