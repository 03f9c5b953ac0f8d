/* res_lists.c -- custom allow/deny lists of tenants, national block/allow lists, entries,
 * bulk import (CSV or plain) and export.
 *
 * A tenant list is reached through its tenant's scope; a national list is read by every
 * role that reads policy and changed only by a ministry administrator. Entries are addressed
 * by normalised domain. An import replaces the list's entries (PUT) or, with ?mode=merge,
 * adds to them; it is one transaction and one audit row with the counts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api.h"
#include "audit.h"
#include "cleanup.h"
#include "handlers.h"
#include "listio.h"
#include "pg.h"
#include "pgpool.h"
#include "snapshot.h"
#include "valid.h"

#define LIST_JSON                                                                          \
	"json_build_object('id', l.id, 'scope', l.scope, 'tenant_id', l.tenant_id,"         \
	" 'kind', l.kind, 'name', l.name, 'description', l.description,"                    \
	" 'enabled', l.enabled,"                                                            \
	" 'entry_count', (SELECT count(*) FROM list_entries e WHERE e.list_id = l.id),"      \
	" 'created_at', l.created_at, 'updated_at', l.updated_at,"                          \
	" 'revision', l.revision)::text"

#define ENTRY_JSON                                                                         \
	"json_build_object('domain', e.domain, 'comment', e.comment,"                       \
	" 'created_at', e.created_at, 'updated_at', e.updated_at)::text"

/* The list named by r->params[0] if the caller reaches it for a read (write false) or a
 * change (write true): columns json, revision, tenant_id, scope. */
static PGresult *fetch_list(struct req *r, bool write)
{
	char rl[80];
	unsigned roles = write ? ROLES_ADMIN : ROLES_READ;
	bool national = write ? (r->who.roles & ROLE_MINISTRY_ADMIN) : (r->who.roles & ROLES_READ);
	return db_query(r->pg,
		write ? "SELECT " LIST_JSON ", l.revision, l.tenant_id, l.scope FROM lists l"
			" WHERE l.id = $4 AND ((l.tenant_id IS NULL AND $5::bool)"
			"   OR l.tenant_id IN (SELECT s FROM portal_scope($1, $2, $3) s)) FOR UPDATE"
		      : "SELECT " LIST_JSON ", l.revision, l.tenant_id, l.scope FROM lists l"
			" WHERE l.id = $4 AND ((l.tenant_id IS NULL AND $5::bool)"
			"   OR l.tenant_id IN (SELECT s FROM portal_scope($1, $2, $3) s))",
		REQ_SCOPE(r, roles, rl), r->params[0], national ? "true" : "false");
}

/* Fetches the list for r, answering 404 when unreachable. NULL after answering. */
static PGresult *list_or_404(struct req *r, bool write)
{
	PGresult *l = fetch_list(r, write);
	if (!l) {
		req_db_failed(r);
		return NULL;
	}
	if (PQntuples(l) == 0) {
		PQclear(l);
		req_error(r, 404, "not_found", NULL, "no such list");
		return NULL;
	}
	return l;
}

static int lists_of(struct req *r, const char *tenant_id)
{
	char roles[80];
	if (!req_require(r, ROLES_READ) || !req_db(r))
		return -1;
	if (tenant_id) {
		auto_pqclear PGresult *t = pg_query(r->pg,
			"SELECT 1 WHERE $4::uuid IN (SELECT s FROM portal_scope($1, $2, $3) s)",
			REQ_SCOPE(r, ROLES_READ, roles), tenant_id);
		if (!t)
			return req_db_failed(r);
		if (PQntuples(t) == 0)
			return req_error(r, 404, "not_found", NULL, "no such tenant");
	}
	auto_pqclear PGresult *res = pg_query(r->pg,
		"SELECT " LIST_JSON " FROM lists l WHERE l.tenant_id IS NOT DISTINCT FROM $1"
		" ORDER BY l.name", tenant_id);
	if (!res)
		return req_db_failed(r);
	return req_reply_items(r, res, 0, -1, 0);
}

int h_tenant_lists_list(struct req *r)
{
	return lists_of(r, r->params[0]);
}

int h_national_lists_list(struct req *r)
{
	return lists_of(r, NULL);
}

