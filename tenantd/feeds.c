/* feeds.c -- fetch, parse and store threat feeds. */
#include "feeds.h"

#include <curl/curl.h>
#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cleanup.h"
#include "feed_parse.h"
#include "log.h"
#include "pg.h"

#define FEEDS_LOCK_KEY "7243598814260003"

struct feeds {
	struct feeds_config cfg;
	pthread_t thread;
	atomic_bool stop;
};

/* A feed row, as text. */
struct feed {
	char id[37], name[64], format[8], source[2049];
	char etag[1025], last_modified[129], sha256[65];
	bool loaded_before;
};

struct document {
	char *data;
	size_t len, max;
	long http_status;
	bool not_modified;
	char etag[1025], last_modified[129];
};

/* Names of one refresh, deduplicated by sort; block wins over passthru for one name. */
struct entry {
	char *name;
	bool passthru;
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

/* --- fetching --------------------------------------------------------------------------- */

static size_t on_body(char *ptr, size_t size, size_t n, void *arg)
{
	struct document *d = arg;
	size_t len = size * n;
	if (d->len + len > d->max)
		return 0; /* curl fails the transfer: too large */
	char *bigger = realloc(d->data, d->len + len + 1);
	if (!bigger)
		return 0;
	d->data = bigger;
	memcpy(d->data + d->len, ptr, len);
	d->len += len;
	d->data[d->len] = '\0';
	return len;
}

static void header_value(const char *line, size_t len, const char *name, char *out, size_t cap)
{
	size_t nl = strlen(name);
	if (len <= nl || strncasecmp(line, name, nl) != 0)
		return;
	const char *v = line + nl;
	size_t vl = len - nl;
	while (vl && (*v == ' ' || *v == '\t')) {
		v++;
		vl--;
	}
	while (vl && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
		vl--;
	if (vl < cap) {
		memcpy(out, v, vl);
		out[vl] = '\0';
	}
}

static size_t on_header(char *line, size_t size, size_t n, void *arg)
{
	struct document *d = arg;
	header_value(line, size * n, "ETag:", d->etag, sizeof d->etag);
	header_value(line, size * n, "Last-Modified:", d->last_modified, sizeof d->last_modified);
	return size * n;
}

static int fetch_url(const char *url, const struct feed *f, unsigned timeout_s,
		     struct document *d, char *err, size_t errlen)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	char cond[1200];
	if (!c) {
		snprintf(err, errlen, "cannot start an HTTP client");
		return -ENOMEM;
	}
	if (f && f->etag[0]) {
		snprintf(cond, sizeof cond, "If-None-Match: %s", f->etag);
		h = curl_slist_append(h, cond);
	}
	if (f && f->last_modified[0]) {
		snprintf(cond, sizeof cond, "If-Modified-Since: %s", f->last_modified);
		h = curl_slist_append(h, cond);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
	curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)timeout_s);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(c, CURLOPT_USERAGENT, "aegis-tenantd");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, d);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, d);
	CURLcode rc = curl_easy_perform(c);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &d->http_status);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "%s: %s", url,
			 rc == CURLE_WRITE_ERROR ? "larger than the limit" : curl_easy_strerror(rc));
		return -EIO;
	}
	if (d->http_status == 304) {
		d->not_modified = true;
		return 0;
	}
	if (d->http_status != 200) {
		snprintf(err, errlen, "%s: HTTP status %ld", url, d->http_status);
		return -EIO;
	}
	return 0;
}

static int fetch_file(const char *path, struct document *d, char *err, size_t errlen)
{
	auto_fclose FILE *fp = fopen(path, "rb");
	if (!fp) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
		if (on_body(buf, 1, n, d) != n) {
			snprintf(err, errlen, "%s: larger than the limit", path);
			return -EFBIG;
		}
	}
	if (ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		return -EIO;
	}
	return 0;
}

