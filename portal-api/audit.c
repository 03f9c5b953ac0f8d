/* audit.c -- one audit_log row per change, in the change's own transaction. */
#include "audit.h"

#include <stdatomic.h>

#include "api.h"
#include "pg.h"
#include "portal.h"

int audit_write(struct req *r, unsigned roles, const char *action, const char *tenant_id,
		const char *target_type, const char *target_id, const char *before,
		const char *after, const char *details)
{
	const char *type = r->authenticated ? r->who.type : "anonymous";
	if (pg_command(r->pg,
		       "INSERT INTO audit_log (actor_type, actor_id, actor_name, actor_role, actor_ip,"
		       "  request_id, action, tenant_id, target_type, target_id, before, after, details)"
		       " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11::jsonb, $12::jsonb,"
		       "         coalesce($13::jsonb, '{}'))",
		       type, r->authenticated ? r->who.id : NULL,
		       r->authenticated ? r->who.name : NULL,
		       r->authenticated ? req_acting_role(r, roles) : NULL, r->client_ip,
		       r->request_id, action, tenant_id, target_type, target_id, before, after,
		       details) < 0)
		return req_db_failed(r);
	atomic_fetch_add(&r->portal->metrics.audit_rows, 1);
	return 0;
}