static int list_create(struct req *r, const char *tenant_id)
{
	static const char *const allowed[] = { "kind", "name", "description", "enabled", NULL };
	static const char *const tenant_kinds[] = { "allow", "deny", NULL };
	static const char *const national_kinds[] = { "block", "allow", NULL };
	const char *kind, *name, *desc = "";
	bool enabled = true;
	json_t *b = r->body;
	unsigned roles = tenant_id ? ROLES_ADMIN : ROLE_MINISTRY_ADMIN;
	char rl[80];

	if (!req_require(r, roles))
		return -1;
	if (valid_only(r, b, "", allowed) < 0 ||
	    valid_enum(r, b, "kind", "", true, tenant_id ? tenant_kinds : national_kinds, &kind) < 0 ||
	    valid_string(r, b, "name", "", true, 1, 100, &name) < 0 ||
	    valid_string(r, b, "description", "", false, 0, 1000, &desc) < 0 ||
	    valid_bool(r, b, "enabled", "", false, &enabled) < 0)
		return -1;
	if (name[0] == ' ' || name[strlen(name) - 1] == ' ')
		return req_error(r, 422, "invalid_field", "name",
				 "must not begin or end with a space");
	if (req_begin(r) < 0)
		return -1;
	if (tenant_id) {
		auto_pqclear PGresult *t = pg_query(r->pg,
			"SELECT 1 FROM tenants WHERE id = $4 AND id IN"
			" (SELECT s FROM portal_scope($1, $2, $3) s) FOR UPDATE",
			REQ_SCOPE(r, roles, rl), tenant_id);
		if (!t)
			return req_db_failed(r);
		if (PQntuples(t) == 0)
			return req_error(r, 404, "not_found", NULL, "no such tenant");
	}
	auto_pqclear PGresult *res = pg_query(r->pg,
		"INSERT INTO lists AS l (scope, tenant_id, kind, name, description, enabled)"
		" VALUES ($1, $2, $3, $4, $5, $6::bool)"
		" ON CONFLICT ON CONSTRAINT lists_name_unique DO NOTHING"
		" RETURNING " LIST_JSON ", l.id",
		tenant_id ? "tenant" : "national", tenant_id, kind, name, desc,
		enabled ? "true" : "false");
	if (!res)
		return req_db_failed(r);
	if (PQntuples(res) == 0)
		return req_error(r, 409, "conflict", "name", "a list with this name exists");
	const char *id = PQgetvalue(res, 0, 1);
	if (audit_write(r, roles, "list.create", tenant_id, "list", id, NULL, PQgetvalue(res, 0, 0),
			NULL) < 0 || req_commit(r) < 0)
		return -1;
	req_set_etag(r, "1");
	snprintf(r->location, sizeof r->location, "/v1/lists/%s", id);
	return req_reply_json_text(r, 201, PQgetvalue(res, 0, 0));
}

int h_tenant_lists_create(struct req *r)
{
	return list_create(r, r->params[0]);
}

int h_national_lists_create(struct req *r)
{
	return list_create(r, NULL);
}

int h_list_get(struct req *r)
{
	if (!req_require(r, ROLES_READ) || !req_db(r))
		return -1;
	auto_pqclear PGresult *l = list_or_404(r, false);
	if (!l)
		return -1;
	req_set_etag(r, PQgetvalue(l, 0, 1));
	return req_reply_json_text(r, 200, PQgetvalue(l, 0, 0));
}

/* Opens the transaction and locks the list for a change; NULL after answering. */
static PGresult *begin_list_change(struct req *r)
{
	if (!req_require(r, ROLES_ADMIN) || req_begin(r) < 0)
		return NULL;
	PGresult *l = list_or_404(r, true);
	if (l && !req_if_match(r, PQgetvalue(l, 0, 1))) {
		req_error(r, 412, "precondition_failed", "If-Match",
			  "the list changed since you read it (revision %s)", PQgetvalue(l, 0, 1));
		PQclear(l);
		return NULL;
	}
	return l;
}

/* Entries live in their own table: touch the list so its revision (the ETag that If-Match
 * is checked against) moves with them. */
static int touch_list(struct req *r)
{
	if (pg_command(r->pg, "UPDATE lists SET updated_at = now() WHERE id = $1", r->params[0]) < 0)
		return req_db_failed(r);
	return 0;
}

static const char *list_tenant(PGresult *l)
{
	return PQgetisnull(l, 0, 2) ? NULL : PQgetvalue(l, 0, 2);
}

