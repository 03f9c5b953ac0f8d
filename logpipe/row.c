/* row.c -- a query-log record as a line of COPY text (see row.h). */
#include "row.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "qlog.h"

/* The column values of the enumerations, indexed by the qlog enum. */
static const char *const transports[] = { "udp", "tcp", "dot", "doh", "doq" };
static const char *const actions[] = { "allow", "block", "monitor", "refused",
				       "ratelimited", "local", "error" };
static const char *const rule_kinds[] = { NULL, "national_block", "national_allow",
					  "tenant_allow", "tenant_deny", "category" };
static const char *const modes[] = { NULL, "block", "monitor" };

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

struct out {
	char *p, *end;
	bool full;
};

static void put_mem(struct out *o, const void *s, size_t n)
{
	if ((size_t)(o->end - o->p) < n) {
		o->full = true;
		return;
	}
	memcpy(o->p, s, n);
	o->p += n;
}

static void put_str(struct out *o, const char *s)
{
	put_mem(o, s, strlen(s));
}

static void put_char(struct out *o, char c)
{
	put_mem(o, &c, 1);
}

static void put_null(struct out *o)
{
	put_mem(o, "\\N", 2);
}

static void put_u64(struct out *o, uint64_t v)
{
	char tmp[24];
	int i = sizeof tmp;
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put_mem(o, tmp + i, sizeof tmp - (size_t)i);
}

static void put_hex(struct out *o, const uint8_t *b, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		put_char(o, digits[b[i] >> 4]);
		put_char(o, digits[b[i] & 15]);
	}
}

static void put_uuid(struct out *o, const uint8_t u[16])
{
	char text[QLOG_UUID_TEXT];
	qlog_format_uuid(text, u);
	put_mem(o, text, sizeof text);
}

/* A byte as COPY text needs it: backslash and the row/field separators escaped. */
static void put_copy_byte(struct out *o, uint8_t c)
{
	switch (c) {
	case '\\': put_mem(o, "\\\\", 2); break;
	case '\t': put_mem(o, "\\t", 2); break;
	case '\n': put_mem(o, "\\n", 2); break;
	case '\r': put_mem(o, "\\r", 2); break;
	default: put_char(o, (char)c);
	}
}

/* Strict UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF), and no
 * NUL, which no PostgreSQL text value can hold. */
