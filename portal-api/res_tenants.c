/* res_tenants.c -- tenants (institutions in a hierarchy) and their networks.
 *
 * Rules the handlers enforce, as docs/portal-api.md states them:
 *  1. A caller sees the tenants its grants reach (portal_scope); any other id answers 404.
 *  2. Only a ministry administrator creates, deletes or re-parents tenants or changes their
 *     kind; a tenant administrator may rename its tenants and edit contacts and notes.
 *  3. A network may overlap another tenant's network only when it is strictly more specific
 *     (inside it), and then only a ministry administrator may add it; an exact duplicate or a
 *     prefix that covers another tenant's network is refused (409). A prefix inside the
 *     tenant's own network, itself more specific than the other tenant's, takes nothing from
 *     that tenant (longest prefix already picks this one) and needs no ministry
 *     administrator. Insertions take a lock on networks so two concurrent adds cannot both
 *     pass the check.
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

#define TENANT_JSON                                                                        \
	"json_build_object('id', t.id, 'parent_id', t.parent_id, 'kind', t.kind,"           \
	" 'name', t.name, 'slug', t.slug, 'contacts', t.contacts, 'notes', t.notes,"        \
	" 'created_at', t.created_at, 'updated_at', t.updated_at,"                          \
	" 'revision', t.revision)::text"

#define NETWORK_JSON                                                                       \
	"json_build_object('id', n.id, 'tenant_id', n.tenant_id, 'cidr', n.prefix::text,"   \
	" 'description', n.description, 'created_at', n.created_at,"                       \
	" 'updated_at', n.updated_at, 'revision', n.revision)::text"

static const char *const kinds[] = { "ministry", "region", "hospital", "school",
				     "municipality", "office", "other", NULL };

static int check_slug(struct req *r, const char *slug, const char *field)
{
	size_t n = strlen(slug);
	bool ok = n >= 1 && n <= 63 && strspn(slug, "abcdefghijklmnopqrstuvwxyz0123456789-") == n &&
		  slug[0] != '-' && slug[n - 1] != '-';
	if (!ok)
		return req_error(r, 422, "invalid_field", field,
				 "must be 1 to 63 of a-z, 0-9 and '-', not starting or ending "
				 "with '-'");
	return 0;
}

/* contacts: up to 20 objects {name, role, email, phone}. Returns 0 or -1 (answered). */
static int check_contacts(struct req *r, json_t *body)
{
	static const char *const allowed[] = { "name", "role", "email", "phone", NULL };
	json_t *a = json_object_get(body, "contacts"), *c;
	size_t i;
	char path[64];
	const char *s;

	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > 20)
		return req_error(r, 422, "invalid_field", "contacts",
				 "must be an array of at most 20 contacts");
	json_array_foreach(a, i, c) {
		snprintf(path, sizeof path, "contacts[%zu]", i);
		if (!json_is_object(c))
			return req_error(r, 422, "invalid_field", path, "must be an object");
		if (valid_only(r, c, path, allowed) < 0 ||
		    valid_string(r, c, "name", path, true, 1, 200, &s) < 0 ||
		    valid_string(r, c, "role", path, false, 0, 100, &s) < 0 ||
		    valid_string(r, c, "phone", path, false, 0, 50, &s) < 0)
			return -1;
		int m = valid_string(r, c, "email", path, false, 0, 254, &s);
		if (m < 0)
			return -1;
		if (m > 0 && *s && (!strchr(s, '@') || strchr(s, ' ') || s[0] == '@' ||
				    strchr(s, '@')[1] == '\0')) {
			char f[96];
			return req_error(r, 422, "invalid_field", valid_path(f, sizeof f, path, "email"),
					 "must be an e-mail address");
		}
	}
	return 0;
}

