/* test_qlog.c -- the query-log record: encoder, decoder, round trips, strictness, event ids. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "qlog.h"

/* The example of docs/querylog.md: keep both in step. */
static const char golden_json[] =
	"{\"v\":1,\"event_id\":\"01a21280-45eb-7c3d-9a5e-4b7f2c8d1e60\","
	"\"ts\":\"2026-11-25T11:38:46.123456Z\",\"node\":\"res1.lon\","
	"\"tenant_id\":\"3f2a6c1e-8d4b-4e0a-9c71-5b2d8e4f6a10\",\"client_ip\":\"192.0.2.44\","
	"\"client_pseudonym\":null,\"client_port\":53211,\"transport\":\"udp\","
	"\"qname\":\"cdn.malware.evil.example\",\"qtype\":1,\"qtype_name\":\"A\",\"rcode\":3,"
	"\"rcode_name\":\"NXDOMAIN\",\"action\":\"block\",\"rule\":{\"kind\":\"category\","
	"\"category\":\"malware\",\"mode\":\"block\",\"matched\":\"evil.example\",\"list_id\":null,"
	"\"feed_id\":\"7d0c4b2a-1e3f-4a5b-8c6d-9e0f1a2b3c4d\"},\"ede\":15,\"cache_hit\":false,"
	"\"upstream\":null,\"upstream_latency_us\":null,\"snapshot\":4211}";

static void set_name(uint8_t *wire, uint8_t *len, const char *text)
{
	ldns_rdf *rdf = NULL;

	cr_assert_eq(ldns_str2rdf_dname(&rdf, text), LDNS_STATUS_OK, "%s", text);
	cr_assert_leq(ldns_rdf_size(rdf), QLOG_NAME_MAX);
	memcpy(wire, ldns_rdf_data(rdf), ldns_rdf_size(rdf));
	*len = (uint8_t)ldns_rdf_size(rdf);
	ldns_rdf_deep_free(rdf);
}

static void set_uuid(uint8_t out[16], const char *hex32)
{
	for (int i = 0; i < 16; i++) {
		unsigned v;
		cr_assert_eq(sscanf(hex32 + 2 * i, "%2x", &v), 1);
		out[i] = (uint8_t)v;
	}
}

static void set_ip(struct qlog_addr *a, int family, const char *text, unsigned prefix)
{
	memset(a, 0, sizeof *a);
	a->family = (uint8_t)family;
	a->prefix = (uint8_t)prefix;
	cr_assert_eq(inet_pton(family, text, a->addr), 1, "%s", text);
}

static void golden_record(struct qlog_record *r)
{
	memset(r, 0, sizeof *r);
	r->ts_us = 1795606726123456LL;
	set_uuid(r->event_id, "01a2128045eb7c3d9a5e4b7f2c8d1e60");
	strcpy(r->node, "res1.lon");
	r->has_tenant = true;
	set_uuid(r->tenant_id, "3f2a6c1e8d4b4e0a9c715b2d8e4f6a10");
	set_ip(&r->client, AF_INET, "192.0.2.44", 32);
	r->client_port = 53211;
	r->transport = QLOG_TRANSPORT_UDP;
	set_name(r->qname, &r->qname_len, "cdn.malware.evil.example.");
	r->qtype = 1;
	r->has_rcode = true;
	r->rcode = 3;
	r->action = QLOG_ACTION_BLOCK;
	r->rule.kind = QLOG_RULE_CATEGORY;
	strcpy(r->rule.category, "malware");
	r->rule.mode = QLOG_MODE_BLOCK;
	set_name(r->rule.matched, &r->rule.matched_len, "evil.example.");
	r->rule.has_feed_id = true;
	set_uuid(r->rule.feed_id, "7d0c4b2a1e3f4a5b8c6d9e0f1a2b3c4d");
	r->has_ede = true;
	r->ede = 15;
	r->snapshot = 4211;
}

static int encode(const struct qlog_record *r, char *buf)
{
	return qlog_encode_json(r, buf, QLOG_JSON_MAX);
}

