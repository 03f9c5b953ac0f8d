/* compile.c -- database to snapshot. */
#include "compile.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pg.h"
#include "snapshot.h"

struct tenant_ref {
	char id[37];
	uint32_t index;
};

/* An RPZ passthru row, in place of a category index. */
#define FEED_PASSTHRU 0xFF

struct feed_base {
	char revision[24];        /* feed_revision it was built under; "" when none */
	struct snapshot *snap;    /* the base, open and validated; NULL when none */
	char path[4096];
	uint64_t feed_names, passthru, skipped;   /* what its compile counted */
};

struct compiler {
	struct snapshot_builder *b;   /* the snapshot being loaded: the base, or the policy */
	struct compile_stats *stats;
	char categories[SNAPSHOT_MAX_CATEGORIES][64];
	int ncategories;
	struct tenant_ref *tenants;   /* sorted by id, for lookups by id */
	size_t ntenants;
	char *err;
	size_t errlen;
};

static int fail(struct compiler *c, int rc, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct compiler *c, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, c->errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static int category_index(const struct compiler *c, const char *name)
{
	for (int i = 0; i < c->ncategories; i++)
		if (strcmp(c->categories[i], name) == 0)
			return i;
	return -1;
}

static int tenant_cmp(const void *a, const void *b)
{
	return strcmp(((const struct tenant_ref *)a)->id, ((const struct tenant_ref *)b)->id);
}

static const struct tenant_ref *tenant_find(const struct compiler *c, const char *id)
{
	struct tenant_ref key;
	snprintf(key.id, sizeof key.id, "%s", id);
	return bsearch(&key, c->tenants, c->ntenants, sizeof key, tenant_cmp);
}

static int parse_uuid(const char *text, uint8_t out[16])
{
	int n = 0;
	for (const char *p = text; *p && n < 32; p++) {
		if (*p == '-')
			continue;
		int v = (*p >= '0' && *p <= '9') ? *p - '0' : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10 : -1;
		if (v < 0)
			return -EINVAL;
		out[n / 2] = (uint8_t)(n % 2 ? out[n / 2] | v : v << 4);
		n++;
	}
	return n == 32 ? 0 : -EINVAL;
}

static int load_categories(PGconn *conn, struct compiler *c)
{
	auto_pqclear PGresult *res = pg_query(conn, "SELECT name, kind FROM categories ORDER BY name");
	if (!res)
		return fail(c, -EIO, "cannot read categories");
	c->ncategories = 0;
	for (int r = 0; r < PQntuples(res); r++) {
		const char *name = PQgetvalue(res, r, 0);
		enum snapshot_category_kind kind = strcmp(PQgetvalue(res, r, 1), "threat") == 0
							   ? SNAPSHOT_CATEGORY_THREAT
							   : SNAPSHOT_CATEGORY_CONTENT;
		int idx = snapshot_builder_add_category(c->b, name, kind);
		if (idx < 0)
			return fail(c, idx, "category %s cannot be compiled (at most 24)", name);
		snprintf(c->categories[idx], sizeof c->categories[idx], "%s", name);
		c->ncategories = idx + 1;
	}
	return 0;
}

static bool inet_pton_v4(const char *text, uint8_t out[4])
{
	return inet_pton(AF_INET, text, out) == 1;
}

static bool inet_pton_v6(const char *text, uint8_t out[16])
{
	return inet_pton(AF_INET6, text, out) == 1;
}

static uint8_t privacy_of(const char *v)
{
	return strcmp(v, "pseudonym") == 0 ? SNAPSHOT_PRIVACY_PSEUDONYM
	       : strcmp(v, "truncated") == 0 ? SNAPSHOT_PRIVACY_TRUNCATED
					     : SNAPSHOT_PRIVACY_FULL;
}

static enum snapshot_block_action action_of(const char *v)
{
	return strcmp(v, "nodata") == 0	   ? SNAPSHOT_ACTION_NODATA
	       : strcmp(v, "refused") == 0  ? SNAPSHOT_ACTION_REFUSED
	       : strcmp(v, "sinkhole") == 0 ? SNAPSHOT_ACTION_SINKHOLE
					    : SNAPSHOT_ACTION_NXDOMAIN;
}

/* Category masks per tenant, from the one view that knows the defaults. */
static int load_masks(PGconn *conn, struct compiler *c, uint32_t *block, uint32_t *monitor)
{
	auto_pqclear PGresult *res = pg_query(
		conn, "SELECT e.tenant_id, e.category, e.mode FROM policy_categories_effective e "
		      "JOIN tenants t ON t.id = e.tenant_id "
		      "WHERE t.deleted_at IS NULL AND e.mode <> 'off'");
	if (!res)
		return fail(c, -EIO, "cannot read category settings");
	for (int r = 0; r < PQntuples(res); r++) {
		const struct tenant_ref *t = tenant_find(c, PQgetvalue(res, r, 0));
		int cat = category_index(c, PQgetvalue(res, r, 1));
		if (!t || cat < 0)
			continue;
		if (strcmp(PQgetvalue(res, r, 2), "block") == 0)
			block[t - c->tenants] |= 1u << cat;
		else
			monitor[t - c->tenants] |= 1u << cat;
	}
	return 0;
}

static int load_tenants(PGconn *conn, struct compiler *c)
{
	auto_pqclear PGresult *res = pg_query(
		conn, "SELECT t.id, t.name, p.block_action, host(p.sinkhole_v4), host(p.sinkhole_v6),"
		      " p.ede_contact, p.safe_search, p.log_privacy, p.log_truncate_v4,"
		      " p.log_truncate_v6 "
		      "FROM tenants t JOIN policies p ON p.tenant_id = t.id "
		      "WHERE t.deleted_at IS NULL ORDER BY t.id::text COLLATE \"C\"");
	if (!res)
		return fail(c, -EIO, "cannot read tenants");
	c->ntenants = (size_t)PQntuples(res);
	c->tenants = calloc(c->ntenants + 1, sizeof *c->tenants);
	uint32_t *block = calloc(c->ntenants + 1, sizeof *block);
	uint32_t *monitor = calloc(c->ntenants + 1, sizeof *monitor);
	int rc = -ENOMEM;
	if (!c->tenants || !block || !monitor)
		goto out;
	for (size_t r = 0; r < c->ntenants; r++)
		snprintf(c->tenants[r].id, sizeof c->tenants[r].id, "%s", PQgetvalue(res, (int)r, 0));
	if ((rc = load_masks(conn, c, block, monitor)) < 0)
		goto out;
	for (size_t r = 0; r < c->ntenants; r++) {
		int row = (int)r;
		struct snapshot_tenant_spec s = {
			.name = PQgetvalue(res, row, 1),
			.ede_text = PQgetvalue(res, row, 5),
			.block_mask = block[r],
			.monitor_mask = monitor[r],
			.block_action = action_of(PQgetvalue(res, row, 2)),
			.safe_search = PQgetvalue(res, row, 6)[0] == 't',
			.privacy = privacy_of(PQgetvalue(res, row, 7)),
			.trunc_v4 = (uint8_t)atoi(PQgetvalue(res, row, 8)),
			.trunc_v6 = (uint8_t)atoi(PQgetvalue(res, row, 9)),
		};
		if (parse_uuid(c->tenants[r].id, s.id) < 0) {
			rc = fail(c, -EINVAL, "tenant id %s is not a uuid", c->tenants[r].id);
			goto out;
		}
		if (!PQgetisnull(res, row, 3))
			s.has_sinkhole_v4 = inet_pton_v4(PQgetvalue(res, row, 3), s.sinkhole_v4);
		if (!PQgetisnull(res, row, 4))
			s.has_sinkhole_v6 = inet_pton_v6(PQgetvalue(res, row, 4), s.sinkhole_v6);
		int idx = snapshot_builder_add_tenant(c->b, &s);
		if (idx < 0) {
			rc = fail(c, idx, "tenant %s cannot be compiled", c->tenants[r].id);
			goto out;
		}
		c->tenants[r].index = (uint32_t)idx;
	}
	c->stats->tenants = (uint32_t)c->ntenants;
	rc = 0;
out:
	free(block);
	free(monitor);
	return rc;
}

static int load_networks(PGconn *conn, struct compiler *c)
{
	auto_pqclear PGresult *res = pg_query(
		conn, "SELECT n.tenant_id, n.prefix FROM networks n "
		      "JOIN tenants t ON t.id = n.tenant_id WHERE t.deleted_at IS NULL");
	if (!res)
		return fail(c, -EIO, "cannot read networks");
	for (int r = 0; r < PQntuples(res); r++) {
		const struct tenant_ref *t = tenant_find(c, PQgetvalue(res, r, 0));
		const char *prefix = PQgetvalue(res, r, 1);
		if (!t)
			continue;
		int rc = snapshot_builder_add_network(c->b, t->index, prefix);
		if (rc < 0)
			return fail(c, rc, "network %s cannot be compiled", prefix);
		c->stats->networks++;
	}
	return 0;
}

/* A name the snapshot refuses is skipped and counted, never fatal: the database's dns_name
 * domain should have stopped it, and one odd row must not stop every policy change. */
static void add_name(struct compiler *c, const char *name, enum snapshot_list list, uint32_t arg)
{
	int rc = snapshot_builder_add_name(c->b, name, list, arg);
	if (rc < 0) {
		c->stats->skipped_names++;
		if (c->stats->skipped_names <= 5)
			log_warn("compile_name_skipped", "name=%s list=%d error=\"%s\"", name,
				 (int)list, strerror(-rc));
	}
}

static int load_lists(PGconn *conn, struct compiler *c)
{
	auto_pqclear PGresult *res = pg_query(
		conn, "SELECT l.scope, l.kind, l.tenant_id, e.domain FROM list_entries e "
		      "JOIN lists l ON l.id = e.list_id LEFT JOIN tenants t ON t.id = l.tenant_id "
		      "WHERE l.enabled AND (l.scope = 'national' OR t.deleted_at IS NULL)");
	if (!res)
		return fail(c, -EIO, "cannot read lists");
	for (int r = 0; r < PQntuples(res); r++) {
		const char *scope = PQgetvalue(res, r, 0), *kind = PQgetvalue(res, r, 1);
		const char *domain = PQgetvalue(res, r, 3);
		if (strcmp(scope, "national") == 0) {
			add_name(c, domain, strcmp(kind, "block") == 0 ? SNAPSHOT_NATIONAL_BLOCK
								       : SNAPSHOT_NATIONAL_ALLOW, 0);
		} else {
			const struct tenant_ref *t = tenant_find(c, PQgetvalue(res, r, 2));
			if (!t)
				continue;
			add_name(c, domain, strcmp(kind, "allow") == 0 ? SNAPSHOT_TENANT_ALLOW
								       : SNAPSHOT_TENANT_DENY, t->index);
		}
		c->stats->list_entries++;
	}
	return 0;
}

/* One feed row: "category<TAB>name<TAB>action". A name the snapshot refuses is skipped and
 * counted, as in add_name(). */
static int feed_row(void *arg, char *line, size_t len)
{
	struct compiler *c = arg;
	char *name = memchr(line, '\t', len);
	char *action = name ? strchr(name + 1, '\t') : NULL;
	if (!action)
		return 0;
	*name++ = '\0';
	*action++ = '\0';
	int cat = FEED_PASSTHRU;
	if (strcmp(action, "passthru") != 0 && (cat = category_index(c, line)) < 0)
		return 0;
	/* RPZ passthru is an exception to every category's block: exactly what a national
	 * allow (precedence 4, just above categories) means. */
	int rc = cat == FEED_PASSTHRU
			 ? snapshot_builder_add_name(c->b, name, SNAPSHOT_NATIONAL_ALLOW, 0)
			 : snapshot_builder_add_name(c->b, name, SNAPSHOT_FEED, (uint32_t)cat);
	if (rc < 0) {
		c->stats->skipped_names++;
		if (c->stats->skipped_names <= 5)
			log_warn("compile_name_skipped", "name=%s list=feed error=\"%s\"", name,
				 strerror(-rc));
	} else if (cat == FEED_PASSTHRU) {
		c->stats->passthru++;
	} else {
		c->stats->feed_names++;
	}
	return 0;
}

static int load_feeds(PGconn *conn, struct compiler *c)
{
	/* Millions of rows: streamed, never held in one result. */
	if (pg_copy_out(conn,
			"COPY (SELECT f.category, e.name, e.action FROM feed_entries e "
			"JOIN feeds f ON f.id = e.feed_id WHERE f.enabled) TO STDOUT",
			feed_row, c) < 0)
		return fail(c, -EIO, "cannot read feed entries");
	return 0;
}

/* The categories move feed_revision too; comparing them as well costs one small query and
 * keeps a missed bump from failing every later compile with "categories differ". */
static bool base_categories_current(PGconn *conn, const struct feed_base *fb)
{
	auto_pqclear PGresult *res = pg_query(conn, "SELECT name, kind FROM categories ORDER BY name");
	if (!res || (uint32_t)PQntuples(res) != snapshot_category_count(fb->snap))
		return false;
	for (int r = 0; r < PQntuples(res); r++) {
		enum snapshot_category_kind kind = strcmp(PQgetvalue(res, r, 1), "threat") == 0
							   ? SNAPSHOT_CATEGORY_THREAT
							   : SNAPSHOT_CATEGORY_CONTENT;
		if (strcmp(PQgetvalue(res, r, 0), snapshot_category_name(fb->snap, (uint32_t)r)) != 0 ||
		    snapshot_category_kind(fb->snap, (uint32_t)r) != kind)
			return false;
	}
	return true;
}

/* The feed names are most of a national policy and change only with a feed refresh (or an
 * edit of feeds or categories), which moves feed_revision in the writer's transaction. The
 * base is rebuilt, beside the policy as base-<serial>.snap, only when the revision read in
 * this compile's transaction differs from the one it was built under. */
static int ensure_base(PGconn *conn, struct compiler *c, struct feed_base *fb, uint64_t serial,
		       const char *out_path)
{
	auto_pqclear PGresult *res = pg_query(conn, "SELECT revision::text FROM feed_revision");
	if (!res || PQntuples(res) != 1)
		return fail(c, -EIO, "cannot read the feed revision");
	const char *revision = PQgetvalue(res, 0, 0);
	if (fb->snap && strcmp(fb->revision, revision) == 0 && base_categories_current(conn, fb)) {
		c->stats->feed_names = fb->feed_names;
		c->stats->passthru = fb->passthru;
		c->stats->skipped_names = fb->skipped;
		c->stats->feeds_cached = true;
		return 0;
	}
	char path[4096];
	const char *slash = strrchr(out_path, '/');
	snprintf(path, sizeof path, "%.*sbase-%llu.snap", slash ? (int)(slash - out_path + 1) : 0,
		 out_path, (unsigned long long)serial);
	struct snapshot_builder *b = snapshot_builder_new(serial);
	if (!b)
		return fail(c, -ENOMEM, "out of memory");
	c->b = b;
	int rc = load_categories(conn, c);
	if (rc == 0)
		rc = load_feeds(conn, c);
	if (rc == 0)
		rc = snapshot_builder_write(b, path, c->err, c->errlen);
	snapshot_builder_free(b);
	c->b = NULL;
	if (rc < 0)
		return rc;
	/* Read back with the nodes' own reader, as the policy will be. */
	struct snapshot *snap = snapshot_open(path, c->err, c->errlen);
	if (!snap)
		return -(errno ? errno : EINVAL);
	snapshot_close(fb->snap);
	fb->snap = snap;
	snprintf(fb->path, sizeof fb->path, "%s", path);
	snprintf(fb->revision, sizeof fb->revision, "%s", revision);
	fb->feed_names = c->stats->feed_names;
	fb->passthru = c->stats->passthru;
	fb->skipped = c->stats->skipped_names;
	return 0;
}

struct feed_base *feed_base_new(void)
{
	return calloc(1, sizeof(struct feed_base));
}

void feed_base_free(struct feed_base *fb)
{
	if (!fb)
		return;
	snapshot_close(fb->snap);
	free(fb);
}

struct snapshot *feed_base_snapshot(const struct feed_base *fb)
{
	return fb->snap;
}

const char *feed_base_path(const struct feed_base *fb)
{
	return fb->path;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

int compile_snapshot(PGconn *conn, uint64_t serial, const char *out_path, struct feed_base *fb,
		     struct compile_stats *stats, char *err, size_t errlen)
{
	struct timespec t0;
	struct compiler c = { .stats = stats, .err = err, .errlen = errlen };
	struct snapshot_builder *b = NULL;
	int rc;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(stats, 0, sizeof *stats);
	err[0] = '\0';
	if (pg_command(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY") < 0)
		return fail(&c, -EIO, "cannot start a transaction");
	/* With a base, the feed names go there and the policy is its overlay; the base is
	 * settled first because an overlay takes its base's hash seed before any name. */
	if (fb && (rc = ensure_base(conn, &c, fb, serial, out_path)) < 0)
		goto out;
	if (!(b = snapshot_builder_new(serial))) {
		rc = fail(&c, -ENOMEM, "out of memory");
		goto out;
	}
	c.b = b;
	if (fb && (rc = snapshot_builder_set_base(b, fb->snap)) < 0) {
		fail(&c, rc, "cannot build on the feed base");
		goto out;
	}
	if ((rc = load_categories(conn, &c)) == 0 && (rc = load_tenants(conn, &c)) == 0 &&
	    (rc = load_networks(conn, &c)) == 0 && (rc = load_lists(conn, &c)) == 0 && !fb)
		rc = load_feeds(conn, &c);
out:
	if (pg_command(conn, "COMMIT") < 0 && rc == 0)
		rc = fail(&c, -EIO, "cannot end the transaction");
	if (rc == 0)
		rc = snapshot_builder_write(b, out_path, err, errlen);
	snapshot_builder_free(b);
	free(c.tenants);
	stats->compile_ms = elapsed_ms(&t0);
	return rc;
}
