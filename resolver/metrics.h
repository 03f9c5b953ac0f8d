/* metrics.h -- the node's Prometheus endpoint (GET /metrics, text format 0.0.4).
 *
 * Served from the main thread's event loop, so scraping never touches a worker: it sums the
 * workers' counters with relaxed loads. The metrics object is owned by the caller.
 */
#ifndef AEGIS_METRICS_H
#define AEGIS_METRICS_H

#include "server.h"

struct event_base;
struct metrics;

struct metrics *metrics_new(struct event_base *base, struct resolver *r,
			    const struct sockaddr_any *listen);
void metrics_free(struct metrics *m);

/* Adds the Kafka sink's counters (querylog_kafka.h) to the page. The sink must outlive the
 * serving of requests. */
void metrics_add_querylog_kafka(struct metrics *m, void *kafka_sink);

#endif
