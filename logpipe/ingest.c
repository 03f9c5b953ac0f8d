/* ingest.c -- the consumer thread: Kafka -> batch -> PostgreSQL -> offsets (see ingest.h).
 *
 * Exactly once, by these rules:
 * 1. A batch's rows, and the rollup counts of the rows that were new, commit in one
 *    PostgreSQL transaction; query_log's key (ts, event_id) makes a re-delivered record a
 *    no-op (ON CONFLICT DO NOTHING), and only rows really inserted are counted.
 * 2. Offsets are committed only after every record of the batch is either stored or
 *    dead-lettered with Kafka's acknowledgement. A crash before that re-delivers the batch,
 *    and rule 1 makes the second pass add nothing already there.
 * 3. Nothing is committed for a batch that could not be finished, nor for any batch after
 *    it: on PostgreSQL failure the batch stays in hand, is retried, and consumption pauses;
 *    on losing the partitions (rebalance, stop) the batches in hand are finished if
 *    PostgreSQL takes them, else dropped uncommitted for the next owner.
 *
 * Two threads, so decoding the next batch overlaps storing the last: the consumer thread
 * polls Kafka and decodes into the filling batch; the writer thread stores a handed batch,
 * sends its dead letters, commits its offsets, and does the upkeep (partitions, retention).
 */
#include "ingest.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "batch.h"
#include "log.h"
#include "qlog.h"
#include "row.h"
#include "stats.h"
#include "store.h"

#define BACKOFF_MIN_MS 250
#define BACKOFF_MAX_MS 10000
#define RETRY_LIMIT    5        /* deadlocks in a row before the batch counts as failed */
#define MAINT_RETRY_S  60

struct ingest {
	struct ingest_config cfg;
	struct stats *st;
	rd_kafka_t *rk;             /* the group consumer */
	rd_kafka_t *dlq;            /* the dead-letter producer (writer thread only) */
	rd_kafka_topic_t *dlq_topic;
	struct store *store;        /* writer thread only */
	struct batch batches[2];
	struct batch *filling;      /* consumer thread only */
	pthread_t consumer, writer;
	bool consumer_started, writer_started;
	pthread_mutex_t lock;       /* guards the fields down to give_up */
	pthread_cond_t changed;
	struct batch *handed;       /* the writer's while writer_busy */
	bool writer_busy;           /* handed is being stored */
	bool writer_failed;         /* ... and an attempt failed: it waits and tries again */
	bool writer_ok;             /* the last handed batch was stored (else dropped) */
	bool writer_exit;
	bool give_up;               /* consumer -> writer: drop handed, do not retry */
	atomic_bool stopping;
	atomic_uint_fast64_t dlq_failed;  /* dead letters Kafka refused */
	bool paused;                /* consumer thread */
	int64_t lag_at_us;          /* consumer thread */
	int64_t partitions_day, retention_day, maint_retry_s;  /* writer thread */
};

static int64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void release(void *msg)
{
	if (msg)
		rd_kafka_message_destroy(msg);
}

/* --- Kafka callbacks ------------------------------------------------------------------- */

static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	char quoted[512];
	(void)rk;
	if (level <= 4)
		log_warn("kafka_log", "facility=%s message=%s", fac,
			 log_quote(quoted, sizeof quoted, buf));
	else
		log_debug("kafka_log", "facility=%s message=%s", fac,
			  log_quote(quoted, sizeof quoted, buf));
}

static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct ingest *in = opaque;
	char quoted[512];
	(void)rk;
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
		if (atomic_exchange(&in->st->kafka_up, 0))
			log_warn("kafka_down", "reason=%s", log_quote(quoted, sizeof quoted, reason));
		return;
	}
	log_warn("kafka_error", "error=%s reason=%s", rd_kafka_err2name(err),
		 log_quote(quoted, sizeof quoted, reason));
}

static void kafka_seen(struct ingest *in)
{
	if (!atomic_exchange(&in->st->kafka_up, 1))
		log_info("kafka_up", "brokers=%s", in->cfg.brokers);
}

