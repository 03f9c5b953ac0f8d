/* querylog_kafka.c -- librdkafka producer, delivery reports and spool replay on the sink thread. */
#include "querylog_kafka.h"

#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "qlog.h"
#include "querylog.h"
#include "spool.h"

/* What becomes of a record the querylog hands to this sink (quoted in docs/querylog.md):
 * 1. It is encoded; a record the encoder refuses is lost (dropped_invalid).
 * 2. While the spool holds nothing and the broker is not known to be down, it is produced
 *    directly. If librdkafka's queue is full or the producer refuses it, the sink starts
 *    spooling with this record.
 * 3. While spooling, every new record is appended to the spool, behind the ones already there,
 *    so records leave in the order they came. A full spool drops it (dropped_spool_full), and a
 *    warning says how many at most every 10 s.
 * 4. A produced record whose delivery fails after librdkafka's retries (message.timeout.ms),
 *    or is purged at shutdown, is appended to the spool and the sink starts spooling. An error
 *    of the message itself (too large, invalid) would fail again: it is dropped
 *    (dropped_rejected).
 * 5. While spooling, the spool is replayed in batches of up to REPLAY_MAX records (a few while
 *    the broker is down: the batch is the probe that finds it back). The spool's cursor moves
 *    past a record only once its delivery is confirmed; a failed batch is retried after
 *    RETRY_MS, re-sending only the records not yet confirmed.
 * 6. Once the spool is empty and the broker is not down, new records go directly again.
 * At shutdown, records librdkafka still holds are given up to CLOSE_WAIT_MS, then purged into
 * the spool, so a restart replays them. */

#define REPLAY_MAX       50000   /* a batch's tail waits linger.ms: big batches */
#define REPLAY_PROBE     16               /* replay batch while the broker is down */
#define REPLAY_BYTES     (32u << 20)
#define RETRY_MS         1000
#define CLOSE_WAIT_MS    3000
#define LOG_EVERY_S      10
#define FRAME_MAX        (1 + QLOG_UUID_TEXT + QLOG_JSON_MAX)

enum slot_state { SLOT_INFLIGHT, SLOT_DONE, SLOT_FAILED };

/* One spooled record of the replay batch in flight. */
struct slot {
	struct spool_pos end;
	uint8_t state;
};

struct counters {
	_Atomic uint64_t produced, delivered, spooled, replayed;
	_Atomic uint64_t dropped_spool_full, dropped_spool_error, dropped_rejected, dropped_invalid;
	_Atomic uint64_t spool_bytes, spool_corrupt, outq, latency_us_sum, latency_count;
	_Atomic bool broker_up;
};

struct kafka_sink {
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;
	struct spool *spool;
	char *topic;
	bool spooling;          /* new records go to the spool */
	bool broker_down;       /* all brokers down, per the error callback, until a delivery */
	bool closing;           /* no new replay batch */
	bool fatal;             /* the producer hit a fatal (idempotence) error: recreate it */
	int lost;               /* records lost during the current call, for its return value */
	/* replay: nslots slots from the spool's cursor on; outstanding of them in flight */
	struct slot *slots;
	size_t nslots, outstanding;
	bool batch_sent;
	struct timespec retry_at;
	/* reporting of spool-full drops: the first at once, then at most every LOG_EVERY_S */
	uint64_t reported_full;
	uint64_t spool_write_lost;  /* spool_stats.write_lost already counted */
	struct timespec reported_at;
	rd_kafka_conf_t *conf;  /* template for recreating the producer */
	struct counters c;
	uint8_t frame[FRAME_MAX];
	uint8_t spooled_rec[SPOOL_RECORD_MAX];
};

static void add(_Atomic uint64_t *counter, uint64_t n)
{
	atomic_fetch_add_explicit(counter, n, memory_order_relaxed);
}

static void set(_Atomic uint64_t *gauge, uint64_t v)
{
	atomic_store_explicit(gauge, v, memory_order_relaxed);
}

static long ms_since(const struct timespec *t)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static void start_spooling(struct kafka_sink *ks, const char *why)
{
	if (ks->spooling)
		return;
	ks->spooling = true;
	log_warn("querylog_kafka_spooling", "topic=%s reason=\"%s\"", ks->topic, why);
}

