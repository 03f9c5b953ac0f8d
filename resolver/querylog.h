/* querylog.h -- query-log records from worker threads to a sink, never blocking a worker.
 *
 * Each worker owns one bounded single-producer queue; one sink thread drains every queue and
 * hands the records in batches to a sink (the JSON-lines file sink here; Kafka elsewhere). A
 * full queue or a failing sink drops records and counts them (docs/querylog.md). The querylog
 * owns its queues and, from querylog_new() on, the sink; querylog_free() releases both.
 */
#ifndef AEGIS_QUERYLOG_H
#define AEGIS_QUERYLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct qlog_record;
struct querylog;
struct querylog_queue;

/* A sink, called only from the sink thread. write_batch and flush return how many records
 * were lost in the call (of this batch, or accepted earlier and still buffered), 0 when all
 * went well; the sink logs the failure itself. The records handed over hold meaningful bytes
 * only within their lengths (queues copy no more): read them field by field, never memcmp. */
struct querylog_sink_ops {
	/* Takes n records; their memory is the caller's again on return. */
	int (*write_batch)(void *ctx, const struct qlog_record *recs, size_t n);
	/* Pushes out what the sink buffers. Called when the queues run empty. */
	int (*flush)(void *ctx);
	/* Optional: reopens the destination (log rotation). Called right after a flush. */
	int (*reopen)(void *ctx);
	/* Releases ctx; a flush came first. */
	void (*close)(void *ctx);
	/* Optional: called on every pass of the sink thread, busy or idle (about every
	 * millisecond), for the sink's own work such as delivery reports and retries. Returns
	 * how many records accepted earlier it lost, like flush. */
	int (*poll)(void *ctx);
};

struct querylog_stats {
	uint64_t submitted;            /* querylog_submit() calls */
	uint64_t written;              /* accepted by the sink and not reported lost */
	uint64_t dropped_queue_full;   /* submit found the worker's queue full */
	uint64_t dropped_sink_error;   /* the sink lost them (write error, invalid record) */
};

/* nworkers queues of ring_capacity records each (a power of two, 2..2^24; each slot holds
 * sizeof(struct qlog_record) bytes). Takes ownership of sink_ctx even when it fails: then it
 * calls ops->close, logs, and returns NULL. */
struct querylog *querylog_new(unsigned nworkers, unsigned ring_capacity,
			      const struct querylog_sink_ops *ops, void *sink_ctx);

/* The queue of worker index (< nworkers); only that worker's thread may submit to it. */
struct querylog_queue *querylog_queue(struct querylog *ql, unsigned worker);

/* Copies rec into the queue: no lock, no syscall. false (and a drop counted) when full. */
bool querylog_submit(struct querylog_queue *q, const struct qlog_record *rec);

/* The same in two steps, for a record built in place rather than copied: the slot of q's
 * next record, cleared like a zeroed record up to qname (the name bytes and the rule other
 * than rule.kind hold an older record's bytes: a rule is cleared by whoever sets one), or
 * NULL (a drop counted) when the queue is full. querylog_publish() hands it to the sink
 * thread; a slot claimed and not published is simply claimed again by the next record. */
struct qlog_record *querylog_claim(struct querylog_queue *q);
void querylog_publish(struct querylog_queue *q);

/* Starts the sink thread. 0 or a negative errno. */
int querylog_start(struct querylog *ql) __attribute__((warn_unused_result));

/* Call once the workers have stopped submitting: writes out everything queued (on the caller's
 * thread if querylog_start was never called), flushes the sink and joins its thread. */
void querylog_stop(struct querylog *ql);

/* Stops if needed, closes the sink, frees everything. NULL is fine. */
void querylog_free(struct querylog *ql);

/* Any thread. written + dropped_* == submitted once querylog_stop has returned. */
void querylog_get_stats(struct querylog *ql, struct querylog_stats *s);

/* Asks the sink thread to flush and reopen the sink (SIGHUP after logrotate renamed the
 * file). Only sets a flag, so any thread, even a signal handler, may call it. */
void querylog_reopen(struct querylog *ql);

/* Fills *ops and *ctx with a sink appending one JSON record per line to path (created 0640):
 * buffered, written in chunks of up to 256 KiB, fdatasync()ed only on reopen and close.
 * 0 or a negative errno (logged). */
int querylog_file_sink_open(const char *path, struct querylog_sink_ops *ops, void **ctx)
	__attribute__((warn_unused_result));

#endif