static int fetch(const char *source, const struct feed *f, unsigned timeout_s,
		 struct document *d, char *err, size_t errlen)
{
	return source[0] == '/' ? fetch_file(source, d, err, errlen)
				: fetch_url(source, f, timeout_s, d, err, errlen);
}

/* --- parsing ---------------------------------------------------------------------------- */

static int collect(void *arg, const char *name, enum feed_action action)
{
	struct entries *e = arg;
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 4096;
		struct entry *v = realloc(e->v, cap * sizeof *v);
		if (!v)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	if (!(e->v[e->n].name = strdup(name)))
		return -ENOMEM;
	e->v[e->n++].passthru = action == FEED_ACTION_PASSTHRU;
	return 0;
}

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (int)x->passthru - (int)y->passthru;
}

static void dedupe(struct entries *e)
{
	qsort(e->v, e->n, sizeof *e->v, entry_cmp);
	size_t out = 0;
	for (size_t i = 0; i < e->n; i++) {
		if (out && strcmp(e->v[out - 1].name, e->v[i].name) == 0) {
			free(e->v[i].name); /* sorted block-first, so the kept one blocks */
			continue;
		}
		e->v[out++] = e->v[i];
	}
	e->n = out;
}

static void entries_free(struct entries *e)
{
	for (size_t i = 0; i < e->n; i++)
		free(e->v[i].name);
	free(e->v);
	memset(e, 0, sizeof *e);
}

static int parse_misp(const struct feed *f, const struct document *manifest, unsigned timeout_s,
		      size_t max, struct entries *e, struct feed_parse_stats *st, char *err,
		      size_t errlen)
{
	char (*uuids)[FEED_UUID_LEN + 1] = NULL;
	size_t n = 0;
	int rc = feed_misp_manifest(manifest->data, manifest->len, &uuids, &n, st, err, errlen);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		char url[2200];
		struct document ev = { .max = max };
		snprintf(url, sizeof url, "%s/%s.json", f->source, uuids[i]);
		rc = fetch(url, NULL, timeout_s, &ev, err, errlen);
		if (rc == 0)
			rc = feed_misp_event(ev.data ? ev.data : "", ev.len, collect, e, st, err,
					     errlen);
		free(ev.data);
	}
	free(uuids);
	return rc;
}

/* --- storing ---------------------------------------------------------------------------- */

struct copy_state {
	const struct entries *e;
	size_t next;
};

static int copy_rows(void *arg, char *buf, size_t cap, size_t *len)
{
	struct copy_state *cs = arg;
	*len = 0;
	while (cs->next < cs->e->n) {
		const struct entry *x = &cs->e->v[cs->next];
		int n = snprintf(buf + *len, cap - *len, "%s\t%s\n", x->name,
				 x->passthru ? "passthru" : "block");
		if (n < 0 || (size_t)n >= cap - *len)
			return 1; /* the buffer is full: send it, come back for the rest */
		*len += (size_t)n;
		cs->next++;
	}
	return 0;
}

static long affected(PGresult *r)
{
	return r ? strtol(PQcmdTuples(r), NULL, 10) : 0;
}

static void uint_text(char *buf, size_t cap, unsigned long long v)
{
	snprintf(buf, cap, "%llu", v);
}

