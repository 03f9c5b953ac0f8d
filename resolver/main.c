/* main.c -- aegis-resolver: the tenant-aware, policy-enforcing caching DNS resolver node. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon.h"

struct resolver_settings {
	struct daemon_log_settings log;
};

static const struct config_field resolver_fields[] = {
	DAEMON_LOG_FIELDS(struct resolver_settings, log),
};

static const struct daemon_spec resolver_spec = {
	.name = "aegis-resolver",
	.default_config = "/etc/aegis/resolver.conf",
	.fields = resolver_fields,
	.nfields = sizeof resolver_fields / sizeof resolver_fields[0],
	.settings_size = sizeof(struct resolver_settings),
	.log_offset = offsetof(struct resolver_settings, log),
};

int main(int argc, char **argv)
{
	struct daemon d;
	int status;

	if (!daemon_init(&d, &resolver_spec, argc, argv, &status))
		return status;
	if (d.command) {
		fprintf(stderr, "aegis-resolver: unknown command '%s' (try --help)\n", d.command);
		status = 2;
	} else
		status = daemon_run(&d) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	daemon_fini(&d);
	return status;
}