int h_tenants_list(struct req *r)
{
	char roles[80], limit_s[16];
	unsigned limit;
	const char *after = req_arg(r, "after"), *parent = req_arg(r, "parent_id");

	if (!req_require(r, ROLES_ANY) || valid_arg_limit(r, 100, 1000, &limit) < 0)
		return -1;
	if (after && (strlen(after) > 63 || strspn(after, "abcdefghijklmnopqrstuvwxyz0123456789-") !=
					      strlen(after)))
		return req_error(r, 400, "invalid_parameter", "after",
				 "after is the slug cursor of a previous page");
	if (parent && !valid_is_uuid(parent))
		return req_error(r, 400, "invalid_parameter", "parent_id", "parent_id must be a UUID");
	if (!req_db(r))
		return -1;
	snprintf(limit_s, sizeof limit_s, "%u", limit);
	auto_pqclear PGresult *res = pg_query(r->pg,
		"SELECT " TENANT_JSON ", t.slug FROM tenants t"
		" WHERE t.id IN (SELECT s FROM portal_scope($1, $2, $3) s)"
		"   AND ($4::text IS NULL OR t.slug > $4) AND ($5::uuid IS NULL OR t.parent_id = $5)"
		" ORDER BY t.slug LIMIT $6",
		REQ_SCOPE(r, ROLES_ANY, roles), after, parent, limit_s);
	if (!res)
		return req_db_failed(r);
	return req_reply_items(r, res, 0, 1, limit);
}

/* The tenant as JSON and its revision, locked for update when lock; NULL row: not found. */
static PGresult *fetch_tenant(struct req *r, unsigned roles, const char *id, bool lock)
{
	char rl[80];
	return db_query(r->pg,
		lock ? "SELECT " TENANT_JSON ", t.revision, t.parent_id FROM tenants t"
		       " WHERE t.id = $4 AND t.id IN (SELECT s FROM portal_scope($1, $2, $3) s) FOR UPDATE"
		     : "SELECT " TENANT_JSON ", t.revision, t.parent_id FROM tenants t"
		       " WHERE t.id = $4 AND t.id IN (SELECT s FROM portal_scope($1, $2, $3) s)",
		REQ_SCOPE(r, roles, rl), id);
}

int h_tenant_get(struct req *r)
{
	if (!req_require(r, ROLES_ANY) || !req_db(r))
		return -1;
	auto_pqclear PGresult *res = fetch_tenant(r, ROLES_ANY, r->params[0], false);
	if (!res)
		return req_db_failed(r);
	if (PQntuples(res) == 0)
		return req_error(r, 404, "not_found", NULL, "no such tenant");
	req_set_etag(r, PQgetvalue(res, 0, 1));
	return req_reply_json_text(r, 200, PQgetvalue(res, 0, 0));
}

/* Adds one network to tenant_id inside the open transaction; field names the body member
 * for errors. On success *json is the new network's JSON (PQ-owned by *res_out). */
static int network_insert(struct req *r, const char *tenant_id, const char *cidr,
			  const char *description, const char *field, PGresult **res_out)
{
	if (pg_command(r->pg, "LOCK TABLE networks IN SHARE ROW EXCLUSIVE MODE") < 0)
		return req_db_failed(r);
	auto_pqclear PGresult *o = pg_query(r->pg,
		"SELECT count(*) FILTER (WHERE n.prefix = $1::cidr),"
		"       count(*) FILTER (WHERE n.tenant_id <> $2 AND NOT $1::cidr << n.prefix),"
		"       count(*) FILTER (WHERE n.tenant_id <> $2 AND NOT EXISTS ("
		"           SELECT 1 FROM networks o WHERE o.tenant_id = $2"
		"              AND $1::cidr <<= o.prefix AND o.prefix << n.prefix))"
		"  FROM networks n WHERE n.prefix && $1::cidr", cidr, tenant_id);
	if (!o)
		return req_db_failed(r);
	if (strcmp(PQgetvalue(o, 0, 0), "0") != 0)
		return req_error(r, 409, "conflict", field, "this prefix is already registered");
	if (strcmp(PQgetvalue(o, 0, 1), "0") != 0)
		return req_error(r, 409, "network_overlap", field,
				 "overlaps a network of another tenant without being strictly "
				 "more specific");
	if (strcmp(PQgetvalue(o, 0, 2), "0") != 0 && !(r->who.roles & ROLE_MINISTRY_ADMIN))
		return req_error(r, 403, "overlap_needs_ministry_admin", field,
				 "lies inside another tenant's network: only a ministry "
				 "administrator may add it");
	PGresult *res = pg_query(r->pg,
		"INSERT INTO networks AS n (tenant_id, prefix, description)"
		" VALUES ($1, $2::cidr, $3) RETURNING " NETWORK_JSON ", n.id",
		tenant_id, cidr, description ? description : "");
	if (!res)
		return req_db_failed(r);
	*res_out = res;
	char target[64];
	snprintf(target, sizeof target, "%s", PQgetvalue(res, 0, 1));
	return audit_write(r, ROLES_ADMIN, "network.create", tenant_id, "network", target, NULL,
			   PQgetvalue(res, 0, 0), NULL);
}

