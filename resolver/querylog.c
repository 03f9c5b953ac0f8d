/* querylog.c -- per-worker SPSC rings, one polling sink thread, the JSON-lines file sink. */
#include "querylog.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "qlog.h"

/* What becomes of a record, and how it is counted (quoted in docs/querylog.md):
 * 1. querylog_submit() copies it into its worker's queue or, when the queue is full, drops it
 *    and counts it in dropped_queue_full. The worker never waits and makes no syscall.
 * 2. The sink thread takes records from every queue and hands them to the sink in batches;
 *    one worker's records keep their order, different workers' records interleave.
 * 3. A record the sink cannot take (a failed write such as a full disk loses what the sink
 *    buffered; a record the encoder refuses as invalid) is counted in dropped_sink_error. The
 *    file sink logs the first failure and the recovery, and does not retry: waiting for the
 *    disk would only move the loss into the queues.
 * 4. Every other record is counted in written. Once querylog_stop() has returned,
 *    submitted = written + dropped_queue_full + dropped_sink_error.
 * 5. While records are dropped, a querylog_dropped warning with the counts goes to the log at
 *    most every 10 s, and a last one at stop.
 */

#define RING_MAX     (1u << 24)
#define BATCH_MAX    256           /* per write_batch, so slots go back to the worker soon */
#define DRAIN_MAX    4096          /* per queue and pass, so one busy worker starves no other */
#define POLL_NS      3000000       /* idle sleep of the sink thread (docs/querylog.md) */
#define DROP_LOG_SEC 10            /* at most one drop report per this many seconds */
#define FILE_BUF     (256 * 1024)
#define HUGE_PAGE    (2u << 20)

/* One worker's ring. The producer owns head and tail_seen, the sink thread owns tail; each
 * side's line is its own, so they do not bounce a cache line per record. */
struct querylog_queue {
	_Alignas(64) _Atomic uint64_t head;     /* next slot the worker fills */
	uint64_t tail_seen;                     /* the worker's last look at tail */
	_Atomic uint64_t dropped;               /* written by the worker only */
	_Alignas(64) _Atomic uint64_t tail;     /* next slot the sink thread reads */
	_Alignas(64) struct qlog_record *slots; /* read-only after querylog_new */
	uint64_t mask;
};

struct querylog {
	struct querylog_queue *queues;
	unsigned nqueues;
	struct querylog_sink_ops ops;
	void *sink;
	pthread_t thread;
	bool running;                 /* owner thread only */
	_Atomic bool stopping, reopen;
	_Atomic uint64_t handed;      /* sink thread: records given to write_batch */
	_Atomic uint64_t lost;        /* sink thread: records the sink reported lost */
	uint64_t reported_full, reported_lost;  /* sink thread: totals in the last drop report */
	struct timespec reported_at;
};

struct querylog *querylog_new(unsigned nworkers, unsigned ring_capacity,
			      const struct querylog_sink_ops *ops, void *sink_ctx)
{
	struct querylog *ql = NULL;
	void *mem;

	if (!nworkers || ring_capacity < 2 || ring_capacity > RING_MAX ||
	    (ring_capacity & (ring_capacity - 1))) {
		log_err("querylog_bad_config", "workers=%u queue=%u", nworkers, ring_capacity);
		errno = EINVAL;
		goto fail;
	}
	ql = calloc(1, sizeof *ql);
	if (!ql || posix_memalign(&mem, 64, nworkers * sizeof *ql->queues))
		goto nomem;
	ql->queues = memset(mem, 0, nworkers * sizeof *ql->queues);
	ql->nqueues = nworkers;
	for (unsigned i = 0; i < nworkers; i++) {
		size_t bytes = ring_capacity * sizeof *ql->queues[i].slots;
		/* A ring of megabytes in 4 KiB pages costs the worker a TLB miss on most slots:
		 * whole huge pages where the system allows them (the default ring, 3.2 MiB,
		 * takes two). */
		size_t huge = (bytes + HUGE_PAGE - 1) & ~(size_t)(HUGE_PAGE - 1);
		if (bytes >= HUGE_PAGE ? posix_memalign(&mem, HUGE_PAGE, huge)
				       : posix_memalign(&mem, 64, bytes))
			goto nomem;
		if (bytes >= HUGE_PAGE)
			(void)madvise(mem, huge, MADV_HUGEPAGE);
		ql->queues[i].slots = mem;
		ql->queues[i].mask = ring_capacity - 1;
	}
	ql->ops = *ops;
	ql->sink = sink_ctx;
	clock_gettime(CLOCK_MONOTONIC, &ql->reported_at);
	return ql;

nomem:
	log_err("querylog_create_failed", "error=\"out of memory\" workers=%u queue=%u",
		nworkers, ring_capacity);
	errno = ENOMEM;
	if (ql) {
		for (unsigned i = 0; ql->queues && i < nworkers; i++)
			free(ql->queues[i].slots);
		free(ql->queues);
		free(ql);
	}
fail:
	ops->close(sink_ctx);
	return NULL;
}

