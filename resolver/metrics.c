/* metrics.c -- Prometheus text exposition of the resolver's counters. */
#include "metrics.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "log.h"
#include "querylog.h"
#include "querylog_kafka.h"
#include "tenantstats.h"
#include "upstream.h"

struct metrics {
	struct resolver *r;
	struct evhttp *http;
	void *kafka;          /* the Kafka query-log sink, or NULL */
};

static const char *const transport_names[STAT_TRANSPORTS] = { "udp", "tcp" };
static const char *const action_names[STAT_ACTIONS] = {
	"allow", "block", "monitor", "refused", "ratelimited", "local", "error",
};
static const char *const rcode_names[STAT_RCODES + 1] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other",
};

/* Sum of one counter over every worker. */
#define SUM(r, field)                                                        \
	({                                                                   \
		uint64_t _sum = 0;                                           \
		for (unsigned _i = 0; _i < (r)->nworkers; _i++)              \
			_sum += stat_read(&(r)->workers[_i]->stats.field);   \
		_sum;                                                        \
	})

static void counter(struct evbuffer *b, const char *name, const char *help, uint64_t v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name,
			    name, (unsigned long long)v);
}

static void gauge(struct evbuffer *b, const char *name, const char *help, double v)
{
	evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name,
			    v);
}

struct tenant_row {
	uint8_t id[16];
	bool other;
	uint64_t counts[TENANTSTATS];
};

struct tenant_rows {
	struct tenant_row *rows;
	size_t n, cap;
};

static void collect_tenant(void *arg, const uint8_t *id, const uint64_t counts[TENANTSTATS])
{
	struct tenant_rows *t = arg;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 1024;
		struct tenant_row *rows = realloc(t->rows, cap * sizeof *rows);
		if (!rows)
			return;
		t->rows = rows;
		t->cap = cap;
	}
	struct tenant_row *r = &t->rows[t->n++];
	r->other = id == NULL;
	if (id)
		memcpy(r->id, id, 16);
	else
		memset(r->id, 0xFF, 16);
	memcpy(r->counts, counts, sizeof r->counts);
}

static int row_cmp(const void *a, const void *b)
{
	return memcmp(((const struct tenant_row *)a)->id, ((const struct tenant_row *)b)->id, 16);
}

/* Workers count each tenant separately; rows are merged by id here, at scrape time. */
static void render_tenants(struct resolver *r, struct evbuffer *b)
{
	static const char *const names[TENANTSTATS] = {
		"aegis_tenant_queries_total", "aegis_tenant_blocked_total",
		"aegis_tenant_monitored_total",
	};
	static const char *const help[TENANTSTATS] = {
		"Queries per tenant.", "Blocked queries per tenant.",
		"Queries that matched a monitored category, per tenant.",
	};
	struct tenant_rows t = { 0 };
	for (unsigned i = 0; i < r->nworkers; i++)
		tenantstats_each(r->workers[i]->tenants, collect_tenant, &t);
	if (t.n)  /* t.rows is NULL before the first query: qsort must not see it */
		qsort(t.rows, t.n, sizeof *t.rows, row_cmp);
	size_t merged = 0;
	for (size_t i = 0; i < t.n; i++) {
		if (merged && memcmp(t.rows[merged - 1].id, t.rows[i].id, 16) == 0) {
			for (int k = 0; k < TENANTSTATS; k++)
				t.rows[merged - 1].counts[k] += t.rows[i].counts[k];
		} else {
			t.rows[merged++] = t.rows[i];
		}
	}
	for (int k = 0; k < TENANTSTATS; k++) {
		evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s counter\n", names[k], help[k],
				    names[k]);
		for (size_t i = 0; i < merged; i++) {
			const uint8_t *u = t.rows[i].id;
			if (t.rows[i].other)
				evbuffer_add_printf(b, "%s{tenant=\"other\"} %llu\n", names[k],
						    (unsigned long long)t.rows[i].counts[k]);
			else
				evbuffer_add_printf(
					b,
					"%s{tenant=\"%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
					"%02x%02x%02x%02x%02x%02x\"} %llu\n",
					names[k], u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8],
					u[9], u[10], u[11], u[12], u[13], u[14], u[15],
					(unsigned long long)t.rows[i].counts[k]);
		}
	}
	free(t.rows);
}

