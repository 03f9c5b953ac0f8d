/* test_logpipe_row.c -- query-log records as COPY text rows for query_log (logpipe/row.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "qlog.h"
#include "row.h"

/* The example of docs/querylog.md, with a few fields replaced by printf arguments. */
static const char record_fmt[] =
	"{\"v\":1,\"event_id\":\"01a21280-45eb-7c3d-9a5e-4b7f2c8d1e60\","
	"\"ts\":\"2026-11-25T11:38:46.123456Z\",\"node\":%s,"
	"\"tenant_id\":%s,\"client_ip\":%s,"
	"\"client_pseudonym\":%s,\"client_port\":53211,\"transport\":\"udp\","
	"\"qname\":%s,\"qtype\":1,\"qtype_name\":\"A\",\"rcode\":%s,"
	"\"rcode_name\":%s,\"action\":%s,\"rule\":%s,\"ede\":15,\"cache_hit\":false,"
	"\"upstream\":%s,\"upstream_latency_us\":%s,\"snapshot\":4211}";

static const char golden_rule[] =
	"{\"kind\":\"category\",\"category\":\"malware\",\"mode\":\"block\","
	"\"matched\":\"evil.example\",\"list_id\":null,"
	"\"feed_id\":\"7d0c4b2a-1e3f-4a5b-8c6d-9e0f1a2b3c4d\"}";

struct fields {
	const char *node, *tenant, *client, *pseudonym, *qname, *rcode, *rcode_name, *action,
		*rule, *upstream, *latency;
};

static struct fields golden(void)
{
	return (struct fields){ "\"res1.lon\"", "\"3f2a6c1e-8d4b-4e0a-9c71-5b2d8e4f6a10\"",
				"\"192.0.2.44\"", "null", "\"cdn.malware.evil.example\"", "3",
				"\"NXDOMAIN\"", "\"block\"", golden_rule, "null", "null" };
}

static void decode(const struct fields *f, struct qlog_record *r)
{
	char json[QLOG_JSON_MAX], err[256] = "";
	snprintf(json, sizeof json, record_fmt, f->node, f->tenant, f->client, f->pseudonym,
		 f->qname, f->rcode, f->rcode_name, f->action, f->rule, f->upstream, f->latency);
	cr_assert_eq(qlog_decode_json(json, strlen(json), r, err, sizeof err), 0, "%s", err);
}

static void check_row(const struct fields *f, const char *want)
{
	struct qlog_record r;
	char row[ROW_MAX];
	const char *why = NULL;
	decode(f, &r);
	int n = row_format(&r, row, sizeof row, &why);
	cr_assert_gt(n, 0, "%s", why ? why : "");
	cr_assert_eq((size_t)n, strlen(want));
	cr_assert(memcmp(row, want, (size_t)n) == 0, "got  %.*s\nwant %s", n, row, want);
}

Test(logpipe_row, the_documented_example)
{
	struct fields f = golden();
	check_row(&f, "2026-11-25 11:38:46.123456+00\t01a21280-45eb-7c3d-9a5e-4b7f2c8d1e60\t"
		      "res1.lon\t3f2a6c1e-8d4b-4e0a-9c71-5b2d8e4f6a10\t192.0.2.44\t\\N\t53211\t"
		      "udp\tcdn.malware.evil.example\t1\t3\tblock\t\\N\t"
		      "7d0c4b2a-1e3f-4a5b-8c6d-9e0f1a2b3c4d\tevil.example\tmalware\tblock\t15\tf\t"
		      "\\N\t\\N\t4211\tcategory\n");
}

Test(logpipe_row, absent_values_are_null_and_the_rule_kind_is_kept)
{
	struct fields f = golden();
	f.tenant = "null";
	f.client = "null";
	f.pseudonym = "\"a3f1a3f1\"";
	f.rcode = "null";
	f.rcode_name = "null";
	f.action = "\"ratelimited\"";
	f.rule = "{\"kind\":\"tenant_deny\",\"category\":null,\"mode\":null,"
		 "\"matched\":\"Games.example\",\"list_id\":\"0c9e8d7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f\","
		 "\"feed_id\":null}";
	f.upstream = "\"[2001:db8::53]:53\"";
	f.latency = "1200";
	check_row(&f, "2026-11-25 11:38:46.123456+00\t01a21280-45eb-7c3d-9a5e-4b7f2c8d1e60\t"
		      "res1.lon\t\\N\t\\N\ta3f1a3f1\t53211\tudp\tcdn.malware.evil.example\t1\t\\N\t"
		      "ratelimited\t0c9e8d7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f\t\\N\tGames.example\t\\N\t"
		      "\\N\t15\tf\t[2001:db8::53]:53\t1200\t4211\ttenant_deny\n");
}