/* Encodes, decodes, compares the structs byte for byte, and re-encodes to the same text. */
static void assert_round_trip(const struct qlog_record *r)
{
	char buf[QLOG_JSON_MAX], again[QLOG_JSON_MAX], err[256] = "";
	struct qlog_record back;

	int n = encode(r, buf);
	cr_assert_gt(n, 0, "encode: %d", n);
	cr_assert_eq(strlen(buf), (size_t)n);
	for (int i = 0; i < n; i++)
		cr_assert(buf[i] >= 0x20 && buf[i] < 0x7f, "non-printable ASCII at %d: %s", i, buf);
	int rc = qlog_decode_json(buf, (size_t)n, &back, err, sizeof err);
	cr_assert_eq(rc, 0, "decode %s: %s", buf, err);
	cr_assert(memcmp(r, &back, sizeof back) == 0, "struct differs after %s", buf);
	cr_assert_eq(encode(&back, again), n);
	cr_assert_str_eq(again, buf);
}

/* Decodes text and asserts it is refused with a message starting with want. */
static void assert_refused(const char *text, const char *want)
{
	struct qlog_record r;
	char err[256] = "";

	cr_assert_eq(qlog_decode_json(text, strlen(text), &r, err, sizeof err), -EINVAL,
		     "accepted: %s", text);
	cr_assert(strncmp(err, want, strlen(want)) == 0, "error \"%s\", wanted \"%s\" for %s",
		  err, want, text);
}

/* The golden record with obj[key] (or obj.rule[key] when in_rule) replaced by value (a JSON
 * text; NULL removes the key), serialised. Caller frees. */
static char *golden_with(const char *key, const char *value, bool in_rule)
{
	json_error_t jerr;
	json_t *root = json_loads(golden_json, 0, &jerr);
	cr_assert(root, "%s", jerr.text);
	json_t *obj = in_rule ? json_object_get(root, "rule") : root;
	if (value) {
		json_t *v = json_loads(value, JSON_DECODE_ANY, &jerr);
		cr_assert(v, "%s: %s", value, jerr.text);
		json_object_set_new(obj, key, v);
	} else {
		json_object_del(obj, key);
	}
	char *text = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return text;
}

Test(qlog, encodes_the_documented_example)
{
	struct qlog_record r;
	char buf[QLOG_JSON_MAX];

	golden_record(&r);
	cr_assert_eq(encode(&r, buf), (int)strlen(golden_json));
	cr_assert_str_eq(buf, golden_json);
	assert_round_trip(&r);
}

Test(qlog, encodes_nulls_prefixes_and_upstreams)
{
	struct qlog_record r;
	char buf[QLOG_JSON_MAX];

	golden_record(&r);
	r.has_tenant = r.has_rcode = r.has_ede = false;
	r.rcode = r.ede = 0;
	memset(&r.rule, 0, sizeof r.rule);
	memset(r.tenant_id, 0, sizeof r.tenant_id);
	memset(&r.client, 0, sizeof r.client);
	r.client_pseudonym_len = 4;
	memcpy(r.client_pseudonym, "\x00\xab\xcd\xff", 4);
	set_ip(&r.upstream, AF_INET6, "2001:db8::53", 128);
	r.upstream_port = 5353;
	r.has_latency = true;
	r.upstream_latency_us = 1834;
	r.cache_hit = true;
	r.action = QLOG_ACTION_RATELIMITED;
	r.transport = QLOG_TRANSPORT_DOH;
	cr_assert_gt(encode(&r, buf), 0);
	cr_assert(strstr(buf, "\"tenant_id\":null,\"client_ip\":null,"
			      "\"client_pseudonym\":\"00abcdff\","));
	cr_assert(strstr(buf, "\"rcode\":null,\"rcode_name\":null,\"action\":\"ratelimited\","
			      "\"rule\":null,\"ede\":null,\"cache_hit\":true,"
			      "\"upstream\":\"[2001:db8::53]:5353\",\"upstream_latency_us\":1834,"));
	cr_assert(strstr(buf, "\"transport\":\"doh\""));
	assert_round_trip(&r);

	memset(r.client_pseudonym, 0, sizeof r.client_pseudonym);
	r.client_pseudonym_len = 0;
	set_ip(&r.client, AF_INET, "10.1.2.0", 24);
	set_ip(&r.upstream, AF_INET, "127.0.0.1", 32);
	cr_assert_gt(encode(&r, buf), 0);
	cr_assert(strstr(buf, "\"client_ip\":\"10.1.2.0/24\""));
	cr_assert(strstr(buf, "\"upstream\":\"127.0.0.1:5353\""));
	assert_round_trip(&r);
	set_ip(&r.client, AF_INET6, "2001:db8:1::", 48);
	cr_assert_gt(encode(&r, buf), 0);
	cr_assert(strstr(buf, "\"client_ip\":\"2001:db8:1::/48\""));
	assert_round_trip(&r);
}