static int store(PGconn *conn, const struct feed *f, const struct entries *e,
		 const struct document *d, const char *sha, const struct feed_parse_stats *st,
		 const char *started, char *err, size_t errlen)
{
	char added[24], removed[24], total[24], invalid[24], bytes[24], details[512];
	struct copy_state cs = { .e = e };

	if (pg_command(conn, "BEGIN") < 0 ||
	    pg_command(conn, "CREATE TEMP TABLE feed_new (name text PRIMARY KEY, action text) "
			     "ON COMMIT DROP") < 0 ||
	    pg_copy_in(conn, "COPY feed_new (name, action) FROM STDIN", copy_rows, &cs) < 0)
		goto fail;
	PGresult *del = pg_query(conn, "DELETE FROM feed_entries e WHERE e.feed_id = $1 AND NOT "
				       "EXISTS (SELECT 1 FROM feed_new n WHERE n.name = e.name)",
				 f->id);
	PGresult *upd = del ? pg_query(conn, "UPDATE feed_entries e SET action = n.action FROM "
					     "feed_new n WHERE e.feed_id = $1 AND e.name = n.name "
					     "AND e.action <> n.action", f->id)
			    : NULL;
	PGresult *ins = upd ? pg_query(conn, "INSERT INTO feed_entries (feed_id, name, action) "
					     "SELECT $1, name, action FROM feed_new "
					     "ON CONFLICT (feed_id, name) DO NOTHING", f->id)
			    : NULL;
	uint_text(removed, sizeof removed, (unsigned long long)affected(del));
	uint_text(added, sizeof added, (unsigned long long)affected(ins));
	PQclear(del);
	PQclear(upd);
	if (!ins)
		goto fail;
	PQclear(ins);
	uint_text(total, sizeof total, e->n);
	uint_text(invalid, sizeof invalid, st->invalid);
	uint_text(bytes, sizeof bytes, d->len);
	snprintf(details, sizeof details,
		 "{\"lines\": %llu, \"skipped\": %llu, \"unsupported\": %llu, \"passthru\": %llu,"
		 " \"not_to_ids\": %llu, \"local_data_mapped\": %llu}",
		 (unsigned long long)st->lines, (unsigned long long)st->skipped,
		 (unsigned long long)st->unsupported, (unsigned long long)st->passthru,
		 (unsigned long long)st->not_to_ids, (unsigned long long)st->local_data_mapped);
	if (pg_command(conn, "UPDATE feeds SET status = 'ok', status_reason = '', fetched_at = now(),"
			     " etag = NULLIF($2, ''), last_modified = NULLIF($3, ''),"
			     " content_sha256 = decode($4, 'hex'), entry_count = $5 WHERE id = $1",
		       f->id, d->etag, d->last_modified, sha, total) < 0 ||
	    pg_command(conn, "INSERT INTO feed_refreshes (feed_id, started_at, finished_at, outcome,"
			     " http_status, bytes_fetched, entries_total, entries_added,"
			     " entries_removed, lines_invalid, details) VALUES ($1, $2, clock_timestamp(),"
			     " 'updated', NULLIF($3, '0')::smallint, $4, $5, $6, $7, $8, $9)",
		       f->id, started, d->http_status ? "200" : "0", bytes, total, added, removed,
		       invalid, details) < 0 ||
	    pg_command(conn, "COMMIT") < 0)
		goto fail;
	log_info("feed_updated", "feed=%s entries=%s added=%s removed=%s invalid=%s", f->name,
		 total, added, removed, invalid);
	return 0;
fail:
	snprintf(err, errlen, "cannot store the entries (see the log)");
	if (pg_command(conn, "ROLLBACK") < 0)
		log_err("rollback_failed", "feed=%s", f->name);
	return -EIO;
}

static void record_failure(PGconn *conn, const struct feed *f, const char *started,
			   const char *why, long http_status)
{
	char status[8];
	snprintf(status, sizeof status, "%ld", http_status >= 100 && http_status <= 599 ? http_status : 0);
	char quoted[600];
	log_warn("feed_failed", "feed=%s keeping=%s error=%s", f->name,
		 f->loaded_before ? "last_good_entries" : "nothing",
		 log_quote(quoted, sizeof quoted, why));
	if (pg_command(conn, "UPDATE feeds SET status = CASE WHEN fetched_at IS NULL THEN 'error' "
			     "ELSE 'stale' END, status_reason = $2 WHERE id = $1", f->id, why) < 0 ||
	    pg_command(conn, "INSERT INTO feed_refreshes (feed_id, started_at, finished_at, outcome,"
			     " error, http_status) VALUES ($1, $2, clock_timestamp(), 'failed', $3,"
			     " NULLIF($4, '0')::smallint)", f->id, started, why, status) < 0)
		log_err("feed_failure_not_recorded", "feed=%s", f->name);
}