struct net_in {
	const char *cidr, *description;
	char field[48];
};

/* Checks body member "networks": up to 100 {cidr, description}. */
static int check_networks(struct req *r, json_t *body, struct net_in *out, size_t *n)
{
	static const char *const allowed[] = { "cidr", "description", NULL };
	json_t *a = json_object_get(body, "networks"), *v;
	size_t i;
	*n = 0;
	if (!a)
		return 0;
	if (!json_is_array(a) || json_array_size(a) > 100)
		return req_error(r, 422, "invalid_field", "networks",
				 "must be an array of at most 100 networks");
	json_array_foreach(a, i, v) {
		char path[32];
		snprintf(path, sizeof path, "networks[%zu]", i);
		if (!json_is_object(v))
			return req_error(r, 422, "invalid_field", path, "must be an object");
		out[i].description = "";
		if (valid_only(r, v, path, allowed) < 0 ||
		    valid_cidr(r, v, "cidr", path, true, &out[i].cidr) < 0 ||
		    valid_string(r, v, "description", path, false, 0, 500, &out[i].description) < 0)
			return -1;
		snprintf(out[i].field, sizeof out[i].field, "%s.cidr", path);
		*n = i + 1;
	}
	return 0;
}

int h_tenants_create(struct req *r)
{
	static const char *const allowed[] = { "kind", "name", "slug", "parent_id", "contacts",
					       "notes", "networks", NULL };
	const char *kind, *name, *slug, *parent = NULL, *notes = "";
	struct net_in nets[100];
	size_t nnets;
	json_t *b = r->body;

	if (!req_require(r, ROLE_MINISTRY_ADMIN))
		return -1;
	if (valid_only(r, b, "", allowed) < 0 ||
	    valid_enum(r, b, "kind", "", true, kinds, &kind) < 0 ||
	    valid_string(r, b, "name", "", true, 1, 200, &name) < 0 ||
	    valid_string(r, b, "slug", "", true, 1, 63, &slug) < 0 ||
	    check_slug(r, slug, "slug") < 0 ||
	    valid_uuid(r, b, "parent_id", "", false, true, &parent) < 0 ||
	    valid_string(r, b, "notes", "", false, 0, 4000, &notes) < 0 ||
	    check_contacts(r, b) < 0 || check_networks(r, b, nets, &nnets) < 0)
		return -1;
	if (name[0] == ' ' || name[strlen(name) - 1] == ' ')
		return req_error(r, 422, "invalid_field", "name",
				 "must not begin or end with a space");
	json_t *given = json_object_get(b, "contacts");
	auto_free char *contacts = given ? json_dumps(given, JSON_COMPACT) : strdup("[]");
	if (req_begin(r) < 0)
		return -1;
	if (parent) {
		auto_pqclear PGresult *p = fetch_tenant(r, ROLE_MINISTRY_ADMIN, parent, true);
		if (!p)
			return req_db_failed(r);
		if (PQntuples(p) == 0)
			return req_error(r, 422, "invalid_field", "parent_id", "no such tenant");
	}
	auto_pqclear PGresult *res = pg_query(r->pg,
		"INSERT INTO tenants (parent_id, kind, name, slug, contacts, notes)"
		" VALUES ($1, $2, $3, $4, $5::jsonb, $6)"
		" ON CONFLICT (slug) DO NOTHING"
		" RETURNING id, revision",
		parent, kind, name, slug, contacts, notes);
	if (!res)
		return req_db_failed(r);
	if (PQntuples(res) == 0)
		return req_error(r, 409, "conflict", "slug",
				 "a tenant with this slug exists or existed");
	const char *id = PQgetvalue(res, 0, 0);
	for (size_t i = 0; i < nnets; i++) {
		PGresult *nr = NULL;
		int rc = network_insert(r, id, nets[i].cidr, nets[i].description, nets[i].field, &nr);
		PQclear(nr);
		if (rc < 0)
			return -1;
	}
	auto_pqclear PGresult *t = fetch_tenant(r, ROLE_MINISTRY_ADMIN, id, false);
	if (!t || PQntuples(t) != 1)
		return req_db_failed(r);
	if (audit_write(r, ROLE_MINISTRY_ADMIN, "tenant.create", id, "tenant", id, NULL,
			PQgetvalue(t, 0, 0), NULL) < 0 || req_commit(r) < 0)
		return -1;
	req_set_etag(r, PQgetvalue(t, 0, 1));
	snprintf(r->location, sizeof r->location, "/v1/tenants/%s", id);
	return req_reply_json_text(r, 201, PQgetvalue(t, 0, 0));
}

