/* res_feeds.c -- threat and content feeds (ministry administrators only): list them with
 * their last refresh and staleness, register one, change its source, schedule or state.
 *
 * tenantd fetches what is registered here: a new or changed feed is due at once, so it is
 * loaded within tenantd's feed check interval (docs/feeds.md), and its names reach the nodes
 * with the next snapshot. The source is never shown back: a URL may carry a token.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "audit.h"
#include "cleanup.h"
#include "handlers.h"
#include "pg.h"
#include "valid.h"

/* A feed as the API shows it, from the row f; $-free so every statement can embed it. A feed
 * is stale when its last good content is older than two refresh intervals, or when tenantd
 * marked it so (its last refresh failed). */
#define FEED_JSON                                                                          \
	"json_build_object('id', f.id, 'name', f.name, 'category', f.category,"            \
	"  'format', f.format, 'enabled', f.enabled, 'status', f.status,"                  \
	"  'status_reason', f.status_reason, 'fetched_at', f.fetched_at,"                  \
	"  'last_attempt_at', f.last_attempt_at, 'entry_count', f.entry_count,"            \
	"  'refresh_interval_seconds', extract(epoch FROM f.refresh_interval)::integer,"   \
	"  'age_seconds', floor(extract(epoch FROM now() - f.fetched_at))::bigint,"        \
	"  'stale', f.status IN ('stale', 'error')"                                         \
	"           OR f.fetched_at IS NULL OR f.fetched_at < now() - 2 * f.refresh_interval," \
	"  'last_refresh', (SELECT json_build_object('finished_at', x.finished_at,"        \
	"      'outcome', x.outcome, 'entries_total', x.entries_total,"                     \
	"      'entries_added', x.entries_added, 'entries_removed', x.entries_removed,"     \
	"      'lines_invalid', x.lines_invalid, 'error', x.error)"                          \
	"    FROM feed_refreshes x WHERE x.feed_id = f.id ORDER BY x.id DESC LIMIT 1))::text"

static const char *const formats[] = { "rpz", "hosts", "plain", "misp", NULL };

int h_feeds_list(struct req *r)
{
	if (!req_require(r, ROLE_MINISTRY_ADMIN) || !req_db(r))
		return -1;
	auto_pqclear PGresult *res = pg_query(r->pg,
		"SELECT " FEED_JSON " FROM feeds f ORDER BY f.name");
	if (!res)
		return req_db_failed(r);
	return req_reply_items(r, res, 0, -1, 0);
}

/* The names tenantd accepts (migrations/0005): lowercase letters, digits and . _ - inside. */
static bool feed_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 1 || n > 64 || s[0] == '.' || s[0] == '_' || s[0] == '-' ||
	    strchr("._-", s[n - 1]))
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

/* An absolute file path on the tenantd host, or an http(s) URL, without spaces. */
static bool feed_source_ok(const char *s)
{
	return (s[0] == '/' || strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0) &&
	       !strpbrk(s, " \t");
}

static int check_source(struct req *r, const char *source)
{
	if (source && !feed_source_ok(source))
		return req_error(r, 422, "invalid_field", "source",
				 "must be an absolute path or an http(s) URL, without spaces");
	return 0;
}

static int check_category(struct req *r, const char *category)
{
	auto_pqclear PGresult *c = pg_query(r->pg, "SELECT 1 FROM categories WHERE name = $1",
					    category);
	if (!c)
		return req_db_failed(r);
	if (PQntuples(c) == 0)
		return req_error(r, 422, "invalid_field", "category", "no such category");
	return 0;
}