static void on_dead_letter_delivered(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct ingest *in = opaque;
	(void)rk;
	if (!m->err)
		return;
	atomic_fetch_add(&in->dlq_failed, 1);
	log_err("dead_letter_failed", "topic=%s error=%s", in->cfg.dead_letter_topic,
		rd_kafka_err2name(m->err));
}

static void set_paused(struct ingest *in, bool pause)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (in->paused == pause)
		return;
	if (rd_kafka_assignment(in->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
		return;
	if (parts->cnt)
		pause ? rd_kafka_pause_partitions(in->rk, parts)
		      : rd_kafka_resume_partitions(in->rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	in->paused = pause;
	atomic_store(&in->st->paused, pause);
	if (pause)
		log_warn("ingest_paused", "reason=\"the batch in hand cannot be stored yet\" "
			 "records=%zu", in->filling->n);
	else
		log_info("ingest_resumed");
}

/* --- the writer: batches into PostgreSQL, dead letters, offsets ----------------------- */

static void dead_letter(struct ingest *in, const rd_kafka_message_t *m, int reason,
			const char *detail)
{
	char partition[16], offset[24], text[600], quoted[600];
	enum stats_dead_reason r = (enum stats_dead_reason)(reason - 1);
	snprintf(partition, sizeof partition, "%d", (int)m->partition);
	snprintf(offset, sizeof offset, "%lld", (long long)m->offset);
	snprintf(text, sizeof text, "%s: %s", stats_dead_reason_names[r], detail);

	rd_kafka_headers_t *h = rd_kafka_headers_new(4);
	rd_kafka_header_add(h, "aegis-reason", -1, text, -1);
	rd_kafka_header_add(h, "aegis-source-topic", -1, rd_kafka_topic_name(m->rkt), -1);
	rd_kafka_header_add(h, "aegis-source-partition", -1, partition, -1);
	rd_kafka_header_add(h, "aegis-source-offset", -1, offset, -1);
	rd_kafka_resp_err_t err;
	/* A full local queue (Kafka away for long) waits for room rather than losing it. */
	do {
		err = rd_kafka_producev(in->dlq, RD_KAFKA_V_RKT(in->dlq_topic),
					RD_KAFKA_V_VALUE(m->payload, m->len),
					RD_KAFKA_V_KEY(m->key, m->key_len),
					RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					RD_KAFKA_V_END);
		if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(in->dlq, 100);
	} while (err == RD_KAFKA_RESP_ERR__QUEUE_FULL && !atomic_load(&in->stopping));
	if (err) {
		rd_kafka_headers_destroy(h);
		atomic_fetch_add(&in->dlq_failed, 1);
		log_err("dead_letter_failed", "topic=%s error=%s", in->cfg.dead_letter_topic,
			rd_kafka_err2name(err));
		return;
	}
	atomic_fetch_add_explicit(&in->st->dead[r], 1, memory_order_relaxed);
	log_warn("dead_lettered", "partition=%d offset=%lld reason=%s", (int)m->partition,
		 (long long)m->offset, log_quote(quoted, sizeof quoted, text));
}

/* Sends the batch's dead letters and waits until Kafka has acknowledged every one. Only the
 * writer produces, one batch at a time, so a failure counted meanwhile is this batch's.
 * 0, or -1 if one was refused or the daemon is stopping first (the batch is then not
 * finished, and its dead letters go again with it: at least once). */
static int send_dead_letters(struct ingest *in, struct batch *b)
{
	uint_fast64_t failed_before = atomic_load(&in->dlq_failed);
	for (size_t i = 0; i < b->n; i++)
		if (b->e[i].dead)
			dead_letter(in, b->e[i].msg, b->e[i].dead, b->e[i].why);
	while (rd_kafka_outq_len(in->dlq) > 0) {
		rd_kafka_flush(in->dlq, 500);
		if (atomic_load(&in->stopping) && rd_kafka_outq_len(in->dlq) > 0)
			return -1;
	}
	return atomic_load(&in->dlq_failed) == failed_before ? 0 : -1;
}

/* Stores entries [lo, hi); on a refusal of the data, halves the range until the refused
 * record is alone, and marks it for the dead-letter topic. 0, or -1 when PostgreSQL failed
 * (nothing lost: the batch is tried again whole; what committed meanwhile is then skipped). */
static int store_range(struct ingest *in, struct batch *b, size_t lo, size_t hi)
{
	size_t rows = 0, last = lo;
	char why[512];

	for (size_t i = lo; i < hi; i++)
		if (b->e[i].len) {
			rows++;
			last = i;
		}
	if (!rows)
		return 0;
	for (int attempt = 0;; attempt++) {
		long long inserted = 0;
		enum store_status st = store_write(in->store, b, lo, hi, &inserted, why, sizeof why);
		switch (st) {
		case STORE_OK:
			atomic_fetch_add_explicit(&in->st->inserted, (uint64_t)inserted,
						  memory_order_relaxed);
			atomic_fetch_add_explicit(&in->st->duplicates, rows - (uint64_t)inserted,
						  memory_order_relaxed);
			return 0;
		case STORE_RETRY:
			if (attempt < RETRY_LIMIT)
				continue;
			/* fall through */
		case STORE_DOWN:
			atomic_fetch_add(&in->st->db_failures, 1);
			return -1;
		case STORE_REFUSED:
			if (rows == 1)
				return batch_kill(b, last, DEAD_DATABASE + 1, why) < 0 ? -1 : 0;
			size_t mid = lo + (hi - lo) / 2;
			return store_range(in, b, lo, mid) < 0 ? -1 : store_range(in, b, mid, hi);
		}
	}
}

static void commit_offsets(struct ingest *in, const struct batch *b)
{
	struct batch_offset offs[256];
	size_t n = batch_offsets(b, offs, 256);
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new((int)n);
	for (size_t i = 0; i < n && i < 256; i++)
		rd_kafka_topic_partition_list_add(list, in->cfg.topic, offs[i].partition)->offset =
			offs[i].next;
	rd_kafka_resp_err_t err = rd_kafka_commit(in->rk, list, 0);
	rd_kafka_topic_partition_list_destroy(list);
	if (err) {
		/* The rows are stored; the records come again and are skipped as duplicates. */
		atomic_fetch_add(&in->st->commit_failures, 1);
		log_warn("offset_commit_failed", "error=%s", rd_kafka_err2name(err));
		return;
	}
	kafka_seen(in);
}

/* Finishes a batch: rows stored, dead letters acknowledged, offsets committed (rule 2).
 * 0; -1 when PostgreSQL failed; -2 when the dead-letter topic did. */
static int finish(struct ingest *in, struct batch *b)
{
	if (store_range(in, b, 0, b->n) < 0)
		return -1;
	if (send_dead_letters(in, b) < 0)
		return -2;
	commit_offsets(in, b);
	stats_batch_done(in->st, (uint64_t)(now_us() - b->first_us));
	log_debug("batch_committed", "records=%zu", b->n);
	return 0;
}

/* Rule: at start and on each new UTC day, partitions for yesterday .. a week ahead; daily at
 * retention_hour UTC (or at start if later), query_log_apply_retention(). */
static void maintain(struct ingest *in)
{
	time_t now = time(NULL);
	int64_t today = now / 86400, hour = now % 86400 / 3600;

	if (!in->cfg.maintenance || now < in->maint_retry_s)
		return;
	if (in->partitions_day != today) {
		int created = store_ensure_partitions(in->store, (int32_t)today - 1, 9);
		if (created < 0) {
			in->maint_retry_s = now + MAINT_RETRY_S;
			return;
		}
		in->partitions_day = today;
		atomic_fetch_add(&in->st->partitions_created, (uint64_t)created);
		log_info("partitions_ensured", "from_day=%lld days=9 created=%d",
			 (long long)today - 1, created);
	}
	if (in->cfg.retention_hour >= 0 && hour >= in->cfg.retention_hour &&
	    in->retention_day != today) {
		bool ran;
		long long dropped = 0, deleted = 0;
		if (store_apply_retention(in->store, in->cfg.retention_days, &ran, &dropped,
					  &deleted) < 0) {
			in->maint_retry_s = now + MAINT_RETRY_S;
			return;
		}
		in->retention_day = today;
		if (!ran) {
			log_info("retention_skipped", "reason=\"another logpipe holds the lock\"");
			return;
		}
		atomic_fetch_add(&in->st->retention_runs, 1);
		atomic_fetch_add(&in->st->retention_dropped, (uint64_t)dropped);
		atomic_fetch_add(&in->st->retention_deleted, (uint64_t)deleted);
		log_info("retention_applied", "dropped_partitions=%lld deleted_rows=%lld "
			 "default_days=%d", dropped, deleted, in->cfg.retention_days);
	}
}

static void deadline_after(struct timespec *ts, unsigned ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* The writer's life, one batch at a time:
 *   idle     -> (maintenance every second) until handed a batch
 *   busy     -> finish(); on success or when told to give up: idle again
 *   failing  -> finish() failed: wait (backoff 0.25 s doubling to 10 s), then busy again
 * It owns the store; the consumer thread only hands over batches and waits. */
static void *writer_run(void *arg)
{
	struct ingest *in = arg;
	unsigned backoff_ms = BACKOFF_MIN_MS;
	struct timespec until;

	if (store_connect(in->store) == 0)
		atomic_store(&in->st->db_up, 1);
	pthread_mutex_lock(&in->lock);
	for (;;) {
		if (!in->writer_busy) {
			if (in->writer_exit)
				break;
			pthread_mutex_unlock(&in->lock);
			if (!atomic_load(&in->st->db_up) && store_connect(in->store) == 0 &&
			    !atomic_exchange(&in->st->db_up, 1))
				log_info("db_up");
			if (atomic_load(&in->st->db_up))
				maintain(in);
			pthread_mutex_lock(&in->lock);
			if (!in->writer_busy && !in->writer_exit) {
				deadline_after(&until, 1000);
				pthread_cond_timedwait(&in->changed, &in->lock, &until);
			}
			continue;
		}
		struct batch *b = in->handed;
		int rc = -3;   /* not tried: given up before the attempt */
		if (!in->give_up) {
			pthread_mutex_unlock(&in->lock);
			rc = finish(in, b);
			pthread_mutex_lock(&in->lock);
		}
		if (rc == -1 && atomic_exchange(&in->st->db_up, 0))
			log_warn("db_down", "reason=\"PostgreSQL failed the batch\" records=%zu",
				 b->n);
		if (rc == 0 && !atomic_exchange(&in->st->db_up, 1))
			log_info("db_up");
		if (rc == 0 || in->give_up) {
			if (rc < 0)
				log_warn("batch_dropped", "reason=\"partitions revoked or stopping "
					 "before it was stored\" records=%zu", b->n);
			batch_clear(b, release);
			in->writer_ok = rc == 0;
			in->writer_busy = in->writer_failed = in->give_up = false;
			backoff_ms = BACKOFF_MIN_MS;
			pthread_cond_broadcast(&in->changed);
			continue;
		}
		in->writer_failed = true;
		pthread_cond_broadcast(&in->changed);
		deadline_after(&until, backoff_ms);
		while (!in->give_up && pthread_cond_timedwait(&in->changed, &in->lock, &until) == 0)
			;
		backoff_ms = backoff_ms * 2 < BACKOFF_MAX_MS ? backoff_ms * 2 : BACKOFF_MAX_MS;
	}
	pthread_mutex_unlock(&in->lock);
	return NULL;
}

/* --- the consumer: Kafka into batches ------------------------------------------------- */

static void take(struct ingest *in, rd_kafka_message_t *m)
{
	struct qlog_record r;
	char err[256], row[ROW_MAX];
	const char *why = NULL;
	int len = 0, rc;

	atomic_fetch_add_explicit(&in->st->consumed, 1, memory_order_relaxed);
	if (qlog_decode_json(m->payload, m->len, &r, err, sizeof err) < 0)
		rc = batch_add_dead(in->filling, m->partition, m->offset, m, DEAD_DECODE + 1, err,
				    now_us());
	else if ((len = row_format(&r, row, sizeof row, &why)) < 0)
		rc = batch_add_dead(in->filling, m->partition, m->offset, m, DEAD_TEXT + 1,
				    why ? why : "row too long", now_us());
	else
		rc = batch_add(in->filling, m->partition, m->offset, m, row, (size_t)len,
			       row_day(r.ts_us), now_us());
	if (rc < 0) {
		/* Out of memory: the record is not committed, so it comes again after a restart. */
		log_err("batch_no_memory", "partition=%d offset=%lld", (int)m->partition,
			(long long)m->offset);
		rd_kafka_message_destroy(m);
		atomic_store(&in->stopping, true);
	}
}

/* Hands the filling batch to the writer if it is idle; true if it did. */
static bool hand_over(struct ingest *in)
{
	bool handed = false;
	pthread_mutex_lock(&in->lock);
	if (!in->writer_busy) {
		struct batch *t = in->handed;
		in->handed = in->filling;
		in->filling = t;
		in->writer_busy = true;
		handed = true;
		pthread_cond_broadcast(&in->changed);
	}
	pthread_mutex_unlock(&in->lock);
	return handed;
}

/* Waits until the writer is idle. If its batch cannot be stored now (a failed attempt), tells
 * it to drop the batch. Returns true if the writer's last batch was stored. */
static bool writer_drain(struct ingest *in)
{
	pthread_mutex_lock(&in->lock);
	while (in->writer_busy) {
		if (in->writer_failed && !in->give_up) {
			in->give_up = true;
			pthread_cond_broadcast(&in->changed);
		}
		pthread_cond_wait(&in->changed, &in->lock);
	}
	bool ok = in->writer_ok;
	pthread_mutex_unlock(&in->lock);
	return ok;
}

/* Before the partitions go (revoke, stop): the batch in the writer and the one filling are
 * stored, or dropped uncommitted for the next owner (rule 3). Dropping the writer's batch
 * drops the filling one too: its offsets lie beyond, and committing them would skip it. */
static void finish_or_drop(struct ingest *in)
{
	bool ok = writer_drain(in);
	if (ok && in->filling->n && hand_over(in))
		ok = writer_drain(in);
	if (in->filling->n) {
		log_warn("batch_dropped", "reason=\"partitions revoked or stopping before it was "
			 "stored\" records=%zu", in->filling->n);
		batch_clear(in->filling, release);
	}
	(void)ok;
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	struct ingest *in = opaque;
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
		rd_kafka_assign(rk, parts);
		atomic_store(&in->st->assigned, parts->cnt);
		in->paused = false;
		atomic_store(&in->st->paused, 0);
		log_info("partitions_assigned", "count=%d", parts->cnt);
		return;
	}
	/* Revoked (or an error): the batches must be finished or dropped before the partitions
	 * go, else their offsets could be committed after another process has them. */
	finish_or_drop(in);
	rd_kafka_assign(rk, NULL);
	atomic_store(&in->st->assigned, 0);
	log_info("partitions_revoked", "count=%d error=%s", parts ? parts->cnt : 0,
		 rd_kafka_err2name(err));
}

static void update_lag(struct ingest *in)
{
	rd_kafka_topic_partition_list_t *parts = NULL;
	if (rd_kafka_assignment(in->rk, &parts) != RD_KAFKA_RESP_ERR_NO_ERROR || !parts)
		return;
	atomic_store(&in->st->assigned, parts->cnt);
	int64_t lag = 0;
	if (parts->cnt && rd_kafka_position(in->rk, parts) == RD_KAFKA_RESP_ERR_NO_ERROR) {
		for (int i = 0; i < parts->cnt; i++) {
			int64_t low, high;
			const rd_kafka_topic_partition_t *p = &parts->elems[i];
			/* Cached from fetch responses: no request to the broker. */
			if (rd_kafka_get_watermark_offsets(in->rk, p->topic, p->partition, &low,
							   &high) != RD_KAFKA_RESP_ERR_NO_ERROR ||
			    high < 0 || p->offset < 0) {
				lag = -1;
				break;
			}
			lag += high > p->offset ? high - p->offset : 0;
		}
	}
	atomic_store(&in->st->lag, lag);
	rd_kafka_topic_partition_list_destroy(parts);
}

/* The consumer's loop: poll, decode into the filling batch, hand a due batch to the writer.
 * While the writer is busy with the previous batch, a due batch waits (and Kafka with it):
 * at most two batches are in memory. While the writer is failing, the partitions are paused
 * and polling goes on, so the group does not think this process dead. */
static void *consumer_run(void *arg)
{
	struct ingest *in = arg;
	int64_t max_us = (int64_t)in->cfg.batch_ms * 1000;

	while (!atomic_load(&in->stopping)) {
		int64_t now = now_us();
		bool due = batch_due(in->filling, in->cfg.batch_records, max_us, now) &&
			   !hand_over(in);
		int timeout_ms = 100;
		if (due) {
			pthread_mutex_lock(&in->lock);
			bool failing = in->writer_failed;
			if (!failing && in->writer_busy) {
				struct timespec until;
				deadline_after(&until, 100);
				pthread_cond_timedwait(&in->changed, &in->lock, &until);
			}
			pthread_mutex_unlock(&in->lock);
			set_paused(in, failing);
			timeout_ms = failing ? 100 : 0;
		} else {
			set_paused(in, false);
			if (in->filling->n) {
				int64_t left = in->filling->first_us + max_us - now;
				timeout_ms = left <= 0 ? 0 : left < 100000 ? (int)(left / 1000) : 100;
			}
		}
		rd_kafka_message_t *m = rd_kafka_consumer_poll(in->rk, timeout_ms);
		if (m && m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				log_warn("kafka_consume_error", "error=%s", rd_kafka_err2name(m->err));
			rd_kafka_message_destroy(m);
		} else if (m) {
			kafka_seen(in);
			take(in, m);
		}
		if (now - in->lag_at_us > 1000000) {
			update_lag(in);
			in->lag_at_us = now;
		}
	}
	finish_or_drop(in);
	rd_kafka_consumer_close(in->rk);
	return NULL;
}

static rd_kafka_conf_t *kafka_conf(struct ingest *in, const char *const kv[][2], size_t n)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	rd_kafka_conf_set_opaque(conf, in);
	rd_kafka_conf_set_log_cb(conf, on_kafka_log);
	rd_kafka_conf_set_error_cb(conf, on_kafka_error);
	for (size_t i = 0; i < n; i++) {
		if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], err, sizeof err) !=
		    RD_KAFKA_CONF_OK) {
			log_err("kafka_config_refused", "key=%s error=\"%s\"", kv[i][0], err);
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	}
	return conf;
}

