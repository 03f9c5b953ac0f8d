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

static int store_content(PGconn *conn, const char *version, const char *path)
{
	auto_fclose FILE *f = fopen(path, "rb");
	if (!f || fseek(f, 0, SEEK_END) < 0)
		return -1;
	long size = ftell(f);
	rewind(f);
	if (size <= 0 || size > INT32_MAX)
		return -1;
	auto_free char *data = malloc((size_t)size);
	if (!data || fread(data, 1, (size_t)size, f) != (size_t)size)
		return -1;
	const char *params[] = { version, data };
	const int lengths[] = { 0, (int)size };
	PGresult *res = pg_query_binary(conn, "UPDATE snapshots SET content = $2 WHERE version = $1",
					2, params, lengths, false);
	if (!res)
		return -1;
	PQclear(res);
	char keep[8];
	snprintf(keep, sizeof keep, "%d", PUBLISH_KEEP_CONTENT);
	return pg_command(conn, "UPDATE snapshots SET content = NULL WHERE version <= $1::bigint - "
				"$2::bigint AND content IS NOT NULL", version, keep);
}

/* Old images are served from memory, never from these files: keep the last few for the
 * operator, delete the rest so a busy day does not fill the disk. */
static void prune_files(const char *dir, uint64_t newest)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		unsigned long long v;
		int end = 0;
		char path[4200];
		/* Exactly policy-<version>.snap: never a temporary file being written. */
		if (sscanf(e->d_name, "policy-%llu.snap%n", &v, &end) != 1 || !end ||
		    e->d_name[end] != '\0' || v + PUBLISH_KEEP_CONTENT > newest)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
}

int publish_compile(PGconn *conn, const char *dir, const char *compiled_by,
		    struct feed_cache *cache, struct published *out, struct compile_stats *stats,
		    char *err, size_t errlen)
{
	char version[24], quoted[600];
	auto_pqclear PGresult *res = pg_query(
		conn, "INSERT INTO snapshots (compiled_by) VALUES ($1) RETURNING version", compiled_by);
	if (!res) {
		snprintf(err, errlen, "cannot allocate a snapshot version");
		return -EIO;
	}
	snprintf(version, sizeof version, "%s", PQgetvalue(res, 0, 0));
	out->version = strtoull(version, NULL, 10);
	snprintf(out->path, sizeof out->path, "%s/policy-%s.snap", dir, version);

	int rc = compile_snapshot(conn, out->version, out->path, cache, stats, err, errlen);
	if (rc < 0) {
		log_err("compile_failed", "version=%s error=%s", version,
			log_quote(quoted, sizeof quoted, err));
		record_failure(conn, version, err);
		return rc;
	}
	/* Read it back with the nodes' own reader: a snapshot they would refuse is not published. */
	struct snapshot *s = snapshot_open(out->path, err, errlen);
	if (!s) {
		rc = -(errno ? errno : EINVAL);
		record_failure(conn, version, err);
		return rc;
	}
	memcpy(out->sha256, snapshot_checksum(s), sizeof out->sha256);
	snapshot_close(s);

	struct stat st;
	char hex[65], size[24], tenants[24], networks[24], entries[24], names[24], ms[24];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", out->sha256[i]);
	snprintf(size, sizeof size, "%lld", stat(out->path, &st) == 0 ? (long long)st.st_size : 0LL);
	snprintf(tenants, sizeof tenants, "%u", stats->tenants);
	snprintf(networks, sizeof networks, "%u", stats->networks);
	snprintf(entries, sizeof entries, "%llu", (unsigned long long)stats->list_entries);
	snprintf(names, sizeof names, "%llu",
		 (unsigned long long)(stats->feed_names + stats->passthru));
	snprintf(ms, sizeof ms, "%ld", stats->compile_ms);
	if (pg_command(conn,
		       "UPDATE snapshots SET status = 'ok', compiled_at = now(), format_version = $2,"
		       " sha256 = decode($3, 'hex'), size_bytes = $4, tenant_count = $5,"
		       " network_count = $6, list_entry_count = $7, feed_name_count = $8,"
		       " compile_ms = $9 WHERE version = $1",
		       version, "1", hex, size, tenants, networks, entries, names, ms) < 0) {
		snprintf(err, errlen, "cannot record snapshot %s", version);
		record_failure(conn, version, err);
		return -EIO;
	}
	prune_files(dir, out->version);
	log_info("snapshot_published", "version=%s path=%s tenants=%u networks=%u list_entries=%llu "
		 "feed_names=%llu skipped=%llu feeds=%s ms=%ld", version, out->path, stats->tenants,
		 stats->networks, (unsigned long long)stats->list_entries,
		 (unsigned long long)stats->feed_names, (unsigned long long)stats->skipped_names,
		 stats->feeds_cached ? "cached" : "read", stats->compile_ms);
	return 0;
}

int publish_store(PGconn *conn, const struct published *p)
{
	char version[24];
	snprintf(version, sizeof version, "%llu", (unsigned long long)p->version);
	if (pg_command(conn, "BEGIN") < 0 || store_content(conn, version, p->path) < 0 ||
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

int publish_fetch_latest(PGconn *conn, const char *dir, uint64_t newer_than,
			 struct published *out)
{
	char after[24], err[256];
	snprintf(after, sizeof after, "%llu", (unsigned long long)newer_than);
	const char *params[] = { after };
	auto_pqclear PGresult *res = pg_query_binary(
		conn, "SELECT version::text, content FROM snapshots WHERE status = 'ok' AND content "
		      "IS NOT NULL AND version > $1::bigint ORDER BY version DESC LIMIT 1",
		1, params, NULL, true);
	if (!res)
		return -1;
	if (PQntuples(res) == 0)
		return 0;
	char version[24];
	snprintf(version, sizeof version, "%.*s", PQgetlength(res, 0, 0), PQgetvalue(res, 0, 0));
	out->version = strtoull(version, NULL, 10);
	snprintf(out->path, sizeof out->path, "%s/policy-%s.snap", dir, version);
	if (atomicfile_write(out->path, PQgetvalue(res, 0, 1), (size_t)PQgetlength(res, 0, 1), err,
			     sizeof err) < 0) {
		log_err("snapshot_copy_failed", "error=\"%s\"", err);
		return -1;
	}
	struct snapshot *s = snapshot_open(out->path, err, sizeof err);
	if (!s) {
		log_err("snapshot_copy_invalid", "version=%s error=\"%s\"", version, err);
		return -1;
	}
	memcpy(out->sha256, snapshot_checksum(s), sizeof out->sha256);
	snapshot_close(s);
	prune_files(dir, out->version);
	return 1;
}