static bool text_ok(const char *s)
{
	const uint8_t *p = (const uint8_t *)s;
	while (*p) {
		uint8_t c = *p;
		size_t n;
		uint32_t cp, min;
		if (c < 0x80) {
			p++;
			continue;
		} else if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else
			return false;
		for (size_t i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		p += n + 1;
	}
	return true;
}

static void put_text(struct out *o, const char *s)
{
	for (; *s; s++)
		put_copy_byte(o, (uint8_t)*s);
}

/* Presentation format (docs/querylog.md "Strings and names"), lowercased if asked; the
 * backslashes of its escapes are then doubled for COPY. */
static void put_name(struct out *o, const uint8_t *n, size_t len, bool lower)
{
	if (len == 0)
		return;
	if (len == 1) {
		put_char(o, '.');
		return;
	}
	size_t i = 0;
	bool first = true;
	while (i < len && n[i]) {
		size_t l = n[i++];
		if (!first)
			put_char(o, '.');
		first = false;
		for (size_t k = 0; k < l && i < len; k++, i++) {
			uint8_t c = n[i];
			if (lower && c >= 'A' && c <= 'Z')
				c = (uint8_t)(c + 32);
			if (c == '.' || c == '\\') {
				/* \. or \\, each backslash doubled for COPY */
				put_mem(o, "\\\\", 2);
				put_copy_byte(o, c);
			} else if (c < '!' || c > '~') {
				char ddd[3] = { (char)('0' + c / 100), (char)('0' + c / 10 % 10),
						 (char)('0' + c % 10) };
				put_mem(o, "\\\\", 2);
				put_mem(o, ddd, 3);
			} else
				put_char(o, (char)c);
		}
	}
}

static void put_ts(struct out *o, int64_t ts_us)
{
	char buf[40];
	struct tm tm;
	time_t secs = (time_t)(ts_us / 1000000);
	int64_t frac = ts_us % 1000000;
	if (frac < 0) {
		frac += 1000000;
		secs--;
	}
	gmtime_r(&secs, &tm);
	size_t n = strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S.", &tm);
	put_mem(o, buf, n);
	char f[6];
	for (int i = 5; i >= 0; i--, frac /= 10)
		f[i] = (char)('0' + frac % 10);
	put_mem(o, f, 6);
	put_mem(o, "+00", 3);
}

static void put_addr(struct out *o, const struct qlog_addr *a)
{
	char buf[INET6_ADDRSTRLEN];
	inet_ntop(a->family, a->addr, buf, sizeof buf);
	put_str(o, buf);
	if (a->prefix != (a->family == AF_INET ? 32 : 128)) {
		put_char(o, '/');
		put_u64(o, a->prefix);
	}
}

static void put_upstream(struct out *o, const struct qlog_addr *a, uint16_t port)
{
	char buf[INET6_ADDRSTRLEN];
	inet_ntop(a->family, a->addr, buf, sizeof buf);
	if (a->family == AF_INET6)
		put_char(o, '[');
	put_str(o, buf);
	if (a->family == AF_INET6)
		put_char(o, ']');
	put_char(o, ':');
	put_u64(o, port);
}

static void put_enum(struct out *o, const char *const *names, size_t count, unsigned v)
{
	if (v < count && names[v])
		put_str(o, names[v]);
	else
		put_null(o);
}

int row_format(const struct qlog_record *r, char *buf, size_t cap, const char **why)
{
	struct out o = { buf, buf + cap, false };
	const struct qlog_rule *u = &r->rule;
	bool rule = u->kind != QLOG_RULE_NONE;

	if (!text_ok(r->node)) {
		*why = "node: not UTF-8 text";
		return -EINVAL;
	}
	if (rule && !text_ok(u->category)) {
		*why = "rule.category: not UTF-8 text";
		return -EINVAL;
	}
	if (r->transport >= COUNT(transports) || r->action >= COUNT(actions)) {
		*why = "transport or action: unknown value";
		return -EINVAL;
	}

	put_ts(&o, r->ts_us);
	put_char(&o, '\t');
	put_uuid(&o, r->event_id);
	put_char(&o, '\t');
	put_text(&o, r->node);
	put_char(&o, '\t');
	if (r->has_tenant)
		put_uuid(&o, r->tenant_id);
	else
		put_null(&o);
	put_char(&o, '\t');
	if (r->client.family)
		put_addr(&o, &r->client);
	else
		put_null(&o);
	put_char(&o, '\t');
	if (r->client_pseudonym_len)
		put_hex(&o, r->client_pseudonym, r->client_pseudonym_len);
	else
		put_null(&o);
	put_char(&o, '\t');
	put_u64(&o, r->client_port);
	put_char(&o, '\t');
	put_str(&o, transports[r->transport]);
	put_char(&o, '\t');
	put_name(&o, r->qname, r->qname_len, true);
	put_char(&o, '\t');
	put_u64(&o, r->qtype);
	put_char(&o, '\t');
	if (r->has_rcode)
		put_u64(&o, r->rcode);
	else
		put_null(&o);
	put_char(&o, '\t');
	put_str(&o, actions[r->action]);
	put_char(&o, '\t');
	if (rule && u->has_list_id)
		put_uuid(&o, u->list_id);
	else
		put_null(&o);
	put_char(&o, '\t');
	if (rule && u->has_feed_id)
		put_uuid(&o, u->feed_id);
	else
		put_null(&o);
	put_char(&o, '\t');
	if (rule)
		put_name(&o, u->matched, u->matched_len, false);
	else
		put_null(&o);
	put_char(&o, '\t');
	if (rule && u->category[0])
		put_text(&o, u->category);
	else
		put_null(&o);
	put_char(&o, '\t');
	put_enum(&o, modes, COUNT(modes), rule ? u->mode : 0);
	put_char(&o, '\t');
	if (r->has_ede)
		put_u64(&o, r->ede);
	else
		put_null(&o);
	put_char(&o, '\t');
	put_char(&o, r->cache_hit ? 't' : 'f');
	put_char(&o, '\t');
	if (r->upstream.family)
		put_upstream(&o, &r->upstream, r->upstream_port);
	else
		put_null(&o);
	put_char(&o, '\t');
	if (r->has_latency)
		put_u64(&o, r->upstream_latency_us);
	else
		put_null(&o);
	put_char(&o, '\t');
	put_u64(&o, r->snapshot);
	put_char(&o, '\t');
	put_enum(&o, rule_kinds, COUNT(rule_kinds), u->kind);
	put_char(&o, '\n');
	if (o.full)
		return -ENOSPC;
	return (int)(o.p - buf);
}

int32_t row_day(int64_t ts_us)
{
	int64_t day = ts_us / 86400000000LL;
	if (ts_us < 0 && ts_us % 86400000000LL)
		day--;
	return (int32_t)day;
}