/* Errors of the message itself: sending it again cannot succeed. */
static bool permanent(rd_kafka_resp_err_t err)
{
	return err == RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE ||
	       err == RD_KAFKA_RESP_ERR_INVALID_MSG || err == RD_KAFKA_RESP_ERR_INVALID_RECORD;
}

static void rejected(struct kafka_sink *ks, rd_kafka_resp_err_t err)
{
	ks->lost++;
	if (atomic_fetch_add_explicit(&ks->c.dropped_rejected, 1, memory_order_relaxed) == 0)
		log_err("querylog_kafka_rejected", "topic=%s error=\"%s\"", ks->topic,
			rd_kafka_err2str(err));
}

/* Appends a frame (key length, key, JSON) to the spool; counts and returns false if lost. */
static bool spool_frame(struct kafka_sink *ks, const void *key, size_t klen, const void *val,
			size_t vlen)
{
	if (klen > QLOG_UUID_TEXT || vlen > QLOG_JSON_MAX) {
		/* not a message this sink produced: nothing sane to keep */
		rejected(ks, RD_KAFKA_RESP_ERR_INVALID_MSG);
		return false;
	}
	ks->frame[0] = (uint8_t)klen;
	if (klen)
		memcpy(ks->frame + 1, key, klen);
	memcpy(ks->frame + 1 + klen, val, vlen);
	int rc = spool_append(ks->spool, ks->frame, 1 + klen + vlen);
	if (rc == 0) {
		add(&ks->c.spooled, 1);
		return true;
	}
	ks->lost++;
	add(rc == -ENOSPC ? &ks->c.dropped_spool_full : &ks->c.dropped_spool_error, 1);
	return false;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct kafka_sink *ks = opaque;
	uintptr_t slot = (uintptr_t)m->_private;
	(void)rk;

	if (!m->err) {
		add(&ks->c.delivered, 1);
		int64_t us = rd_kafka_message_latency(m);
		if (us >= 0) {
			add(&ks->c.latency_us_sum, (uint64_t)us);
			add(&ks->c.latency_count, 1);
		}
		if (ks->broker_down) {
			ks->broker_down = false;
			log_info("querylog_kafka_broker_up", "topic=%s", ks->topic);
		}
		atomic_store_explicit(&ks->c.broker_up, true, memory_order_relaxed);
	}
	if (slot) {
		/* a replayed record: its place in the batch */
		struct slot *s = &ks->slots[slot - 1];
		ks->outstanding--;
		if (!m->err)
			add(&ks->c.replayed, 1);
		else if (permanent(m->err))
			rejected(ks, m->err);
		s->state = !m->err || permanent(m->err) ? SLOT_DONE : SLOT_FAILED;
		return;
	}
	if (!m->err)
		return;
	if (permanent(m->err)) {
		rejected(ks, m->err);
		return;
	}
	if (spool_frame(ks, m->key, m->key_len, m->payload, m->len))
		start_spooling(ks, rd_kafka_err2str(m->err));
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	struct kafka_sink *ks = opaque;

	if (err == RD_KAFKA_RESP_ERR__FATAL) {
		char why[512];
		rd_kafka_fatal_error(rk, why, sizeof why);
		log_err("querylog_kafka_fatal", "topic=%s error=\"%s\" action=\"new producer\"",
			ks->topic, why);
		ks->fatal = true;
		return;
	}
	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
		if (!ks->broker_down)
			log_warn("querylog_kafka_broker_down", "topic=%s reason=\"%s\"", ks->topic,
				 reason);
		ks->broker_down = true;
		atomic_store_explicit(&ks->c.broker_up, false, memory_order_relaxed);
		start_spooling(ks, "all brokers down");
		return;
	}
	/* librdkafka suppresses repeats of the same error itself */
	log_warn("querylog_kafka_error", "topic=%s error=\"%s\" reason=\"%s\"", ks->topic,
		 rd_kafka_err2name(err), reason);
}

