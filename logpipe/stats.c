/* stats.c -- counters and the /metrics endpoint (see stats.h). */
#include "stats.h"

#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "hostport.h"
#include "log.h"

const char *const stats_dead_reason_names[DEAD_REASONS] = { "decode", "text", "database" };

static const double bucket_s[STATS_BUCKETS] = { 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10 };

struct stats_server {
	struct stats *st;
	struct MHD_Daemon *mhd;
};

void stats_init(struct stats *st)
{
	memset(st, 0, sizeof *st);
	atomic_store(&st->lag, -1);
}

void stats_batch_done(struct stats *st, uint64_t micros)
{
	size_t i = 0;
	while (i < STATS_BUCKETS && (double)micros > bucket_s[i] * 1e6)
		i++;
	atomic_fetch_add_explicit(&st->batch_le[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->batch_us_sum, micros, memory_order_relaxed);
	atomic_fetch_add_explicit(&st->batches, 1, memory_order_relaxed);
}

struct text {
	char *p;
	size_t len, cap;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if (t->p && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap <= t->len + (size_t)n)
			cap *= 2;
		char *q = realloc(t->p, cap);
		if (!q)
			return;
		t->p = q;
		t->cap = cap;
	}
}

#define LOAD(x) ((unsigned long long)atomic_load_explicit(&(x), memory_order_relaxed))

static void counter(struct text *t, const char *name, const char *help, unsigned long long v)
{
	put(t, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, v);
}

static void gauge(struct text *t, const char *name, const char *help, long long v)
{
	put(t, "# HELP %s %s\n# TYPE %s gauge\n%s %lld\n", name, help, name, name, v);
}

static void render(const struct stats *cst, struct text *t)
{
	struct stats *st = (struct stats *)cst; /* atomic loads need a non-const pointer */
	counter(t, "aegis_logpipe_records_consumed_total", "Records taken from Kafka.",
		LOAD(st->consumed));
	counter(t, "aegis_logpipe_rows_inserted_total", "Rows that were new in query_log.",
		LOAD(st->inserted));
	counter(t, "aegis_logpipe_duplicates_skipped_total",
		"Records already in query_log (re-deliveries), neither stored nor counted again.",
		LOAD(st->duplicates));
	put(t, "# HELP aegis_logpipe_dead_lettered_total Records sent to the dead-letter topic.\n"
	       "# TYPE aegis_logpipe_dead_lettered_total counter\n");
	for (int i = 0; i < DEAD_REASONS; i++)
		put(t, "aegis_logpipe_dead_lettered_total{reason=\"%s\"} %llu\n",
		    stats_dead_reason_names[i], LOAD(st->dead[i]));
	put(t, "# HELP aegis_logpipe_batch_seconds Time from a batch's first record to its "
	       "offsets committed.\n# TYPE aegis_logpipe_batch_seconds histogram\n");
	unsigned long long cum = 0;
	for (int i = 0; i < STATS_BUCKETS; i++) {
		cum += LOAD(st->batch_le[i]);
		put(t, "aegis_logpipe_batch_seconds_bucket{le=\"%g\"} %llu\n", bucket_s[i], cum);
	}
	cum += LOAD(st->batch_le[STATS_BUCKETS]);
	put(t, "aegis_logpipe_batch_seconds_bucket{le=\"+Inf\"} %llu\n", cum);
	put(t, "aegis_logpipe_batch_seconds_sum %.6f\naegis_logpipe_batch_seconds_count %llu\n",
	    (double)LOAD(st->batch_us_sum) / 1e6, LOAD(st->batches));
	counter(t, "aegis_logpipe_batches_total", "Batches committed.", LOAD(st->batches));
	counter(t, "aegis_logpipe_offset_commit_failures_total",
		"Offset commits Kafka refused after the rows were stored (they come again and "
		"are skipped as duplicates).", LOAD(st->commit_failures));
	counter(t, "aegis_logpipe_db_failures_total",
		"Batch attempts that failed for a reason other than the data.",
		LOAD(st->db_failures));
	counter(t, "aegis_logpipe_partitions_created_total", "Daily partitions created.",
		LOAD(st->partitions_created));
	counter(t, "aegis_logpipe_retention_runs_total", "Retention runs by this process.",
		LOAD(st->retention_runs));
	counter(t, "aegis_logpipe_retention_dropped_partitions_total",
		"Partitions dropped by retention.", LOAD(st->retention_dropped));
	counter(t, "aegis_logpipe_retention_deleted_rows_total",
		"Rows deleted by per-tenant retention.", LOAD(st->retention_deleted));
	gauge(t, "aegis_logpipe_consumer_lag",
	      "Records on the assigned partitions not yet consumed (-1: unknown).",
	      (long long)atomic_load(&st->lag));
	gauge(t, "aegis_logpipe_db_up", "1 while PostgreSQL takes batches.",
	      atomic_load(&st->db_up));
	gauge(t, "aegis_logpipe_kafka_up", "1 while a Kafka broker is reachable.",
	      atomic_load(&st->kafka_up));
	gauge(t, "aegis_logpipe_paused", "1 while consumption is paused (PostgreSQL down).",
	      atomic_load(&st->paused));
	gauge(t, "aegis_logpipe_assigned_partitions", "Topic partitions assigned to this process.",
	      atomic_load(&st->assigned));
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *body, size_t len,
			     const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
	if (!r) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, "Content-Type", type);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **state)
{
	struct stats_server *s = cls;
	static int seen;
	(void)version;
	(void)upload_data;
	/* libmicrohttpd calls twice; answering on the first call would drop keep-alive. */
	if (!*state) {
		*state = &seen;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 || strcmp(url, "/metrics") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND, strdup("not found\n"), 10, "text/plain");
	struct text t = { 0 };
	render(s->st, &t);
	if (!t.p)
		return MHD_NO;
	return reply(c, MHD_HTTP_OK, t.p, t.len, "text/plain; version=0.0.4");
}

struct stats_server *stats_serve(struct stats *st, const char *listen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;

	if (hostport_parse(listen, &ss, &len) < 0) {
		log_err("metrics_listen_invalid", "listen=%s", listen);
		return NULL;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	struct stats_server *s = calloc(1, sizeof *s);
	if (!s)
		return NULL;
	s->st = st;
	s->mhd = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
				  (struct sockaddr *)&ss, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)64,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30, MHD_OPTION_END);
	if (!s->mhd) {
		log_err("metrics_listen_failed", "listen=%s", listen);
		free(s);
		return NULL;
	}
	log_info("metrics_serving", "listen=%s", listen);
	return s;
}

void stats_stop(struct stats_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->mhd);
	free(s);
}
