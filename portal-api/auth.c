/* auth.c -- bearer tokens (API keys, sessions) to principals with their roles. */
#include "auth.h"

#include <openssl/crypto.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "pg.h"
#include "pgpool.h"
#include "portal.h"
#include "token.h"

static unsigned role_bit(const char *name)
{
	static const char *const names[] = { "ministry_admin", "tenant_admin", "soc_analyst",
					     "auditor" };
	for (unsigned i = 0; i < 4; i++)
		if (strcmp(name, names[i]) == 0)
			return 1u << i;
	return 0;
}

static void grant(struct principal *w, const char *role, bool global)
{
	unsigned bit = role_bit(role);
	w->roles |= bit;
	for (unsigned i = 0; i < 4; i++)
		if (bit == 1u << i && global)
			w->global[i] = true;
}

static int refuse(struct req *r)
{
	atomic_fetch_add(&r->portal->metrics.auth_failures, 1);
	return req_error(r, 401, "unauthenticated", "Authorization",
			 "a valid, unexpired and unrevoked bearer token is required");
}

static int by_api_key(struct req *r, const char *token, const char *prefix)
{
	char hash[TOKEN_HASH_HEX];
	token_hash_hex(token, hash);
	PGconn *db = req_db(r);
	if (!db)
		return -1;
	/* One statement: the lookup, and the last use recorded at most once a minute per key
	 * (only when the digest matches), so reads do not become writes. */
	auto_pqclear PGresult *res = db_query(db,
		"WITH k AS (SELECT id, key_hash, role, tenant_id FROM api_keys"
		"            WHERE prefix = $1 AND revoked_at IS NULL"
		"              AND (expires_at IS NULL OR expires_at > now())),"
		"     touch AS (UPDATE api_keys a SET last_used_at = now(), last_used_ip = $3::inet"
		"                 FROM k WHERE a.id = k.id AND a.key_hash = $2::bytea"
		"                  AND (a.last_used_at IS NULL"
		"                       OR a.last_used_at < now() - interval '1 minute'))"
		" SELECT id, encode(key_hash, 'hex'), role, tenant_id IS NULL FROM k",
		prefix, hash, r->client_ip);
	if (!res)
		return req_db_failed(r);
	if (PQntuples(res) != 1 || CRYPTO_memcmp(PQgetvalue(res, 0, 1), hash + 2, 64) != 0)
		return refuse(r);
	struct principal *w = &r->who;
	w->type = "api_key";
	snprintf(w->id, sizeof w->id, "%s", PQgetvalue(res, 0, 0));
	snprintf(w->name, sizeof w->name, "%s", prefix);
	grant(w, PQgetvalue(res, 0, 2), PQgetvalue(res, 0, 3)[0] == 't');
	return 0;
}

static int by_session(struct req *r, const char *token)
{
	char hash[TOKEN_HASH_HEX];
	token_hash_hex(token, hash);
	PGconn *db = req_db(r);
	if (!db)
		return -1;
	/* The session's last use is recorded at most once a minute, in the same statement. */
	auto_pqclear PGresult *res = db_query(db,
		"WITH s AS (SELECT s.id, s.user_id, s.last_used_at FROM sessions s"
		"            JOIN users u ON u.id = s.user_id"
		"           WHERE s.token_hash = $1 AND s.revoked_at IS NULL"
		"             AND s.expires_at > now() AND NOT u.disabled),"
		"     touch AS (UPDATE sessions t SET last_used_at = now() FROM s"
		"                WHERE t.id = s.id AND (s.last_used_at IS NULL"
		"                      OR s.last_used_at < now() - interval '1 minute'))"
		" SELECT s.id, u.id, u.email, g.role, g.tenant_id IS NULL"
		"   FROM s JOIN users u ON u.id = s.user_id"
		"   LEFT JOIN role_grants g ON g.user_id = u.id", hash);
	if (!res)
		return req_db_failed(r);
	if (PQntuples(res) == 0)
		return refuse(r);
	struct principal *w = &r->who;
	w->type = "user";
	snprintf(w->session_id, sizeof w->session_id, "%s", PQgetvalue(res, 0, 0));
	snprintf(w->id, sizeof w->id, "%s", PQgetvalue(res, 0, 1));
	snprintf(w->name, sizeof w->name, "%s", PQgetvalue(res, 0, 2));
	for (int i = 0; i < PQntuples(res); i++)
		if (!PQgetisnull(res, i, 3))
			grant(w, PQgetvalue(res, i, 3), PQgetvalue(res, i, 4)[0] == 't');
	return 0;
}

int auth_authenticate(struct req *r, const char *authorization)
{
	char prefix[TOKEN_PREFIX_LEN + 1];
	if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
		return refuse(r);
	const char *token = authorization + 7;
	while (*token == ' ')
		token++;
	int rc;
	if (token_api_key_prefix(token, prefix))
		rc = by_api_key(r, token, prefix);
	else if (token_is_session(token))
		rc = by_session(r, token);
	else
		return refuse(r);
	if (rc == 0)
		r->authenticated = true;
	return rc;
}