/* librdkafka's own log, from its threads (the logger is thread-safe). Connection failures
 * (facility FAIL) also reach on_error, which logs them: here they are debug. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	(void)rk;
	if (level <= 4 && strcmp(fac, "FAIL") != 0)
		log_warn("librdkafka", "facility=%s message=\"%s\"", fac, buf);
	else
		log_debug("librdkafka", "facility=%s message=\"%s\"", fac, buf);
}

static rd_kafka_resp_err_t produce(struct kafka_sink *ks, const void *key, size_t klen,
				   const void *val, size_t vlen, uintptr_t slot)
{
	rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
	if (rd_kafka_produce(ks->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)val,
			     vlen, klen ? key : NULL, klen, (void *)slot) < 0)
		err = rd_kafka_last_error();
	else
		add(&ks->c.produced, 1);
	return err;
}

/* Records the spool lost to a failed write since the last look (it logged them). */
static int spool_losses(struct kafka_sink *ks)
{
	struct spool_stats st;
	spool_get_stats(ks->spool, &st);
	uint64_t n = st.write_lost - ks->spool_write_lost;
	ks->spool_write_lost = st.write_lost;
	add(&ks->c.dropped_spool_error, n);
	return (int)n;
}

static int write_batch(void *ctx, const struct qlog_record *recs, size_t n)
{
	struct kafka_sink *ks = ctx;
	char json[QLOG_JSON_MAX], key[QLOG_UUID_TEXT];

	ks->lost = 0;
	for (size_t i = 0; i < n; i++) {
		const struct qlog_record *r = &recs[i];
		int len = qlog_encode_json(r, json, sizeof json);
		if (len < 0) {
			if (atomic_fetch_add_explicit(&ks->c.dropped_invalid, 1,
						      memory_order_relaxed) == 0)
				log_err("querylog_record_invalid", "topic=%s error=\"%s\"",
					ks->topic, strerror(-len));
			ks->lost++;
			continue;
		}
		size_t klen = r->has_tenant ? QLOG_UUID_TEXT : 0;
		if (klen)
			qlog_format_uuid(key, r->tenant_id);
		if (!ks->spooling) {
			rd_kafka_resp_err_t err = produce(ks, key, klen, json, (size_t)len, 0);
			if (!err)
				continue;
			if (permanent(err)) {
				rejected(ks, err);
				continue;
			}
			start_spooling(ks, rd_kafka_err2str(err));
		}
		spool_frame(ks, key, klen, json, (size_t)len);
	}
	rd_kafka_poll(ks->rk, 0);
	return ks->lost + spool_losses(ks);
}

/* The batch is settled: confirm its delivered prefix; keep what follows for a retry. */
static void finish_batch(struct kafka_sink *ks)
{
	size_t ok = 0;

	while (ok < ks->nslots && ks->slots[ok].state == SLOT_DONE)
		ok++;
	if (ok && spool_commit(ks->spool, ks->slots[ok - 1].end) < 0)
		ok = 0;  /* logged; the batch is sent again: duplicates rather than loss */
	memmove(ks->slots, ks->slots + ok, (ks->nslots - ok) * sizeof *ks->slots);
	ks->nslots -= ok;
	ks->batch_sent = false;
	spool_rewind(ks->spool);
	if (ks->nslots)
		clock_gettime(CLOCK_MONOTONIC, &ks->retry_at);
}

/* Sends the next batch from the spool's cursor: first the records of a failed batch that are
 * not yet confirmed (in the same slots), then new ones. */
