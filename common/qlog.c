/* qlog.c -- query-log record v1: hand-written JSON encoder, jansson decoder, UUIDv7 ids. */
#include "qlog.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "log.h"

#define TS_US_MAX 253402300799999999LL  /* 9999-12-31T23:59:59.999999Z */
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static const char *const transport_names[] = { "udp", "tcp", "dot", "doh", "doq" };
static const char *const action_names[] = {
	"allow", "block", "monitor", "refused", "ratelimited", "local", "error",
};
static const char *const rule_kind_names[] = {
	NULL, "national_block", "national_allow", "tenant_allow", "tenant_deny", "category",
};
static const char *const mode_names[] = { NULL, "block", "monitor" };

/* IANA "DNS RCODEs" as dig prints them. Not ldns's table: it spells 4 "NOTIMPL" and stops at
 * 10, while we send BADVERS (16, RFC 6891). In an OPT record 16 means BADVERS, not BADSIG. */
static const char *const rcode_names[] = {
	"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN",
	"YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "DSOTYPENI", NULL, NULL, NULL, NULL,
	"BADVERS", "BADKEY", "BADTIME", "BADMODE", "BADNAME", "BADALG", "BADTRUNC", "BADCOOKIE",
};

/* ldns_rr_type2str() mallocs on every call, too slow per record, so the names it knows are
 * collected once. Its descriptor table alone misnames the meta types (251 "TYPE251", not
 * IXFR), so the descriptors only say which types to ask type2str about. */
struct type_name {
	uint16_t type;
	const char *name;   /* from ldns_rr_type2str(), kept for the life of the process */
};
static struct type_name type_names[512];
static size_t type_name_count;
static pthread_once_t type_names_once = PTHREAD_ONCE_INIT;

static void type_names_init(void)
{
	for (unsigned t = 0; t <= UINT16_MAX && type_name_count < ARRAY_LEN(type_names); t++) {
		const ldns_rr_descriptor *d = ldns_rr_descript((uint16_t)t);
		if (!d || !d->_name)
			continue;
		char *name = ldns_rr_type2str((uint16_t)t);
		if (name && strncmp(name, "TYPE", 4) != 0) {
			type_names[type_name_count].type = (uint16_t)t;
			type_names[type_name_count++].name = name;
		} else {
			free(name);
		}
	}
}

