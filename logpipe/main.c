/* main.c -- aegis-logpipe: moves query logs from Kafka into PostgreSQL. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "hostport.h"
#include "ingest.h"
#include "stats.h"

struct logpipe_settings {
	struct daemon_log_settings log;
	char *database_dsn;
	char *brokers, *topic, *group_id, *dead_letter_topic;
	long long session_timeout_ms;
	long long batch_records, batch_ms;
	bool maintenance;
	long long retention_hour, retention_days;
	char *metrics_listen;
};

#define FIELD(name) offsetof(struct logpipe_settings, name)

static const struct config_field logpipe_fields[] = {
	DAEMON_LOG_FIELDS(struct logpipe_settings, log),
	{ .path = "database.dsn", .type = CONFIG_STRING, .offset = FIELD(database_dsn),
	  .default_string = "dbname=aegis" },
	{ .path = "kafka.brokers", .type = CONFIG_STRING, .offset = FIELD(brokers),
	  .default_string = "localhost:9092" },
	{ .path = "kafka.topic", .type = CONFIG_STRING, .offset = FIELD(topic),
	  .default_string = "aegis.querylog" },
	{ .path = "kafka.group_id", .type = CONFIG_STRING, .offset = FIELD(group_id),
	  .default_string = "aegis-logpipe" },
	{ .path = "kafka.dead_letter_topic", .type = CONFIG_STRING,
	  .offset = FIELD(dead_letter_topic), .default_string = "aegis.querylog.dead" },
	{ .path = "kafka.session_timeout_ms", .type = CONFIG_INT,
	  .offset = FIELD(session_timeout_ms), .default_int = 10000, .min = 3000,
	  .max = 300000 },
	{ .path = "batch.records", .type = CONFIG_INT, .offset = FIELD(batch_records),
	  .default_int = 5000, .min = 1, .max = 1000000 },
	{ .path = "batch.ms", .type = CONFIG_INT, .offset = FIELD(batch_ms), .default_int = 200,
	  .min = 1, .max = 60000 },
	{ .path = "maintenance.enabled", .type = CONFIG_BOOL, .offset = FIELD(maintenance),
	  .default_int = 1 },
	{ .path = "maintenance.retention_hour", .type = CONFIG_INT,
	  .offset = FIELD(retention_hour), .default_int = 3, .min = -1, .max = 23 },
	{ .path = "maintenance.retention_default_days", .type = CONFIG_INT,
	  .offset = FIELD(retention_days), .default_int = 90, .min = 1, .max = 3650 },
	{ .path = "metrics.listen", .type = CONFIG_STRING, .offset = FIELD(metrics_listen),
	  .default_string = "127.0.0.1:9106", .check = hostport_check },
};

static const struct daemon_spec logpipe_spec = {
	.name = "aegis-logpipe",
	.default_config = "/etc/aegis/logpipe.conf",
	.fields = logpipe_fields,
	.nfields = sizeof logpipe_fields / sizeof logpipe_fields[0],
	.settings_size = sizeof(struct logpipe_settings),
	.log_offset = offsetof(struct logpipe_settings, log),
};

static int run_service(struct daemon *d, const struct logpipe_settings *s)
{
	static struct stats st;
	stats_init(&st);
	struct stats_server *http = stats_serve(&st, s->metrics_listen);
	if (!http)
		return EXIT_FAILURE;
	struct ingest_config ic = {
		.dsn = s->database_dsn, .brokers = s->brokers, .topic = s->topic,
		.group_id = s->group_id, .dead_letter_topic = s->dead_letter_topic,
		.batch_records = (unsigned)s->batch_records, .batch_ms = (unsigned)s->batch_ms,
		.session_timeout_ms = (unsigned)s->session_timeout_ms,
		.maintenance = s->maintenance, .retention_hour = (int)s->retention_hour,
		.retention_days = (int)s->retention_days,
	};
	struct ingest *in = ingest_start(&ic, &st);
	int status = EXIT_FAILURE;
	if (in)
		status = daemon_run(d) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
	ingest_stop(in);
	stats_stop(http);
	return status;
}

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
		status = run_service(&d, d.settings);
	daemon_fini(&d);
	return status;
}