int h_tenant_patch(struct req *r)
{
	static const char *const allowed[] = { "kind", "name", "parent_id", "contacts", "notes",
					       NULL };
	const char *kind = NULL, *name = NULL, *parent = NULL, *notes = NULL;
	json_t *b = r->body;
	const char *id = r->params[0];

	if (!req_require(r, ROLES_ADMIN))
		return -1;
	if (valid_only(r, b, "", allowed) < 0 ||
	    valid_enum(r, b, "kind", "", false, kinds, &kind) < 0 ||
	    valid_string(r, b, "name", "", false, 1, 200, &name) < 0 ||
	    valid_uuid(r, b, "parent_id", "", false, true, &parent) < 0 ||
	    valid_string(r, b, "notes", "", false, 0, 4000, &notes) < 0 || check_contacts(r, b) < 0)
		return -1;
	if (name && (name[0] == ' ' || name[strlen(name) - 1] == ' '))
		return req_error(r, 422, "invalid_field", "name",
				 "must not begin or end with a space");
	bool reparent = json_object_get(b, "parent_id") != NULL;
	if ((kind || reparent) && !(r->who.roles & ROLE_MINISTRY_ADMIN))
		return req_error(r, 403, "forbidden", kind ? "kind" : "parent_id",
				 "only a ministry administrator changes a tenant's kind or parent");
	auto_free char *contacts = json_object_get(b, "contacts") ?
		json_dumps(json_object_get(b, "contacts"), JSON_COMPACT) : NULL;

	if (req_begin(r) < 0)
		return -1;
	auto_pqclear PGresult *before = fetch_tenant(r, ROLES_ADMIN, id, true);
	if (!before)
		return req_db_failed(r);
	if (PQntuples(before) == 0)
		return req_error(r, 404, "not_found", NULL, "no such tenant");
	if (!req_if_match(r, PQgetvalue(before, 0, 1)))
		return req_error(r, 412, "precondition_failed", "If-Match",
				 "the tenant changed since you read it (revision %s)",
				 PQgetvalue(before, 0, 1));
	if (reparent && parent) {
		auto_pqclear PGresult *p = pg_query(r->pg,
			"SELECT EXISTS (SELECT 1 FROM tenants WHERE id = $1 AND deleted_at IS NULL),"
			"       EXISTS (SELECT 1 FROM tenant_closure"
			"               WHERE ancestor_id = $2 AND descendant_id = $1)", parent, id);
		if (!p)
			return req_db_failed(r);
		if (PQgetvalue(p, 0, 0)[0] != 't')
			return req_error(r, 422, "invalid_field", "parent_id", "no such tenant");
		if (PQgetvalue(p, 0, 1)[0] == 't')
			return req_error(r, 422, "invalid_field", "parent_id",
					 "would put the tenant below itself");
	}
	auto_pqclear PGresult *upd = pg_query(r->pg,
		"UPDATE tenants SET kind = coalesce($2, kind), name = coalesce($3, name),"
		"  contacts = coalesce($4::jsonb, contacts), notes = coalesce($5, notes),"
		"  parent_id = CASE WHEN $6::bool THEN $7::uuid ELSE parent_id END"
		" WHERE id = $1", id, kind, name, contacts, notes, reparent ? "true" : "false", parent);
	if (!upd)
		return req_db_failed(r);
	auto_pqclear PGresult *after = fetch_tenant(r, ROLES_ADMIN, id, false);
	if (!after || PQntuples(after) != 1)
		return req_db_failed(r);
	if (strcmp(PQgetvalue(before, 0, 1), PQgetvalue(after, 0, 1)) != 0 &&
	    audit_write(r, ROLES_ADMIN, "tenant.update", id, "tenant", id, PQgetvalue(before, 0, 0),
			PQgetvalue(after, 0, 0), NULL) < 0)
		return -1;
	if (req_commit(r) < 0)
		return -1;
	req_set_etag(r, PQgetvalue(after, 0, 1));
	return req_reply_json_text(r, 200, PQgetvalue(after, 0, 0));
}

