/* main.c -- aegis-portal-api: the REST API for administrators and SOC analysts. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cleanup.h"
#include "daemon.h"
#include "log.h"
#include "password.h"
#include "pg.h"
#include "portal.h"
#include "routes.h"
#include "token.h"

struct portal_api_settings {
	struct daemon_log_settings log;
	char *database_dsn;
	long long pool_size;
	char *http_listen;
	bool allow_plain_non_loopback, trust_forwarded_for;
	long long threads, max_body, max_import_body;
	long long rate_addr, burst_addr, rate_principal, burst_principal;
	char *tls_cert_file, *tls_key_file;
	long long session_seconds, lockout_failures, lockout_seconds, scrypt_ln;
	char *totp_key_file;
};

#define S(member) offsetof(struct portal_api_settings, member)

static const struct config_field portal_api_fields[] = {
	DAEMON_LOG_FIELDS(struct portal_api_settings, log),
	{ .path = "database.dsn", .type = CONFIG_STRING, .required = true, .offset = S(database_dsn) },
	{ .path = "database.pool_size", .type = CONFIG_INT, .offset = S(pool_size),
	  .default_int = 8, .min = 1, .max = 256 },
	{ .path = "http.listen", .type = CONFIG_STRING, .offset = S(http_listen),
	  .default_string = "127.0.0.1:8080" },
	{ .path = "http.allow_plain_non_loopback", .type = CONFIG_BOOL,
	  .offset = S(allow_plain_non_loopback) },
	{ .path = "http.trust_forwarded_for", .type = CONFIG_BOOL, .offset = S(trust_forwarded_for) },
	{ .path = "http.threads", .type = CONFIG_INT, .offset = S(threads), .default_int = 4,
	  .min = 1, .max = 256 },
	{ .path = "http.max_body_bytes", .type = CONFIG_INT, .offset = S(max_body),
	  .default_int = 1 << 20, .min = 1024, .max = 64 << 20 },
	{ .path = "http.max_import_bytes", .type = CONFIG_INT, .offset = S(max_import_body),
	  .default_int = 16 << 20, .min = 1024, .max = 256 << 20 },
	{ .path = "http.rate_per_address", .type = CONFIG_INT, .offset = S(rate_addr),
	  .default_int = 200, .min = 0, .max = 1000000 },
	{ .path = "http.burst_per_address", .type = CONFIG_INT, .offset = S(burst_addr),
	  .default_int = 400, .min = 0, .max = 10000000 },
	{ .path = "http.rate_per_principal", .type = CONFIG_INT, .offset = S(rate_principal),
	  .default_int = 100, .min = 0, .max = 1000000 },
	{ .path = "http.burst_per_principal", .type = CONFIG_INT, .offset = S(burst_principal),
	  .default_int = 200, .min = 0, .max = 10000000 },
	{ .path = "tls.cert_file", .type = CONFIG_STRING, .offset = S(tls_cert_file) },
	{ .path = "tls.key_file", .type = CONFIG_STRING, .offset = S(tls_key_file) },
	{ .path = "auth.session_seconds", .type = CONFIG_INT, .offset = S(session_seconds),
	  .default_int = 28800, .min = 60, .max = 7 * 86400 },
	{ .path = "auth.lockout_failures", .type = CONFIG_INT, .offset = S(lockout_failures),
	  .default_int = 5, .min = 1, .max = 100 },
	{ .path = "auth.lockout_seconds", .type = CONFIG_INT, .offset = S(lockout_seconds),
	  .default_int = 900, .min = 1, .max = 86400 },
	{ .path = "auth.scrypt_ln", .type = CONFIG_INT, .offset = S(scrypt_ln),
	  .default_int = 15, .min = PASSWORD_LN_MIN, .max = PASSWORD_LN_MAX },
	{ .path = "auth.totp_key_file", .type = CONFIG_STRING, .offset = S(totp_key_file) },
};

static const char *const standalone[] = { "hash-password", "routes", NULL };

/* SIGHUP: the log settings apply at once (daemon.c); everything else the running service
 * copied at start, so the new values wait for a restart. The service keeps no pointer into
 * the settings being replaced. */
static int reload(struct daemon *d, const void *old_settings, const void *new_settings)
{
	(void)d;
	(void)old_settings;
	(void)new_settings;
	log_warn("reload_partial", "applied=log rest=\"needs a restart\"");
	return 0;
}