Test(qlog, round_trips_every_field_combination)
{
	unsigned i = 0, valid = 0;

	for (unsigned action = 0; action <= QLOG_ACTION_ERROR; action++)
	for (unsigned transport = 0; transport <= QLOG_TRANSPORT_DOQ; transport++)
	for (unsigned kind = 0; kind <= QLOG_RULE_CATEGORY; kind++)
	for (unsigned mode = 0; mode <= QLOG_MODE_MONITOR; mode++)
	for (unsigned client = 0; client < 5; client++)
	for (unsigned upstream = 0; upstream < 3; upstream++, i++) {
		/* The flags cycle through all their 2^6 * 4 values along the walk. */
		unsigned bits = i % 256, ids = bits >> 6;
		struct qlog_record r;
		char buf[QLOG_JSON_MAX];

		golden_record(&r);
		r.action = (uint8_t)action;
		r.transport = (uint8_t)transport;
		r.has_tenant = bits & 1;
		if (!r.has_tenant)
			memset(r.tenant_id, 0, 16);
		r.has_rcode = bits & 2;
		r.rcode = r.has_rcode ? (uint16_t)(i % 4096) : 0;
		r.has_ede = bits & 4;
		r.ede = r.has_ede ? (uint16_t)(i * 7) : 0;
		r.has_latency = bits & 8;
		r.upstream_latency_us = r.has_latency ? i * 1000 : 0;
		r.cache_hit = bits & 16;
		if (bits & 32)
			memset(r.qname, 0, r.qname_len), r.qname_len = 0;
		r.qtype = (uint16_t)(i * 13);
		r.snapshot = (uint64_t)i << 40;

		memset(&r.client, 0, sizeof r.client);
		if (client == 0)
			set_ip(&r.client, AF_INET, "203.0.113.9", 32);
		else if (client == 1)
			set_ip(&r.client, AF_INET6, "2001:db8::9", 128);
		else if (client == 2)
			set_ip(&r.client, AF_INET, "203.0.113.0", i % 33);
		else if (client == 3)
			set_ip(&r.client, AF_INET6, "2001:db8::", i % 129);
		else
			r.client_pseudonym_len = (uint8_t)(1 + i % QLOG_PSEUDONYM_MAX),
			memset(r.client_pseudonym, (int)i, r.client_pseudonym_len);
		if (upstream == 1)
			set_ip(&r.upstream, AF_INET, "198.51.100.1", 32);
		else if (upstream == 2)
			set_ip(&r.upstream, AF_INET6, "2001:db8::1", 128);
		r.upstream_port = upstream ? (uint16_t)i : 0;

		struct qlog_rule *u = &r.rule;
		bool category = (i / 256) % 2;
		memset(u, 0, sizeof *u);
		if (kind != QLOG_RULE_NONE) {
			u->kind = (uint8_t)kind;
			u->mode = (uint8_t)mode;
			if (category)
				strcpy(u->category, "phishing");
			set_name(u->matched, &u->matched_len, "evil.example.");
			u->has_list_id = ids == 1 || ids == 3;
			u->has_feed_id = ids == 2 || ids == 3;
			if (u->has_list_id)
				set_uuid(u->list_id, "00112233445566778899aabbccddeeff");
			if (u->has_feed_id)
				set_uuid(u->feed_id, "ffeeddccbbaa99887766554433221100");
		}

		bool broken = kind != QLOG_RULE_NONE &&
			      ((kind == QLOG_RULE_CATEGORY && (!category || !mode)) || ids == 3);
		if (broken) {
			cr_assert_eq(encode(&r, buf), -EINVAL, "accepted combination %u", i);
		} else {
			assert_round_trip(&r);
			valid++;
		}
	}
	cr_assert_gt(valid, 5000);
}