int h_tenant_delete(struct req *r)
{
	const char *id = r->params[0];
	if (!req_require(r, ROLE_MINISTRY_ADMIN) || req_begin(r) < 0)
		return -1;
	auto_pqclear PGresult *before = fetch_tenant(r, ROLE_MINISTRY_ADMIN, id, true);
	if (!before)
		return req_db_failed(r);
	if (PQntuples(before) == 0)
		return req_error(r, 404, "not_found", NULL, "no such tenant");
	if (!req_if_match(r, PQgetvalue(before, 0, 1)))
		return req_error(r, 412, "precondition_failed", "If-Match",
				 "the tenant changed since you read it");
	auto_pqclear PGresult *kids = pg_query(r->pg,
		"SELECT count(*) FROM tenants WHERE parent_id = $1 AND deleted_at IS NULL", id);
	if (!kids)
		return req_db_failed(r);
	if (strcmp(PQgetvalue(kids, 0, 0), "0") != 0)
		return req_error(r, 409, "has_children", NULL,
				 "delete or move the tenants below this one first");
	if (pg_command(r->pg, "UPDATE tenants SET deleted_at = now() WHERE id = $1", id) < 0)
		return req_db_failed(r);
	if (audit_write(r, ROLE_MINISTRY_ADMIN, "tenant.delete", id, "tenant", id,
			PQgetvalue(before, 0, 0), NULL, NULL) < 0 || req_commit(r) < 0)
		return -1;
	r->status = 204;
	return 0;
}

/* ---- networks ---- */

/* Is tenant id within the caller's scope for roles? 1 yes, 0 no (404 answered), -1 error. */
static int tenant_visible(struct req *r, unsigned roles, const char *id, bool lock)
{
	auto_pqclear PGresult *t = fetch_tenant(r, roles, id, lock);
	if (!t)
		return req_db_failed(r);
	if (PQntuples(t) == 0) {
		req_error(r, 404, "not_found", NULL, "no such tenant");
		return 0;
	}
	return 1;
}

int h_networks_list(struct req *r)
{
	char roles[80];
	if (!req_require(r, ROLES_READ) || !req_db(r))
		return -1;
	if (tenant_visible(r, ROLES_READ, r->params[0], false) <= 0)
		return -1;
	auto_pqclear PGresult *res = pg_query(r->pg,
		"SELECT " NETWORK_JSON " FROM networks n"
		" WHERE n.tenant_id = $4 AND n.tenant_id IN (SELECT s FROM portal_scope($1, $2, $3) s)"
		" ORDER BY n.prefix", REQ_SCOPE(r, ROLES_READ, roles), r->params[0]);
	if (!res)
		return req_db_failed(r);
	return req_reply_items(r, res, 0, -1, 0);
}

int h_networks_create(struct req *r)
{
	static const char *const allowed[] = { "cidr", "description", NULL };
	const char *cidr, *desc = "";
	if (!req_require(r, ROLES_ADMIN))
		return -1;
	if (valid_only(r, r->body, "", allowed) < 0 ||
	    valid_cidr(r, r->body, "cidr", "", true, &cidr) < 0 ||
	    valid_string(r, r->body, "description", "", false, 0, 500, &desc) < 0)
		return -1;
	if (req_begin(r) < 0 || tenant_visible(r, ROLES_ADMIN, r->params[0], true) <= 0)
		return -1;
	auto_pqclear PGresult *res = NULL;
	if (network_insert(r, r->params[0], cidr, desc, "cidr", &res) < 0 || req_commit(r) < 0)
		return -1;
	req_set_etag(r, "1");
	snprintf(r->location, sizeof r->location, "/v1/networks/%s", PQgetvalue(res, 0, 1));
	return req_reply_json_text(r, 201, PQgetvalue(res, 0, 0));
}