static void record_unchanged(PGconn *conn, const struct feed *f, const char *started,
			     const struct document *d)
{
	char bytes[24];
	uint_text(bytes, sizeof bytes, d->len);
	if (pg_command(conn, "UPDATE feeds SET status = 'ok', status_reason = '', fetched_at = now()"
			     " WHERE id = $1", f->id) < 0 ||
	    pg_command(conn, "INSERT INTO feed_refreshes (feed_id, started_at, finished_at, outcome,"
			     " bytes_fetched, entries_total) SELECT $1, $2, clock_timestamp(), 'unchanged', $3,"
			     " entry_count FROM feeds WHERE id = $1", f->id, started, bytes) < 0)
		log_err("feed_refresh_not_recorded", "feed=%s", f->name);
}

static void sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* One refresh of one feed: fetched, parsed and stored, or recorded as failed. */
static int refresh(PGconn *conn, const struct feed *f, size_t max, unsigned timeout_s)
{
	char err[512] = "", sha[65], started[64];
	struct document d = { .max = max };
	struct entries e = { 0 };
	struct feed_parse_stats st = { 0 };
	enum feed_format fmt;
	int rc;

	auto_pqclear PGresult *now = pg_query(conn, "UPDATE feeds SET last_attempt_at = now() "
						    "WHERE id = $1 RETURNING clock_timestamp()::text",
					      f->id);
	snprintf(started, sizeof started, "%s", now ? PQgetvalue(now, 0, 0) : "now");
	if (feed_format_parse(f->format, &fmt) < 0) {
		record_failure(conn, f, started, "unknown format", 0);
		return -1;
	}
	char manifest[2100];
	snprintf(manifest, sizeof manifest, "%s%s", f->source,
		 fmt == FEED_FORMAT_MISP ? "/manifest.json" : "");
	rc = fetch(manifest, f, timeout_s, &d, err, sizeof err);
	if (rc == 0 && d.not_modified) {
		record_unchanged(conn, f, started, &d);
		free(d.data);
		return 0;
	}
	if (rc == 0) {
		sha256_hex(d.data ? d.data : "", d.len, sha);
		if (fmt != FEED_FORMAT_MISP && strcmp(sha, f->sha256) == 0) {
			record_unchanged(conn, f, started, &d);
			free(d.data);
			return 0;
		}
		rc = fmt == FEED_FORMAT_MISP
			     ? parse_misp(f, &d, timeout_s, max, &e, &st, err, sizeof err)
			     : feed_parse(fmt, d.data ? d.data : "", d.len, NULL, collect, &e, &st);
		if (rc < 0 && !err[0])
			snprintf(err, sizeof err, "parse failed: %s", strerror(-rc));
	}
	for (unsigned i = 0; i < st.n_samples; i++)
		log_warn("feed_line_invalid", "feed=%s sample=\"%s\"", f->name, st.invalid_samples[i]);
	/* A document with garbage and not one name is an error page or a truncated download,
	 * not a feed that became empty: keep what we had. */
	if (rc == 0 && e.n == 0 && st.invalid > 0) {
		snprintf(err, sizeof err, "no valid names (%llu invalid lines)",
			 (unsigned long long)st.invalid);
		rc = -EBADMSG;
	}
	if (rc == 0) {
		dedupe(&e);
		rc = store(conn, f, &e, &d, sha, &st, started, err, sizeof err);
	}
	if (rc < 0)
		record_failure(conn, f, started, err, d.http_status);
	entries_free(&e);
	free(d.data);
	return rc < 0 ? -1 : 0;
}

