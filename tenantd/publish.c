/* publish.c -- compile, validate, record. */
#include "publish.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <stdbool.h>

#include "atomicfile.h"
#include "cleanup.h"
#include "log.h"
#include "pg.h"
#include "snapshot.h"

static void record_failure(PGconn *conn, const char *version, const char *reason)
{
	if (pg_command(conn, "UPDATE snapshots SET status = 'failed', error = $2 WHERE version = $1",
		       version, reason[0] ? reason : "unknown error") < 0)
		log_err("snapshot_record_failed", "version=%s", version);
}

/* The image goes into the database too, so every tenantd instance can serve the version the
 * leader compiled; only the last few versions keep theirs. */
#define PUBLISH_KEEP_CONTENT 5

/* A compiled image, for a bytea parameter: libpq takes its length as an int. */
static char *read_image(const char *path, int *len)
{
	size_t n;
	char *data = atomicfile_read(path, &n);
	if (data && (n == 0 || n > INT32_MAX)) {
		free(data);
		return NULL;
	}
	*len = (int)n;
	return data;
}

/* A base is stored once, by the first version built on it. */
static int store_base(PGconn *conn, const struct published *p)
{
	char hex[65], version[24], size[24];
	snapshot_checksum_hex(p->base_sha256, hex);
	auto_pqclear PGresult *have = pg_query(
		conn, "SELECT 1 FROM snapshot_bases WHERE sha256 = decode($1, 'hex')", hex);
	if (!have)
		return -1;
	if (PQntuples(have) == 1)
		return 0;
	int len;
	auto_free char *data = read_image(p->base_path, &len);
	if (!data)
		return -1;
	snprintf(version, sizeof version, "%llu", (unsigned long long)p->base_version);
	snprintf(size, sizeof size, "%d", len);
	const char *params[] = { hex, version, size, data };
	const int lengths[] = { 0, 0, 0, len };
	PGresult *res = pg_query_binary(conn, "INSERT INTO snapshot_bases (sha256, version, size_bytes,"
					      " content) VALUES (decode($1, 'hex'), $2, $3, $4)",
					4, params, lengths, false);
	if (!res)
		return -1;
	PQclear(res);
	return 0;
}

static int store_content(PGconn *conn, const struct published *p)
{
	char version[24], keep[8];
	int len;
	snprintf(version, sizeof version, "%llu", (unsigned long long)p->version);
	auto_free char *data = read_image(p->path, &len);
	if (!data || (p->has_base && store_base(conn, p) < 0))
		return -1;
	const char *params[] = { version, data };
	const int lengths[] = { 0, len };
	PGresult *res = pg_query_binary(conn, "UPDATE snapshots SET content = $2 WHERE version = $1",
					2, params, lengths, false);
	if (!res)
		return -1;
	PQclear(res);
	snprintf(keep, sizeof keep, "%d", PUBLISH_KEEP_CONTENT);
	if (pg_command(conn, "UPDATE snapshots SET content = NULL WHERE version <= $1::bigint - "
			     "$2::bigint AND content IS NOT NULL", version, keep) < 0)
		return -1;
	return pg_command(conn, "DELETE FROM snapshot_bases b WHERE NOT EXISTS (SELECT 1 FROM "
				"snapshots s WHERE s.base_sha256 = b.sha256 AND s.content IS NOT NULL)");
}

/* Old images are served from memory, never from these files: keep the last few for the
 * operator, delete the rest so a busy day does not fill the disk. The base in use is kept
 * however old it is. */
static void prune_files(const char *dir, const struct published *p)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		unsigned long long v;
		int end = 0;
		char path[4200];
		/* Exactly policy-<version>.snap or base-<version>.snap: never a temporary file
		 * being written. */
		bool base = sscanf(e->d_name, "base-%llu.snap%n", &v, &end) == 1;
		if ((!base && sscanf(e->d_name, "policy-%llu.snap%n", &v, &end) != 1) || !end ||
		    e->d_name[end] != '\0' || v + PUBLISH_KEEP_CONTENT > p->version ||
		    (base && p->has_base && v == p->base_version))
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