struct querylog_queue *querylog_queue(struct querylog *ql, unsigned worker)
{
	return worker < ql->nqueues ? &ql->queues[worker] : NULL;
}

/* Copies the bytes of rec that mean something: a whole record is 13 cache lines, most of
 * them unused name space, and each line written is one the sink thread's core must give up.
 * Bytes past qname_len, and the rule when there is none, are left stale in the slot. */
static_assert(offsetof(struct qlog_record, rule) > offsetof(struct qlog_record, qname) &&
	      offsetof(struct qlog_record, qname) > offsetof(struct qlog_record, node) &&
	      offsetof(struct qlog_rule, matched) + QLOG_NAME_MAX == sizeof(struct qlog_rule),
	      "querylog copies struct qlog_record by prefix");
static void copy_record(struct qlog_record *slot, const struct qlog_record *rec)
{
	if (rec->rule.kind == QLOG_RULE_NONE) {
		memcpy(slot, rec, offsetof(struct qlog_record, qname) + rec->qname_len);
		slot->rule.kind = QLOG_RULE_NONE;
	} else {
		memcpy(slot, rec, offsetof(struct qlog_record, rule.matched) + rec->rule.matched_len);
	}
}

/* A ring of the default 4096 slots spans 3.2 MiB, so a slot has left the caches by the time
 * the ring comes round to it again: filling it stalled the worker on cache misses, the
 * largest part of what logging cost the worker. So each side asks for the slot it will
 * touch next (its fixed fields and the start of its name), which arrives while the worker
 * answers the next query or the sink encodes the current record. */
#define SLOT_PREFETCH (offsetof(struct qlog_record, qname) + 64)
static inline void prefetch_slot_for_write(const struct qlog_record *slot)
{
	for (size_t off = 0; off < SLOT_PREFETCH; off += 64)
		__builtin_prefetch((const char *)slot + off, 1, 3);
	__builtin_prefetch(&slot->rule, 1, 3);  /* claim sets rule.kind */
}

static inline void prefetch_slot_for_read(const struct qlog_record *slot)
{
	for (size_t off = 0; off < SLOT_PREFETCH; off += 64)
		__builtin_prefetch((const char *)slot + off, 0, 3);
	__builtin_prefetch(&slot->rule, 0, 3);
}

struct qlog_record *querylog_claim(struct querylog_queue *q)
{
	uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);

	if (head - q->tail_seen > q->mask) {
		/* acquire: the sink thread has finished reading the slot before we overwrite it */
		q->tail_seen = atomic_load_explicit(&q->tail, memory_order_acquire);
		if (head - q->tail_seen > q->mask) {
			atomic_store_explicit(&q->dropped,
					      atomic_load_explicit(&q->dropped, memory_order_relaxed) + 1,
					      memory_order_relaxed);
			return NULL;
		}
	}
	struct qlog_record *slot = &q->slots[head & q->mask];
	memset(slot, 0, offsetof(struct qlog_record, qname));
	slot->rule.kind = QLOG_RULE_NONE;
	return slot;
}

void querylog_publish(struct querylog_queue *q)
{
	uint64_t head = atomic_load_explicit(&q->head, memory_order_relaxed);

	atomic_store_explicit(&q->head, head + 1, memory_order_release);
	prefetch_slot_for_write(&q->slots[(head + 1) & q->mask]);
}

bool querylog_submit(struct querylog_queue *q, const struct qlog_record *rec)
{
	struct qlog_record *slot = querylog_claim(q);

	if (!slot)
		return false;
	copy_record(slot, rec);
	querylog_publish(q);
	return true;
}

static void count_lost(struct querylog *ql, int lost)
{
	if (lost > 0)
		atomic_fetch_add_explicit(&ql->lost, (uint64_t)lost, memory_order_relaxed);
}

/* Hands what q holds to the sink, up to DRAIN_MAX records; returns how many. */
static size_t drain(struct querylog *ql, struct querylog_queue *q)
{
	uint64_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
	size_t moved = 0;

	while (tail != head && moved < DRAIN_MAX) {
		size_t at = tail & q->mask, n = head - tail;
		if (n > q->mask + 1 - at)
			n = q->mask + 1 - at;  /* up to the end of the ring */
		if (n > BATCH_MAX)
			n = BATCH_MAX;
		atomic_fetch_add_explicit(&ql->handed, n, memory_order_relaxed);
		count_lost(ql, ql->ops.write_batch(ql->sink, &q->slots[at], n));
		tail += n;
		moved += n;
		atomic_store_explicit(&q->tail, tail, memory_order_release);
	}
	return moved;
}