int h_feeds_create(struct req *r)
{
	static const char *const allowed[] = { "name", "category", "format", "source",
					       "refresh_interval_seconds", "enabled", NULL };
	const char *name, *category, *format, *source;
	long long interval = 3600;
	bool enabled = true;
	char interval_text[24];
	json_t *b = r->body;

	if (!req_require(r, ROLE_MINISTRY_ADMIN))
		return -1;
	if (valid_only(r, b, "", allowed) < 0 ||
	    valid_string(r, b, "name", "", true, 1, 64, &name) < 0 ||
	    valid_string(r, b, "category", "", true, 1, 63, &category) < 0 ||
	    valid_enum(r, b, "format", "", true, formats, &format) < 0 ||
	    valid_string(r, b, "source", "", true, 1, 2048, &source) < 0 ||
	    valid_int(r, b, "refresh_interval_seconds", "", false, 60, 7 * 86400, &interval) < 0 ||
	    valid_bool(r, b, "enabled", "", false, &enabled) < 0)
		return -1;
	if (!feed_name_ok(name))
		return req_error(r, 422, "invalid_field", "name",
				 "lowercase letters, digits and . _ - (not first or last), 1 to 64");
	if (check_source(r, source) < 0 || req_begin(r) < 0 || check_category(r, category) < 0)
		return -1;
	snprintf(interval_text, sizeof interval_text, "%lld", interval);
	auto_pqclear PGresult *res = pg_query(r->pg,
		"INSERT INTO feeds AS f (name, category, format, source, refresh_interval, enabled)"
		" VALUES ($1, $2, $3, $4, make_interval(secs => $5::integer), $6::bool)"
		" ON CONFLICT ON CONSTRAINT feeds_name_key DO NOTHING"
		" RETURNING " FEED_JSON ", f.id",
		name, category, format, source, interval_text, enabled ? "true" : "false");
	if (!res)
		return req_db_failed(r);
	if (PQntuples(res) == 0)
		return req_error(r, 409, "conflict", "name", "a feed with this name exists");
	const char *id = PQgetvalue(res, 0, 1);
	if (audit_write(r, ROLE_MINISTRY_ADMIN, "feed.create", NULL, "feed", id, NULL,
			PQgetvalue(res, 0, 0), NULL) < 0 || req_commit(r) < 0)
		return -1;
	req_set_etag(r, "1");
	snprintf(r->location, sizeof r->location, "/v1/feeds/%s", id);
	return req_reply_json_text(r, 201, PQgetvalue(res, 0, 0));
}

int h_feed_patch(struct req *r)
{
	static const char *const allowed[] = { "category", "source", "refresh_interval_seconds",
					       "enabled", NULL };
	const char *category = NULL, *source = NULL;
	long long interval = 0;
	bool enabled = false;
	int has_interval, has_enabled;
	char interval_text[24];
	json_t *b = r->body;

	if (!req_require(r, ROLE_MINISTRY_ADMIN))
		return -1;
	if (valid_only(r, b, "", allowed) < 0 ||
	    valid_string(r, b, "category", "", false, 1, 63, &category) < 0 ||
	    valid_string(r, b, "source", "", false, 1, 2048, &source) < 0 ||
	    (has_interval = valid_int(r, b, "refresh_interval_seconds", "", false, 60, 7 * 86400,
				      &interval)) < 0 ||
	    (has_enabled = valid_bool(r, b, "enabled", "", false, &enabled)) < 0)
		return -1;
	if (!valid_is_uuid(r->params[0]))
		return req_error(r, 404, "not_found", NULL, "no such feed");
	if (check_source(r, source) < 0 || req_begin(r) < 0 ||
	    (category && check_category(r, category) < 0))
		return -1;
	auto_pqclear PGresult *before = pg_query(r->pg,
		"SELECT " FEED_JSON ", f.revision FROM feeds f WHERE f.id = $1 FOR UPDATE",
		r->params[0]);
	if (!before)
		return req_db_failed(r);
	if (PQntuples(before) == 0)
		return req_error(r, 404, "not_found", NULL, "no such feed");
	if (!req_if_match(r, PQgetvalue(before, 0, 1)))
		return req_error(r, 412, "precondition_failed", "If-Match",
				 "the feed changed since you read it (revision %s)",
				 PQgetvalue(before, 0, 1));
	snprintf(interval_text, sizeof interval_text, "%lld", interval);
	/* A new source or category is due at once: tenantd fetches feeds whose last attempt
	 * is older than their interval, and a NULL attempt is always older. */
	auto_pqclear PGresult *res = pg_query(r->pg,
		"UPDATE feeds AS f SET category = coalesce($2, f.category),"
		"  source = coalesce($3, f.source),"
		"  refresh_interval = CASE WHEN $4::bool THEN make_interval(secs => $5::integer)"
		"                          ELSE f.refresh_interval END,"
		"  enabled = CASE WHEN $6::bool THEN $7::bool ELSE f.enabled END,"
		"  last_attempt_at = CASE WHEN $2 IS NOT NULL OR $3 IS NOT NULL THEN NULL"
		"                         ELSE f.last_attempt_at END"
		" WHERE f.id = $1 RETURNING " FEED_JSON ", f.revision",
		r->params[0], category, source, has_interval ? "true" : "false", interval_text,
		has_enabled ? "true" : "false", enabled ? "true" : "false");
	if (!res)
		return req_db_failed(r);
	if (audit_write(r, ROLE_MINISTRY_ADMIN, "feed.update", NULL, "feed", r->params[0],
			PQgetvalue(before, 0, 0), PQgetvalue(res, 0, 0), NULL) < 0 ||
	    req_commit(r) < 0)
		return -1;
	req_set_etag(r, PQgetvalue(res, 0, 1));
	return req_reply_json_text(r, 200, PQgetvalue(res, 0, 0));
}