static PGresult *fetch_network(struct req *r, unsigned roles, bool lock)
{
	char rl[80];
	return db_query(r->pg,
		lock ? "SELECT " NETWORK_JSON ", n.revision, n.tenant_id FROM networks n"
		       " WHERE n.id = $4 AND n.tenant_id IN (SELECT s FROM portal_scope($1, $2, $3) s)"
		       " FOR UPDATE"
		     : "SELECT " NETWORK_JSON ", n.revision, n.tenant_id FROM networks n"
		       " WHERE n.id = $4 AND n.tenant_id IN (SELECT s FROM portal_scope($1, $2, $3) s)",
		REQ_SCOPE(r, roles, rl), r->params[0]);
}

int h_network_get(struct req *r)
{
	if (!req_require(r, ROLES_READ) || !req_db(r))
		return -1;
	auto_pqclear PGresult *res = fetch_network(r, ROLES_READ, false);
	if (!res)
		return req_db_failed(r);
	if (PQntuples(res) == 0)
		return req_error(r, 404, "not_found", NULL, "no such network");
	req_set_etag(r, PQgetvalue(res, 0, 1));
	return req_reply_json_text(r, 200, PQgetvalue(res, 0, 0));
}

int h_network_patch(struct req *r)
{
	static const char *const allowed[] = { "description", NULL };
	const char *desc;
	if (!req_require(r, ROLES_ADMIN))
		return -1;
	if (valid_only(r, r->body, "", allowed) < 0 ||
	    valid_string(r, r->body, "description", "", true, 0, 500, &desc) < 0)
		return -1;
	if (req_begin(r) < 0)
		return -1;
	auto_pqclear PGresult *before = fetch_network(r, ROLES_ADMIN, true);
	if (!before)
		return req_db_failed(r);
	if (PQntuples(before) == 0)
		return req_error(r, 404, "not_found", NULL, "no such network");
	if (!req_if_match(r, PQgetvalue(before, 0, 1)))
		return req_error(r, 412, "precondition_failed", "If-Match",
				 "the network changed since you read it");
	if (pg_command(r->pg, "UPDATE networks SET description = $2 WHERE id = $1", r->params[0],
		       desc) < 0)
		return req_db_failed(r);
	auto_pqclear PGresult *after = fetch_network(r, ROLES_ADMIN, false);
	if (!after || PQntuples(after) != 1)
		return req_db_failed(r);
	if (audit_write(r, ROLES_ADMIN, "network.update", PQgetvalue(before, 0, 2), "network",
			r->params[0], PQgetvalue(before, 0, 0), PQgetvalue(after, 0, 0), NULL) < 0 ||
	    req_commit(r) < 0)
		return -1;
	req_set_etag(r, PQgetvalue(after, 0, 1));
	return req_reply_json_text(r, 200, PQgetvalue(after, 0, 0));
}

int h_network_delete(struct req *r)
{
	if (!req_require(r, ROLES_ADMIN) || req_begin(r) < 0)
		return -1;
	auto_pqclear PGresult *before = fetch_network(r, ROLES_ADMIN, true);
	if (!before)
		return req_db_failed(r);
	if (PQntuples(before) == 0)
		return req_error(r, 404, "not_found", NULL, "no such network");
	if (!req_if_match(r, PQgetvalue(before, 0, 1)))
		return req_error(r, 412, "precondition_failed", "If-Match",
				 "the network changed since you read it");
	if (pg_command(r->pg, "DELETE FROM networks WHERE id = $1", r->params[0]) < 0)
		return req_db_failed(r);
	if (audit_write(r, ROLES_ADMIN, "network.delete", PQgetvalue(before, 0, 2), "network",
			r->params[0], PQgetvalue(before, 0, 0), NULL, NULL) < 0 ||
	    req_commit(r) < 0)
		return -1;
	r->status = 204;
	return 0;
}
