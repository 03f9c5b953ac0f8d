/* migrate.c -- ordered, checksummed, one-transaction-each schema migrations. */
#include "migrate.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cleanup.h"
#include "log.h"
#include "pg.h"

/* Taken for the whole run so concurrent runners apply each file once, in order. */
#define MIGRATE_LOCK_KEY "7243598814260001"
#define MIGRATE_MAX_FILE (16 * 1024 * 1024)

struct migration {
	int version;
	char name[256];
	char checksum[65];
	char *sql;
};

static int is_migration_name(const char *name)
{
	size_t len = strlen(name);
	if (len < 10 || len >= 256 || strcmp(name + len - 4, ".sql") != 0)
		return 0;
	for (int i = 0; i < 4; i++)
		if (!isdigit((unsigned char)name[i]))
			return 0;
	if (name[4] != '_')
		return 0;
	for (size_t i = 5; i < len - 4; i++)
		if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) &&
		    name[i] != '_')
			return 0;
	return 1;
}

static int sha256_hex(const char *data, size_t len, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
		return -1;
	for (unsigned i = 0; i < mdlen; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
	return 0;
}

static int read_migration(const char *dir, const char *name, struct migration *m)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	auto_fclose FILE *f = fopen(path, "rb");
	if (!f) {
		log_err("migration_unreadable", "file=%s error=\"%s\"", path, strerror(errno));
		return -1;
	}
	auto_free char *buf = malloc(MIGRATE_MAX_FILE + 1);
	if (!buf)
		return -1;
	size_t len = fread(buf, 1, MIGRATE_MAX_FILE + 1, f);
	if (ferror(f) || len > MIGRATE_MAX_FILE) {
		log_err("migration_unreadable", "file=%s error=\"read error or larger than 16 MiB\"",
			path);
		return -1;
	}
	buf[len] = '\0';
	if (strlen(buf) != len) {
		log_err("migration_unreadable", "file=%s error=\"contains a NUL byte\"", path);
		return -1;
	}
	if (sha256_hex(buf, len, m->checksum) < 0)
		return -1;
	m->version = atoi(name);
	snprintf(m->name, sizeof m->name, "%s", name);
	m->sql = buf;
	buf = NULL;
	return 0;
}

static void free_migrations(struct migration *ms, int n)
{
	for (int i = 0; i < n; i++)
		free(ms[i].sql);
	free(ms);
}

static int name_filter(const struct dirent *e)
{
	size_t len = strlen(e->d_name);
	return len > 4 && strcmp(e->d_name + len - 4, ".sql") == 0;
}

/* Reads every NNNN_name.sql of dir, sorted by name (and so by version). */
static int load_dir(const char *dir, struct migration **out)
{
	struct dirent **entries;
	int n = scandir(dir, &entries, name_filter, alphasort);
	if (n < 0) {
		log_err("migrations_dir_unreadable", "dir=%s error=\"%s\"", dir, strerror(errno));
		return -1;
	}
	struct migration *ms = calloc((size_t)n + 1, sizeof *ms);
	int count = 0, rc = 0;
	for (int i = 0; i < n; i++) {
		const char *name = entries[i]->d_name;
		if (rc == 0 && !ms)
			rc = -1;
		else if (rc == 0 && !is_migration_name(name)) {
			log_err("migration_badly_named", "file=%s/%s expected=NNNN_lowercase_name.sql",
				dir, name);
			rc = -1;
		} else if (rc == 0 && read_migration(dir, name, &ms[count]) < 0) {
			rc = -1;
		} else if (rc == 0) {
			if (count > 0 && ms[count - 1].version == ms[count].version) {
				log_err("migration_version_duplicated", "first=%s second=%s",
					ms[count - 1].name, ms[count].name);
				rc = -1;
			}
			count++;
		}
		free(entries[i]);
	}
	free(entries);
	if (rc < 0) {
		free_migrations(ms, count);
		return -1;
	}
	*out = ms;
	return count;
}

/* Checks what the database has applied against the files, before anything is applied:
 * an applied migration must still exist unchanged, and no new file may sort before the
 * newest applied one (it would run after migrations written to follow it). */