Test(qlog, enospc_until_it_fits)
{
	struct qlog_record r;
	char full[QLOG_JSON_MAX], buf[QLOG_JSON_MAX];

	golden_record(&r);
	int n = encode(&r, full);
	for (int cap = 0; cap <= n; cap++)
		cr_assert_eq(qlog_encode_json(&r, buf, (size_t)cap), -ENOSPC, "cap %d", cap);
	cr_assert_eq(qlog_encode_json(&r, buf, (size_t)n + 1), n);
	cr_assert_str_eq(buf, full);
}

Test(qlog, refuses_to_encode_broken_records)
{
	struct qlog_record r;
	char buf[QLOG_JSON_MAX];

#define BROKEN(stmt) do { golden_record(&r); stmt; \
		cr_assert_eq(encode(&r, buf), -EINVAL, "%s", #stmt); } while (0)
	BROKEN(r.event_id[6] = 0x40);
	BROKEN(r.event_id[8] = 0xc0);
	BROKEN(r.ts_us = -1);
	BROKEN(r.ts_us = 253402300800000000LL);
	BROKEN(r.snapshot = (uint64_t)INT64_MAX + 1);
	BROKEN(r.node[0] = '\0');
	BROKEN(memset(r.node, 'x', sizeof r.node));
	BROKEN(r.client_pseudonym_len = 1);
	BROKEN(r.client.family = 0);
	BROKEN(r.client.family = AF_UNIX);
	BROKEN(r.client.prefix = 33);
	BROKEN((r.client.family = 0, r.client_pseudonym_len = 33));
	BROKEN(r.transport = QLOG_TRANSPORT_DOQ + 1);
	BROKEN(r.action = QLOG_ACTION_ERROR + 1);
	BROKEN(r.qname[0] = 64);
	BROKEN(r.qname_len--);
	BROKEN(r.qname_len = 1);
	BROKEN(r.rcode = 4096);
	BROKEN((r.has_latency = true, r.upstream_latency_us = (uint32_t)INT32_MAX + 1));
	BROKEN(set_ip(&r.upstream, AF_INET, "192.0.2.1", 24));
	BROKEN(r.rule.kind = QLOG_RULE_CATEGORY + 1);
	BROKEN(r.rule.mode = QLOG_MODE_MONITOR + 1);
	BROKEN(r.rule.mode = QLOG_MODE_NONE);
	BROKEN(r.rule.category[0] = '\0');
	BROKEN(memset(r.rule.category, 'x', sizeof r.rule.category));
	BROKEN(r.rule.matched_len = 0);
	BROKEN(r.rule.has_list_id = true);
#undef BROKEN
	golden_record(&r);
	r.ts_us = 253402300799999999LL;
	cr_assert_gt(encode(&r, buf), 0);
	cr_assert(strstr(buf, "\"ts\":\"9999-12-31T23:59:59.999999Z\""));
	assert_round_trip(&r);
	r.ts_us = 0;
	r.snapshot = INT64_MAX;
	assert_round_trip(&r);
}

Test(qlog, names_in_presentation_format)
{
	static const struct { const char *wire; size_t len; const char *json; } cases[] = {
		{ "", 0, "\"\"" },
		{ "\0", 1, "\".\"" },
		{ "\3www\7Example\3COM\0", 17, "\"www.Example.COM\"" },
		{ "\3a.b\2\\\"\0", 8, "\"a\\\\.b.\\\\\\\\\\\"\"" },
		{ "\4a b\x7f\1\xff\0", 8, "\"a\\\\032b\\\\127.\\\\255\"" },
		{ "\2\0\n\0", 4, "\"\\\\000\\\\010\"" },
		{ "\2a.\0", 4, "\"a\\\\.\"" },
		{ "\1@\1$\1;\0", 7, "\"@.$.;\"" },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct qlog_record r;
		char buf[QLOG_JSON_MAX], want[256];

		golden_record(&r);
		memset(r.qname, 0, sizeof r.qname);
		memcpy(r.qname, cases[i].wire, cases[i].len);
		r.qname_len = (uint8_t)cases[i].len;
		cr_assert_gt(encode(&r, buf), 0);
		snprintf(want, sizeof want, "\"qname\":%s,", cases[i].json);
		cr_assert(strstr(buf, want), "case %zu: %s not in %s", i, want, buf);
		assert_round_trip(&r);
	}
}

Test(qlog, longest_name_and_worst_case_fit)
{
	struct qlog_record r;
	char buf[QLOG_JSON_MAX];

	/* 255 bytes of wire, every byte needing \DDD, in the qname and the matched name. */
	golden_record(&r);
	uint8_t *n = r.qname;
	size_t pos = 0;
	for (int label = 0; label < 4; label++) {
		size_t len = label < 3 ? 63 : 61;
		n[pos++] = (uint8_t)len;
		for (size_t k = 0; k < len; k++, pos++)
			n[pos] = (uint8_t)(0x80 + (pos % 0x80));
	}
	n[pos++] = 0;
	cr_assert_eq(pos, QLOG_NAME_MAX);
	r.qname_len = QLOG_NAME_MAX;
	memcpy(r.rule.matched, r.qname, QLOG_NAME_MAX);
	r.rule.matched_len = QLOG_NAME_MAX;
	memset(r.node, 0xff, QLOG_NODE_MAX);
	memset(r.rule.category, 0x01, QLOG_CATEGORY_MAX);
	memset(&r.client, 0, sizeof r.client);
	r.client_pseudonym_len = QLOG_PSEUDONYM_MAX;
	memset(r.client_pseudonym, 0xee, QLOG_PSEUDONYM_MAX);
	set_ip(&r.upstream, AF_INET6, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 128);
	r.upstream_port = 65535;
	r.has_latency = true;
	r.upstream_latency_us = INT32_MAX;
	r.has_rcode = true;
	r.rcode = 4095;
	r.qtype = 65535;
	r.snapshot = INT64_MAX;
	r.rule.has_list_id = true;
	r.rule.has_feed_id = false;
	memset(r.rule.feed_id, 0, sizeof r.rule.feed_id);
	int len = encode(&r, buf);
	cr_assert_gt(len, 0);
	cr_assert_lt(len, QLOG_JSON_MAX / 2, "worst case %d leaves QLOG_JSON_MAX no margin", len);
	assert_round_trip(&r);
}

Test(qlog, text_fields_escape_every_byte)
{
	struct qlog_record r;
	char buf[QLOG_JSON_MAX];

	golden_record(&r);
	memset(r.node, 0, sizeof r.node);
	strcpy(r.node, "a\"b\\c\x01\x1f\x7f\xe9\xff");
	memset(r.rule.category, 0, sizeof r.rule.category);
	strcpy(r.rule.category, "caf\xc3\xa9");
	cr_assert_gt(encode(&r, buf), 0);
	cr_assert(strstr(buf, "\"node\":\"a\\\"b\\\\c\\u0001\\u001f\\u007f\\u00e9\\u00ff\""), "%s",
		  buf);
	cr_assert(strstr(buf, "\"category\":\"caf\\u00c3\\u00a9\""), "%s", buf);
	assert_round_trip(&r);
}

Test(qlog, type_and_rcode_names)
{
	static const struct { uint16_t type; const char *name; } types[] = {
		{ 1, "A" }, { 28, "AAAA" }, { 65, "HTTPS" }, { 64, "SVCB" }, { 255, "ANY" },
		{ 252, "AXFR" }, { 257, "CAA" }, { 0, "TYPE0" }, { 65280, "TYPE65280" },
	};
	static const struct { uint16_t rcode; const char *name; } rcodes[] = {
		{ 0, "NOERROR" }, { 4, "NOTIMP" }, { 5, "REFUSED" }, { 16, "BADVERS" },
		{ 23, "BADCOOKIE" }, { 12, "RCODE12" }, { 4095, "RCODE4095" },
	};
	struct qlog_record r;
	char buf[QLOG_JSON_MAX], want[64];

	golden_record(&r);
	for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
		r.qtype = types[i].type;
		cr_assert_gt(encode(&r, buf), 0);
		snprintf(want, sizeof want, "\"qtype_name\":\"%s\"", types[i].name);
		cr_assert(strstr(buf, want), "%s not in %s", want, buf);
	}
	for (size_t i = 0; i < sizeof rcodes / sizeof rcodes[0]; i++) {
		r.rcode = rcodes[i].rcode;
		cr_assert_gt(encode(&r, buf), 0);
		snprintf(want, sizeof want, "\"rcode_name\":\"%s\"", rcodes[i].name);
		cr_assert(strstr(buf, want), "%s not in %s", want, buf);
	}
}

