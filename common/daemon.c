/* daemon.c -- command line, configuration and signal handling common to all daemons. */
#include "daemon.h"

#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#ifndef AEGIS_VERSION
#define AEGIS_VERSION "0.0.0"
#endif

int daemon_check_log_level(const char *value, char *err, size_t errlen)
{
	if (log_level_parse(value) >= 0)
		return 0;
	snprintf(err, errlen, "'%s' is not one of error, warn, info, debug", value);
	return -1;
}

int daemon_check_log_target(const char *value, char *err, size_t errlen)
{
	if (log_target_parse(value) >= 0)
		return 0;
	snprintf(err, errlen, "'%s' is not one of stderr, journald", value);
	return -1;
}

static void apply_log_settings(const struct daemon *d, const void *settings)
{
	const struct daemon_log_settings *ls =
		(const struct daemon_log_settings *)((const char *)settings + d->spec->log_offset);
	log_set_level(log_level_parse(ls->level));
	log_set_target(log_target_parse(ls->target));
}

static void *load_settings(const struct daemon *d, char *err, size_t errlen)
{
	void *s = calloc(1, d->spec->settings_size);
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (config_load(d->config_path, d->spec->fields, d->spec->nfields, s, err, errlen) < 0) {
		free(s);
		return NULL;
	}
	return s;
}

static void free_settings(const struct daemon *d, void *s)
{
	if (!s)
		return;
	config_free(d->spec->fields, d->spec->nfields, s);
	free(s);
}

static void usage(const struct daemon_spec *spec, FILE *out)
{
	fprintf(out,
		"usage: %s [-c FILE] [--check-config] [COMMAND]\n"
		"  -c, --config FILE  configuration file (default %s)\n"
		"      --check-config validate the configuration and exit\n"
		"  -h, --help         show this help\n"
		"  -V, --version      show the version\n",
		spec->name, spec->default_config);
	if (spec->commands_help)
		fprintf(out, "commands:\n%s", spec->commands_help);
}

bool daemon_init(struct daemon *d, const struct daemon_spec *spec, int argc, char **argv,
		 int *exit_status)
{
	static const struct option options[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "check-config", no_argument, NULL, 'k' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	bool check_only = false;
	char err[512];
	int opt;

	memset(d, 0, sizeof *d);
	d->spec = spec;
	d->config_path = spec->default_config;
	log_init(spec->name);

	/* '+' stops at the first non-option so a command keeps its own arguments. */
	optind = 1;
	while ((opt = getopt_long(argc, argv, "+c:hV", options, NULL)) != -1) {
		switch (opt) {
		case 'c':
			d->config_path = optarg;
			break;
		case 'k':
			check_only = true;
			break;
		case 'h':
			usage(spec, stdout);
			*exit_status = EXIT_SUCCESS;
			return false;
		case 'V':
			printf("%s %s\n", spec->name, AEGIS_VERSION);
			*exit_status = EXIT_SUCCESS;
			return false;
		default:
			usage(spec, stderr);
			*exit_status = 2;
			return false;
		}
	}
	if (optind < argc) {
		d->command = argv[optind];
		d->command_argc = argc - optind - 1;
		d->command_argv = argv + optind + 1;
	}

	for (const char *const *c = spec->standalone_commands; d->command && c && *c; c++) {
		if (strcmp(*c, d->command) == 0) {
			*exit_status = EXIT_SUCCESS;
			return true;
		}
	}

	d->settings = load_settings(d, err, sizeof err);
	if (!d->settings) {
		fprintf(stderr, "%s: invalid configuration: %s\n", spec->name, err);
		*exit_status = EXIT_FAILURE;
		return false;
	}
	if (check_only) {
		printf("%s: configuration %s is valid\n", spec->name, d->config_path);
		daemon_fini(d);
		*exit_status = EXIT_SUCCESS;
		return false;
	}
	apply_log_settings(d, d->settings);
	d->base = event_base_new();
	if (!d->base) {
		fprintf(stderr, "%s: cannot create the event loop\n", spec->name);
		daemon_fini(d);
		*exit_status = EXIT_FAILURE;
		return false;
	}
	*exit_status = EXIT_SUCCESS;
	return true;
}

static void on_stop_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	(void)what;
	log_info("stopping", "signal=%s", sig == SIGINT ? "SIGINT" : "SIGTERM");
	event_base_loopexit(d->base, NULL);
}

static void on_reload_signal(evutil_socket_t sig, short what, void *arg)
{
	struct daemon *d = arg;
	char err[512], quoted[600];
	(void)sig;
	(void)what;

	void *fresh = load_settings(d, err, sizeof err);
	if (!fresh) {
		log_err("reload_refused", "config=%s error=%s", d->config_path,
			log_quote(quoted, sizeof quoted, err));
		return;
	}
	if (d->spec->reload && d->spec->reload(d, d->settings, fresh) < 0) {
		log_err("reload_refused", "config=%s", d->config_path);
		free_settings(d, fresh);
		return;
	}
	apply_log_settings(d, fresh);
	free_settings(d, d->settings);
	d->settings = fresh;
	log_info("reloaded", "config=%s", d->config_path);
}

int daemon_run(struct daemon *d)
{
	signal(SIGPIPE, SIG_IGN);
	struct event *term = evsignal_new(d->base, SIGTERM, on_stop_signal, d);
	struct event *intr = evsignal_new(d->base, SIGINT, on_stop_signal, d);
	struct event *hup = evsignal_new(d->base, SIGHUP, on_reload_signal, d);
	int rc = -1;
	if (term && intr && hup && evsignal_add(term, NULL) == 0 && evsignal_add(intr, NULL) == 0 &&
	    evsignal_add(hup, NULL) == 0) {
		log_info("running", "config=%s", d->config_path);
		rc = event_base_dispatch(d->base) < 0 ? -1 : 0;
	} else {
		log_err("signal_setup_failed");
	}
	if (term)
		event_free(term);
	if (intr)
		event_free(intr);
	if (hup)
		event_free(hup);
	log_info("stopped");
	return rc;
}

void daemon_stop(struct daemon *d)
{
	if (d->base)
		event_base_loopexit(d->base, NULL);
}

void daemon_fini(struct daemon *d)
{
	free_settings(d, d->settings);
	d->settings = NULL;
	if (d->base)
		event_base_free(d->base);
	d->base = NULL;
}