struct ingest *ingest_start(const struct ingest_config *cfg, struct stats *st)
{
	char err[512], session[16];
	struct ingest *in = calloc(1, sizeof *in);
	if (!in)
		return NULL;
	in->cfg = *cfg;
	in->st = st;
	batch_init(&in->batches[0]);
	batch_init(&in->batches[1]);
	in->filling = &in->batches[0];
	in->handed = &in->batches[1];
	pthread_mutex_init(&in->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&in->changed, &ca);
	pthread_condattr_destroy(&ca);
	snprintf(session, sizeof session, "%u", cfg->session_timeout_ms);

	const char *const consumer_kv[][2] = {
		{ "bootstrap.servers", cfg->brokers },
		{ "group.id", cfg->group_id },
		{ "client.id", "aegis-logpipe" },
		/* Offsets move only by rd_kafka_commit(), after the transaction (rule 2). */
		{ "enable.auto.commit", "false" },
		{ "enable.auto.offset.store", "false" },
		{ "auto.offset.reset", "earliest" },
		{ "session.timeout.ms", session },
		{ "heartbeat.interval.ms", "1000" },
		/* Eager assignment: on a rebalance every partition is revoked and reassigned, so
		 * fetching restarts from committed offsets (rule 3). */
		{ "partition.assignment.strategy", "range,roundrobin" },
	};
	const char *const producer_kv[][2] = {
		{ "bootstrap.servers", cfg->brokers },
		{ "client.id", "aegis-logpipe-dead-letters" },
		{ "enable.idempotence", "true" },
		{ "acks", "all" },
		/* Retried until Kafka takes it: the offsets behind it wait (rule 2). */
		{ "message.timeout.ms", "0" },
		{ "linger.ms", "5" },
	};
	rd_kafka_conf_t *cc = kafka_conf(in, consumer_kv, sizeof consumer_kv / sizeof *consumer_kv);
	if (cc)
		rd_kafka_conf_set_rebalance_cb(cc, on_rebalance);
	rd_kafka_conf_t *pc = kafka_conf(in, producer_kv, sizeof producer_kv / sizeof *producer_kv);
	if (pc)
		rd_kafka_conf_set_dr_msg_cb(pc, on_dead_letter_delivered);
	if (!cc || !pc) {
		if (cc)
			rd_kafka_conf_destroy(cc);
		if (pc)
			rd_kafka_conf_destroy(pc);
		free(in);
		return NULL;
	}
	in->store = store_new(cfg->dsn);
	in->rk = in->store ? rd_kafka_new(RD_KAFKA_CONSUMER, cc, err, sizeof err) : NULL;
	if (!in->rk) {
		rd_kafka_conf_destroy(cc);
		rd_kafka_conf_destroy(pc);
		goto fail;
	}
	in->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, pc, err, sizeof err);
	if (!in->dlq) {
		rd_kafka_conf_destroy(pc);
		goto fail;
	}
	in->dlq_topic = rd_kafka_topic_new(in->dlq, cfg->dead_letter_topic, NULL);
	rd_kafka_poll_set_consumer(in->rk);
	rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, cfg->topic, RD_KAFKA_PARTITION_UA);
	rd_kafka_resp_err_t e = rd_kafka_subscribe(in->rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (!in->dlq_topic || e) {
		snprintf(err, sizeof err, "%s", e ? rd_kafka_err2str(e) : "dead-letter topic");
		goto fail;
	}
	if (pthread_create(&in->writer, NULL, writer_run, in) != 0) {
		snprintf(err, sizeof err, "no thread");
		goto fail;
	}
	in->writer_started = true;
	if (pthread_create(&in->consumer, NULL, consumer_run, in) != 0) {
		snprintf(err, sizeof err, "no thread");
		goto fail;
	}
	in->consumer_started = true;
	log_info("ingest_started", "topic=%s group=%s dead_letter_topic=%s batch_records=%u "
		 "batch_ms=%u", cfg->topic, cfg->group_id, cfg->dead_letter_topic,
		 cfg->batch_records, cfg->batch_ms);
	return in;
fail:
	log_err("ingest_start_failed", "error=\"%s\"", err);
	ingest_stop(in);
	return NULL;
}

void ingest_stop(struct ingest *in)
{
	if (!in)
		return;
	atomic_store(&in->stopping, true);
	if (in->consumer_started)
		pthread_join(in->consumer, NULL);
	if (in->writer_started) {
		pthread_mutex_lock(&in->lock);
		in->writer_exit = true;
		pthread_cond_broadcast(&in->changed);
		pthread_mutex_unlock(&in->lock);
		pthread_join(in->writer, NULL);
	}
	if (in->dlq)
		rd_kafka_flush(in->dlq, 5000);
	if (in->dlq_topic)
		rd_kafka_topic_destroy(in->dlq_topic);
	if (in->dlq)
		rd_kafka_destroy(in->dlq);
	if (in->rk)
		rd_kafka_destroy(in->rk);
	store_free(in->store);
	batch_free(&in->batches[0], release);
	batch_free(&in->batches[1], release);
	pthread_cond_destroy(&in->changed);
	pthread_mutex_destroy(&in->lock);
	free(in);
	log_info("ingest_stopped");
}
