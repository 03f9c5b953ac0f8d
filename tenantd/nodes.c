/* nodes.c -- issue and revoke resolver node tokens. */
#include "nodes.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "pg.h"

static void hex(const unsigned char *in, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", in[i]);
}

int nodes_add(const char *dsn, const char *name)
{
	unsigned char secret[32], hash[32];
	unsigned int hlen = 0;
	char token[80], token_hash[65], secret_hex[65];

	if (RAND_bytes(secret, sizeof secret) != 1) {
		fprintf(stderr, "aegis-tenantd: no randomness for a token\n");
		return -1;
	}
	hex(secret, sizeof secret, secret_hex);
	snprintf(token, sizeof token, "aegisnode_%s", secret_hex);
	EVP_Digest(token, strlen(token), hash, &hlen, EVP_sha256(), NULL);
	hex(hash, sizeof hash, token_hash);

	auto_pqfinish PGconn *conn = pg_connect(dsn);
	if (!conn)
		return -1;
	auto_pqclear PGresult *res = pg_query(
		conn,
		"WITH node AS (INSERT INTO resolver_nodes (name, token_hash)"
		" VALUES ($1, decode($2, 'hex')) ON CONFLICT (name) DO NOTHING RETURNING id)"
		" INSERT INTO audit_log (actor_type, actor_name, action, target_type, target_id)"
		" SELECT 'system', 'aegis-tenantd node-add', 'node.create', 'resolver_node', id::text"
		" FROM node RETURNING target_id",
		name, token_hash);
	if (!res) {
		fprintf(stderr, "aegis-tenantd: cannot register node '%s' (see the log)\n", name);
		return -1;
	}
	if (PQntuples(res) != 1) {
		fprintf(stderr, "aegis-tenantd: node '%s' exists already\n", name);
		return -1;
	}
	printf("%s\n", token);
	return 0;
}

int nodes_revoke(const char *dsn, const char *name)
{
	auto_pqfinish PGconn *conn = pg_connect(dsn);
	if (!conn)
		return -1;
	auto_pqclear PGresult *res = pg_query(
		conn,
		"WITH node AS (UPDATE resolver_nodes SET revoked_at = now()"
		" WHERE name = $1 AND revoked_at IS NULL RETURNING id)"
		" INSERT INTO audit_log (actor_type, actor_name, action, target_type, target_id)"
		" SELECT 'system', 'aegis-tenantd node-revoke', 'node.revoke', 'resolver_node',"
		" id::text FROM node RETURNING target_id",
		name);
	if (!res || PQntuples(res) != 1) {
		fprintf(stderr, "aegis-tenantd: no active node named '%s'\n", name);
		return -1;
	}
	return 0;
}
