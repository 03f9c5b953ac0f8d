/* audit.h -- writing the audit trail (migrations/0007: append-only, hash-chained).
 *
 * audit_write() inserts one audit_log row on the request's connection, inside the
 * transaction that makes the change, so the change and its record commit or fail together.
 * The actor, role, address and request id come from the request; before/after are the
 * object's JSON as the API shows it (text, may be NULL). Nothing is allocated for the caller.
 */
#ifndef AEGIS_PORTAL_AUDIT_H
#define AEGIS_PORTAL_AUDIT_H

struct req;

/* 0, or -1 after answering the request (the caller rolls back by returning). */
int audit_write(struct req *r, unsigned roles, const char *action, const char *tenant_id,
		const char *target_type, const char *target_id, const char *before,
		const char *after, const char *details) __attribute__((warn_unused_result));

#endif