static const struct daemon_spec portal_api_spec = {
	.name = "aegis-portal-api",
	.default_config = "/etc/aegis/portal-api.conf",
	.standalone_commands = standalone,
	.commands_help =
		"  bootstrap-key NAME [DAYS]\n"
		"                     issue the first ministry_admin API key (valid DAYS, default\n"
		"                     30), print it once and exit; refused once one is live\n"
		"  hash-password [LN] read a password on stdin, print its scrypt hash (cost 2^LN,\n"
		"                     default 15) for users.password_hash\n"
		"  routes             print every route the server answers and exit\n",
	.fields = portal_api_fields,
	.nfields = sizeof portal_api_fields / sizeof portal_api_fields[0],
	.settings_size = sizeof(struct portal_api_settings),
	.log_offset = offsetof(struct portal_api_settings, log),
	.reload = reload,
};

/* The TOTP sealing key: a file holding 64 hex digits (openssl rand -hex 32). */
static int load_totp_key(const char *path, unsigned char key[32])
{
	char hex[80] = "";
	auto_fclose FILE *f = fopen(path, "re");
	if (!f || !fgets(hex, sizeof hex, f)) {
		log_err("totp_key_unreadable", "file=%s", path);
		return -1;
	}
	hex[strcspn(hex, "\r\n")] = '\0';
	if (strlen(hex) != 64 || strspn(hex, "0123456789abcdefABCDEF") != 64) {
		log_err("totp_key_invalid", "file=%s reason=\"expected 64 hex digits\"", path);
		return -1;
	}
	for (int i = 0; i < 32; i++) {
		unsigned v;
		sscanf(hex + 2 * i, "%2x", &v);
		key[i] = (unsigned char)v;
	}
	OPENSSL_cleanse(hex, sizeof hex);
	return 0;
}

static int run_hash_password(int argc, char **argv)
{
	char line[PASSWORD_MAX_LEN + 2], out[PASSWORD_HASH_MAX];
	unsigned ln = argc > 0 ? (unsigned)atoi(argv[0]) : 15;
	if (!fgets(line, sizeof line, stdin)) {
		fprintf(stderr, "aegis-portal-api: no password on stdin\n");
		return 2;
	}
	line[strcspn(line, "\r\n")] = '\0';
	if (strlen(line) < PASSWORD_MIN_LEN) {
		fprintf(stderr, "aegis-portal-api: a password has at least %d characters\n",
			PASSWORD_MIN_LEN);
		return 2;
	}
	int rc = password_hash(line, ln, 8, 1, out);
	OPENSSL_cleanse(line, sizeof line);
	if (rc < 0) {
		fprintf(stderr, "aegis-portal-api: cannot hash (cost %u out of range %d..%d?)\n", ln,
			PASSWORD_LN_MIN, PASSWORD_LN_MAX);
		return 1;
	}
	printf("%s\n", out);
	return 0;
}

static int run_routes(void)
{
	for (size_t i = 0; i < portal_nroutes; i++)
		printf("%s %s\n", portal_routes[i].method, portal_routes[i].pattern);
	return 0;
}

/* Issues the first ministry_admin key, so the first administrator can do the rest through
 * the API. Refused while any ministry_admin key is live: later keys come from the API. */
