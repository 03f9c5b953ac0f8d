/* querylog_kafka.h -- the query-log sink that produces records to Kafka, spooling to disk.
 *
 * Runs on the querylog sink thread: encodes each record (JSON, schema v1), produces it with an
 * idempotent acks=all librdkafka producer keyed by tenant, and serves delivery reports there.
 * While the broker is unreachable or slow, and for records whose delivery failed after
 * librdkafka's retries, records go to a bounded on-disk spool (spool.h) that is replayed in
 * order once the broker is back (docs/querylog.md, "Kafka sink"). The sink owns its producer
 * and spool; the querylog owns the sink once handed over.
 */
#ifndef AEGIS_QUERYLOG_KAFKA_H
#define AEGIS_QUERYLOG_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct querylog_sink_ops;

struct querylog_kafka_config {
	const char *brokers;               /* bootstrap.servers: "host:port[,host:port...]" */
	const char *topic;
	const char *spool_dir;
	uint64_t spool_max_bytes;
	char *const *properties;           /* extra librdkafka settings, "key=value" */
	size_t nproperties;
};

/* Counters since start; each is read atomically, the set is not a snapshot. */
struct querylog_kafka_stats {
	uint64_t produced;             /* messages handed to librdkafka, new and replayed */
	uint64_t delivered;            /* confirmed by the broker, replayed ones included */
	uint64_t spooled;              /* records written to the spool */
	uint64_t replayed;             /* spooled records confirmed by the broker */
	uint64_t dropped_spool_full;   /* lost: the spool was at its bound */
	uint64_t dropped_spool_error;  /* lost: the spool could not be written */
	uint64_t dropped_rejected;     /* lost: the broker refused the message itself */
	uint64_t dropped_invalid;      /* lost: the encoder refused the record */
	uint64_t spool_bytes;          /* gauge */
	uint64_t spool_corrupt;        /* corrupt spool stretches skipped */
	uint64_t outq;                 /* gauge: messages librdkafka holds */
	uint64_t latency_us_sum, latency_count;  /* produce to delivery report, delivered ones */
	bool broker_up;                /* gauge */
};

/* Creates the producer and opens the spool; fills *ops and *ctx. 0 or a negative errno
 * (logged). The broker need not be reachable: records then go to the spool. */
int querylog_kafka_sink_open(const struct querylog_kafka_config *cfg,
			     struct querylog_sink_ops *ops, void **ctx)
	__attribute__((warn_unused_result));

/* Any thread, while the sink exists. */
void querylog_kafka_get_stats(void *ctx, struct querylog_kafka_stats *st);

/* Config check for one "key=value" librdkafka property (querylog.kafka.properties). */
int querylog_kafka_check_property(const char *kv, char *err, size_t errlen);

#endif