int publish_compile(PGconn *conn, const char *dir, const char *compiled_by, struct feed_base *fb,
		    struct published *out, struct compile_stats *stats, char *err, size_t errlen)
{
	char version[24], quoted[600];
	auto_pqclear PGresult *res = pg_query(
		conn, "INSERT INTO snapshots (compiled_by) VALUES ($1) RETURNING version", compiled_by);
	if (!res) {
		snprintf(err, errlen, "cannot allocate a snapshot version");
		return -EIO;
	}
	snprintf(version, sizeof version, "%s", PQgetvalue(res, 0, 0));
	memset(out, 0, sizeof *out);
	out->version = strtoull(version, NULL, 10);
	snprintf(out->path, sizeof out->path, "%s/policy-%s.snap", dir, version);

	int rc = compile_snapshot(conn, out->version, out->path, fb, stats, err, errlen);
	if (rc < 0) {
		log_err("compile_failed", "version=%s error=%s", version,
			log_quote(quoted, sizeof quoted, err));
		record_failure(conn, version, err);
		return rc;
	}
	/* Read it back with the nodes' own reader and join it to its base as they will: a
	 * snapshot they would refuse is not published. */
	struct snapshot *s = snapshot_open(out->path, err, errlen);
	struct snapshot *base = fb ? feed_base_snapshot(fb) : NULL;
	if (!s || (base && (rc = snapshot_attach_base(s, base, err, errlen)) < 0)) {
		rc = s ? rc : -(errno ? errno : EINVAL);
		snapshot_close(s);
		record_failure(conn, version, err);
		return rc;
	}
	memcpy(out->sha256, snapshot_checksum(s), sizeof out->sha256);
	snapshot_close(s);

	struct stat st;
	char hex[65], base_hex[65] = "", size[24], tenants[24], networks[24], entries[24],
		names[24], ms[24];
	snapshot_checksum_hex(out->sha256, hex);
	if (base) {
		out->has_base = true;
		out->base_version = snapshot_serial(base);
		memcpy(out->base_sha256, snapshot_checksum(base), 32);
		snprintf(out->base_path, sizeof out->base_path, "%s", feed_base_path(fb));
		snapshot_checksum_hex(out->base_sha256, base_hex);
	}
	snprintf(size, sizeof size, "%lld", stat(out->path, &st) == 0 ? (long long)st.st_size : 0LL);
	snprintf(tenants, sizeof tenants, "%u", stats->tenants);
	snprintf(networks, sizeof networks, "%u", stats->networks);
	snprintf(entries, sizeof entries, "%llu", (unsigned long long)stats->list_entries);
	snprintf(names, sizeof names, "%llu",
		 (unsigned long long)(stats->feed_names + stats->passthru));
	snprintf(ms, sizeof ms, "%ld", stats->compile_ms);
	char format[8];
	snprintf(format, sizeof format, "%d", SNAPSHOT_FORMAT_VERSION);
	if (pg_command(conn,
		       "UPDATE snapshots SET status = 'ok', compiled_at = now(), format_version = $2,"
		       " sha256 = decode($3, 'hex'), size_bytes = $4, tenant_count = $5,"
		       " network_count = $6, list_entry_count = $7, feed_name_count = $8,"
		       " compile_ms = $9, base_sha256 = decode(NULLIF($10, ''), 'hex')"
		       " WHERE version = $1",
		       version, format, hex, size, tenants, networks, entries, names, ms,
		       base_hex) < 0) {
		snprintf(err, errlen, "cannot record snapshot %s", version);
		record_failure(conn, version, err);
		return -EIO;
	}
	prune_files(dir, out);
	log_info("snapshot_published", "version=%s path=%s bytes=%s base=%llu tenants=%u networks=%u "
		 "list_entries=%llu feed_names=%llu skipped=%llu feeds=%s ms=%ld", version, out->path,
		 size, (unsigned long long)out->base_version, stats->tenants, stats->networks,
		 (unsigned long long)stats->list_entries, (unsigned long long)stats->feed_names,
		 (unsigned long long)stats->skipped_names, stats->feeds_cached ? "cached" : "read",
		 stats->compile_ms);
	return 0;
}

int publish_store(PGconn *conn, const struct published *p)
{
	char version[24];
	snprintf(version, sizeof version, "%llu", (unsigned long long)p->version);
	if (pg_command(conn, "BEGIN") < 0 || store_content(conn, p) < 0 ||
	    pg_command(conn, "SELECT pg_notify('aegis_snapshot_published', $1)", version) < 0 ||
	    pg_command(conn, "COMMIT") < 0) {
		if (pg_command(conn, "ROLLBACK") < 0)
			log_err("rollback_failed", "version=%s", version);
		log_err("snapshot_store_failed", "version=%s", version);
		return -EIO;
	}
	log_info("snapshot_stored", "version=%s", version);
	return 0;
}