Test(qlog, decoder_names_each_missing_or_mistyped_field)
{
	static const char *const top[] = {
		"v", "event_id", "ts", "node", "tenant_id", "client_ip", "client_pseudonym",
		"client_port", "transport", "qname", "qtype", "qtype_name", "rcode", "rcode_name",
		"action", "rule", "ede", "cache_hit", "upstream", "upstream_latency_us", "snapshot",
	};
	static const char *const rule[] = {
		"kind", "category", "mode", "matched", "list_id", "feed_id",
	};
	char want[64];

	for (size_t i = 0; i < sizeof top / sizeof top[0]; i++) {
		char *text = golden_with(top[i], NULL, false);
		snprintf(want, sizeof want, "%s: missing", top[i]);
		assert_refused(text, want);
		free(text);
		text = golden_with(top[i], "[1]", false);
		snprintf(want, sizeof want, "%s: expected", top[i]);
		assert_refused(text, want);
		free(text);
	}
	for (size_t i = 0; i < sizeof rule / sizeof rule[0]; i++) {
		char *text = golden_with(rule[i], NULL, true);
		snprintf(want, sizeof want, "rule.%s: missing", rule[i]);
		assert_refused(text, want);
		free(text);
		text = golden_with(rule[i], "{}", true);
		snprintf(want, sizeof want, "rule.%s: expected", rule[i]);
		assert_refused(text, want);
		free(text);
	}
}