static int run_bootstrap_key(const struct portal_api_settings *s, int argc, char **argv)
{
	char key[TOKEN_MAX], prefix[TOKEN_PREFIX_LEN + 1], hash[TOKEN_HASH_HEX], days[16];
	if (argc < 1 || argc > 2 || !*argv[0] || strlen(argv[0]) > 200) {
		fprintf(stderr, "usage: aegis-portal-api bootstrap-key NAME [DAYS]\n");
		return 2;
	}
	long d = argc == 2 ? strtol(argv[1], NULL, 10) : 30;
	if (d < 1 || d > 3650) {
		fprintf(stderr, "aegis-portal-api: DAYS is 1 to 3650\n");
		return 2;
	}
	snprintf(days, sizeof days, "%ld", d);
	auto_pqfinish PGconn *conn = pg_connect(s->database_dsn);
	if (!conn)
		return EXIT_FAILURE;
	if (token_new_api_key(key, prefix) < 0)
		return EXIT_FAILURE;
	token_hash_hex(key, hash);
	if (pg_command(conn, "BEGIN") < 0 ||
	    pg_command(conn, "LOCK TABLE api_keys IN SHARE ROW EXCLUSIVE MODE") < 0)
		return EXIT_FAILURE;
	auto_pqclear PGresult *live = pg_query(conn,
		"SELECT count(*) FROM api_keys WHERE role = 'ministry_admin' AND revoked_at IS NULL"
		" AND (expires_at IS NULL OR expires_at > now())");
	if (!live)
		return EXIT_FAILURE;
	if (strcmp(PQgetvalue(live, 0, 0), "0") != 0) {
		fprintf(stderr, "aegis-portal-api: a ministry_admin key is live; issue keys through "
				"the API (POST /v1/api-keys)\n");
		return EXIT_FAILURE;
	}
	auto_pqclear PGresult *k = pg_query(conn,
		"INSERT INTO api_keys (name, prefix, key_hash, role, expires_at)"
		" VALUES ($1, $2, $3, 'ministry_admin', now() + make_interval(days => $4::int))"
		" RETURNING id, json_build_object('id', id, 'name', name, 'prefix', prefix,"
		"   'role', role, 'expires_at', expires_at)::text",
		argv[0], prefix, hash, days);
	if (!k || pg_command(conn,
			     "INSERT INTO audit_log (actor_type, actor_name, action, target_type,"
			     " target_id, after) VALUES ('system', 'aegis-portal-api bootstrap-key',"
			     " 'api_key.create', 'api_key', $1, $2::jsonb)",
			     PQgetvalue(k, 0, 0), PQgetvalue(k, 0, 1)) < 0 ||
	    pg_command(conn, "COMMIT") < 0)
		return EXIT_FAILURE;
	printf("%s\n", key);
	OPENSSL_cleanse(key, sizeof key);
	return EXIT_SUCCESS;
}

static int run_service(struct daemon *d, const struct portal_api_settings *s)
{
	struct portal_config cfg = {
		.dsn = s->database_dsn,
		.pool_size = (unsigned)s->pool_size,
		.listen = s->http_listen,
		.allow_plain_non_loopback = s->allow_plain_non_loopback,
		.trust_forwarded_for = s->trust_forwarded_for,
		.tls_cert_file = s->tls_cert_file,
		.tls_key_file = s->tls_key_file,
		.threads = (unsigned)s->threads,
		.rate_per_address = (unsigned)s->rate_addr,
		.burst_per_address = (unsigned)s->burst_addr,
		.rate_per_principal = (unsigned)s->rate_principal,
		.burst_per_principal = (unsigned)s->burst_principal,
		.max_body = (size_t)s->max_body,
		.max_import_body = (size_t)s->max_import_body,
		.session_seconds = (unsigned)s->session_seconds,
		.lockout_failures = (unsigned)s->lockout_failures,
		.lockout_seconds = (unsigned)s->lockout_seconds,
		.scrypt_ln = (unsigned)s->scrypt_ln,
		.totp_key_file = s->totp_key_file,
	};
	struct portal p = { 0 };
	int rc = EXIT_FAILURE;

	if (cfg.totp_key_file) {
		if (load_totp_key(cfg.totp_key_file, cfg.totp_key) < 0)
			return EXIT_FAILURE;
		cfg.totp_key_loaded = true;
	}
	if (portal_start(&p, &cfg) == 0)
		rc = daemon_run(d) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	portal_stop(&p);
	OPENSSL_cleanse(cfg.totp_key, sizeof cfg.totp_key);
	return rc;
}

int main(int argc, char **argv)
{
	struct daemon d;
	int status;

	if (!daemon_init(&d, &portal_api_spec, argc, argv, &status))
		return status;
	const struct portal_api_settings *s = d.settings;
	if (!d.command)
		status = run_service(&d, s);
	else if (strcmp(d.command, "bootstrap-key") == 0)
		status = run_bootstrap_key(s, d.command_argc, d.command_argv);
	else if (strcmp(d.command, "hash-password") == 0)
		status = run_hash_password(d.command_argc, d.command_argv);
	else if (strcmp(d.command, "routes") == 0)
		status = run_routes();
	else {
		fprintf(stderr, "aegis-portal-api: unknown command '%s' (try --help)\n", d.command);
		status = 2;
	}
	daemon_fini(&d);
	return status;
}