/* With the Kafka sink, the sink's losses are told by reason: spool_full apart, the others
 * (spool write errors, records the broker or the encoder refused) as sink_error. Their sum is
 * what the querylog counts as lost by the sink. */
static void render_querylog(struct metrics *m, struct evbuffer *b)
{
	struct querylog_stats qs;
	struct querylog_kafka_stats ks;
	uint64_t sink_error, spool_full = 0;

	querylog_get_stats(m->r->querylog, &qs);
	sink_error = qs.dropped_sink_error;
	if (m->kafka) {
		querylog_kafka_get_stats(m->kafka, &ks);
		sink_error = ks.dropped_spool_error + ks.dropped_rejected + ks.dropped_invalid;
		spool_full = ks.dropped_spool_full;
	}
	counter(b, "aegis_querylog_written_total", "Query-log records accepted by the sink.",
		qs.written);
	evbuffer_add_printf(b, "# HELP aegis_querylog_dropped_total Query-log records "
			       "dropped, by reason.\n# TYPE aegis_querylog_dropped_total "
			       "counter\n"
			       "aegis_querylog_dropped_total{reason=\"queue_full\"} %llu\n"
			       "aegis_querylog_dropped_total{reason=\"sink_error\"} %llu\n",
			    (unsigned long long)qs.dropped_queue_full,
			    (unsigned long long)sink_error);
	if (!m->kafka)
		return;
	evbuffer_add_printf(b, "aegis_querylog_dropped_total{reason=\"spool_full\"} %llu\n",
			    (unsigned long long)spool_full);
	counter(b, "aegis_querylog_kafka_produced_total", "Messages handed to the Kafka "
		"producer, new and replayed.", ks.produced);
	counter(b, "aegis_querylog_kafka_delivered_total", "Messages the broker confirmed.",
		ks.delivered);
	counter(b, "aegis_querylog_spooled_total", "Records written to the on-disk spool.",
		ks.spooled);
	counter(b, "aegis_querylog_replayed_total", "Spooled records the broker confirmed.",
		ks.replayed);
	counter(b, "aegis_querylog_spool_corrupt_total", "Corrupt or torn spool stretches "
		"skipped.", ks.spool_corrupt);
	gauge(b, "aegis_querylog_spool_bytes", "Bytes of spool segment files.",
	      (double)ks.spool_bytes);
	gauge(b, "aegis_querylog_kafka_queued", "Messages the producer holds, not yet "
	      "confirmed.", (double)ks.outq);
	gauge(b, "aegis_querylog_kafka_broker_up", "0 after librdkafka reported every broker "
	      "down, until the next delivery.", ks.broker_up);
	evbuffer_add_printf(b, "# HELP aegis_querylog_kafka_delivery_seconds From produce to "
			       "delivery report, delivered messages.\n"
			       "# TYPE aegis_querylog_kafka_delivery_seconds summary\n"
			       "aegis_querylog_kafka_delivery_seconds_sum %g\n"
			       "aegis_querylog_kafka_delivery_seconds_count %llu\n",
			    ks.latency_us_sum / 1e6, (unsigned long long)ks.latency_count);
}