static const char *type_name_find(uint16_t type)
{
	size_t lo = 0, hi;

	pthread_once(&type_names_once, type_names_init);
	hi = type_name_count;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (type_names[mid].type == type)
			return type_names[mid].name;
		if (type_names[mid].type < type)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ---- the rules every record keeps, checked by the encoder and the decoder alike ---- */

static bool wire_name_ok(const uint8_t *n, size_t len)
{
	size_t i = 0;

	while (i < len) {
		if (n[i] == 0)
			return i + 1 == len;
		if (n[i] > 63)
			return false;
		i += n[i] + 1u;
	}
	return false;
}

static bool addr_ok(const struct qlog_addr *a)
{
	return (a->family == AF_INET && a->prefix <= 32) ||
	       (a->family == AF_INET6 && a->prefix <= 128);
}

static bool addr_whole(const struct qlog_addr *a)
{
	return a->prefix == (a->family == AF_INET ? 32 : 128);
}

/* "field: problem" for the first rule r breaks, or NULL. */
static const char *record_problem(const struct qlog_record *r)
{
	if (r->ts_us < 0 || r->ts_us > TS_US_MAX)
		return "ts: outside years 1970..9999";
	if ((r->event_id[6] >> 4) != 7 || (r->event_id[8] >> 6) != 2)
		return "event_id: not a UUIDv7";
	if (r->snapshot > INT64_MAX)
		return "snapshot: above 2^63-1";
	if (!memchr(r->node, '\0', sizeof r->node) || !r->node[0])
		return "node: empty or longer than 64 bytes";
	if ((r->client.family != 0) == (r->client_pseudonym_len != 0))
		return "client_ip: exactly one of client_ip and client_pseudonym must be set";
	if (r->client.family && !addr_ok(&r->client))
		return "client_ip: bad family or prefix";
	if (r->client_pseudonym_len > QLOG_PSEUDONYM_MAX)
		return "client_pseudonym: longer than 32 bytes";
	if (r->transport >= ARRAY_LEN(transport_names))
		return "transport: unknown value";
	if (r->qname_len && !wire_name_ok(r->qname, r->qname_len))
		return "qname: malformed wire name";
	if (r->has_rcode && r->rcode > 4095)
		return "rcode: above 4095";
	if (r->action >= ARRAY_LEN(action_names))
		return "action: unknown value";
	if (r->upstream.family && !(addr_ok(&r->upstream) && addr_whole(&r->upstream)))
		return "upstream: bad family or not a whole address";
	if (r->has_latency && r->upstream_latency_us > INT32_MAX)
		return "upstream_latency_us: above 2^31-1";

	const struct qlog_rule *u = &r->rule;
	if (u->kind == QLOG_RULE_NONE)
		return NULL;
	if (u->kind >= ARRAY_LEN(rule_kind_names))
		return "rule.kind: unknown value";
	if (u->mode >= ARRAY_LEN(mode_names))
		return "rule.mode: unknown value";
	if (!memchr(u->category, '\0', sizeof u->category))
		return "rule.category: longer than 63 bytes";
	if (u->kind == QLOG_RULE_CATEGORY && (!u->category[0] || u->mode == QLOG_MODE_NONE))
		return "rule.category: a category rule needs a category and a mode";
	if (!wire_name_ok(u->matched, u->matched_len))
		return "rule.matched: malformed wire name";
	if (u->has_list_id && u->has_feed_id)
		return "rule.list_id: a rule has a list_id or a feed_id, not both";
	return NULL;
}

/* ---- encoder ---- */

/* The writers below advance a cursor without bounds checks: qlog_encode_json() hands them a
 * buffer of QLOG_JSON_MAX bytes, which the longest record cannot outgrow. Its parts at their
 * worst: a name of 255 bytes each written \DDD (5 output bytes per input byte), text fields of
 * \u00XX escapes (6 per byte), and under 1 KiB for keys, ids, time, addresses and numbers. */
#define NAME_JSON_MAX(n) (2 + 5 * (n))
#define TEXT_JSON_MAX(n) (2 + 6 * (n))
_Static_assert(2 * NAME_JSON_MAX(QLOG_NAME_MAX) + TEXT_JSON_MAX(QLOG_NODE_MAX) +
	       TEXT_JSON_MAX(QLOG_CATEGORY_MAX) + 1024 < QLOG_JSON_MAX,
	       "QLOG_JSON_MAX cannot hold the longest record");

static inline char *put_mem(char *p, const void *s, size_t n)
{
	memcpy(p, s, n);
	return p + n;
}

#define put_lit(p, s) put_mem(p, s, sizeof(s) - 1)

static inline char *put_str(char *p, const char *s)
{
	return put_mem(p, s, strlen(s));
}


static char *put_u64(char *p, uint64_t v)
{
	char tmp[20];
	size_t i = sizeof tmp;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return put_mem(p, tmp + i, sizeof tmp - i);
}

/* Digits of v, zero-padded to width. */
static char *put_padded(char *p, unsigned v, unsigned width)
{
	for (unsigned i = width; i-- > 0; v /= 10)
		p[i] = (char)('0' + v % 10);
	return p + width;
}

/* "00" .. "ff": one two-byte copy per byte. */
static const char hex_pairs[512] =
	"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
	"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
	"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
	"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
	"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
	"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
	"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";

static inline char *put_hex(char *p, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++, p += 2)
		memcpy(p, hex_pairs + 2 * b[i], 2);
	return p;
}

void qlog_format_uuid(char out[QLOG_UUID_TEXT], const uint8_t u[16])
{
	put_hex(out, u, 4);
	out[8] = '-';
	put_hex(out + 9, u + 4, 2);
	out[13] = '-';
	put_hex(out + 14, u + 6, 2);
	out[18] = '-';
	put_hex(out + 19, u + 8, 2);
	out[23] = '-';
	put_hex(out + 24, u + 10, 6);
}

static char *put_uuid(char *p, const uint8_t u[16])
{
	p[0] = '"';
	qlog_format_uuid(p + 1, u);
	p[1 + QLOG_UUID_TEXT] = '"';
	return p + QLOG_UUID_TEXT + 2;
}

static char *put_uuid_or_null(char *p, bool has, const uint8_t u[16])
{
	return has ? put_uuid(p, u) : put_lit(p, "null");
}

/* A byte string as a JSON string. Bytes >= 0x80 become \u00XX of the byte value, so the
 * output is ASCII whatever the input, and decoding maps U+0000..U+00FF back to bytes. */