static uint64_t dropped_queue_full(struct querylog *ql)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < ql->nqueues; i++)
		sum += atomic_load_explicit(&ql->queues[i].dropped, memory_order_relaxed);
	return sum;
}

/* Drops are never silent: a warning with the counts since the last one, at most every
 * DROP_LOG_SEC seconds, and a last one when the log stops. */
static void report_drops(struct querylog *ql, bool final)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!final && now.tv_sec - ql->reported_at.tv_sec < DROP_LOG_SEC)
		return;
	ql->reported_at = now;
	uint64_t full = dropped_queue_full(ql);
	uint64_t lost = atomic_load_explicit(&ql->lost, memory_order_relaxed);
	if (full == ql->reported_full && lost == ql->reported_lost)
		return;
	log_warn("querylog_dropped", "queue_full=%llu sink_error=%llu total_queue_full=%llu "
		 "total_sink_error=%llu", (unsigned long long)(full - ql->reported_full),
		 (unsigned long long)(lost - ql->reported_lost), (unsigned long long)full,
		 (unsigned long long)lost);
	ql->reported_full = full;
	ql->reported_lost = lost;
}

/* Polls instead of being woken: a wake-up would cost the worker a syscall or a look at the
 * consumer's cache line per record, and the log can wait a millisecond. */
static void *sink_run(void *arg)
{
	static const struct timespec idle = { 0, POLL_NS };
	struct querylog *ql = arg;
	bool unflushed = false;

	for (;;) {
		/* Read before draining: whatever was submitted before stop is seen by this pass. */
		bool stopping = atomic_load_explicit(&ql->stopping, memory_order_acquire);
		size_t moved = 0;

		if (atomic_exchange_explicit(&ql->reopen, false, memory_order_acq_rel)) {
			count_lost(ql, ql->ops.flush(ql->sink));
			unflushed = false;
			if (ql->ops.reopen)
				ql->ops.reopen(ql->sink);
		}
		for (unsigned i = 0; i < ql->nqueues; i++)
			moved += drain(ql, &ql->queues[i]);
		if (ql->ops.poll)
			count_lost(ql, ql->ops.poll(ql->sink));
		report_drops(ql, false);
		if (moved) {
			unflushed = true;
			continue;
		}
		if (unflushed) {
			count_lost(ql, ql->ops.flush(ql->sink));
			unflushed = false;
		}
		if (stopping)
			break;
		nanosleep(&idle, NULL);
	}
	report_drops(ql, true);
	return NULL;
}

int querylog_start(struct querylog *ql)
{
	sigset_t all, old;
	int err;

	/* Signals belong to the main thread's event loop, never to the sink thread. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = pthread_create(&ql->thread, NULL, sink_run, ql);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err) {
		log_err("querylog_start_failed", "error=\"%s\"", strerror(err));
		return -err;
	}
	pthread_setname_np(ql->thread, "aegis-querylog");
	ql->running = true;
	return 0;
}

void querylog_stop(struct querylog *ql)
{
	atomic_store_explicit(&ql->stopping, true, memory_order_release);
	if (ql->running) {
		pthread_join(ql->thread, NULL);
		ql->running = false;
	} else {
		sink_run(ql);
	}
}

void querylog_free(struct querylog *ql)
{
	if (!ql)
		return;
	querylog_stop(ql);
	ql->ops.close(ql->sink);
	for (unsigned i = 0; i < ql->nqueues; i++)
		free(ql->queues[i].slots);
	free(ql->queues);
	free(ql);
}

void querylog_get_stats(struct querylog *ql, struct querylog_stats *s)
{
	/* lost first: it never exceeds handed, so written cannot wrap below zero */
	uint64_t lost = atomic_load_explicit(&ql->lost, memory_order_relaxed);
	uint64_t handed = atomic_load_explicit(&ql->handed, memory_order_relaxed);

	memset(s, 0, sizeof *s);
	for (unsigned i = 0; i < ql->nqueues; i++) {
		const struct querylog_queue *q = &ql->queues[i];
		uint64_t dropped = atomic_load_explicit(&q->dropped, memory_order_relaxed);
		s->dropped_queue_full += dropped;
		s->submitted += dropped + atomic_load_explicit(&q->head, memory_order_relaxed);
	}
	s->written = handed - lost;
	s->dropped_sink_error = lost;
}

void querylog_reopen(struct querylog *ql)
{
	atomic_store_explicit(&ql->reopen, true, memory_order_release);
}

/* ---- the JSON-lines file sink ---- */

struct file_sink {
	char *path;
	int fd;
	bool torn;          /* a failed write left a partial line at the end of the file */
	bool failing;       /* the last write failed; logged once until one succeeds */
	uint64_t invalid;   /* records the encoder refused */
	size_t len;         /* bytes in buf */
	size_t lines;       /* records in buf */
	char buf[FILE_BUF];
};

