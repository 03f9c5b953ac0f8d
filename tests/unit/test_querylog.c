/* test_querylog.c -- worker queues, the sink thread and the JSON-lines file sink: drops are
 * counted, order kept per worker, nothing lost on stop or across a reopen, a dead sink never
 * blocks a worker. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "qlog.h"
#include "querylog.h"

/* A record telling its producer (node "w<worker>") and its sequence number (snapshot). */
static void make_record(struct qlog_record *r, unsigned worker, uint64_t seq)
{
	memset(r, 0, sizeof *r);
	r->ts_us = 1795606726123456LL + (int64_t)seq;
	qlog_new_event_id(r->event_id, (uint64_t)r->ts_us / 1000);
	snprintf(r->node, sizeof r->node, "w%u", worker);
	r->client.family = AF_INET;
	r->client.prefix = 32;
	inet_pton(AF_INET, "127.1.0.5", r->client.addr);
	r->client_port = 40000;
	memcpy(r->qname, "\3www\7example\0", 13);
	r->qname_len = 13;
	r->qtype = 1;
	r->has_rcode = true;
	r->snapshot = seq;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

static void assert_balanced(struct querylog *ql)
{
	struct querylog_stats s;

	querylog_get_stats(ql, &s);
	cr_assert_eq(s.written + s.dropped_queue_full + s.dropped_sink_error, s.submitted,
		     "written %llu + dropped %llu + %llu != submitted %llu",
		     (unsigned long long)s.written, (unsigned long long)s.dropped_queue_full,
		     (unsigned long long)s.dropped_sink_error, (unsigned long long)s.submitted);
}

/* ---- a sink that remembers (worker, seq) of what it got, and can be made to hang ---- */

struct capture {
	size_t n, cap;
	struct { unsigned worker; uint64_t seq; } *got;
	atomic_bool hang;       /* write_batch waits while set */
	atomic_bool in_write;   /* a write_batch is waiting */
	int flushes;
	bool closed;
};

static int capture_write(void *ctx, const struct qlog_record *recs, size_t n)
{
	struct capture *c = ctx;

	while (atomic_load(&c->hang)) {
		atomic_store(&c->in_write, true);
		sleep_ms(1);
	}
	for (size_t i = 0; i < n; i++) {
		if (c->n == c->cap) {
			c->cap = c->cap ? 2 * c->cap : 1024;
			c->got = realloc(c->got, c->cap * sizeof *c->got);
			cr_assert(c->got);
		}
		c->got[c->n].worker = (unsigned)atoi(recs[i].node + 1);
		c->got[c->n++].seq = recs[i].snapshot;
	}
	return 0;
}

static int capture_flush(void *ctx)
{
	((struct capture *)ctx)->flushes++;
	return 0;
}

static void capture_close(void *ctx)
{
	((struct capture *)ctx)->closed = true;
}

static const struct querylog_sink_ops capture_ops = {
	.write_batch = capture_write, .flush = capture_flush, .close = capture_close,
};

/* Each worker's sequence numbers in c, in arrival order, are exactly 0..n-1 for that
 * worker's count n in want[]. */
static void assert_in_order(const struct capture *c, const size_t *want, unsigned workers)
{
	size_t *next = calloc(workers, sizeof *next);

	for (size_t i = 0; i < c->n; i++) {
		unsigned w = c->got[i].worker;
		cr_assert_lt(w, workers);
		cr_assert_eq(c->got[i].seq, next[w], "worker %u: got %llu, expected %zu", w,
			     (unsigned long long)c->got[i].seq, next[w]);
		next[w]++;
	}
	for (unsigned w = 0; w < workers; w++)
		cr_assert_eq(next[w], want[w], "worker %u: %zu of %zu", w, next[w], want[w]);
	free(next);
}

Test(querylog, full_ring_drops_and_counts)
{
	struct capture c = { 0 };
	struct querylog *ql = querylog_new(1, 8, &capture_ops, &c);
	struct querylog_queue *q = querylog_queue(ql, 0);
	struct qlog_record r;
	struct querylog_stats s;

	cr_assert(q);
	cr_assert_null(querylog_queue(ql, 1));
	for (uint64_t i = 0; i < 8; i++) {
		make_record(&r, 0, i);
		cr_assert(querylog_submit(q, &r));
	}
	make_record(&r, 0, 8);
	cr_assert_not(querylog_submit(q, &r));
	cr_assert_not(querylog_submit(q, &r));
	querylog_get_stats(ql, &s);
	cr_assert_eq(s.submitted, 10);
	cr_assert_eq(s.dropped_queue_full, 2);
	cr_assert_eq(s.written, 0);

	querylog_stop(ql);  /* never started: drains on this thread */
	size_t want = 8;
	assert_in_order(&c, &want, 1);
	querylog_get_stats(ql, &s);
	cr_assert_eq(s.written, 8);
	assert_balanced(ql);
	querylog_free(ql);
	cr_assert(c.closed);
	free(c.got);
}

Test(querylog, order_kept_per_worker_and_stop_drains)
{
	enum { WORKERS = 3, N = 1000 };
	struct capture c = { 0 };
	struct querylog *ql = querylog_new(WORKERS, 1024, &capture_ops, &c);
	struct qlog_record r;

	cr_assert_eq(querylog_start(ql), 0);
	for (uint64_t i = 0; i < N; i++) {
		for (unsigned w = 0; w < WORKERS; w++) {
			make_record(&r, w, i);
			cr_assert(querylog_submit(querylog_queue(ql, w), &r));
		}
	}
	querylog_stop(ql);
	size_t want[WORKERS] = { N, N, N };
	assert_in_order(&c, want, WORKERS);
	cr_assert_geq(c.flushes, 1);
	assert_balanced(ql);
	querylog_free(ql);
	free(c.got);
}

Test(querylog, hung_sink_never_blocks_submit)
{
	struct capture c = { 0 };
	struct querylog *ql = querylog_new(1, 64, &capture_ops, &c);
	struct querylog_queue *q = querylog_queue(ql, 0);
	struct qlog_record r;
	size_t accepted = 0;

	atomic_store(&c.hang, true);
	cr_assert_eq(querylog_start(ql), 0);
	make_record(&r, 0, accepted);
	cr_assert(querylog_submit(q, &r));
	accepted++;
	while (!atomic_load(&c.in_write))
		sleep_ms(1);
	/* The sink thread is stuck inside write_batch: the ring fills, then drops. */
	for (int i = 0; i < 10000; i++) {
		make_record(&r, 0, accepted);
		accepted += querylog_submit(q, &r);
	}
	cr_assert_leq(accepted, 1 + 64);
	struct querylog_stats s;
	querylog_get_stats(ql, &s);
	cr_assert_eq(s.dropped_queue_full, 10001 - accepted);

	atomic_store(&c.hang, false);
	querylog_stop(ql);
	assert_in_order(&c, &accepted, 1);
	assert_balanced(ql);
	querylog_free(ql);
	free(c.got);
}

Test(querylog, bad_config_refused_and_sink_closed)
{
	struct capture c = { 0 };

	cr_assert_null(querylog_new(1, 1000, &capture_ops, &c));
	cr_assert(c.closed);
	c.closed = false;
	cr_assert_null(querylog_new(0, 1024, &capture_ops, &c));
	cr_assert(c.closed);
	c.closed = false;
	cr_assert_null(querylog_new(1, 1u << 25, &capture_ops, &c));
	cr_assert(c.closed);
	querylog_free(NULL);
}

/* ---- the file sink ---- */

static char tmpdir[64];

static void make_tmpdir(void)
{
	snprintf(tmpdir, sizeof tmpdir, "/tmp/test_querylog.XXXXXX");
	cr_assert(mkdtemp(tmpdir));
}

static void remove_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(querylog_file, .init = make_tmpdir, .fini = remove_tmpdir);

/* Reads path and decodes every line; appends (worker, seq) to c. Returns the line count. */
static size_t read_lines(const char *path, struct capture *c)
{
	FILE *f = fopen(path, "r");
	char *line = NULL, err[256];
	size_t cap = 0, lines = 0;
	ssize_t len;

	cr_assert(f, "%s", path);
	while ((len = getline(&line, &cap, f)) > 0) {
		struct qlog_record r;
		cr_assert_eq(line[len - 1], '\n', "unterminated line %zu", lines);
		cr_assert_eq(qlog_decode_json(line, (size_t)len - 1, &r, err, sizeof err), 0,
			     "line %zu: %s", lines, err);
		capture_write(c, &r, 1);
		lines++;
	}
	free(line);
	fclose(f);
	return lines;
}

struct producer {
	struct querylog_queue *q;
	unsigned worker;
	size_t n;                 /* records to offer; 0: until stop is set */
	atomic_bool *stop;
	size_t accepted;          /* out: sequence numbers 0..accepted-1 went in */
	size_t offered;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	struct qlog_record r;

	while (p->n ? p->offered < p->n : !atomic_load(p->stop)) {
		make_record(&r, p->worker, p->accepted);
		bool ok = querylog_submit(p->q, &r);
		p->accepted += ok;
		p->offered++;
		/* Pace a little, as real traffic does, so most records go through and some drop. */
		if (!ok || (!p->n && p->offered % 64 == 0))
			sleep_ms(1);
	}
	return NULL;
}

Test(querylog_file, four_producers_every_line_accounted)
{
	enum { WORKERS = 4, N = 200000 };
	char path[128];
	struct querylog_sink_ops ops;
	void *ctx;
	struct producer p[WORKERS];
	pthread_t t[WORKERS];

	snprintf(path, sizeof path, "%s/q.jsonl", tmpdir);
	cr_assert_eq(querylog_file_sink_open(path, &ops, &ctx), 0);
	struct querylog *ql = querylog_new(WORKERS, 4096, &ops, ctx);
	cr_assert(ql);
	cr_assert_eq(querylog_start(ql), 0);
	for (unsigned w = 0; w < WORKERS; w++) {
		p[w] = (struct producer){ .q = querylog_queue(ql, w), .worker = w, .n = N };
		cr_assert_eq(pthread_create(&t[w], NULL, produce, &p[w]), 0);
	}
	for (unsigned w = 0; w < WORKERS; w++)
		pthread_join(t[w], NULL);
	querylog_stop(ql);

	struct querylog_stats s;
	querylog_get_stats(ql, &s);
	cr_assert_eq(s.submitted, (uint64_t)WORKERS * N);
	cr_assert_eq(s.dropped_sink_error, 0);
	assert_balanced(ql);

	struct capture c = { 0 };
	size_t lines = read_lines(path, &c), want[WORKERS];
	cr_assert_eq(lines, s.submitted - s.dropped_queue_full);
	cr_assert_eq(lines, s.written);
	for (unsigned w = 0; w < WORKERS; w++)
		want[w] = p[w].accepted;
	assert_in_order(&c, want, WORKERS);
	querylog_free(ql);
	free(c.got);
}

Test(querylog_file, full_disk_counts_drops_and_never_blocks)
{
	struct querylog_sink_ops ops;
	void *ctx;
	struct qlog_record r;
	size_t accepted = 0;

	cr_assert_eq(querylog_file_sink_open("/dev/full", &ops, &ctx), 0);
	struct querylog *ql = querylog_new(1, 1024, &ops, ctx);
	struct querylog_queue *q = querylog_queue(ql, 0);
	cr_assert_eq(querylog_start(ql), 0);
	for (uint64_t i = 0; i < 100000; i++) {
		make_record(&r, 0, i);
		accepted += querylog_submit(q, &r);
	}
	querylog_stop(ql);

	struct querylog_stats s;
	querylog_get_stats(ql, &s);
	cr_assert_eq(s.submitted, 100000);
	cr_assert_eq(s.written, 0);
	cr_assert_eq(s.dropped_sink_error, accepted);
	assert_balanced(ql);
	querylog_free(ql);
}

Test(querylog_file, invalid_record_dropped_alone)
{
	char path[128];
	struct querylog_sink_ops ops;
	void *ctx;
	struct qlog_record r;

	snprintf(path, sizeof path, "%s/q.jsonl", tmpdir);
	cr_assert_eq(querylog_file_sink_open(path, &ops, &ctx), 0);
	struct querylog *ql = querylog_new(1, 16, &ops, ctx);
	struct querylog_queue *q = querylog_queue(ql, 0);
	for (uint64_t i = 0; i < 3; i++) {
		make_record(&r, 0, i);
		if (i == 1)
			r.action = 200;
		cr_assert(querylog_submit(q, &r));
	}
	querylog_stop(ql);

	struct querylog_stats s;
	querylog_get_stats(ql, &s);
	cr_assert_eq(s.written, 2);
	cr_assert_eq(s.dropped_sink_error, 1);
	struct capture c = { 0 };
	cr_assert_eq(read_lines(path, &c), 2);
	cr_assert_eq(c.got[0].seq, 0);
	cr_assert_eq(c.got[1].seq, 2);
	querylog_free(ql);
	free(c.got);
}

Test(querylog_file, reopen_after_rename_loses_no_line)
{
	char path[128], rotated[140];
	struct querylog_sink_ops ops;
	void *ctx;
	atomic_bool stop = false;
	pthread_t t;
	struct querylog_stats s;

	snprintf(path, sizeof path, "%s/q.jsonl", tmpdir);
	snprintf(rotated, sizeof rotated, "%s.1", path);
	cr_assert_eq(querylog_file_sink_open(path, &ops, &ctx), 0);
	struct querylog *ql = querylog_new(1, 65536, &ops, ctx);
	cr_assert_eq(querylog_start(ql), 0);
	struct producer p = { .q = querylog_queue(ql, 0), .stop = &stop };
	cr_assert_eq(pthread_create(&t, NULL, produce, &p), 0);

	do {
		sleep_ms(5);
		querylog_get_stats(ql, &s);
	} while (s.written < 2000);
	/* logrotate: rename, then SIGHUP */
	cr_assert_eq(rename(path, rotated), 0);
	querylog_reopen(ql);
	uint64_t at_reopen = s.written;
	do {
		sleep_ms(5);
		querylog_get_stats(ql, &s);
	} while (s.written < at_reopen + 4000);
	atomic_store(&stop, true);
	pthread_join(t, NULL);
	querylog_stop(ql);

	querylog_get_stats(ql, &s);
	cr_assert_eq(s.dropped_queue_full, 0);
	cr_assert_eq(s.dropped_sink_error, 0);
	struct capture c = { 0 };
	size_t old_lines = read_lines(rotated, &c);
	size_t new_lines = read_lines(path, &c);
	cr_assert_geq(old_lines, 2000);
	cr_assert_gt(new_lines, 0);
	cr_assert_eq(old_lines + new_lines, s.written);
	assert_in_order(&c, &p.accepted, 1);
	querylog_free(ql);
	free(c.got);
}

Test(querylog_file, open_failure_reported)
{
	struct querylog_sink_ops ops;
	void *ctx;

	cr_assert_eq(querylog_file_sink_open("/nonexistent/dir/q.jsonl", &ops, &ctx), -ENOENT);
}
