/* ingest.h -- the consumer thread of aegis-logpipe: Kafka records in, rows in PostgreSQL,
 * offsets committed only after the rows are.
 *
 * One thread runs a librdkafka high-level consumer in a consumer group, gathers records into
 * batches (by count and age), decodes each with qlog_decode_json(), stores a batch in one
 * transaction (store.h), sends what cannot be stored to the dead-letter topic and waits for
 * Kafka to confirm it, and only then commits the batch's offsets. It also creates partitions
 * ahead and applies retention. The ingest object owns its Kafka handles, store and thread.
 */
#ifndef AEGIS_LOGPIPE_INGEST_H
#define AEGIS_LOGPIPE_INGEST_H

#include <stdbool.h>

struct stats;
struct ingest;

struct ingest_config {
	const char *dsn;
	const char *brokers;
	const char *topic;
	const char *group_id;
	const char *dead_letter_topic;
	unsigned batch_records;       /* a batch is stored when it holds this many records */
	unsigned batch_ms;            /* ... or its oldest record has waited this long */
	unsigned session_timeout_ms;  /* Kafka group session: how soon a dead member's
					 partitions move */
	bool maintenance;             /* create partitions ahead, apply retention */
	int retention_hour;           /* UTC hour of the daily retention run; -1: none */
	int retention_days;           /* for rows without a tenant (default_days) */
};

/* Creates the consumer and dead-letter producer, subscribes and starts the thread. NULL
 * after logging when the configuration is refused. st must outlive the ingest. */
struct ingest *ingest_start(const struct ingest_config *cfg, struct stats *st)
	__attribute__((warn_unused_result));

/* Stores and commits the batch in hand if it can, leaves the group and joins the thread. */
void ingest_stop(struct ingest *in);

#endif