int h_list_patch(struct req *r)
{
	static const char *const allowed[] = { "name", "description", "enabled", NULL };
	const char *name = NULL, *desc = NULL;
	bool enabled = false;
	int has_enabled;
	json_t *b = r->body;

	if (valid_only(r, b, "", allowed) < 0 ||
	    valid_string(r, b, "name", "", false, 1, 100, &name) < 0 ||
	    valid_string(r, b, "description", "", false, 0, 1000, &desc) < 0 ||
	    (has_enabled = valid_bool(r, b, "enabled", "", false, &enabled)) < 0)
		return -1;
	if (name && (name[0] == ' ' || name[strlen(name) - 1] == ' '))
		return req_error(r, 422, "invalid_field", "name",
				 "must not begin or end with a space");
	auto_pqclear PGresult *before = begin_list_change(r);
	if (!before)
		return -1;
	if (name) {
		auto_pqclear PGresult *dup = pg_query(r->pg,
			"SELECT 1 FROM lists WHERE tenant_id IS NOT DISTINCT FROM $1 AND name = $2"
			" AND id <> $3", list_tenant(before), name, r->params[0]);
		if (!dup)
			return req_db_failed(r);
		if (PQntuples(dup) > 0)
			return req_error(r, 409, "conflict", "name", "a list with this name exists");
	}
	if (pg_command(r->pg, "UPDATE lists SET name = coalesce($2, name),"
			      " description = coalesce($3, description),"
			      " enabled = coalesce($4::bool, enabled) WHERE id = $1",
		       r->params[0], name, desc,
		       has_enabled ? (enabled ? "true" : "false") : NULL) < 0)
		return req_db_failed(r);
	auto_pqclear PGresult *after = fetch_list(r, true);
	if (!after || PQntuples(after) != 1)
		return req_db_failed(r);
	if (audit_write(r, ROLES_ADMIN, "list.update", list_tenant(before), "list", r->params[0],
			PQgetvalue(before, 0, 0), PQgetvalue(after, 0, 0), NULL) < 0 ||
	    req_commit(r) < 0)
		return -1;
	req_set_etag(r, PQgetvalue(after, 0, 1));
	return req_reply_json_text(r, 200, PQgetvalue(after, 0, 0));
}

int h_list_delete(struct req *r)
{
	auto_pqclear PGresult *before = begin_list_change(r);
	if (!before)
		return -1;
	if (pg_command(r->pg, "DELETE FROM lists WHERE id = $1", r->params[0]) < 0)
		return req_db_failed(r);
	if (audit_write(r, ROLES_ADMIN, "list.delete", list_tenant(before), "list", r->params[0],
			PQgetvalue(before, 0, 0), NULL, NULL) < 0 || req_commit(r) < 0)
		return -1;
	r->status = 204;
	return 0;
}

int h_entries_list(struct req *r)
{
	unsigned limit;
	char limit_s[16], after[SNAPSHOT_NAME_TEXT_MAX];
	const char *after_arg = req_arg(r, "after");

	if (!req_require(r, ROLES_READ) || valid_arg_limit(r, 1000, 10000, &limit) < 0)
		return -1;
	if (after_arg && snapshot_name_text(after_arg, strlen(after_arg), after) < 0)
		return req_error(r, 400, "invalid_parameter", "after",
				 "after must be a domain name from a previous page");
	if (!req_db(r))
		return -1;
	auto_pqclear PGresult *l = list_or_404(r, false);
	if (!l)
		return -1;
	snprintf(limit_s, sizeof limit_s, "%u", limit);
	auto_pqclear PGresult *res = pg_query(r->pg,
		"SELECT " ENTRY_JSON ", e.domain FROM list_entries e"
		" WHERE e.list_id = $1 AND ($2::text IS NULL OR e.domain > $2::text COLLATE \"C\")"
		" ORDER BY e.domain LIMIT $3", r->params[0], after_arg ? after : NULL, limit_s);
	if (!res)
		return req_db_failed(r);
	return req_reply_items(r, res, 0, 1, limit);
}

static const char *creator_user(const struct req *r)
{
	return strcmp(r->who.type, "user") == 0 ? r->who.id : NULL;
}

static const char *creator_key(const struct req *r)
{
	return strcmp(r->who.type, "api_key") == 0 ? r->who.id : NULL;
}