Test(qlog, decoder_refuses_bad_values)
{
	static const struct { const char *key, *value, *want; bool in_rule; } cases[] = {
		{ "v", "2", "v: unsupported version 2", false },
		{ "v", "1.0", "v: expected an integer", false },
		{ "event_id", "\"3f2a6c1e-8d4b-4e0a-9c71-5b2d8e4f6a10\"", "event_id: not a UUIDv7", false },
		{ "event_id", "\"01a21280-45eb-7c3d-9a5e-4b7f2c8d1e6\"", "event_id: not a UUID", false },
		{ "event_id", "\"01a21280-45eb-7c3d-9a5e-4b7f2c8d1e6g\"", "event_id: not a UUID", false },
		{ "ts", "\"2026-11-25T11:38:46.123Z\"", "ts: expected", false },
		{ "ts", "\"2026-11-25T11:38:46.123456+00:00\"", "ts: expected", false },
		{ "ts", "\"2026-02-30T11:38:46.123456Z\"", "ts: not a valid time", false },
		{ "ts", "\"2026-13-01T11:38:46.123456Z\"", "ts: not a valid time", false },
		{ "ts", "\"2026-12-31T23:59:60.000000Z\"", "ts: not a valid time", false },
		{ "ts", "\"1969-12-31T23:59:59.999999Z\"", "ts: not a valid time", false },
		{ "node", "\"\"", "node: empty", false },
		{ "node", "\"\\u0100\"", "node: character above U+00FF", false },
		{ "node", "\"" "0123456789012345678901234567890123456789012345678901234567890123" "x\"",
		  "node: longer than 64 bytes", false },
		{ "tenant_id", "\"nope\"", "tenant_id: not a UUID", false },
		{ "client_ip", "\"192.0.2.300\"", "client_ip: not an address", false },
		{ "client_ip", "\"192.0.2.0/33\"", "client_ip: prefix longer", false },
		{ "client_ip", "\"192.0.2.0/\"", "client_ip: bad prefix", false },
		{ "client_ip", "\"192.0.2.0/-1\"", "client_ip: bad prefix", false },
		{ "client_ip", "null", "client_ip: exactly one", false },
		{ "client_pseudonym", "\"abc\"", "client_pseudonym: expected 2 to 64 hex", false },
		{ "client_pseudonym", "\"ab\"", "client_ip: exactly one", false },
		{ "client_port", "65536", "client_port: outside 0..65535", false },
		{ "client_port", "-1", "client_port: outside", false },
		{ "client_port", "null", "client_port: must not be null", false },
		{ "transport", "\"sctp\"", "transport: unknown value", false },
		{ "qname", "\"a..b\"", "qname: Empty label", false },
		{ "qname", "\"\\\\256\"", "qname: Syntax error", false },
		{ "qname", "\"" "0123456789012345678901234567890123456789012345678901234567890123" ".x\"",
		  "qname: Label length overflow", false },
		{ "qname", "null", "qname: must not be null", false },
		{ "rcode", "4096", "rcode: outside 0..4095", false },
		{ "rcode", "null", "rcode_name: must be null when rcode is null", false },
		{ "rcode_name", "null", "rcode_name: must not be null", false },
		{ "action", "\"drop\"", "action: unknown value", false },
		{ "action", "\"\"", "action: unknown value", false },
		{ "ede", "65536", "ede: outside", false },
		{ "cache_hit", "0", "cache_hit: expected true or false", false },
		{ "upstream", "\"192.0.2.1\"", "upstream: expected a port", false },
		{ "upstream", "\"192.0.2.1:65536\"", "upstream: port above 65535", false },
		{ "upstream", "\"2001:db8::1:53\"", "upstream: not an address", false },
		{ "upstream", "\"[192.0.2.1]:53\"", "upstream: not an address", false },
		{ "upstream", "\"[2001:db8::1]53\"", "upstream: expected [IPv6]:port", false },
		{ "upstream_latency_us", "2147483648", "upstream_latency_us: outside", false },
		{ "snapshot", "-1", "snapshot: outside", false },
		{ "snapshot", "1e3", "snapshot: expected an integer", false },
		{ "kind", "\"rpz\"", "rule.kind: unknown value", true },
		{ "kind", "null", "rule.kind: must not be null", true },
		{ "category", "\"\"", "rule.category: empty (use null)", true },
		{ "category", "null", "rule.category: a category rule needs", true },
		{ "mode", "\"off\"", "rule.mode: unknown value", true },
		{ "mode", "null", "rule.category: a category rule needs", true },
		{ "matched", "\"\"", "rule.matched: empty", true },
		{ "list_id", "\"00112233-4455-6677-8899-aabbccddeeff\"", "rule.list_id: a rule has", true },
		{ "rule", "[]", "rule: expected an object or null", false },
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		char *text = golden_with(cases[i].key, cases[i].value, cases[i].in_rule);
		assert_refused(text, cases[i].want);
		free(text);
	}
	assert_refused("[]", "record: not an object");
	assert_refused("", "JSON:");
	assert_refused("{\"v\":1,\"v\":1}", "JSON:");
	char trailing[sizeof golden_json + 2];
	snprintf(trailing, sizeof trailing, "%s{", golden_json);
	assert_refused(trailing, "JSON:");
}