static void feed_from_row(PGresult *res, int r, struct feed *f)
{
	snprintf(f->id, sizeof f->id, "%s", PQgetvalue(res, r, 0));
	snprintf(f->name, sizeof f->name, "%s", PQgetvalue(res, r, 1));
	snprintf(f->format, sizeof f->format, "%s", PQgetvalue(res, r, 2));
	snprintf(f->source, sizeof f->source, "%s", PQgetvalue(res, r, 3));
	snprintf(f->etag, sizeof f->etag, "%s", PQgetvalue(res, r, 4));
	snprintf(f->last_modified, sizeof f->last_modified, "%s", PQgetvalue(res, r, 5));
	snprintf(f->sha256, sizeof f->sha256, "%s", PQgetvalue(res, r, 6));
	f->loaded_before = PQgetvalue(res, r, 7)[0] == 't';
}

#define FEED_COLUMNS                                                                       \
	"SELECT id, name, format, source, COALESCE(etag, ''),"                             \
	" COALESCE(last_modified, ''), COALESCE(encode(content_sha256, 'hex'), ''),"       \
	" fetched_at IS NOT NULL FROM feeds "

int feeds_refresh_named(const char *dsn, const char *name, size_t max_bytes, unsigned timeout_s)
{
	struct feed f;
	auto_pqfinish PGconn *conn = pg_connect(dsn);
	if (!conn)
		return -1;
	auto_pqclear PGresult *res = pg_query(conn, FEED_COLUMNS "WHERE name = $1", name);
	if (!res || PQntuples(res) != 1) {
		fprintf(stderr, "aegis-tenantd: no feed named '%s'\n", name);
		return -1;
	}
	feed_from_row(res, 0, &f);
	return refresh(conn, &f, max_bytes, timeout_s);
}

static void refresh_due(struct feeds *fs, PGconn *conn)
{
	auto_pqclear PGresult *res = pg_query(
		conn, FEED_COLUMNS "WHERE enabled AND (last_attempt_at IS NULL OR"
				   " last_attempt_at + refresh_interval <= now()) ORDER BY name");
	for (int r = 0; res && r < PQntuples(res) && !atomic_load(&fs->stop); r++) {
		struct feed f;
		feed_from_row(res, r, &f);
		refresh(conn, &f, fs->cfg.max_bytes, fs->cfg.fetch_timeout_s);
	}
}

static void *feeds_main(void *arg)
{
	struct feeds *fs = arg;
	PGconn *conn = NULL;
	bool leading = false;

	while (!atomic_load(&fs->stop)) {
		if (!conn || PQstatus(conn) != CONNECTION_OK) {
			if (conn)
				PQfinish(conn);
			conn = pg_connect(fs->cfg.dsn);
			leading = false;
		}
		if (conn && !leading) {
			auto_pqclear PGresult *res =
				pg_query(conn, "SELECT pg_try_advisory_lock(" FEEDS_LOCK_KEY ")");
			leading = res && PQgetvalue(res, 0, 0)[0] == 't';
			if (leading)
				log_info("feeds_leading");
		}
		if (conn && leading)
			refresh_due(fs, conn);
		for (unsigned i = 0; i < fs->cfg.check_interval_s * 10 && !atomic_load(&fs->stop); i++)
			usleep(100 * 1000);
	}
	if (conn)
		PQfinish(conn);
	return NULL;
}

struct feeds *feeds_start(const struct feeds_config *cfg)
{
	struct feeds *fs = calloc(1, sizeof *fs);
	if (!fs)
		return NULL;
	fs->cfg = *cfg;
	if (pthread_create(&fs->thread, NULL, feeds_main, fs) != 0) {
		free(fs);
		return NULL;
	}
	return fs;
}

void feeds_stop(struct feeds *fs)
{
	if (!fs)
		return;
	atomic_store(&fs->stop, true);
	pthread_join(fs->thread, NULL);
	free(fs);
}
