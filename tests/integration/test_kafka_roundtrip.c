/* test_kafka_roundtrip.c -- 10,000 records through the real broker with librdkafka:
 * an idempotent acks=all producer, then a consumer group; every record arrives exactly once.
 * Needs AEGIS_KAFKA_BROKERS (scripts/devstack.sh writes it). */
#include <criterion/criterion.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RECORDS 10000

static const char *brokers(void)
{
	const char *b = getenv("AEGIS_KAFKA_BROKERS");
	cr_assert(b && *b, "AEGIS_KAFKA_BROKERS is not set; run under scripts/test.sh");
	return b;
}

static rd_kafka_conf_t *conf_with(const char *const *kv)
{
	char err[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	cr_assert_eq(rd_kafka_conf_set(conf, "bootstrap.servers", brokers(), err, sizeof err),
		     RD_KAFKA_CONF_OK, "%s", err);
	for (; *kv; kv += 2)
		cr_assert_eq(rd_kafka_conf_set(conf, kv[0], kv[1], err, sizeof err),
			     RD_KAFKA_CONF_OK, "%s=%s: %s", kv[0], kv[1], err);
	return conf;
}

struct delivery {
	int ok;
	int failed;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	struct delivery *d = opaque;
	(void)rk;
	if (m->err)
		d->failed++;
	else
		d->ok++;
}

Test(kafka, ten_thousand_records_round_trip_exactly_once, .timeout = 120)
{
	char topic[64], err[512];
	snprintf(topic, sizeof topic, "aegis.test.roundtrip.%ld.%d", (long)time(NULL), getpid());

	static const char *const producer_kv[] = {
		"enable.idempotence", "true", "acks", "all", "compression.type", "lz4",
		"linger.ms", "5", NULL,
	};
	struct delivery d = { 0 };
	rd_kafka_conf_t *pconf = conf_with(producer_kv);
	rd_kafka_conf_set_dr_msg_cb(pconf, on_delivery);
	rd_kafka_conf_set_opaque(pconf, &d);
	rd_kafka_t *producer = rd_kafka_new(RD_KAFKA_PRODUCER, pconf, err, sizeof err);
	cr_assert_not_null(producer, "%s", err);

	for (int i = 0; i < RECORDS; i++) {
		char key[16], value[64];
		snprintf(key, sizeof key, "tenant-%d", i % 7);
		int len = snprintf(value, sizeof value, "{\"seq\":%d}", i);
		rd_kafka_resp_err_t e;
		while ((e = rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic),
					      RD_KAFKA_V_KEY(key, strlen(key)),
					      RD_KAFKA_V_VALUE(value, (size_t)len),
					      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
					      RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
			rd_kafka_poll(producer, 50);
		cr_assert_eq(e, RD_KAFKA_RESP_ERR_NO_ERROR, "produce: %s", rd_kafka_err2str(e));
		rd_kafka_poll(producer, 0);
	}
	cr_assert_eq(rd_kafka_flush(producer, 60000), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_destroy(producer);
	cr_assert_eq(d.failed, 0);
	cr_assert_eq(d.ok, RECORDS);

	static const char *const consumer_kv[] = {
		"group.id", "aegis-test-roundtrip", "auto.offset.reset", "earliest",
		"enable.auto.commit", "false", NULL,
	};
	rd_kafka_t *consumer = rd_kafka_new(RD_KAFKA_CONSUMER, conf_with(consumer_kv), err,
					    sizeof err);
	cr_assert_not_null(consumer, "%s", err);
	rd_kafka_poll_set_consumer(consumer);
	rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(subs, topic, RD_KAFKA_PARTITION_UA);
	cr_assert_eq(rd_kafka_subscribe(consumer, subs), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_topic_partition_list_destroy(subs);

	static unsigned char seen[RECORDS];
	int unique = 0, duplicates = 0, malformed = 0;
	time_t deadline = time(NULL) + 90;
	while (unique < RECORDS && time(NULL) < deadline) {
		rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 500);
		if (!m)
			continue;
		if (!m->err) {
			int seq = -1;
			char buf[64];
			size_t n = m->len < sizeof buf - 1 ? m->len : sizeof buf - 1;
			memcpy(buf, m->payload, n);
			buf[n] = '\0';
			if (sscanf(buf, "{\"seq\":%d}", &seq) != 1 || seq < 0 || seq >= RECORDS)
				malformed++;
			else if (seen[seq]++)
				duplicates++;
			else
				unique++;
		}
		rd_kafka_message_destroy(m);
	}
	cr_assert_eq(rd_kafka_commit(consumer, NULL, 0), RD_KAFKA_RESP_ERR_NO_ERROR);
	rd_kafka_consumer_close(consumer);
	rd_kafka_destroy(consumer);

	cr_assert_eq(malformed, 0);
	cr_assert_eq(duplicates, 0);
	cr_assert_eq(unique, RECORDS, "only %d of %d records arrived", unique, RECORDS);
}