static char *put_text(char *p, const char *s)
{
	*p++ = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			*p++ = '\\';
			*p++ = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			p = put_lit(p, "\\u00");
			p = put_hex(p, &c, 1);
		} else {
			*p++ = (char)c;
		}
	}
	*p++ = '"';
	return p;
}

/* Label bytes written as they are in a presentation-format name inside a JSON string: the
 * printable ASCII except '.', '\' and '"'. */
static const bool name_byte_plain[256] = {
	[0x21] = true, [0x23 ... 0x2d] = true, [0x2f ... 0x5b] = true, [0x5d ... 0x7e] = true,
};

/* A wire-format name in presentation format (RFC 1035 5.1, RFC 4343): "." and "\" inside a
 * label are backslash-escaped, bytes outside 0x21..0x7e written \DDD; no trailing dot, the
 * root is ".". Then JSON-escaped, so "a\.b" is written "a\\.b". Not ldns_rdf2buffer_str_dname:
 * it makes one printf call per character (about a microsecond per name). */
static char *put_name(char *p, const uint8_t *n, size_t len)
{
	size_t i = 0;

	*p++ = '"';
	if (len == 1)
		*p++ = '.';
	while (i < len && n[i]) {
		size_t end = i + 1 + n[i];
		if (i)
			*p++ = '.';
		for (i++; i < end; i++) {
			uint8_t c = n[i];
			if (name_byte_plain[c])
				*p++ = (char)c;
			else if (c == '.')
				p = put_lit(p, "\\\\.");
			else if (c == '\\')
				p = put_lit(p, "\\\\\\\\");
			else if (c == '"')
				p = put_lit(p, "\\\"");
			else
				p = put_padded(put_lit(p, "\\\\"), c, 3);
		}
	}
	*p++ = '"';
	return p;
}

/* RFC 3339 UTC with microseconds: "2026-11-25T11:38:46.123456Z". Records come in time
 * order, so the date and time of day are formatted once a second per thread. */
static char *put_ts(char *p, int64_t ts_us)
{
	static __thread int64_t cached_secs = -1;
	static __thread char cached[19];
	int64_t secs = ts_us / 1000000;

	if (secs != cached_secs) {
		time_t t = (time_t)secs;
		struct tm tm;
		char *c = cached;
		gmtime_r(&t, &tm);
		c = put_padded(c, (unsigned)tm.tm_year + 1900, 4);
		*c++ = '-';
		c = put_padded(c, (unsigned)tm.tm_mon + 1, 2);
		*c++ = '-';
		c = put_padded(c, (unsigned)tm.tm_mday, 2);
		*c++ = 'T';
		c = put_padded(c, (unsigned)tm.tm_hour, 2);
		*c++ = ':';
		c = put_padded(c, (unsigned)tm.tm_min, 2);
		*c++ = ':';
		put_padded(c, (unsigned)tm.tm_sec, 2);
		cached_secs = secs;
	}
	*p++ = '"';
	p = put_mem(p, cached, sizeof cached);
	*p++ = '.';
	p = put_padded(p, (unsigned)(ts_us % 1000000), 6);
	return put_lit(p, "Z\"");
}

/* IPv4 by hand: inet_ntop formats it through sprintf, a fifth of the encoder's time. */
static char *put_addr_text(char *p, const struct qlog_addr *a)
{
	if (a->family == AF_INET) {
		for (int i = 0; i < 4; i++) {
			unsigned b = a->addr[i];
			if (i)
				*p++ = '.';
			if (b >= 100)
				*p++ = (char)('0' + b / 100);
			if (b >= 10)
				*p++ = (char)('0' + b / 10 % 10);
			*p++ = (char)('0' + b % 10);
		}
		return p;
	}
	inet_ntop(a->family, a->addr, p, INET6_ADDRSTRLEN);
	return p + strlen(p);
}

/* "192.0.2.1", "2001:db8::1", or a truncated prefix "10.1.2.0/24". */
static char *put_client(char *p, const struct qlog_addr *a)
{
	*p++ = '"';
	p = put_addr_text(p, a);
	if (!addr_whole(a)) {
		*p++ = '/';
		p = put_u64(p, a->prefix);
	}
	*p++ = '"';
	return p;
}

/* "192.0.2.53:53" or "[2001:db8::53]:53". */
static char *put_upstream(char *p, const struct qlog_addr *a, uint16_t port)
{
	*p++ = '"';
	if (a->family == AF_INET6)
		*p++ = '[';
	p = put_addr_text(p, a);
	if (a->family == AF_INET6)
		*p++ = ']';
	*p++ = ':';
	p = put_u64(p, port);
	*p++ = '"';
	return p;
}