static void send_batch(struct kafka_sink *ks)
{
	size_t limit = ks->broker_down ? REPLAY_PROBE : REPLAY_MAX, bytes = 0, i = 0;
	size_t retries = ks->nslots;
	int rc = 1;

	if (limit < retries)
		limit = retries;
	ks->outstanding = 0;
	while (i < limit && bytes < REPLAY_BYTES) {
		size_t len;
		struct spool_pos end;
		rc = spool_read(ks->spool, ks->spooled_rec, sizeof ks->spooled_rec, &len, &end);
		if (rc < 0) {
			log_err("querylog_spool_read_failed", "topic=%s error=\"%s\"", ks->topic,
				strerror(-rc));
			break;
		}
		if (rc == 0) {
			/* everything read: with nothing before it, the skipped tail is confirmed */
			if (i == 0 && spool_commit(ks->spool, end) < 0)
				clock_gettime(CLOCK_MONOTONIC, &ks->retry_at);
			break;
		}
		struct slot *s = &ks->slots[i];
		if (i >= retries)
			*s = (struct slot){ .end = end, .state = SLOT_FAILED };
		i++;
		bytes += len;
		if (s->state == SLOT_DONE)
			continue;
		size_t klen = ks->spooled_rec[0];
		if (1 + klen > len) {
			/* a CRC-valid record we did not write: nothing to send */
			s->state = SLOT_DONE;
			rejected(ks, RD_KAFKA_RESP_ERR_INVALID_MSG);
			continue;
		}
		rd_kafka_resp_err_t err = produce(ks, ks->spooled_rec + 1, klen,
						  ks->spooled_rec + 1 + klen, len - 1 - klen, i);
		if (!err) {
			s->state = SLOT_INFLIGHT;
			ks->outstanding++;
		} else if (permanent(err)) {
			s->state = SLOT_DONE;
			rejected(ks, err);
		} else {
			s->state = SLOT_FAILED;
			break;
		}
	}
	ks->nslots = rc == 0 || i > retries ? i : retries;
	ks->batch_sent = ks->nslots > 0;
	if (rc < 0)
		clock_gettime(CLOCK_MONOTONIC, &ks->retry_at);
	if (ks->batch_sent && !ks->outstanding)
		finish_batch(ks);
}

static void replay(struct kafka_sink *ks)
{
	if (ks->batch_sent) {
		if (!ks->outstanding)
			finish_batch(ks);
		return;
	}
	if (ks->closing || !ks->spooling || ms_since(&ks->retry_at) < RETRY_MS)
		return;
	if (spool_empty(ks->spool) && !ks->nslots) {
		if (!ks->broker_down) {
			ks->spooling = false;
			log_info("querylog_kafka_direct", "topic=%s reason=\"spool replayed\"",
				 ks->topic);
		}
		return;
	}
	send_batch(ks);
}

static void report_full(struct kafka_sink *ks, bool final)
{
	uint64_t full = atomic_load_explicit(&ks->c.dropped_spool_full, memory_order_relaxed);
	if (full == ks->reported_full || (!final && ms_since(&ks->reported_at) < LOG_EVERY_S * 1000))
		return;
	struct spool_stats st;
	spool_get_stats(ks->spool, &st);
	log_warn("querylog_spool_full", "topic=%s dropped=%llu total_dropped=%llu spool_bytes=%llu",
		 ks->topic, (unsigned long long)(full - ks->reported_full),
		 (unsigned long long)full, (unsigned long long)st.bytes);
	ks->reported_full = full;
	clock_gettime(CLOCK_MONOTONIC, &ks->reported_at);
}

static void publish_gauges(struct kafka_sink *ks)
{
	struct spool_stats st;
	spool_get_stats(ks->spool, &st);
	set(&ks->c.spool_bytes, st.bytes);
	set(&ks->c.spool_corrupt, st.corrupt);
	set(&ks->c.outq, (uint64_t)rd_kafka_outq_len(ks->rk));
}

static int create_producer(struct kafka_sink *ks, rd_kafka_t **rk, rd_kafka_topic_t **rkt);

/* Gives every message librdkafka holds a delivery report: queued and in-flight ones fail with
 * a purge error and so go to the spool. */