static size_t count_lines(const char *p, size_t len)
{
	size_t n = 0;
	const char *end = p + len;

	while ((p = memchr(p, '\n', (size_t)(end - p)))) {
		n++;
		p++;
	}
	return n;
}

/* write() all of p; returns how many bytes went out, setting errno when short. */
static size_t write_all(int fd, const char *p, size_t len)
{
	size_t off = 0;

	while (off < len) {
		ssize_t n = write(fd, p + off, len - off);
		if (n > 0)
			off += (size_t)n;
		else if (n == 0)
			errno = EIO;
		if (n == 0 || (n < 0 && errno != EINTR))
			break;
	}
	return off;
}

/* A failed write loses the buffer (waiting for the disk would fill the workers' queues
 * anyway). A partial last line is cut off with a newline before the next write, so it
 * stands alone and readers skip it, as they must after a crash. */
static int file_sink_flush(void *ctx)
{
	struct file_sink *fs = ctx;
	size_t len = fs->len, lines = fs->lines, done = 0;

	if (!len)
		return 0;
	fs->len = fs->lines = 0;
	if (!fs->torn || write_all(fs->fd, "\n", 1) == 1) {
		fs->torn = false;
		done = write_all(fs->fd, fs->buf, len);
	}
	if (done == len) {
		if (fs->failing)
			log_info("querylog_file_recovered", "path=%s", fs->path);
		fs->failing = false;
		return 0;
	}
	size_t lost = lines - count_lines(fs->buf, done);
	if (!fs->failing)
		log_err("querylog_file_write_failed", "path=%s error=\"%s\" lost=%zu", fs->path,
			strerror(errno), lost);
	fs->failing = true;
	fs->torn = fs->torn || (done && fs->buf[done - 1] != '\n');
	return (int)lost;
}

static int file_sink_write_batch(void *ctx, const struct qlog_record *recs, size_t n)
{
	struct file_sink *fs = ctx;
	int lost = 0;

	for (size_t i = 0; i < n; i++) {
		if (i + 1 < n)
			prefetch_slot_for_read(&recs[i + 1]);
		if (sizeof fs->buf - fs->len < QLOG_JSON_MAX + 1)
			lost += file_sink_flush(fs);
		int len = qlog_encode_json(&recs[i], fs->buf + fs->len, QLOG_JSON_MAX);
		if (len < 0) {
			/* a resolver bug, not a state of the disk: once is enough to find it */
			if (fs->invalid++ == 0)
				log_err("querylog_record_invalid", "path=%s error=\"%s\"", fs->path,
					strerror(-len));
			lost++;
			continue;
		}
		fs->len += (size_t)len;
		fs->buf[fs->len++] = '\n';
		fs->lines++;
	}
	return lost;
}

/* Opens afresh under the same path if the file there is no longer ours (rotated away); if
 * that fails, the old (renamed) file keeps the lines. No fdatasync here: it runs on the sink
 * thread, and waiting for hundreds of megabytes to reach the disk overflowed every ring. */
static int file_sink_reopen(void *ctx)
{
	struct file_sink *fs = ctx;
	struct stat now, open_file;
	if (stat(fs->path, &now) == 0 && fstat(fs->fd, &open_file) == 0 &&
	    now.st_ino == open_file.st_ino && now.st_dev == open_file.st_dev)
		return 0;
	int fd = open(fs->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0) {
		int err = errno;
		log_err("querylog_file_reopen_failed", "path=%s error=\"%s\"", fs->path,
			strerror(err));
		return -err;
	}
	close(fs->fd);
	fs->fd = fd;
	fs->torn = false;
	return 0;
}

static void file_sink_close(void *ctx)
{
	struct file_sink *fs = ctx;

	fdatasync(fs->fd);
	close(fs->fd);
	free(fs->path);
	free(fs);
}

int querylog_file_sink_open(const char *path, struct querylog_sink_ops *ops, void **ctx)
{
	struct file_sink *fs = calloc(1, sizeof *fs);

	if (!fs || !(fs->path = strdup(path))) {
		free(fs);
		log_err("querylog_file_open_failed", "path=%s error=\"out of memory\"", path);
		return -ENOMEM;
	}
	fs->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (fs->fd < 0) {
		int err = errno;
		log_err("querylog_file_open_failed", "path=%s error=\"%s\"", path, strerror(err));
		free(fs->path);
		free(fs);
		return -err;
	}
	*ops = (struct querylog_sink_ops){
		.write_batch = file_sink_write_batch,
		.flush = file_sink_flush,
		.reopen = file_sink_reopen,
		.close = file_sink_close,
	};
	*ctx = fs;
	return 0;
}
