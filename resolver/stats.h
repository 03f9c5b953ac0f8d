/* stats.h -- per-worker counters, written by their worker alone and summed for metrics.
 *
 * One writer per counter means no atomic read-modify-write on the hot path: stat_inc() is
 * a relaxed load and store; the metrics thread reads with relaxed loads and may see a
 * value a few queries old, which Prometheus does not mind.
 */
#ifndef AEGIS_STATS_H
#define AEGIS_STATS_H

#include <stdatomic.h>
#include <stdint.h>

enum stat_transport { STAT_UDP, STAT_TCP, STAT_TRANSPORTS };

enum stat_action {
	STAT_ALLOW, STAT_BLOCK, STAT_MONITOR, STAT_REFUSED, STAT_RATELIMITED, STAT_LOCAL,
	STAT_ERROR, STAT_ACTIONS
};

#define STAT_RCODES 6             /* NOERROR..REFUSED; others are counted as "other" */
#define STAT_LATENCY_BUCKETS 12   /* upstream latency histogram, see stats_latency_bounds */

typedef _Atomic uint64_t stat_t;

struct worker_stats {
	stat_t queries[STAT_TRANSPORTS];
	stat_t actions[STAT_ACTIONS];
	stat_t rcodes[STAT_RCODES + 1];
	stat_t unknown_client;      /* queries from no tenant's network */
	stat_t malformed;           /* FORMERR / NOTIMP / BADVERS answers */
	stat_t dropped;             /* not answered: too short, responses, rate-limit drops */
	stat_t ratelimit_slipped;   /* rate limited, answered TC=1 */
	stat_t truncated;           /* UDP answers sent with TC=1 because too large */
	stat_t cache_hits, cache_misses, stale_served;
	stat_t upstream_queries, upstream_timeouts, upstream_errors, upstream_tcp_retries;
	stat_t upstream_mismatched; /* answers with a wrong ID, question or source, ignored */
	stat_t servfail_sent;
	stat_t tcp_accepted, tcp_refused, tcp_closed_idle, tcp_closed_bad;
	stat_t proxy_refused;       /* PROXY headers from peers not allowed, or malformed */
	stat_t latency[STAT_LATENCY_BUCKETS + 1];
	stat_t latency_sum_us;
};

static inline void stat_add(stat_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline void stat_inc(stat_t *c)
{
	stat_add(c, 1);
}

static inline uint64_t stat_read(const stat_t *c)
{
	return atomic_load_explicit((stat_t *)c, memory_order_relaxed);
}

/* Upper bounds in microseconds of the latency buckets (the last bucket is +Inf). */
extern const uint32_t stats_latency_bounds[STAT_LATENCY_BUCKETS];

static inline void stat_latency(struct worker_stats *s, uint64_t us)
{
	int b = 0;
	while (b < STAT_LATENCY_BUCKETS && us > stats_latency_bounds[b])
		b++;
	stat_inc(&s->latency[b]);
	stat_add(&s->latency_sum_us, us);
}

#endif