static void render(struct metrics *m, struct evbuffer *b)
{
	struct resolver *r = m->r;

	evbuffer_add_printf(b, "# HELP aegis_queries_total Queries received.\n"
			       "# TYPE aegis_queries_total counter\n");
	for (int t = 0; t < STAT_TRANSPORTS; t++)
		evbuffer_add_printf(b, "aegis_queries_total{transport=\"%s\"} %llu\n",
				    transport_names[t], (unsigned long long)SUM(r, queries[t]));
	evbuffer_add_printf(b, "# HELP aegis_answers_total Queries by outcome.\n"
			       "# TYPE aegis_answers_total counter\n");
	for (int a = 0; a < STAT_ACTIONS; a++)
		evbuffer_add_printf(b, "aegis_answers_total{action=\"%s\"} %llu\n", action_names[a],
				    (unsigned long long)SUM(r, actions[a]));
	evbuffer_add_printf(b, "# HELP aegis_rcodes_total Answers by response code.\n"
			       "# TYPE aegis_rcodes_total counter\n");
	for (int c = 0; c <= STAT_RCODES; c++)
		evbuffer_add_printf(b, "aegis_rcodes_total{rcode=\"%s\"} %llu\n", rcode_names[c],
				    (unsigned long long)SUM(r, rcodes[c]));

	counter(b, "aegis_unknown_client_queries_total",
		"Queries from addresses in no tenant's network.", SUM(r, unknown_client));
	counter(b, "aegis_malformed_queries_total", "Queries answered FORMERR, NOTIMP or BADVERS.",
		SUM(r, malformed));
	counter(b, "aegis_dropped_total", "Packets not answered (malformed beyond reply, "
		"responses, rate-limit drops, send failures).", SUM(r, dropped));
	counter(b, "aegis_ratelimit_slipped_total", "Rate-limited queries answered with TC=1.",
		SUM(r, ratelimit_slipped));
	counter(b, "aegis_truncated_total", "UDP answers truncated (TC=1) for size.",
		SUM(r, truncated));
	counter(b, "aegis_servfail_total", "SERVFAIL answers after upstream failure.",
		SUM(r, servfail_sent));
	counter(b, "aegis_stale_answers_total", "Expired answers served because no upstream "
		"answered (RFC 8767).", SUM(r, stale_served));
	counter(b, "aegis_tcp_connections_total", "TCP connections accepted.",
		SUM(r, tcp_accepted));
	counter(b, "aegis_tcp_refused_total", "TCP connections refused at the limit.",
		SUM(r, tcp_refused));
	counter(b, "aegis_tcp_closed_idle_total", "TCP connections closed idle or too slow.",
		SUM(r, tcp_closed_idle));
	counter(b, "aegis_proxy_refused_total", "Malformed or missing PROXY v2 headers.",
		SUM(r, proxy_refused));

	struct cache_stats cs;
	cache_get_stats(r->cache, &cs);
	counter(b, "aegis_cache_hits_total", "Answers served from the cache.", cs.hits);
	counter(b, "aegis_cache_misses_total", "Cache lookups that found nothing usable.",
		cs.misses);
	counter(b, "aegis_cache_evictions_total", "Entries evicted to stay within the memory "
		"bound.", cs.evictions);
	gauge(b, "aegis_cache_entries", "Entries in the cache.", (double)cs.entries);
	gauge(b, "aegis_cache_bytes", "Bytes the cache holds.", (double)cs.bytes);

	counter(b, "aegis_upstream_queries_total", "Queries sent upstream.",
		SUM(r, upstream_queries));
	counter(b, "aegis_upstream_timeouts_total", "Upstream attempts that timed out.",
		SUM(r, upstream_timeouts));
	counter(b, "aegis_upstream_errors_total", "Upstream attempts that failed otherwise.",
		SUM(r, upstream_errors));
	counter(b, "aegis_upstream_tcp_retries_total", "Truncated upstream answers retried over "
		"TCP.", SUM(r, upstream_tcp_retries));
	counter(b, "aegis_upstream_mismatched_total", "Upstream answers ignored for a wrong ID or "
		"question (RFC 5452).", SUM(r, upstream_mismatched));
	evbuffer_add_printf(b, "# HELP aegis_upstream_up Whether the upstream is considered up.\n"
			       "# TYPE aegis_upstream_up gauge\n");
	for (unsigned i = 0; i < upstream_set_count(r->upstreams); i++)
		evbuffer_add_printf(b, "aegis_upstream_up{server=\"%s\"} %d\n",
				    upstream_set_name(r->upstreams, i),
				    upstream_set_healthy(r->upstreams, i));
	evbuffer_add_printf(b, "# HELP aegis_upstream_latency_seconds Latency of answered "
			       "upstream attempts.\n# TYPE aegis_upstream_latency_seconds "
			       "histogram\n");
	uint64_t cumulative = 0;
	for (int i = 0; i <= STAT_LATENCY_BUCKETS; i++) {
		cumulative += SUM(r, latency[i]);
		if (i < STAT_LATENCY_BUCKETS)
			evbuffer_add_printf(b, "aegis_upstream_latency_seconds_bucket{le=\"%g\"} "
					       "%llu\n", stats_latency_bounds[i] / 1e6,
					    (unsigned long long)cumulative);
		else
			evbuffer_add_printf(b, "aegis_upstream_latency_seconds_bucket{le=\"+Inf\"} "
					       "%llu\n", (unsigned long long)cumulative);
	}
	evbuffer_add_printf(b, "aegis_upstream_latency_seconds_sum %g\n"
			       "aegis_upstream_latency_seconds_count %llu\n",
			    SUM(r, latency_sum_us) / 1e6, (unsigned long long)cumulative);

	uint64_t serial, created, loaded_at;
	snaphold_info(r->policy, &serial, &created, &loaded_at);
	gauge(b, "aegis_policy_snapshot_serial", "Version of the policy snapshot in force.",
	      (double)serial);
	gauge(b, "aegis_policy_snapshot_age_seconds", "Seconds since that snapshot was compiled.",
	      created ? difftime(time(NULL), (time_t)created) : -1);
	gauge(b, "aegis_policy_snapshot_loaded_timestamp_seconds", "When it was loaded.",
	      (double)loaded_at);

	render_tenants(r, b);

	if (r->querylog)
		render_querylog(m, b);
}