int h_entries_add(struct req *r)
{
	static const char *const allowed[] = { "domain", "comment", NULL };
	char domain[SNAPSHOT_NAME_TEXT_MAX], target[320];
	const char *comment = "";

	if (valid_only(r, r->body, "", allowed) < 0 ||
	    valid_domain(r, r->body, "domain", "", true, domain) < 0 ||
	    valid_string(r, r->body, "comment", "", false, 0, 500, &comment) < 0)
		return -1;
	auto_pqclear PGresult *l = begin_list_change(r);
	if (!l)
		return -1;
	auto_pqclear PGresult *res = pg_query(r->pg,
		"INSERT INTO list_entries AS e (list_id, domain, comment, created_by_user_id,"
		"  created_by_api_key_id) VALUES ($1, $2, $3, $4, $5)"
		" ON CONFLICT (list_id, domain) DO NOTHING RETURNING " ENTRY_JSON,
		r->params[0], domain, comment, creator_user(r), creator_key(r));
	if (!res)
		return req_db_failed(r);
	if (PQntuples(res) == 0)
		return req_error(r, 409, "conflict", "domain", "the name is already on the list");
	snprintf(target, sizeof target, "%s/%s", r->params[0], domain);
	if (touch_list(r) < 0 ||
	    audit_write(r, ROLES_ADMIN, "list_entry.create", list_tenant(l), "list_entry", target,
			NULL, PQgetvalue(res, 0, 0), NULL) < 0 || req_commit(r) < 0)
		return -1;
	return req_reply_json_text(r, 201, PQgetvalue(res, 0, 0));
}

int h_entry_delete(struct req *r)
{
	char domain[SNAPSHOT_NAME_TEXT_MAX], target[320];
	if (snapshot_name_text(r->params[1], strlen(r->params[1]), domain) < 0)
		return req_error(r, 404, "not_found", NULL, "no such entry");
	auto_pqclear PGresult *l = begin_list_change(r);
	if (!l)
		return -1;
	auto_pqclear PGresult *res = pg_query(r->pg,
		"DELETE FROM list_entries AS e WHERE list_id = $1 AND domain = $2"
		" RETURNING " ENTRY_JSON, r->params[0], domain);
	if (!res)
		return req_db_failed(r);
	if (PQntuples(res) == 0)
		return req_error(r, 404, "not_found", NULL, "no such entry");
	snprintf(target, sizeof target, "%s/%s", r->params[0], domain);
	if (touch_list(r) < 0 ||
	    audit_write(r, ROLES_ADMIN, "list_entry.delete", list_tenant(l), "list_entry", target,
			PQgetvalue(res, 0, 0), NULL, NULL) < 0 || req_commit(r) < 0)
		return -1;
	r->status = 204;
	return 0;
}

/* ---- import / export ---- */

#define IMPORT_MAX_ENTRIES 200000

static int collect(void *arg, const char *domain, const char *comment)
{
	json_t *a = arg;
	if (json_array_size(a) >= IMPORT_MAX_ENTRIES)
		return -E2BIG;
	return json_array_append_new(a, json_pack("[ss]", domain, comment)) == 0 ? 0 : -ENOMEM;
}

