/* res_audit.c -- the audit trail (search, chain verification) and the read-only view of
 * resolver nodes.
 *
 * Auditors and ministry administrators search the trail: with a global grant every row,
 * with a tenant grant the rows about tenants in the subtree. Verifying the chain needs a
 * global grant, because the chain is one for all tenants. Feeds and nodes are national
 * infrastructure: ministry administrators only.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "cleanup.h"
#include "handlers.h"
#include "pg.h"
#include "valid.h"

#define AUDIT_ROLES (ROLE_AUDITOR | ROLE_MINISTRY_ADMIN)

static bool audit_global(const struct req *r)
{
	return r->who.global[0] || r->who.global[3];   /* ministry_admin, auditor */
}

int h_audit_search(struct req *r)
{
	char roles[80], limit_s[16];
	unsigned limit;
	const char *tenant = req_arg(r, "tenant_id"), *actor = req_arg(r, "actor_id"),
		   *action = req_arg(r, "action"), *target = req_arg(r, "target_id"),
		   *before = req_arg(r, "before"), *since, *until;

	if (!req_require(r, AUDIT_ROLES) || valid_arg_limit(r, 100, 1000, &limit) < 0 ||
	    valid_arg_time(r, "since", &since) < 0 || valid_arg_time(r, "until", &until) < 0)
		return -1;
	if (tenant && !valid_is_uuid(tenant))
		return req_error(r, 400, "invalid_parameter", "tenant_id", "tenant_id must be a UUID");
	if (actor && !valid_is_uuid(actor))
		return req_error(r, 400, "invalid_parameter", "actor_id", "actor_id must be a UUID");
	if (action && (strlen(action) > 100 || strlen(action) == 0 ||
		       strspn(action, "abcdefghijklmnopqrstuvwxyz0123456789_.") != strlen(action)))
		return req_error(r, 400, "invalid_parameter", "action",
				 "action is a dotted verb such as tenant.create, or a prefix "
				 "ending in a dot");
	if (target && strlen(target) > 300)
		return req_error(r, 400, "invalid_parameter", "target_id", "target_id is too long");
	if (before && (strlen(before) > 18 || strspn(before, "0123456789") != strlen(before) ||
		       !*before))
		return req_error(r, 400, "invalid_parameter", "before",
				 "before is the next cursor of a previous page");
	if (!req_db(r))
		return -1;
	snprintf(limit_s, sizeof limit_s, "%u", limit);
	auto_pqclear PGresult *res = pg_query(r->pg,
		"SELECT json_build_object('id', a.id, 'at', a.at, 'actor_type', a.actor_type,"
		"  'actor_id', a.actor_id, 'actor_name', a.actor_name, 'actor_role', a.actor_role,"
		"  'actor_ip', host(a.actor_ip), 'request_id', a.request_id, 'action', a.action,"
		"  'tenant_id', a.tenant_id, 'target_type', a.target_type, 'target_id', a.target_id,"
		"  'before', a.before, 'after', a.after, 'details', a.details,"
		"  'row_hash', encode(a.row_hash, 'hex'))::text, a.id"
		"  FROM audit_log a"
		" WHERE ($4::bool OR a.tenant_id IN (SELECT s FROM portal_scope($1, $2, $3) s))"
		"   AND ($5::uuid IS NULL OR a.tenant_id = $5)"
		"   AND ($6::uuid IS NULL OR a.actor_id = $6)"
		"   AND ($7::text IS NULL OR a.action = $7"
		"        OR (right($7, 1) = '.' AND starts_with(a.action, $7)))"
		"   AND ($8::text IS NULL OR a.target_id = $8)"
		"   AND ($9::timestamptz IS NULL OR a.at >= $9)"
		"   AND ($10::timestamptz IS NULL OR a.at < $10)"
		"   AND ($11::bigint IS NULL OR a.id < $11)"
		" ORDER BY a.id DESC LIMIT $12",
		REQ_SCOPE(r, AUDIT_ROLES, roles), audit_global(r) ? "true" : "false", tenant, actor,
		action, target, since, until, before, limit_s);
	if (!res)
		return req_db_failed(r);
	return req_reply_items(r, res, 0, 1, limit);
}

int h_audit_verify(struct req *r)
{
	if (!req_require(r, AUDIT_ROLES))
		return -1;
	if (!audit_global(r))
		return req_error(r, 403, "forbidden", NULL,
				 "verifying the whole chain needs a global grant");
	if (!req_db(r))
		return -1;
	auto_pqclear PGresult *v = pg_query(r->pg,
		"WITH p AS MATERIALIZED (SELECT * FROM audit_log_verify())"
		" SELECT json_build_object('intact', NOT EXISTS (SELECT 1 FROM p),"
		"  'rows', (SELECT last_id FROM audit_chain_head),"
		"  'head_hash', (SELECT encode(last_hash, 'hex') FROM audit_chain_head),"
		"  'problems', coalesce((SELECT json_agg(json_build_object('id', p.id,"
		"      'problem', p.problem) ORDER BY p.id) FROM p), '[]'))::text");
	if (!v)
		return req_db_failed(r);
	return req_reply_json_text(r, 200, PQgetvalue(v, 0, 0));
}

int h_nodes_list(struct req *r)
{
	if (!req_require(r, ROLE_MINISTRY_ADMIN) || !req_db(r))
		return -1;
	auto_pqclear PGresult *res = pg_query(r->pg,
		"WITH cur AS (SELECT max(version) AS v FROM snapshots WHERE status = 'ok')"
		" SELECT json_build_object('id', n.id, 'name', n.name, 'description', n.description,"
		"  'software_version', n.software_version, 'snapshot_version', n.snapshot_version,"
		"  'snapshot_loaded_at', n.snapshot_loaded_at, 'current',"
		"  coalesce(n.snapshot_version = cur.v, false),"
		"  'last_seen_at', n.last_seen_at, 'last_seen_ip', host(n.last_seen_ip),"
		"  'revoked', n.revoked_at IS NOT NULL, 'last_error', n.last_error,"
		"  'last_error_at', n.last_error_at)::text"
		"  FROM resolver_nodes n, cur ORDER BY n.name");
	if (!res)
		return req_db_failed(r);
	auto_pqclear PGresult *cur = pg_query(r->pg,
		"SELECT max(version) FROM snapshots WHERE status = 'ok'");
	if (!cur)
		return req_db_failed(r);
	if (req_reply_items(r, res, 0, -1, 0) < 0)
		return -1;
	json_object_set_new(r->out, "current_snapshot_version",
			    PQgetisnull(cur, 0, 0) ? json_null() :
			    json_integer(atoll(PQgetvalue(cur, 0, 0))));
	return 0;
}