/* The base a stored version names, into out->base_path, checked against its checksum. */
static int fetch_base(PGconn *conn, const char *base_hex, const struct published *out)
{
	char err[256];
	const char *params[] = { base_hex };
	auto_pqclear PGresult *res = pg_query_binary(
		conn, "SELECT content FROM snapshot_bases WHERE sha256 = decode($1, 'hex')", 1, params,
		NULL, true);
	if (!res || PQntuples(res) != 1) {
		log_err("snapshot_base_missing", "sha256=%s", base_hex);
		return -1;
	}
	struct snapshot *b = snapshot_open_buffer(PQgetvalue(res, 0, 0),
						  (size_t)PQgetlength(res, 0, 0), err, sizeof err);
	bool ok = b && memcmp(snapshot_checksum(b), out->base_sha256, 32) == 0;
	snapshot_close(b);
	if (!ok || atomicfile_write(out->base_path, PQgetvalue(res, 0, 0),
				    (size_t)PQgetlength(res, 0, 0), err, sizeof err) < 0) {
		log_err("snapshot_base_copy_failed", "sha256=%s error=\"%s\"", base_hex,
			ok ? err : "not the base named");
		return -1;
	}
	return 0;
}

int publish_fetch_latest(PGconn *conn, const char *dir, uint64_t newer_than,
			 const uint8_t *have_base, struct published *out)
{
	char after[24], err[256];
	snprintf(after, sizeof after, "%llu", (unsigned long long)newer_than);
	const char *params[] = { after };
	auto_pqclear PGresult *res = pg_query_binary(
		conn, "SELECT s.version::text, s.content, encode(s.base_sha256, 'hex'), "
		      "b.version::text FROM snapshots s LEFT JOIN snapshot_bases b ON b.sha256 = "
		      "s.base_sha256 WHERE s.status = 'ok' AND s.content IS NOT NULL AND "
		      "s.version > $1::bigint ORDER BY s.version DESC LIMIT 1",
		1, params, NULL, true);
	if (!res)
		return -1;
	if (PQntuples(res) == 0)
		return 0;
	char version[24], base_hex[65];
	memset(out, 0, sizeof *out);
	snprintf(version, sizeof version, "%.*s", PQgetlength(res, 0, 0), PQgetvalue(res, 0, 0));
	snprintf(base_hex, sizeof base_hex, "%.*s", PQgetlength(res, 0, 2), PQgetvalue(res, 0, 2));
	out->version = strtoull(version, NULL, 10);
	snprintf(out->path, sizeof out->path, "%s/policy-%s.snap", dir, version);
	if (base_hex[0]) {
		out->has_base = true;
		out->base_version = strtoull(PQgetvalue(res, 0, 3), NULL, 10);
		snprintf(out->base_path, sizeof out->base_path, "%s/base-%llu.snap", dir,
			 (unsigned long long)out->base_version);
		for (int i = 0; i < 32; i++)
			sscanf(base_hex + 2 * i, "%2hhx", &out->base_sha256[i]);
		if ((!have_base || memcmp(have_base, out->base_sha256, 32) != 0) &&
		    fetch_base(conn, base_hex, out) < 0)
			return -1;
	}
	if (atomicfile_write(out->path, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1), err,
			     sizeof err) < 0) {
		log_err("snapshot_copy_failed", "error=\"%s\"", err);
		return -1;
	}
	struct snapshot *s = snapshot_open(out->path, err, sizeof err);
	const uint8_t *named = s ? snapshot_base_checksum(s) : NULL;
	if (!s || (named == NULL) != !out->has_base ||
	    (named && memcmp(named, out->base_sha256, 32) != 0)) {
		log_err("snapshot_copy_invalid", "version=%s error=\"%s\"", version,
			s ? "its base is not the one recorded" : err);
		snapshot_close(s);
		return -1;
	}
	memcpy(out->sha256, snapshot_checksum(s), sizeof out->sha256);
	snapshot_close(s);
	prune_files(dir, out);
	return 1;
}
