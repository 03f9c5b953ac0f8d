/* main.c -- aegis-portal-api: the REST API for administrators and SOC analysts. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"

struct portal_api_settings {
	struct daemon_log_settings log;
};

static const struct config_field portal_api_fields[] = {
	DAEMON_LOG_FIELDS(struct portal_api_settings, log),
};

static const struct daemon_spec portal_api_spec = {
	.name = "aegis-portal-api",
	.default_config = "/etc/aegis/portal-api.conf",
	.fields = portal_api_fields,
	.nfields = sizeof portal_api_fields / sizeof portal_api_fields[0],
	.settings_size = sizeof(struct portal_api_settings),
	.log_offset = offsetof(struct portal_api_settings, log),
};

int main(int argc, char **argv)
{
	struct daemon d;
	int status;

	if (!daemon_init(&d, &portal_api_spec, argc, argv, &status))
		return status;
	if (d.command) {
		fprintf(stderr, "aegis-portal-api: unknown command '%s' (try --help)\n", d.command);
		status = 2;
	} else
		status = daemon_run(&d) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	daemon_fini(&d);
	return status;
}