static char *put_rule(char *p, const struct qlog_rule *u)
{
	if (u->kind == QLOG_RULE_NONE)
		return put_lit(p, "null");
	p = put_lit(p, "{\"kind\":\"");
	p = put_str(p, rule_kind_names[u->kind]);
	p = put_lit(p, "\",\"category\":");
	p = u->category[0] ? put_text(p, u->category) : put_lit(p, "null");
	p = put_lit(p, ",\"mode\":");
	if (u->mode != QLOG_MODE_NONE) {
		*p++ = '"';
		p = put_str(p, mode_names[u->mode]);
		*p++ = '"';
	} else {
		p = put_lit(p, "null");
	}
	p = put_lit(p, ",\"matched\":");
	p = put_name(p, u->matched, u->matched_len);
	p = put_lit(p, ",\"list_id\":");
	p = put_uuid_or_null(p, u->has_list_id, u->list_id);
	p = put_lit(p, ",\"feed_id\":");
	p = put_uuid_or_null(p, u->has_feed_id, u->feed_id);
	*p++ = '}';
	return p;
}

/* Writes r into buf, which holds QLOG_JSON_MAX bytes; returns the end (no NUL written). */
static char *put_record(char *p, const struct qlog_record *r)
{
	p = put_lit(p, "{\"v\":1,\"event_id\":");
	p = put_uuid(p, r->event_id);
	p = put_lit(p, ",\"ts\":");
	p = put_ts(p, r->ts_us);
	p = put_lit(p, ",\"node\":");
	p = put_text(p, r->node);
	p = put_lit(p, ",\"tenant_id\":");
	p = put_uuid_or_null(p, r->has_tenant, r->tenant_id);
	p = put_lit(p, ",\"client_ip\":");
	p = r->client.family ? put_client(p, &r->client) : put_lit(p, "null");
	p = put_lit(p, ",\"client_pseudonym\":");
	if (r->client_pseudonym_len) {
		*p++ = '"';
		p = put_hex(p, r->client_pseudonym, r->client_pseudonym_len);
		*p++ = '"';
	} else {
		p = put_lit(p, "null");
	}
	p = put_lit(p, ",\"client_port\":");
	p = put_u64(p, r->client_port);
	p = put_lit(p, ",\"transport\":\"");
	p = put_str(p, transport_names[r->transport]);
	p = put_lit(p, "\",\"qname\":");
	p = put_name(p, r->qname, r->qname_len);
	p = put_lit(p, ",\"qtype\":");
	p = put_u64(p, r->qtype);
	p = put_lit(p, ",\"qtype_name\":\"");
	const char *tname = type_name_find(r->qtype);
	if (tname)
		p = put_str(p, tname);
	else
		p = put_u64(put_lit(p, "TYPE"), r->qtype);  /* RFC 3597 */
	p = put_lit(p, "\",\"rcode\":");
	if (r->has_rcode) {
		p = put_u64(p, r->rcode);
		p = put_lit(p, ",\"rcode_name\":\"");
		if (r->rcode < ARRAY_LEN(rcode_names) && rcode_names[r->rcode])
			p = put_str(p, rcode_names[r->rcode]);
		else
			p = put_u64(put_lit(p, "RCODE"), r->rcode);
		*p++ = '"';
	} else {
		p = put_lit(p, "null,\"rcode_name\":null");
	}
	p = put_lit(p, ",\"action\":\"");
	p = put_str(p, action_names[r->action]);
	p = put_lit(p, "\",\"rule\":");
	p = put_rule(p, &r->rule);
	p = put_lit(p, ",\"ede\":");
	p = r->has_ede ? put_u64(p, r->ede) : put_lit(p, "null");
	if (r->cache_hit)
		p = put_lit(p, ",\"cache_hit\":true,\"upstream\":");
	else
		p = put_lit(p, ",\"cache_hit\":false,\"upstream\":");
	p = r->upstream.family ? put_upstream(p, &r->upstream, r->upstream_port)
			       : put_lit(p, "null");
	p = put_lit(p, ",\"upstream_latency_us\":");
	p = r->has_latency ? put_u64(p, r->upstream_latency_us) : put_lit(p, "null");
	p = put_lit(p, ",\"snapshot\":");
	p = put_u64(p, r->snapshot);
	*p++ = '}';
	return p;
}

