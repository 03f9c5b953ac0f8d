/* main.c -- aegis-tenantd: the policy compiler and distributor, and the schema's keeper. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"
#include "policy_json.h"
#include "publish.h"

#ifndef AEGIS_MIGRATIONS_DIR
#define AEGIS_MIGRATIONS_DIR "/usr/share/aegis/migrations"
#endif

struct tenantd_settings {
	struct daemon_log_settings log;
	char *database_dsn;
	char *migrations_dir;
	char *snapshot_dir;
};

static const struct config_field tenantd_fields[] = {
	DAEMON_LOG_FIELDS(struct tenantd_settings, log),
	{ .path = "database.dsn", .type = CONFIG_STRING, .required = true,
	  .offset = offsetof(struct tenantd_settings, database_dsn) },
	{ .path = "migrations.dir", .type = CONFIG_STRING,
	  .offset = offsetof(struct tenantd_settings, migrations_dir),
	  .default_string = AEGIS_MIGRATIONS_DIR },
	{ .path = "snapshot.dir", .type = CONFIG_STRING,
	  .offset = offsetof(struct tenantd_settings, snapshot_dir),
	  .default_string = "/var/lib/aegis/tenantd" },
};

static const char *const standalone[] = { "compile-json", NULL };

static const struct daemon_spec tenantd_spec = {
	.standalone_commands = standalone,
	.name = "aegis-tenantd",
	.default_config = "/etc/aegis/tenantd.conf",
	.commands_help = "  migrate            apply pending database migrations and exit\n"
			 "  compile            compile the database's policy into a new snapshot\n"
			 "                     version in snapshot.dir, print its path and exit\n"
			 "  compile-json IN OUT [SERIAL]\n"
			 "                     compile a JSON policy description into a snapshot\n"
			 "                     file (offline nodes, tests, benchmarks)\n",
	.fields = tenantd_fields,
	.nfields = sizeof tenantd_fields / sizeof tenantd_fields[0],
	.settings_size = sizeof(struct tenantd_settings),
	.log_offset = offsetof(struct tenantd_settings, log),
};

static int run_migrate(const struct tenantd_settings *s)
{
	struct migrate_result result;
	auto_pqfinish PGconn *conn = pg_connect(s->database_dsn);
	if (!conn)
		return EXIT_FAILURE;
	if (migrate_run(conn, s->migrations_dir, &result) < 0) {
		fprintf(stderr, "aegis-tenantd: migrate failed; see the log above\n");
		return EXIT_FAILURE;
	}
	log_info("schema_current", "applied=%d already_applied=%d dir=%s", result.applied,
		 result.current, s->migrations_dir);
	return EXIT_SUCCESS;
}

static int run_compile(const struct tenantd_settings *s)
{
	char err[512] = "", host[256] = "tenantd";
	struct published p;
	struct compile_stats stats;
	auto_pqfinish PGconn *conn = pg_connect(s->database_dsn);
	if (!conn)
		return EXIT_FAILURE;
	gethostname(host, sizeof host - 1);
	if (publish_compile(conn, s->snapshot_dir, host, &p, &stats, err, sizeof err) < 0) {
		fprintf(stderr, "aegis-tenantd: compile failed: %s\n", err);
		return EXIT_FAILURE;
	}
	printf("%s\n", p.path);
	return EXIT_SUCCESS;
}

static int run_compile_json(int argc, char **argv)
{
	char err[512] = "";
	unsigned long long serial = 1;
	char *end = NULL;

	if (argc < 2 || argc > 3 ||
	    (argc == 3 && ((serial = strtoull(argv[2], &end, 10)) == 0 || *end))) {
		fprintf(stderr, "usage: aegis-tenantd compile-json IN.json OUT.snap [SERIAL]\n");
		return 2;
	}
	if (policy_json_compile(argv[0], argv[1], serial, err, sizeof err) < 0) {
		fprintf(stderr, "aegis-tenantd: %s: %s\n", argv[0], err);
		return EXIT_FAILURE;
	}
	if (err[0])
		fprintf(stderr, "aegis-tenantd: %s\n", err);
	return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
	struct daemon d;
	int status;

	if (!daemon_init(&d, &tenantd_spec, argc, argv, &status))
		return status;
	const struct tenantd_settings *s = d.settings;
	if (d.command && strcmp(d.command, "compile-json") == 0)
		status = run_compile_json(d.command_argc, d.command_argv);
	else if (d.command && strcmp(d.command, "migrate") == 0)
		status = run_migrate(s);
	else if (d.command && strcmp(d.command, "compile") == 0)
		status = run_compile(s);
	else if (d.command) {
		fprintf(stderr, "aegis-tenantd: unknown command '%s' (try --help)\n", d.command);
		status = 2;
	} else
		status = daemon_run(&d) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	daemon_fini(&d);
	return status;
}
