/* daemon.h -- the life of an Aegis daemon: command line, configuration, signals.
 *
 * daemon_init() parses the common command line (-c FILE, --check-config, --help, --version),
 * loads and validates the configuration, and sets up logging. daemon_run() drives the
 * daemon's libevent loop until SIGTERM or SIGINT; SIGHUP re-reads the configuration and, only
 * if it is valid, hands it to the daemon's reload hook (an invalid file is logged and the
 * running settings stay). The struct daemon owns its settings and event base; daemon_fini()
 * releases them.
 */
#ifndef AEGIS_DAEMON_H
#define AEGIS_DAEMON_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct event_base;
struct daemon;

/* Every daemon's settings struct embeds this and lists DAEMON_LOG_FIELDS in its schema. */
struct daemon_log_settings {
	char *level;
	char *target;
};

int daemon_check_log_level(const char *value, char *err, size_t errlen);
int daemon_check_log_target(const char *value, char *err, size_t errlen);

#define DAEMON_LOG_FIELDS(settings_type, member)                                                   \
	{ .path = "log.level", .type = CONFIG_STRING,                                     \
	  .offset = offsetof(settings_type, member.level), .default_string = "info",              \
	  .check = daemon_check_log_level },                                              \
	{ .path = "log.target", .type = CONFIG_STRING,                                    \
	  .offset = offsetof(settings_type, member.target), .default_string = "stderr",           \
	  .check = daemon_check_log_target }

struct daemon_spec {
	const char *name;                  /* "aegis-tenantd" */
	const char *default_config;        /* used when -c is not given */
	const char *commands_help;         /* extra usage lines for subcommands, or NULL */
	/* Commands that work without a configuration file (offline tools); for them
	 * daemon_init() loads none and d->settings stays NULL. NULL-terminated, may be NULL. */
	const char *const *standalone_commands;
	const struct config_field *fields;
	size_t nfields;
	size_t settings_size;
	size_t log_offset;                 /* offsetof(settings, struct daemon_log_settings) */
	/* Called on SIGHUP with validated new settings; the daemon takes what it can apply
	 * live. Returns 0, or negative to keep the old settings. May be NULL. */
	int (*reload)(struct daemon *d, const void *old_settings, const void *new_settings);
};

struct daemon {
	const struct daemon_spec *spec;
	const char *config_path;
	void *settings;                    /* current settings, owned */
	struct event_base *base;
	const char *command;               /* first non-option argument, or NULL */
	int command_argc;                  /* arguments after the command */
	char **command_argv;
};

/* Returns true when the daemon should go on (settings loaded, logging set, event base made).
 * Returns false after printing help, the version, the result of --check-config or an error;
 * the caller then exits with *exit_status. */
bool daemon_init(struct daemon *d, const struct daemon_spec *spec, int argc, char **argv,
		 int *exit_status) __attribute__((warn_unused_result));

/* Runs the event loop with the signal handlers until asked to stop. Returns 0 or negative. */
int daemon_run(struct daemon *d);

/* Asks the loop to stop, as SIGTERM would. */
void daemon_stop(struct daemon *d);

void daemon_fini(struct daemon *d);

#endif