static void on_request(struct evhttp_request *req, void *arg)
{
	struct metrics *m = arg;
	const char *uri = evhttp_request_get_uri(req);
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET || !uri ||
	    strncmp(uri, "/metrics", 8) != 0 || (uri[8] && uri[8] != '?')) {
		evhttp_send_error(req, HTTP_NOTFOUND, "only GET /metrics here");
		return;
	}
	struct evbuffer *b = evbuffer_new();
	if (!b) {
		evhttp_send_error(req, HTTP_INTERNAL, NULL);
		return;
	}
	render(m, b);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
			  "text/plain; version=0.0.4");
	evhttp_send_reply(req, HTTP_OK, "OK", b);
	evbuffer_free(b);
}

struct metrics *metrics_new(struct event_base *base, struct resolver *r,
			    const struct sockaddr_any *listen)
{
	char host[INET6_ADDRSTRLEN];
	uint16_t port;
	struct metrics *m = calloc(1, sizeof *m);
	if (!m)
		return NULL;
	m->r = r;
	m->http = evhttp_new(base);
	if (listen->ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&listen->ss;
		inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
		port = ntohs(a->sin_port);
	} else {
		const struct sockaddr_in6 *a = (const void *)&listen->ss;
		inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
		port = ntohs(a->sin6_port);
	}
	if (!m->http || evhttp_bind_socket(m->http, host, port) < 0) {
		log_err("metrics_listen_failed", "address=%s port=%u", host, port);
		metrics_free(m);
		return NULL;
	}
	evhttp_set_gencb(m->http, on_request, m);
	log_info("metrics_listening", "address=%s port=%u", host, port);
	return m;
}

void metrics_free(struct metrics *m)
{
	if (!m)
		return;
	if (m->http)
		evhttp_free(m->http);
	free(m);
}

void metrics_add_querylog_kafka(struct metrics *m, void *kafka_sink)
{
	m->kafka = kafka_sink;
}