int qlog_encode_json(const struct qlog_record *r, char *buf, size_t cap)
{
	char spare[QLOG_JSON_MAX];
	size_t len;

	if (record_problem(r))
		return -EINVAL;
	if (cap >= QLOG_JSON_MAX) {
		len = (size_t)(put_record(buf, r) - buf);
	} else {
		/* A short buffer: encode aside, then copy if it fits. */
		len = (size_t)(put_record(spare, r) - spare);
		if (len >= cap)
			return -ENOSPC;
		memcpy(buf, spare, len);
	}
	buf[len] = '\0';
	return (int)len;
}

/* ---- decoder ---- */

struct dec {
	json_t *obj;          /* borrowed: the object being read */
	const char *scope;    /* "" or "rule." to name fields in messages */
	char *err;
	size_t errlen;
};

__attribute__((format(printf, 3, 4)))
static int fail(struct dec *d, const char *key, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!d->errlen)
		return -EINVAL;
	n = snprintf(d->err, d->errlen, "%s%s: ", d->scope, key);
	if (n >= 0 && (size_t)n < d->errlen) {
		va_start(ap, fmt);
		vsnprintf(d->err + n, d->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

/* *v = the member (borrowed). 1 if present, 0 if null and nullable, -EINVAL otherwise. */
static int member(struct dec *d, const char *key, bool nullable, json_t **v)
{
	*v = json_object_get(d->obj, key);
	if (!*v)
		return fail(d, key, "missing");
	if (!json_is_null(*v))
		return 1;
	return nullable ? 0 : fail(d, key, "must not be null");
}

static int get_int(struct dec *d, const char *key, bool nullable, int64_t max, int64_t *out)
{
	json_t *v;
	int rc = member(d, key, nullable, &v);

	if (rc <= 0)
		return rc;
	if (!json_is_integer(v))
		return fail(d, key, "expected an integer");
	json_int_t i = json_integer_value(v);
	if (i < 0 || i > max)
		return fail(d, key, "outside 0..%lld", (long long)max);
	*out = i;
	return 1;
}

static int get_string(struct dec *d, const char *key, bool nullable, const char **s,
		      size_t *len)
{
	json_t *v;
	int rc = member(d, key, nullable, &v);

	if (rc <= 0)
		return rc;
	if (!json_is_string(v))
		return fail(d, key, "expected a string");
	*s = json_string_value(v);
	*len = json_string_length(v);
	return 1;
}

/* A JSON string back to the bytes put_text() wrote: each code point U+0000..U+00FF is one
 * byte. jansson has checked the UTF-8, so only the lead byte needs a look. */
static int get_text(struct dec *d, const char *key, bool nullable, char *out, size_t cap)
{
	const char *s;
	size_t len, n = 0;
	int rc = get_string(d, key, nullable, &s, &len);

	if (rc <= 0)
		return rc;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c >= 0x80) {
			if (c > 0xc3)
				return fail(d, key, "character above U+00FF");
			c = (unsigned char)(((c & 0x03) << 6) | ((unsigned char)s[++i] & 0x3f));
		}
		if (n + 1 >= cap)
			return fail(d, key, "longer than %zu bytes", cap - 1);
		out[n++] = (char)c;
	}
	out[n] = '\0';
	return 1;
}