Test(qlog, decoder_tolerates_unknown_fields_and_null_err)
{
	struct qlog_record want, got;
	char err[128];

	golden_record(&want);
	char *text = golden_with("resolver_build", "{\"x\":[1,2]}", false);
	cr_assert_eq(qlog_decode_json(text, strlen(text), &got, err, sizeof err), 0, "%s", err);
	cr_assert(memcmp(&want, &got, sizeof got) == 0);
	free(text);
	text = golden_with("policy_zone", "\"x\"", true);
	cr_assert_eq(qlog_decode_json(text, strlen(text), &got, err, sizeof err), 0, "%s", err);
	free(text);
	/* Upper-case hex and a trailing dot are read; they encode back canonically. */
	text = golden_with("qname", "\"CDN.malware.evil.example.\"", false);
	cr_assert_eq(qlog_decode_json(text, strlen(text), &got, NULL, 0), 0);
	cr_assert_eq(got.qname_len, want.qname_len);
	cr_assert(memcmp(got.qname, "\3CDN", 4) == 0);
	free(text);
	cr_assert_eq(qlog_decode_json("{", 1, &got, NULL, 0), -EINVAL);
	cr_assert_eq(qlog_decode_json("{", 1, &got, err, 1), -EINVAL);
	cr_assert_str_eq(err, "");
}

