/* main.c -- aegis-logpipe: moves query logs from Kafka into PostgreSQL. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"

struct logpipe_settings {
	struct daemon_log_settings log;
};

static const struct config_field logpipe_fields[] = {
	DAEMON_LOG_FIELDS(struct logpipe_settings, log),
};

static const struct daemon_spec logpipe_spec = {
	.name = "aegis-logpipe",
	.default_config = "/etc/aegis/logpipe.conf",
	.fields = logpipe_fields,
	.nfields = sizeof logpipe_fields / sizeof logpipe_fields[0],
	.settings_size = sizeof(struct logpipe_settings),
	.log_offset = offsetof(struct logpipe_settings, log),
};

int main(int argc, char **argv)
{
	struct daemon d;
	int status;

	if (!daemon_init(&d, &logpipe_spec, argc, argv, &status))
		return status;
	if (d.command) {
		fprintf(stderr, "aegis-logpipe: unknown command '%s' (try --help)\n", d.command);
		status = 2;
	} else
		status = daemon_run(&d) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	daemon_fini(&d);
	return status;
}