static int verify_applied(PGconn *conn, const struct migration *ms, int n, bool *applied)
{
	auto_pqclear PGresult *res =
		pg_query(conn, "SELECT version, name, checksum FROM schema_migrations "
			       "ORDER BY version");
	if (!res)
		return -1;
	int newest = -1;
	for (int r = 0; r < PQntuples(res); r++) {
		int version = atoi(PQgetvalue(res, r, 0));
		const char *name = PQgetvalue(res, r, 1);
		const char *sum = PQgetvalue(res, r, 2);
		int i = 0;
		while (i < n && ms[i].version != version)
			i++;
		if (i == n || strcmp(ms[i].name, name) != 0) {
			log_err("migration_missing",
				"applied=%s error=\"applied to the database but not among the files: "
				"the database is newer than this release or the file was renamed\"",
				name);
			return -1;
		}
		if (strcmp(ms[i].checksum, sum) != 0) {
			log_err("migration_changed",
				"file=%s applied_sha256=%s file_sha256=%s error=\"an applied migration "
				"was edited; add a new migration instead\"",
				name, sum, ms[i].checksum);
			return -1;
		}
		applied[i] = true;
		if (version > newest)
			newest = version;
	}
	for (int i = 0; i < n; i++) {
		if (!applied[i] && ms[i].version < newest) {
			log_err("migration_out_of_order",
				"file=%s newest_applied=%04d error=\"a new migration must be numbered "
				"after every applied one\"",
				ms[i].name, newest);
			return -1;
		}
	}
	return 0;
}

static long elapsed_ms(const struct timespec *since)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

static int apply_one(PGconn *conn, const struct migration *m)
{
	char err[1024], quoted[1100], version[16], ms_text[24];
	struct timespec start;

	clock_gettime(CLOCK_MONOTONIC, &start);
	if (pg_command(conn, "BEGIN") < 0)
		return -1;
	if (pg_run_script(conn, m->sql, err, sizeof err) < 0) {
		log_err("migration_failed", "file=%s error=%s", m->name,
			log_quote(quoted, sizeof quoted, err));
		if (pg_command(conn, "ROLLBACK") < 0)
			log_err("rollback_failed", "file=%s", m->name);
		return -1;
	}
	snprintf(version, sizeof version, "%d", m->version);
	snprintf(ms_text, sizeof ms_text, "%ld", elapsed_ms(&start));
	if (pg_command(conn,
		       "INSERT INTO schema_migrations (version, name, checksum, duration_ms) "
		       "VALUES ($1, $2, $3, $4)",
		       version, m->name, m->checksum, ms_text) < 0 ||
	    pg_command(conn, "COMMIT") < 0) {
		if (pg_command(conn, "ROLLBACK") < 0)
			log_err("rollback_failed", "file=%s", m->name);
		return -1;
	}
	log_info("migration_applied", "file=%s sha256=%s ms=%ld", m->name, m->checksum,
		 elapsed_ms(&start));
	return 0;
}

int migrate_run(PGconn *conn, const char *dir, struct migrate_result *result)
{
	struct migration *ms = NULL;
	int n = 0, rc = -1;

	result->applied = result->current = 0;
	if (pg_command(conn, "SELECT pg_advisory_lock(" MIGRATE_LOCK_KEY ")") < 0)
		return -1;
	if (pg_command(conn, "CREATE TABLE IF NOT EXISTS schema_migrations ("
			     " version integer PRIMARY KEY,"
			     " name text NOT NULL UNIQUE,"
			     " checksum text NOT NULL,"
			     " applied_at timestamptz NOT NULL DEFAULT now(),"
			     " duration_ms integer NOT NULL)") < 0)
		goto unlock;

	n = load_dir(dir, &ms);
	if (n < 0) {
		n = 0;
		goto unlock;
	}
	bool *applied = calloc((size_t)n + 1, sizeof *applied);
	if (!applied || verify_applied(conn, ms, n, applied) < 0) {
		free(applied);
		goto unlock;
	}
	rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		if (applied[i]) {
			result->current++;
			continue;
		}
		rc = apply_one(conn, &ms[i]);
		if (rc == 0)
			result->applied++;
	}
	free(applied);
unlock:
	free_migrations(ms, n);
	if (pg_command(conn, "SELECT pg_advisory_unlock(" MIGRATE_LOCK_KEY ")") < 0)
		rc = -1;
	return rc;
}