int h_entries_import(struct req *r)
{
	struct listio_error err;
	const char *mode = req_arg(r, "mode");
	bool csv = strncasecmp(r->content_type, "text/csv", 8) == 0;
	char details[256];

	if (mode && strcmp(mode, "replace") != 0 && strcmp(mode, "merge") != 0)
		return req_error(r, 400, "invalid_parameter", "mode", "mode is replace or merge");
	bool merge = mode && strcmp(mode, "merge") == 0;
	json_t *entries = json_array();
	if (!entries)
		return req_error(r, 500, "internal", NULL, "out of memory");
	int rc = listio_parse(csv ? LISTIO_CSV : LISTIO_PLAIN, r->raw, r->raw_len, collect, entries,
			      &err);
	if (rc < 0) {
		json_decref(entries);
		if (rc == -E2BIG)
			return req_error(r, 413, "too_many_entries", NULL,
					 "at most %d entries per import", IMPORT_MAX_ENTRIES);
		if (rc == -EINVAL) {
			char field[32];
			snprintf(field, sizeof field, "line %u", err.line);
			return req_error(r, 422, "invalid_line", field, "line %u: %s", err.line,
					 err.reason);
		}
		return req_error(r, 500, "internal", NULL, "out of memory");
	}
	auto_free char *text = json_dumps(entries, JSON_COMPACT);
	size_t parsed = json_array_size(entries);
	json_decref(entries);
	if (!text)
		return req_error(r, 500, "internal", NULL, "out of memory");

	auto_pqclear PGresult *l = begin_list_change(r);
	if (!l)
		return -1;
	auto_pqclear PGresult *removed = merge ? NULL : pg_query(r->pg,
		"DELETE FROM list_entries WHERE list_id = $1 AND domain NOT IN"
		" (SELECT e->>0 FROM jsonb_array_elements($2::jsonb) e) RETURNING 1",
		r->params[0], text);
	if (!merge && !removed)
		return req_db_failed(r);
	auto_pqclear PGresult *upserted = pg_query(r->pg,
		"INSERT INTO list_entries AS le (list_id, domain, comment, created_by_user_id,"
		"  created_by_api_key_id)"
		" SELECT DISTINCT ON (e->>0) $1::uuid, e->>0, e->>1, $3::uuid, $4::uuid"
		"   FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS x(e, n)"
		"  ORDER BY e->>0, n DESC"
		" ON CONFLICT (list_id, domain) DO UPDATE SET comment = EXCLUDED.comment"
		"  WHERE le.comment <> EXCLUDED.comment"
		" RETURNING (xmax = 0)",
		r->params[0], text, creator_user(r), creator_key(r));
	if (!upserted)
		return req_db_failed(r);
	int added = 0, updated = 0;
	for (int i = 0; i < PQntuples(upserted); i++)
		PQgetvalue(upserted, i, 0)[0] == 't' ? added++ : updated++;
	auto_pqclear PGresult *total = pg_query(r->pg,
		"SELECT count(*) FROM list_entries WHERE list_id = $1", r->params[0]);
	if (!total)
		return req_db_failed(r);
	int nremoved = removed ? PQntuples(removed) : 0;
	snprintf(details, sizeof details,
		 "{\"format\":\"%s\",\"mode\":\"%s\",\"lines_parsed\":%zu,\"added\":%d,"
		 "\"updated\":%d,\"removed\":%d,\"total\":%s}",
		 csv ? "csv" : "plain", merge ? "merge" : "replace", parsed, added, updated, nremoved,
		 PQgetvalue(total, 0, 0));
	if ((added || updated || nremoved) &&
	    (touch_list(r) < 0 ||
	     audit_write(r, ROLES_ADMIN, "list.import", list_tenant(l), "list", r->params[0], NULL,
			NULL, details) < 0))
		return -1;
	if (req_commit(r) < 0)
		return -1;
	return req_reply_json_text(r, 200, details);
}

int h_entries_export(struct req *r)
{
	const char *format = req_arg(r, "format");
	if (format && strcmp(format, "csv") != 0 && strcmp(format, "plain") != 0)
		return req_error(r, 400, "invalid_parameter", "format", "format is csv or plain");
	bool csv = !format || strcmp(format, "csv") == 0;
	if (!req_require(r, ROLES_READ) || !req_db(r))
		return -1;
	auto_pqclear PGresult *l = list_or_404(r, false);
	if (!l)
		return -1;
	auto_pqclear PGresult *res = pg_query(r->pg,
		"SELECT domain, comment FROM list_entries WHERE list_id = $1 ORDER BY domain",
		r->params[0]);
	if (!res)
		return req_db_failed(r);
	size_t cap = 64, len = 0;
	int n = PQntuples(res);
	for (int i = 0; i < n; i++)
		cap += 2 * (strlen(PQgetvalue(res, i, 0)) + strlen(PQgetvalue(res, i, 1))) + 8;
	char *out = malloc(cap);
	if (!out)
		return req_error(r, 500, "internal", NULL, "out of memory");
	if (csv)
		len += (size_t)snprintf(out, cap, "domain,comment\r\n");
	for (int i = 0; i < n; i++) {
		const char *d = PQgetvalue(res, i, 0);
		if (!csv) {
			len += (size_t)snprintf(out + len, cap - len, "%s\n", d);
			continue;
		}
		len += listio_csv_field(out + len, cap - len, d, 0);
		out[len++] = ',';
		len += listio_csv_field(out + len, cap - len, PQgetvalue(res, i, 1), 1);
		out[len++] = '\r';
		out[len++] = '\n';
	}
	r->text = out;
	r->text_len = len;
	r->text_type = csv ? "text/csv; charset=utf-8" : "text/plain; charset=utf-8";
	r->status = 200;
	return 0;
}