static int cmp_id(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

Test(qlog, event_ids_are_uuidv7_unique_and_time_ordered)
{
	enum { N = 200000 };
	uint8_t (*ids)[16] = malloc(N * sizeof *ids);
	const uint64_t ms = 1795606726123ULL;

	cr_assert(ids);
	for (int i = 0; i < N; i++)
		qlog_new_event_id(ids[i], ms + (uint64_t)(i / 1000));
	for (int i = 0; i < N; i++) {
		uint64_t t = 0;
		for (int k = 0; k < 6; k++)
			t = t << 8 | ids[i][k];
		cr_assert_eq(t, ms + (uint64_t)(i / 1000));
		cr_assert_eq(ids[i][6] >> 4, 7);
		cr_assert_eq(ids[i][8] >> 6, 2);
		if (i % 1000 == 0 && i)
			cr_assert_gt(memcmp(ids[i], ids[i - 1], 16), 0, "not ordered across ms");
	}
	qsort(ids, N, 16, cmp_id);
	for (int i = 1; i < N; i++)
		cr_assert_neq(memcmp(ids[i], ids[i - 1], 16), 0, "duplicate id");
	free(ids);
}

Test(qlog, addresses_from_sockaddr)
{
	struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(53) };
	struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(5353) };
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct qlog_addr a;
	uint16_t port = 0;

	inet_pton(AF_INET, "192.0.2.7", &in.sin_addr);
	cr_assert_eq(qlog_addr_from_sockaddr(&a, &port, (struct sockaddr *)&in), 0);
	cr_assert_eq(a.family, AF_INET);
	cr_assert_eq(a.prefix, 32);
	cr_assert(memcmp(a.addr, &in.sin_addr, 4) == 0);
	cr_assert_eq(port, 53);

	inet_pton(AF_INET6, "::ffff:192.0.2.7", &in6.sin6_addr);
	cr_assert_eq(qlog_addr_from_sockaddr(&a, &port, (struct sockaddr *)&in6), 0);
	cr_assert_eq(a.family, AF_INET);
	cr_assert(memcmp(a.addr, &in.sin_addr, 4) == 0);
	cr_assert_eq(port, 5353);

	inet_pton(AF_INET6, "2001:db8::7", &in6.sin6_addr);
	cr_assert_eq(qlog_addr_from_sockaddr(&a, &port, (struct sockaddr *)&in6), 0);
	cr_assert_eq(a.family, AF_INET6);
	cr_assert_eq(a.prefix, 128);
	cr_assert(memcmp(a.addr, &in6.sin6_addr, 16) == 0);

	cr_assert_eq(qlog_addr_from_sockaddr(&a, &port, (struct sockaddr *)&un), -EAFNOSUPPORT);
}

Test(qlog, ipv4_addresses_at_every_digit_count)
{
	static const char *const addrs[] = { "0.0.0.0", "9.10.99.100", "255.255.255.255",
					     "127.1.0.5", "10.100.7.0" };
	for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
		struct qlog_record r;
		char buf[QLOG_JSON_MAX], want[64];
		golden_record(&r);
		set_ip(&r.client, AF_INET, addrs[i], 32);
		cr_assert_gt(encode(&r, buf), 0);
		snprintf(want, sizeof want, "\"client_ip\":\"%s\"", addrs[i]);
		cr_assert(strstr(buf, want), "%s not in %s", want, buf);
		assert_round_trip(&r);
	}
}

Test(qlog, timestamps_across_a_second_boundary)
{
	struct qlog_record r;
	char buf[QLOG_JSON_MAX];
	golden_record(&r);
	r.ts_us = 1795606726999999LL;
	cr_assert_gt(encode(&r, buf), 0);
	cr_assert(strstr(buf, "\"2026-11-25T11:38:46.999999Z\""), "%s", buf);
	r.ts_us = 1795606727000000LL;
	cr_assert_gt(encode(&r, buf), 0);
	cr_assert(strstr(buf, "\"2026-11-25T11:38:47.000000Z\""), "%s", buf);
	r.ts_us = 0;
	cr_assert_gt(encode(&r, buf), 0);
	cr_assert(strstr(buf, "\"1970-01-01T00:00:00.000000Z\""), "%s", buf);
}
