/* stats.h -- logpipe's counters and state, and the Prometheus endpoint that shows them
 * (GET /metrics, text format 0.0.4, libmicrohttpd on its own thread).
 *
 * The ingest thread updates the counters with relaxed atomics; the HTTP thread only reads
 * them. stats_serve() returns an object the caller frees with stats_stop().
 */
#ifndef AEGIS_LOGPIPE_STATS_H
#define AEGIS_LOGPIPE_STATS_H

#include <stdatomic.h>
#include <stdint.h>

/* Why a record went to the dead-letter topic (the reason label and header). */
enum stats_dead_reason { DEAD_DECODE, DEAD_TEXT, DEAD_DATABASE, DEAD_REASONS };

/* Upper bounds of the batch-latency histogram, seconds. */
#define STATS_BUCKETS 9

struct stats {
	atomic_uint_fast64_t consumed, inserted, duplicates, batches;
	atomic_uint_fast64_t dead[DEAD_REASONS];
	atomic_uint_fast64_t commit_failures, db_failures;
	atomic_uint_fast64_t batch_us_sum, batch_le[STATS_BUCKETS + 1];
	atomic_uint_fast64_t partitions_created, retention_runs, retention_dropped,
		retention_deleted;
	atomic_int_fast64_t lag;                /* -1 while unknown */
	atomic_int db_up, kafka_up, paused, assigned;
};

struct stats_server;

extern const char *const stats_dead_reason_names[DEAD_REASONS];

void stats_init(struct stats *st);
void stats_batch_done(struct stats *st, uint64_t micros);

/* Serves st on listen (ADDRESS:PORT) until stats_stop(). NULL after logging on failure. */
struct stats_server *stats_serve(struct stats *st, const char *listen)
	__attribute__((warn_unused_result));
void stats_stop(struct stats_server *s);

#endif