Test(logpipe_row, qname_is_lowercased_and_its_escapes_survive_copy)
{
	struct fields f = golden();
	f.rule = "null";
	f.action = "\"allow\"";
	/* Labels "a.b" and "Ex\xffample", a backslash label, as presentation format in JSON. */
	f.qname = "\"a\\\\.b.Ex\\\\255AMPLE.\\\\\\\\.COM\"";
	check_row(&f, "2026-11-25 11:38:46.123456+00\t01a21280-45eb-7c3d-9a5e-4b7f2c8d1e60\t"
		      "res1.lon\t3f2a6c1e-8d4b-4e0a-9c71-5b2d8e4f6a10\t192.0.2.44\t\\N\t53211\t"
		      "udp\ta\\\\.b.ex\\\\255ample.\\\\\\\\.com\t1\t3\tallow\t\\N\t\\N\t\\N\t\\N\t"
		      "\\N\t15\tf\t\\N\t\\N\t4211\t\\N\n");
}

Test(logpipe_row, root_and_empty_names)
{
	struct fields f = golden();
	f.rule = "null";
	f.qname = "\".\"";
	struct qlog_record r;
	char row[ROW_MAX];
	const char *why;
	decode(&f, &r);
	cr_assert_gt(row_format(&r, row, sizeof row, &why), 0);
	cr_assert(strstr(row, "\tudp\t.\t1\t"), "%s", row);
	f.qname = "\"\"";
	decode(&f, &r);
	cr_assert_gt(row_format(&r, row, sizeof row, &why), 0);
	cr_assert(strstr(row, "\tudp\t\t1\t"), "%s", row);
}

Test(logpipe_row, truncated_client_keeps_its_prefix)
{
	struct fields f = golden();
	f.client = "\"10.1.2.0/24\"";
	struct qlog_record r;
	char row[ROW_MAX];
	const char *why;
	decode(&f, &r);
	cr_assert_gt(row_format(&r, row, sizeof row, &why), 0);
	cr_assert(strstr(row, "\t10.1.2.0/24\t\\N\t53211\t"), "%s", row);
}

Test(logpipe_row, control_bytes_in_text_are_escaped_for_copy)
{
	struct fields f = golden();
	f.node = "\"a\\tb\\nc\\\\d\"";
	struct qlog_record r;
	char row[ROW_MAX];
	const char *why;
	decode(&f, &r);
	cr_assert_gt(row_format(&r, row, sizeof row, &why), 0);
	cr_assert(strstr(row, "\ta\\tb\\nc\\\\d\t"), "%s", row);
}

Test(logpipe_row, text_that_postgresql_cannot_hold_is_refused)
{
	struct fields f = golden();
	struct qlog_record r;
	char row[ROW_MAX];
	const char *why = NULL;

	f.node = "\"r\\u00c3\\u00a9s1\""; /* "rés1" in UTF-8: fine */
	decode(&f, &r);
	cr_assert_gt(row_format(&r, row, sizeof row, &why), 0);
	f.node = "\"r\\u00e9s1\"";        /* a lone Latin-1 byte */
	decode(&f, &r);
	cr_assert_eq(row_format(&r, row, sizeof row, &why), -EINVAL);
	cr_assert_str_eq(why, "node: not UTF-8 text");
	f.node = "\"r\\u00ed\\u00a0\\u0080\""; /* a UTF-16 surrogate, U+D800 */
	decode(&f, &r);
	cr_assert_eq(row_format(&r, row, sizeof row, &why), -EINVAL);
	f = golden();
	f.rule = "{\"kind\":\"category\",\"category\":\"mal\\u00c0\\u0080\",\"mode\":\"block\","
		 "\"matched\":\"evil.example\",\"list_id\":null,\"feed_id\":null}"; /* overlong */
	decode(&f, &r);
	cr_assert_eq(row_format(&r, row, sizeof row, &why), -EINVAL);
	cr_assert_str_eq(why, "rule.category: not UTF-8 text");
}

Test(logpipe_row, a_small_buffer_is_reported)
{
	struct fields f = golden();
	struct qlog_record r;
	char row[64];
	const char *why;
	decode(&f, &r);
	cr_assert_eq(row_format(&r, row, sizeof row, &why), -ENOSPC);
}

Test(logpipe_row, the_longest_record_fits)
{
	struct qlog_record r;
	memset(&r, 0, sizeof r);
	r.client.family = 2; /* AF_INET */
	r.client.prefix = 32;
	memset(r.node, 0x7f, QLOG_NODE_MAX);
	/* Names of 63-byte labels of byte 0xff: every byte becomes \\255 in COPY text. */
	for (int i = 0; i < 4; i++) {
		uint8_t *q = r.qname + 64 * i, *m = r.rule.matched + 64 * i;
		*q = *m = i < 3 ? 63 : 61;
		memset(q + 1, 0xff, *q);
		memset(m + 1, 0xff, *m);
	}
	r.qname_len = r.rule.matched_len = 255;
	r.rule.kind = QLOG_RULE_NATIONAL_BLOCK;
	char row[ROW_MAX];
	const char *why;
	cr_assert_gt(row_format(&r, row, sizeof row, &why), 4 * 250);
}

Test(logpipe_row, days_are_utc_days_since_the_epoch)
{
	cr_assert_eq(row_day(0), 0);
	cr_assert_eq(row_day(86400000000LL - 1), 0);
	cr_assert_eq(row_day(86400000000LL), 1);
	cr_assert_eq(row_day(1795520326123456LL), 20781); /* 2026-11-25 */
	cr_assert_eq(row_day(-1), -1);
}
