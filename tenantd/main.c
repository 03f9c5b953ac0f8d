/* main.c -- aegis-tenantd: the policy compiler and distributor, and the schema's keeper. */
#include <curl/curl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon.h"
#include "hostport.h"
#include "log.h"
#include "migrate.h"
#include "pg.h"
#include "policy_json.h"
#include "publish.h"
#include "distribute.h"
#include "feeds.h"
#include "nodes.h"
#include "service.h"

#ifndef AEGIS_MIGRATIONS_DIR
#define AEGIS_MIGRATIONS_DIR "/usr/share/aegis/migrations"
#endif

struct tenantd_settings {
	struct daemon_log_settings log;
	char *database_dsn;
	char *migrations_dir;
	char *snapshot_dir;
	char *http_listen;
	long long longpoll_max_s;
	long long debounce_ms;
	long long feeds_check_s, feeds_timeout_s, feeds_max_mb;
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
	{ .path = "http.listen", .type = CONFIG_STRING,
	  .offset = offsetof(struct tenantd_settings, http_listen),
	  .default_string = "127.0.0.1:8053", .check = hostport_check },
	{ .path = "http.longpoll_max_seconds", .type = CONFIG_INT,
	  .offset = offsetof(struct tenantd_settings, longpoll_max_s), .default_int = 60,
	  .min = 1, .max = 600 },
	{ .path = "compile.debounce_ms", .type = CONFIG_INT,
	  .offset = offsetof(struct tenantd_settings, debounce_ms), .default_int = 50,
	  .min = 0, .max = 60000 },
	{ .path = "feeds.check_interval_seconds", .type = CONFIG_INT,
	  .offset = offsetof(struct tenantd_settings, feeds_check_s), .default_int = 5,
	  .min = 1, .max = 3600 },
	{ .path = "feeds.fetch_timeout_seconds", .type = CONFIG_INT,
	  .offset = offsetof(struct tenantd_settings, feeds_timeout_s), .default_int = 120,
	  .min = 1, .max = 3600 },
	{ .path = "feeds.max_mb", .type = CONFIG_INT,
	  .offset = offsetof(struct tenantd_settings, feeds_max_mb), .default_int = 512,
	  .min = 1, .max = 8192 },
};

static const char *const standalone[] = { "compile-json", NULL };

static const struct daemon_spec tenantd_spec = {
	.standalone_commands = standalone,
	.name = "aegis-tenantd",
	.default_config = "/etc/aegis/tenantd.conf",
	.commands_help = "  migrate            apply pending database migrations and exit\n"
			 "  compile            compile the database's policy into a new snapshot\n"
			 "                     version in snapshot.dir, print its path and exit\n"
			 "  feed-refresh NAME  fetch, parse and store one feed now\n"
			 "  node-add NAME      register a resolver node, print its token once\n"
			 "  node-revoke NAME   revoke a resolver node's token\n"
			 "  compile-json [--split] IN OUT [SERIAL]\n"
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
	if (publish_compile(conn, s->snapshot_dir, host, NULL, &p, &stats, err, sizeof err) < 0) {
		fprintf(stderr, "aegis-tenantd: compile failed: %s\n", err);
		return EXIT_FAILURE;
	}
	if (publish_store(conn, &p) < 0) {
		fprintf(stderr, "aegis-tenantd: cannot store snapshot %llu\n",
			(unsigned long long)p.version);
		return EXIT_FAILURE;
	}
	printf("%s\n", p.path);
	return EXIT_SUCCESS;
}

static int run_service(struct daemon *d, const struct tenantd_settings *s)
{
	char instance[256] = "tenantd";
	gethostname(instance, sizeof instance - 1);
	struct distribute_config dc = { .listen = s->http_listen, .dsn = s->database_dsn,
					.max_wait_s = (unsigned)s->longpoll_max_s };
	struct distribute *dist = distribute_start(&dc);
	if (!dist)
		return EXIT_FAILURE;
	struct service_config sc = { .dsn = s->database_dsn, .snapshot_dir = s->snapshot_dir,
				     .instance = instance, .debounce_ms = (unsigned)s->debounce_ms,
				     .distribute = dist };
	struct service *svc = service_start(d->base, &sc);
	struct feeds_config fc = { .dsn = s->database_dsn,
				   .check_interval_s = (unsigned)s->feeds_check_s,
				   .fetch_timeout_s = (unsigned)s->feeds_timeout_s,
				   .max_bytes = (size_t)s->feeds_max_mb << 20 };
	struct feeds *feeds = svc ? feeds_start(&fc) : NULL;
	int status = EXIT_FAILURE;
	if (feeds)
		status = daemon_run(d) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	feeds_stop(feeds);
	service_stop(svc);
	distribute_stop(dist);
	return status;
}

static int run_compile_json(int argc, char **argv)
{
	char err[512] = "";
	unsigned long long serial = 1;
	char *end = NULL;
	bool split = argc > 0 && strcmp(argv[0], "--split") == 0;

	argc -= split;
	argv += split;
	if (argc < 2 || argc > 3 ||
	    (argc == 3 && ((serial = strtoull(argv[2], &end, 10)) == 0 || *end))) {
		fprintf(stderr, "usage: aegis-tenantd compile-json [--split] IN.json OUT.snap "
				"[SERIAL]\n");
		return 2;
	}
	if ((split ? policy_json_compile_split : policy_json_compile)(argv[0], argv[1], serial, err,
								      sizeof err) < 0) {
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
	curl_global_init(CURL_GLOBAL_DEFAULT);
	const struct tenantd_settings *s = d.settings;
	if (d.command && strcmp(d.command, "compile-json") == 0)
		status = run_compile_json(d.command_argc, d.command_argv);
	else if (d.command && strcmp(d.command, "migrate") == 0)
		status = run_migrate(s);
	else if (d.command && strcmp(d.command, "compile") == 0)
		status = run_compile(s);
	else if (d.command && strcmp(d.command, "feed-refresh") == 0 && d.command_argc == 1)
		status = feeds_refresh_named(s->database_dsn, d.command_argv[0],
					     (size_t)s->feeds_max_mb << 20,
					     (unsigned)s->feeds_timeout_s) < 0 ? EXIT_FAILURE
									       : EXIT_SUCCESS;
	else if (d.command && strcmp(d.command, "node-add") == 0 && d.command_argc == 1)
		status = nodes_add(s->database_dsn, d.command_argv[0]) < 0 ? EXIT_FAILURE
									   : EXIT_SUCCESS;
	else if (d.command && strcmp(d.command, "node-revoke") == 0 && d.command_argc == 1)
		status = nodes_revoke(s->database_dsn, d.command_argv[0]) < 0 ? EXIT_FAILURE
									      : EXIT_SUCCESS;
	else if (d.command) {
		fprintf(stderr, "aegis-tenantd: unknown command '%s' (try --help)\n", d.command);
		status = 2;
	} else
		status = run_service(&d, s);
	daemon_fini(&d);
	curl_global_cleanup();
	return status;
}