static void purge(struct kafka_sink *ks)
{
	rd_kafka_purge(ks->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	for (int i = 0; i < 100 && rd_kafka_outq_len(ks->rk) > 0; i++)
		rd_kafka_poll(ks->rk, 50);
	rd_kafka_poll(ks->rk, 0);
}

static void destroy_producer(rd_kafka_t *rk, rd_kafka_topic_t *rkt)
{
	rd_kafka_topic_destroy(rkt);
	rd_kafka_destroy(rk);
}

/* After a fatal error the producer refuses everything: what it holds goes to the spool and a
 * new producer (a new idempotence identity) takes over. If none can be made, the old one stays
 * and new records keep going to the spool; the next poll tries again. */
static void replace_producer(struct kafka_sink *ks)
{
	rd_kafka_t *rk;
	rd_kafka_topic_t *rkt;

	start_spooling(ks, "fatal producer error");
	if (ms_since(&ks->retry_at) < RETRY_MS || create_producer(ks, &rk, &rkt) < 0) {
		clock_gettime(CLOCK_MONOTONIC, &ks->retry_at);
		return;
	}
	purge(ks);
	destroy_producer(ks->rk, ks->rkt);
	ks->rk = rk;
	ks->rkt = rkt;
	ks->fatal = false;
	log_info("querylog_kafka_producer_replaced", "topic=%s", ks->topic);
}

static int sink_poll(void *ctx)
{
	struct kafka_sink *ks = ctx;

	ks->lost = 0;
	rd_kafka_poll(ks->rk, 0);
	if (ks->fatal)
		replace_producer(ks);
	replay(ks);
	report_full(ks, false);
	publish_gauges(ks);
	return ks->lost + spool_losses(ks);
}

static int sink_flush(void *ctx)
{
	struct kafka_sink *ks = ctx;

	ks->lost = 0;
	spool_flush(ks->spool);  /* a failure is logged by the spool, counted below */
	rd_kafka_poll(ks->rk, 0);
	return ks->lost + spool_losses(ks);
}

static void sink_close(void *ctx)
{
	struct kafka_sink *ks = ctx;

	ks->closing = true;
	ks->lost = 0;
	if (!ks->broker_down)
		rd_kafka_flush(ks->rk, CLOSE_WAIT_MS);
	purge(ks);
	if (ks->batch_sent && !ks->outstanding)
		finish_batch(ks);
	report_full(ks, true);
	struct spool_stats st;
	spool_get_stats(ks->spool, &st);
	log_info("querylog_kafka_closed", "topic=%s delivered=%llu spooled=%llu replayed=%llu "
		 "lost_at_close=%d spool_bytes=%llu", ks->topic,
		 (unsigned long long)atomic_load(&ks->c.delivered),
		 (unsigned long long)atomic_load(&ks->c.spooled),
		 (unsigned long long)atomic_load(&ks->c.replayed), ks->lost,
		 (unsigned long long)st.bytes);
	destroy_producer(ks->rk, ks->rkt);
	rd_kafka_conf_destroy(ks->conf);
	spool_close(ks->spool);
	free(ks->slots);
	free(ks->topic);
	free(ks);
}

static int create_producer(struct kafka_sink *ks, rd_kafka_t **rk, rd_kafka_topic_t **rkt)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_dup(ks->conf);

	if (!conf)
		return -ENOMEM;
	rd_kafka_conf_set_opaque(conf, ks);
	rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
	rd_kafka_conf_set_error_cb(conf, on_error);
	rd_kafka_conf_set_log_cb(conf, on_log);
	*rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
	if (!*rk) {
		rd_kafka_conf_destroy(conf);
		log_err("querylog_kafka_producer_failed", "error=\"%s\"", err);
		return -EINVAL;
	}
	*rkt = rd_kafka_topic_new(*rk, ks->topic, NULL);
	if (!*rkt) {
		log_err("querylog_kafka_producer_failed", "topic=%s error=\"%s\"", ks->topic,
			rd_kafka_err2str(rd_kafka_last_error()));
		rd_kafka_destroy(*rk);
		return -EINVAL;
	}
	return 0;
}

/* Settings the design relies on (docs/querylog.md); querylog.kafka.properties come after them
 * and may override. */
static const char *const defaults[][2] = {
	{ "enable.idempotence", "true" },
	{ "acks", "all" },
	{ "compression.type", "lz4" },
	{ "linger.ms", "500" },
	{ "batch.num.messages", "10000" },
	{ "batch.size", "1000000" },
	{ "queue.buffering.max.messages", "200000" },
	{ "queue.buffering.max.kbytes", "131072" },
	{ "message.timeout.ms", "120000" },
	{ "socket.keepalive.enable", "true" },
};

static int conf_set(rd_kafka_conf_t *conf, const char *key, const char *val, char *err,
		    size_t errlen)
{
	return rd_kafka_conf_set(conf, key, val, err, errlen) == RD_KAFKA_CONF_OK ? 0 : -EINVAL;
}