static int get_enum(struct dec *d, const char *key, bool nullable, const char *const *names,
		    size_t count, uint8_t *out)
{
	const char *s;
	size_t len;
	int rc = get_string(d, key, nullable, &s, &len);

	if (rc <= 0)
		return rc;
	for (size_t i = 0; i < count; i++) {
		if (names[i] && strcmp(s, names[i]) == 0) {
			*out = (uint8_t)i;
			return 1;
		}
	}
	return fail(d, key, "unknown value");
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Hex pairs of s[0..2n) into b; false on a non-hex digit. */
static bool parse_hex(const char *s, uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int hi = hex_value(s[2 * i]), lo = hex_value(s[2 * i + 1]);
		if (hi < 0 || lo < 0)
			return false;
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	return true;
}

static int get_uuid(struct dec *d, const char *key, bool nullable, uint8_t out[16])
{
	const char *s;
	size_t len;
	char hex[32];
	int rc = get_string(d, key, nullable, &s, &len);

	if (rc <= 0)
		return rc;
	if (len != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')
		return fail(d, key, "not a UUID");
	memcpy(hex, s, 8);
	memcpy(hex + 8, s + 9, 4);
	memcpy(hex + 12, s + 14, 4);
	memcpy(hex + 16, s + 19, 4);
	memcpy(hex + 20, s + 24, 12);
	if (!parse_hex(hex, out, 16))
		return fail(d, key, "not a UUID");
	return 1;
}

/* Only the form put_ts() writes: exactly six fractional digits and "Z". */
static int get_ts(struct dec *d, const char *key, int64_t *out)
{
	static const char form[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
	const char *s;
	size_t len;
	int rc = get_string(d, key, false, &s, &len);

	if (rc <= 0)
		return rc;
	if (len != sizeof form - 1)
		return fail(d, key, "expected YYYY-MM-DDTHH:MM:SS.ffffffZ");
	for (size_t i = 0; i < len; i++)
		if (form[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != form[i])
			return fail(d, key, "expected YYYY-MM-DDTHH:MM:SS.ffffffZ");

	int year = atoi(s), mon = atoi(s + 5), mday = atoi(s + 8), hour = atoi(s + 11),
	    min = atoi(s + 14), sec = atoi(s + 17), usec = atoi(s + 20);
	struct tm tm = { .tm_year = year - 1900, .tm_mon = mon - 1, .tm_mday = mday,
			 .tm_hour = hour, .tm_min = min, .tm_sec = sec };
	time_t t = timegm(&tm);
	/* timegm() normalises Feb 30 into March: a date that changed was not a date. */
	if (t < 0 || tm.tm_year != year - 1900 || tm.tm_mon != mon - 1 || tm.tm_mday != mday ||
	    tm.tm_hour != hour || tm.tm_min != min || tm.tm_sec != sec)
		return fail(d, key, "not a valid time from 1970 on");
	*out = (int64_t)t * 1000000 + usec;
	return 1;
}

/* A presentation-format name to wire format with ldns; "" only where allow_empty. */
static int get_name(struct dec *d, const char *key, bool allow_empty, uint8_t *wire,
		    uint8_t *wire_len)
{
	char text[QLOG_NAME_MAX * 4 + 2];
	ldns_rdf *rdf = NULL;
	int rc = get_text(d, key, false, text, sizeof text);

	if (rc <= 0)
		return rc;
	if (!text[0]) {
		if (!allow_empty)
			return fail(d, key, "empty");
		*wire_len = 0;
		return 1;
	}
	ldns_status st = ldns_str2rdf_dname(&rdf, text);
	if (st != LDNS_STATUS_OK)
		return fail(d, key, "%s", ldns_get_errorstr_by_id(st));
	size_t n = ldns_rdf_size(rdf);
	if (n <= QLOG_NAME_MAX) {
		memcpy(wire, ldns_rdf_data(rdf), n);
		*wire_len = (uint8_t)n;
	}
	ldns_rdf_deep_free(rdf);
	return n <= QLOG_NAME_MAX ? 1 : fail(d, key, "longer than 255 bytes in wire format");
}

/* "192.0.2.1", "2001:db8::1", with "/prefix" where allow_prefix; with ":port" (IPv6 in
 * brackets) where port is not NULL. */
static int get_addr(struct dec *d, const char *key, bool allow_prefix, struct qlog_addr *a,
		    uint16_t *port)
{
	const char *s;
	size_t len;
	char text[INET6_ADDRSTRLEN + 8];
	int rc = get_string(d, key, true, &s, &len);

	if (rc <= 0)
		return rc;
	if (len >= sizeof text)
		return fail(d, key, "not an address");
	memcpy(text, s, len + 1);

	char *host = text, *tail = NULL, sep = port ? ':' : '/';
	if (port && text[0] == '[') {
		char *close = strchr(text, ']');
		if (!close || close[1] != ':')
			return fail(d, key, "expected [IPv6]:port");
		host = text + 1;
		*close = '\0';
		tail = close + 2;
	} else if ((tail = strrchr(text, sep))) {
		*tail++ = '\0';
	}
	if (inet_pton(AF_INET, host, a->addr) == 1 && !(port && text[0] == '['))
		a->family = AF_INET;
	else if (inet_pton(AF_INET6, host, a->addr) == 1 && !(port && text[0] != '['))
		a->family = AF_INET6;
	else
		return fail(d, key, "not an address");

	unsigned full = a->family == AF_INET ? 32 : 128;
	unsigned long v = full;
	if (tail || port) {
		if (!tail || !*tail || strspn(tail, "0123456789") != strlen(tail) || strlen(tail) > 5)
			return fail(d, key, port ? "expected a port" : "bad prefix length");
		v = strtoul(tail, NULL, 10);
		if (v > (port ? 65535 : full))
			return fail(d, key, port ? "port above 65535" : "prefix longer than the address");
	}
	if (port) {
		*port = (uint16_t)v;
		v = full;
	} else if (!allow_prefix && v != full) {
		return fail(d, key, "a prefix is not allowed here");
	}
	a->prefix = (uint8_t)v;
	return 1;
}

static int get_rule(struct dec *d, struct qlog_rule *u)
{
	json_t *v;
	int rc = member(d, "rule", true, &v);

	if (rc <= 0)
		return rc;
	if (!json_is_object(v))
		return fail(d, "rule", "expected an object or null");

	struct dec sub = { .obj = v, .scope = "rule.", .err = d->err, .errlen = d->errlen };
	if ((rc = get_enum(&sub, "kind", false, rule_kind_names, ARRAY_LEN(rule_kind_names),
			   &u->kind)) < 0)
		return rc;
	if ((rc = get_text(&sub, "category", true, u->category, sizeof u->category)) < 0)
		return rc;
	if (rc == 1 && !u->category[0])
		return fail(&sub, "category", "empty (use null)");
	if ((rc = get_enum(&sub, "mode", true, mode_names, ARRAY_LEN(mode_names), &u->mode)) < 0)
		return rc;
	if ((rc = get_name(&sub, "matched", false, u->matched, &u->matched_len)) < 0)
		return rc;
	if ((rc = get_uuid(&sub, "list_id", true, u->list_id)) < 0)
		return rc;
	u->has_list_id = rc == 1;
	if ((rc = get_uuid(&sub, "feed_id", true, u->feed_id)) < 0)
		return rc;
	u->has_feed_id = rc == 1;
	return 1;
}

static int decode_fields(struct dec *d, struct qlog_record *r)
{
	int64_t v;
	const char *s;
	size_t len;
	int rc;

	if ((rc = get_int(d, "v", false, INT64_MAX, &v)) < 0)
		return rc;
	if (v != QLOG_VERSION)
		return fail(d, "v", "unsupported version %lld (this decoder reads %d)",
			    (long long)v, QLOG_VERSION);
	if ((rc = get_uuid(d, "event_id", false, r->event_id)) < 0)
		return rc;
	if ((rc = get_ts(d, "ts", &r->ts_us)) < 0 ||
	    (rc = get_text(d, "node", false, r->node, sizeof r->node)) < 0)
		return rc;
	if ((rc = get_uuid(d, "tenant_id", true, r->tenant_id)) < 0)
		return rc;
	r->has_tenant = rc == 1;
	if ((rc = get_addr(d, "client_ip", true, &r->client, NULL)) < 0 ||
	    (rc = get_string(d, "client_pseudonym", true, &s, &len)) < 0)
		return rc;
	if (rc == 1) {
		if (len == 0 || len % 2 || len / 2 > QLOG_PSEUDONYM_MAX ||
		    !parse_hex(s, r->client_pseudonym, len / 2))
			return fail(d, "client_pseudonym", "expected 2 to 64 hex digits");
		r->client_pseudonym_len = (uint8_t)(len / 2);
	}
	if ((rc = get_int(d, "client_port", false, UINT16_MAX, &v)) < 0)
		return rc;
	r->client_port = (uint16_t)v;
	if ((rc = get_enum(d, "transport", false, transport_names, ARRAY_LEN(transport_names),
			   &r->transport)) < 0 ||
	    (rc = get_name(d, "qname", true, r->qname, &r->qname_len)) < 0 ||
	    (rc = get_int(d, "qtype", false, UINT16_MAX, &v)) < 0)
		return rc;
	r->qtype = (uint16_t)v;
	/* The names are for readers; the numbers are the record. */
	if ((rc = get_string(d, "qtype_name", false, &s, &len)) < 0 ||
	    (rc = get_int(d, "rcode", true, 4095, &v)) < 0)
		return rc;
	r->has_rcode = rc == 1;
	r->rcode = r->has_rcode ? (uint16_t)v : 0;
	if ((rc = get_string(d, "rcode_name", !r->has_rcode, &s, &len)) < 0)
		return rc;
	if (!r->has_rcode && rc == 1)
		return fail(d, "rcode_name", "must be null when rcode is null");
	if ((rc = get_enum(d, "action", false, action_names, ARRAY_LEN(action_names),
			   &r->action)) < 0 ||
	    (rc = get_rule(d, &r->rule)) < 0 ||
	    (rc = get_int(d, "ede", true, UINT16_MAX, &v)) < 0)
		return rc;
	r->has_ede = rc == 1;
	r->ede = r->has_ede ? (uint16_t)v : 0;

	json_t *hit = json_object_get(d->obj, "cache_hit");
	if (!hit)
		return fail(d, "cache_hit", "missing");
	if (!json_is_boolean(hit))
		return fail(d, "cache_hit", "expected true or false");
	r->cache_hit = json_is_true(hit);

	if ((rc = get_addr(d, "upstream", false, &r->upstream, &r->upstream_port)) < 0 ||
	    (rc = get_int(d, "upstream_latency_us", true, INT32_MAX, &v)) < 0)
		return rc;
	r->has_latency = rc == 1;
	r->upstream_latency_us = r->has_latency ? (uint32_t)v : 0;
	if ((rc = get_int(d, "snapshot", false, INT64_MAX, &v)) < 0)
		return rc;
	r->snapshot = (uint64_t)v;

	const char *problem = record_problem(r);
	if (problem) {
		if (d->errlen)
			snprintf(d->err, d->errlen, "%s", problem);
		return -EINVAL;
	}
	return 0;
}

int qlog_decode_json(const char *json, size_t len, struct qlog_record *out, char *err,
		     size_t errlen)
{
	json_error_t jerr;
	struct dec d = { .scope = "", .err = err, .errlen = err ? errlen : 0 };
	int rc;

	memset(out, 0, sizeof *out);
	/* new reference, released below */
	d.obj = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!d.obj) {
		if (d.errlen)
			snprintf(err, errlen, "JSON: %s (line %d, column %d)", jerr.text, jerr.line,
				 jerr.column);
		return -EINVAL;
	}
	rc = json_is_object(d.obj) ? decode_fields(&d, out) : fail(&d, "record", "not an object");
	json_decref(d.obj);
	if (rc < 0)
		memset(out, 0, sizeof *out);
	return rc;
}

/* ---- event ids ---- */

/* 1 KiB serves about 100 ids per getrandom() call. */
static __thread struct {
	uint8_t buf[1024];
	size_t pos;
} rnd = { .pos = sizeof rnd.buf };

static void random_refill(void)
{
	size_t got = 0;

	while (got < sizeof rnd.buf) {
		ssize_t n = getrandom(rnd.buf + got, sizeof rnd.buf - got, 0);
		if (n > 0) {
			got += (size_t)n;
		} else if (errno != EINTR) {
			/* Some seccomp profiles refuse getrandom(); OpenSSL finds another source. */
			int err = errno;
			if (RAND_bytes(rnd.buf, sizeof rnd.buf) != 1)
				log_err("qlog_random_failed", "error=\"getrandom: %s\"", strerror(err));
			break;
		}
	}
	rnd.pos = 0;
}

/* RFC 9562 5.7: 48-bit big-endian Unix ms, version 7, 12 random bits, variant 10, 62 random
 * bits. Ids of one millisecond are not ordered among themselves, which the log does not need. */
void qlog_new_event_id(uint8_t out[16], uint64_t now_ms)
{
	if (sizeof rnd.buf - rnd.pos < 10)
		random_refill();
	const uint8_t *b = rnd.buf + rnd.pos;
	rnd.pos += 10;

	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)(now_ms >> (40 - 8 * i));
	out[6] = (uint8_t)(0x70 | (b[0] & 0x0f));
	out[7] = b[1];
	out[8] = (uint8_t)(0x80 | (b[2] & 0x3f));
	memcpy(out + 9, b + 3, 7);
}

int qlog_addr_from_sockaddr(struct qlog_addr *a, uint16_t *port, const struct sockaddr *sa)
{
	memset(a, 0, sizeof *a);
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		a->family = AF_INET;
		a->prefix = 32;
		memcpy(a->addr, &in->sin_addr, 4);
		*port = ntohs(in->sin_port);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
			a->family = AF_INET;
			a->prefix = 32;
			memcpy(a->addr, in6->sin6_addr.s6_addr + 12, 4);
		} else {
			a->family = AF_INET6;
			a->prefix = 128;
			memcpy(a->addr, &in6->sin6_addr, 16);
		}
		*port = ntohs(in6->sin6_port);
		return 0;
	}
	return -EAFNOSUPPORT;
}