/* "key=value" into conf. */
static int conf_set_kv(rd_kafka_conf_t *conf, const char *kv, char *err, size_t errlen)
{
	const char *eq = strchr(kv, '=');
	char key[256];
	if (!eq || eq == kv || (size_t)(eq - kv) >= sizeof key) {
		snprintf(err, errlen, "'%s' is not key=value", kv);
		return -EINVAL;
	}
	memcpy(key, kv, (size_t)(eq - kv));
	key[eq - kv] = '\0';
	return conf_set(conf, key, eq + 1, err, errlen);
}

int querylog_kafka_check_property(const char *kv, char *err, size_t errlen)
{
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	int rc = conf_set_kv(conf, kv, err, errlen);
	rd_kafka_conf_destroy(conf);
	return rc < 0 ? -1 : 0;
}

int querylog_kafka_sink_open(const struct querylog_kafka_config *cfg,
			     struct querylog_sink_ops *ops, void **ctx)
{
	char err[512];
	struct kafka_sink *ks = calloc(1, sizeof *ks);
	int rc = -ENOMEM;

	if (!ks || !(ks->topic = strdup(cfg->topic)) ||
	    !(ks->slots = calloc(REPLAY_MAX, sizeof *ks->slots)) ||
	    !(ks->conf = rd_kafka_conf_new()))
		goto fail;
	rc = -EINVAL;
	if (conf_set(ks->conf, "bootstrap.servers", cfg->brokers, err, sizeof err) < 0)
		goto bad_conf;
	for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
		if (conf_set(ks->conf, defaults[i][0], defaults[i][1], err, sizeof err) < 0)
			goto bad_conf;
	for (size_t i = 0; i < cfg->nproperties; i++)
		if (conf_set_kv(ks->conf, cfg->properties[i], err, sizeof err) < 0)
			goto bad_conf;
	if (!(ks->spool = spool_open(cfg->spool_dir, cfg->spool_max_bytes))) {
		rc = -errno;
		goto fail;
	}
	if ((rc = create_producer(ks, &ks->rk, &ks->rkt)) < 0)
		goto fail;
	atomic_store_explicit(&ks->c.broker_up, true, memory_order_relaxed);
	/* A spool left by the last run is replayed before anything new. */
	if (!spool_empty(ks->spool))
		start_spooling(ks, "spool left by the last run");
	publish_gauges(ks);
	*ops = (struct querylog_sink_ops){
		.write_batch = write_batch,
		.flush = sink_flush,
		.close = sink_close,
		.poll = sink_poll,
	};
	*ctx = ks;
	log_info("querylog_kafka_started", "brokers=%s topic=%s spool=%s spool_max=%llu",
		 cfg->brokers, cfg->topic, cfg->spool_dir,
		 (unsigned long long)cfg->spool_max_bytes);
	return 0;

bad_conf:
	log_err("querylog_kafka_open_failed", "error=\"%s\"", err);
fail:
	if (rc == -ENOMEM)
		log_err("querylog_kafka_open_failed", "error=\"out of memory\"");
	if (ks) {
		spool_close(ks->spool);
		if (ks->conf)
			rd_kafka_conf_destroy(ks->conf);
		free(ks->slots);
		free(ks->topic);
		free(ks);
	}
	return rc;
}

void querylog_kafka_get_stats(void *ctx, struct querylog_kafka_stats *st)
{
	struct counters *c = &((struct kafka_sink *)ctx)->c;
#define LOAD(f) st->f = atomic_load_explicit(&c->f, memory_order_relaxed)
	LOAD(produced);
	LOAD(delivered);
	LOAD(spooled);
	LOAD(replayed);
	LOAD(dropped_spool_full);
	LOAD(dropped_spool_error);
	LOAD(dropped_rejected);
	LOAD(dropped_invalid);
	LOAD(spool_bytes);
	LOAD(spool_corrupt);
	LOAD(outq);
	LOAD(latency_us_sum);
	LOAD(latency_count);
	LOAD(broker_up);
#undef LOAD
}
