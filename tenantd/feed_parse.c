/* feed_parse.c -- threat-feed parsers: RPZ records through ldns, MISP through jansson, hosts and
 * plain lists by hand (they are lists, not a DNS format). Every name goes through
 * snapshot_parse_name(), the one normaliser. The accepted formats are in docs/feeds.md. */
#include "feed_parse.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <ldns/ldns.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "snapshot.h"

/* A record spread over lines by parentheses (an SOA, in practice) may span this much. */
#define RPZ_MAX_RECORD       (4 * FEED_MAX_LINE)
#define RPZ_MAX_RECORD_LINES 64
#define LABELS_TEXT_MAX      (LDNS_MAX_DOMAINLEN + 1)

static const char *const format_names[] = {
	[FEED_FORMAT_RPZ] = "rpz",
	[FEED_FORMAT_HOSTS] = "hosts",
	[FEED_FORMAT_PLAIN] = "plain",
	[FEED_FORMAT_MISP] = "misp",
};

int feed_format_parse(const char *text, enum feed_format *out)
{
	if (!text || !out)
		return -EINVAL;
	for (size_t i = 0; i < sizeof format_names / sizeof format_names[0]; i++) {
		if (strcmp(text, format_names[i]) == 0) {
			*out = (enum feed_format)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *feed_format_name(enum feed_format fmt)
{
	if ((unsigned)fmt >= sizeof format_names / sizeof format_names[0])
		return "?";
	return format_names[fmt];
}

/* ---- What every parser shares: where names go, counting, samples ---- */

struct sink {
	feed_entry_fn fn;
	void *arg;
	struct feed_parse_stats *st;
	const char *unit;  /* "line", "key", "attribute": what a sample's number counts */
	uint64_t at;       /* that number for the current line or attribute, from 1 */
};

/* Appends text so that a sample is printable ASCII that can go inside a quoted log value or a
 * JSON string as it is: control bytes, non-ASCII, '"' and '\' become \xHH, and "..." marks a
 * cut. */
static void sample_append(char *dst, size_t cap, size_t pos, const char *text, size_t len)
{
	static const char hex[] = "0123456789abcdef";

	if (pos > cap - 4)
		pos = cap - 4;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		bool plain = c >= 0x20 && c < 0x7f && c != '"' && c != '\\';
		if (pos + (plain ? 1 : 4) > cap - 4) {
			memcpy(dst + pos, "...", 3);
			pos += 3;
			break;
		}
		if (plain) {
			dst[pos++] = (char)c;
		} else {
			dst[pos++] = '\\';
			dst[pos++] = 'x';
			dst[pos++] = hex[c >> 4];
			dst[pos++] = hex[c & 15];
		}
	}
	dst[pos] = '\0';
}

static void note_invalid_at(struct feed_parse_stats *st, const char *unit, uint64_t at,
			    const char *why, const char *text, size_t len)
{
	st->invalid++;
	if (st->n_samples >= FEED_SAMPLES)
		return;
	char *d = st->invalid_samples[st->n_samples++];
	int n = snprintf(d, FEED_SAMPLE_LEN, "%s %llu: %s: ", unit, (unsigned long long)at, why);
	sample_append(d, FEED_SAMPLE_LEN, n < 0 ? 0 : (size_t)n, text, len);
}

static void note_invalid(struct sink *s, const char *why, const char *text, size_t len)
{
	note_invalid_at(s->st, s->unit, s->at, why, text, len);
}

static int emit(struct sink *s, const char *name, enum feed_action action, bool local_data,
		bool wildcard)
{
	struct feed_parse_stats *st = s->st;
	st->entries++;
	st->passthru += action == FEED_ACTION_PASSTHRU;
	st->local_data_mapped += local_data;
	st->wildcards += wildcard;
	return s->fn(s->arg, name, action);
}

static bool is_wildcard(const char *text, size_t len)
{
	return len >= 2 && text[0] == '*' && text[1] == '.';
}

/* Names hosts files carry for the machine itself (StevenBlack's header, Debian's /etc/hosts):
 * not threats, and "local" would cover all of .local. */
static bool is_host_name(const char *name)
{
	static const char *const names[] = {
		"localhost", "localhost.localdomain", "localhost4", "localhost4.localdomain4",
		"localhost6", "localhost6.localdomain6", "local", "broadcasthost",
		"ip6-localhost", "ip6-loopback", "ip6-localnet", "ip6-mcastprefix",
		"ip6-allnodes", "ip6-allrouters", "ip6-allhosts",
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (strcmp(name, names[i]) == 0)
			return true;
	return false;
}

/* One name of a hosts file or plain list: handed on, skipped or counted invalid. */
static int list_name(struct sink *s, const char *text, size_t len, enum feed_action action,
		     bool local_data)
{
	char name[SNAPSHOT_NAME_TEXT_MAX];
	if (snapshot_name_text(text, len, name) < 0) {
		note_invalid(s, "bad name", text, len);
		return 0;
	}
	if (is_host_name(name)) {
		s->st->skipped++;
		return 0;
	}
	return emit(s, name, action, local_data, is_wildcard(text, len));
}

/* ---- Lines ---- */

struct cursor {
	const char *p;
	const char *end;
};

/* The next physical line without its "\n" or "\r\n"; false at the end of the document. */
static bool cursor_next(struct cursor *c, const char **line, size_t *len)
{
	if (c->p >= c->end)
		return false;
	const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
	const char *e = nl ? nl : c->end;
	*line = c->p;
	*len = (size_t)(e - c->p);
	if (*len && e[-1] == '\r')
		(*len)--;
	c->p = nl ? nl + 1 : c->end;
	return true;
}

/* Editors on Windows start files with a UTF-8 byte order mark. */
static void strip_bom(const char **line, size_t *len)
{
	if (*len >= 3 && memcmp(*line, "\xef\xbb\xbf", 3) == 0) {
		*line += 3;
		*len -= 3;
	}
}

/* No format accepts an over-long line (it is never silently cut) or a NUL byte (binary junk,
 * and C strings would end there). */
static bool line_usable(struct sink *s, const char *line, size_t len)
{
	if (len > FEED_MAX_LINE) {
		note_invalid(s, "line too long", line, len);
		return false;
	}
	if (memchr(line, '\0', len)) {
		note_invalid(s, "NUL byte", line, len);
		return false;
	}
	return true;
}

static bool is_blank(char c)
{
	return c == ' ' || c == '\t';
}

/* The next run of non-blank bytes in [*p, end); false when only blanks remain. */
static bool next_token(const char **p, const char *end, const char **tok, size_t *len)
{
	const char *q = *p;
	while (q < end && is_blank(*q))
		q++;
	if (q == end)
		return false;
	*tok = q;
	while (q < end && !is_blank(*q))
		q++;
	*len = (size_t)(q - *tok);
	*p = q;
	return true;
}

static bool has_prefix(const char *s, size_t len, const char *prefix)
{
	size_t n = strlen(prefix);
	return len >= n && memcmp(s, prefix, n) == 0;
}

typedef int (*line_fn)(struct sink *s, const char *line, size_t len);

static int text_parse(struct sink *s, const char *data, size_t len, line_fn fn)
{
	struct cursor c = { data, data + len };
	const char *line;
	size_t n;
	while (cursor_next(&c, &line, &n)) {
		s->st->lines++;
		if (++s->at == 1)
			strip_bom(&line, &n);
		if (!line_usable(s, line, n))
			continue;
		int rc = fn(s, line, n);
		if (rc)
			return rc;
	}
	return 0;
}

/* ---- hosts ---- */

/* The address field. *sink is true for the addresses blocklists point names at (0.0.0.0,
 * 127.0.0.0/8, ::, ::1) and false for a real address, which redirects the name: local data,
 * which we answer with the tenant's block action as for RPZ. A "%zone" suffix (fe80::1%lo0 in
 * StevenBlack's header) is ignored. */
static int hosts_address(const char *tok, size_t n, bool *sink)
{
	char buf[INET6_ADDRSTRLEN];
	const char *pct = memchr(tok, '%', n);
	if (pct)
		n = (size_t)(pct - tok);
	if (n == 0 || n >= sizeof buf)
		return -EINVAL;
	memcpy(buf, tok, n);
	buf[n] = '\0';

	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, buf, &a4) == 1) {
		const uint8_t *b = (const uint8_t *)&a4.s_addr;
		*sink = a4.s_addr == 0 || b[0] == 127;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, &a6) == 1) {
		*sink = IN6_IS_ADDR_UNSPECIFIED(&a6) || IN6_IS_ADDR_LOOPBACK(&a6);
		return 0;
	}
	return -EINVAL;
}

/* A sink address in the name column, as in StevenBlack's "0.0.0.0 0.0.0.0": a no-op line. */
static bool is_sink_literal(const char *tok, size_t n)
{
	static const char *const sinks[] = { "0.0.0.0", "127.0.0.1", "::", "::1" };
	for (size_t i = 0; i < sizeof sinks / sizeof sinks[0]; i++)
		if (n == strlen(sinks[i]) && memcmp(tok, sinks[i], n) == 0)
			return true;
	return false;
}

/* "address name [name...]", '#' starting a comment anywhere, as hosts(5) reads it. */
static int hosts_line(struct sink *s, const char *line, size_t len)
{
	const char *end = memchr(line, '#', len);
	if (!end)
		end = line + len;
	const char *p = line, *tok;
	size_t n;
	bool sink;

	if (!next_token(&p, end, &tok, &n))
		return 0;
	if (hosts_address(tok, n, &sink) < 0) {
		note_invalid(s, "not an address", line, (size_t)(end - line));
		return 0;
	}
	unsigned names = 0;
	while (next_token(&p, end, &tok, &n)) {
		names++;
		if (is_sink_literal(tok, n)) {
			s->st->skipped++;
			continue;
		}
		int rc = list_name(s, tok, n, FEED_ACTION_BLOCK, !sink);
		if (rc)
			return rc;
	}
	if (names == 0)
		note_invalid(s, "address without a name", line, (size_t)(end - line));
	return 0;
}

/* ---- plain lists ---- */

/* Adblock "||name^": the name and everything below it, as in the DNS filter lists of AdGuard,
 * uBlock and OISD. A rule with a path, a pattern or a modifier other than $important
 * ($third-party, $dnstype, $client, $badfilter, ...) means something narrower than "this
 * name", so it is counted unsupported rather than widened into a block. */
static int plain_adblock(struct sink *s, const char *r, size_t n, enum feed_action action)
{
	size_t name_len = 0;
	while (name_len < n && !memchr("^$/|:?", r[name_len], 6))
		name_len++;
	const char *rest = r + name_len;
	size_t rest_len = n - name_len;
	if (rest_len && rest[0] == '^') {
		rest++;
		rest_len--;
	}
	bool plain_rest = rest_len == 0 || (rest_len == 10 && memcmp(rest, "$important", 10) == 0);
	size_t skip = is_wildcard(r, name_len) ? 2 : 0;
	if (!plain_rest || memchr(r + skip, '*', name_len - skip)) {
		s->st->unsupported++;
		return 0;
	}
	return list_name(s, r, name_len, action, false);
}

/* A URL names a host, but a URL with a path names one file on it, often on a shared host (a
 * code forge, a file-sharing site, a hacked blog): blocking the whole host for it would cut
 * off far more than the feed meant. So only http(s) URLs without a path give their host; the
 * others are counted unsupported. */
static int plain_url(struct sink *s, const char *u, size_t n, const char *sep)
{
	size_t scheme = (size_t)(sep - u);
	if (!((scheme == 4 && strncasecmp(u, "http", 4) == 0) ||
	      (scheme == 5 && strncasecmp(u, "https", 5) == 0))) {
		s->st->unsupported++;
		return 0;
	}
	const char *host = sep + 3, *end = u + n, *e = host;
	while (e < end && *e != '/' && *e != '?' && *e != '#')
		e++;
	if (end - e > 1 || (e < end && *e != '/')) {
		s->st->unsupported++;
		return 0;
	}
	const char *at = memrchr(host, '@', (size_t)(e - host));
	if (at)
		host = at + 1;
	const char *colon = memchr(host, ':', (size_t)(e - host));
	if (colon) {
		bool port = colon + 1 < e;
		for (const char *d = colon + 1; d < e; d++)
			port = port && *d >= '0' && *d <= '9';
		if (!port) {
			note_invalid(s, "bad URL", u, n);
			return 0;
		}
		e = colon;
	}
	return list_name(s, host, (size_t)(e - host), FEED_ACTION_BLOCK, false);
}

/* One name per line, with the decorations blocklists carry; a comment may follow the name
 * after a blank ("name # why"), never glued to it (Adblock's "name##.ad" is not a comment). */
static int plain_line(struct sink *s, const char *line, size_t len)
{
	const char *p = line, *end = line + len, *tok, *more;
	size_t n, more_len;

	if (!next_token(&p, end, &tok, &n))
		return 0;
	if (tok[0] == '#' || tok[0] == ';' || tok[0] == '!')
		return 0;
	while (is_blank(end[-1]))
		end--;
	if (tok[0] == '[' && end[-1] == ']')  /* Adblock's "[Adblock Plus 2.0]" header */
		return 0;
	if (next_token(&p, end, &more, &more_len) && more[0] != '#' && more[0] != ';') {
		note_invalid(s, "more than a name", line, len);
		return 0;
	}

	enum feed_action action = FEED_ACTION_BLOCK;
	if (has_prefix(tok, n, "@@")) {
		action = FEED_ACTION_PASSTHRU;
		tok += 2;
		n -= 2;
		if (!has_prefix(tok, n, "||")) {
			s->st->unsupported++;
			return 0;
		}
	}
	if (has_prefix(tok, n, "||"))
		return plain_adblock(s, tok + 2, n - 2, action);
	const char *sep = memmem(tok, n, "://", 3);
	if (sep)
		return plain_url(s, tok, n, sep);
	if (n > 1 && tok[0] == '.') {
		tok++;
		n--;
	}
	return list_name(s, tok, n, FEED_ACTION_BLOCK, false);
}

/* ---- RPZ ---- */

struct rpz {
	struct sink *s;
	ldns_rdf *apex;       /* the policy zone, stripped from owners; NULL until known */
	ldns_rdf *origin;     /* what relative names hang from */
	ldns_rdf *prev;       /* owner of the last record, for records with a blank owner */
	bool prev_ok;         /* false after an invalid record: a blank owner would be a guess */
	bool origin_ok;       /* false after a bad $ORIGIN: records are invalid until a good one */
	bool refused;         /* the current record's syntax was refused */
	uint32_t ttl;
	ldns_rdf *t_root, *t_nodata, *t_passthru, *t_drop, *t_tcp_only;  /* CNAME targets */
	const char *line;     /* first line of the current record, for samples */
	size_t line_len;
	char *rec;            /* the current record, its lines joined, comments cut, NUL-terminated */
};

static void rpz_invalid(struct rpz *z, const char *why)
{
	z->prev_ok = false;
	note_invalid(z->s, why, z->line, z->line_len);
}

/* One line of a zone file as RFC 1035 section 5.1 reads it: returns the length before any
 * ';' comment and adds its parentheses to *depth (quoted or escaped ones do not count). *bad
 * is set when a ')' closes more than was opened. */
static size_t zone_scan(const char *s, size_t n, int *depth, bool *bad)
{
	bool quoted = false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '\\') {
			i++;
			continue;
		}
		if (quoted) {
			quoted = c != '"';
			continue;
		}
		if (c == '"')
			quoted = true;
		else if (c == ';')
			return i;
		else if (c == '(')
			(*depth)++;
		else if (c == ')' && --(*depth) < 0)
			*bad = true;
	}
	return n;
}

/* The first nlabels labels of a wire name as dotted text. A byte that cannot stand in a
 * name's text (a dot, a blank, a control byte, non-ASCII) fails, so an escaped "a\.b" is
 * never read as two labels; snapshot_parse_name() judges the rest. ldns concatenates a
 * relative name and $ORIGIN without checking the 255-byte limit, so the length is checked
 * here. */
static int labels_text(const uint8_t *wire, size_t nlabels, char out[LABELS_TEXT_MAX])
{
	size_t o = 0;
	for (size_t l = 0; l < nlabels; l++) {
		uint8_t n = *wire++;
		if (n == 0 || o + 1u + n >= LABELS_TEXT_MAX)
			return -EINVAL;
		if (o)
			out[o++] = '.';
		for (uint8_t i = 0; i < n; i++) {
			uint8_t c = *wire++;
			if (c <= ' ' || c >= 0x7f || c == '.')
				return -EINVAL;
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return 0;
}

/* RPZ triggers other than the query name ("32.1.2.0.192.rpz-ip"): the last label of the
 * owner below the zone says which. */
static bool rpz_is_trigger(const char *rel)
{
	static const char *const triggers[] = { "rpz-ip", "rpz-nsip", "rpz-nsdname", "rpz-client-ip" };
	const char *dot = strrchr(rel, '.');
	const char *last = dot ? dot + 1 : rel;
	for (size_t i = 0; i < sizeof triggers / sizeof triggers[0]; i++)
		if (strcasecmp(last, triggers[i]) == 0)
			return true;
	return false;
}

/* The action of "rel CNAME target", as BIND's rpz.c decodes it. Returns 1 and sets *action
 * and *local_data, or 0 for rpz-tcp-only (not a block). A target equal to the listed name
 * itself is the old form of passthru; any other target is local data (a walled garden). */
static int rpz_cname_action(struct rpz *z, const ldns_rdf *target, const char *rel,
			    enum feed_action *action, bool *local_data)
{
	char text[LABELS_TEXT_MAX];

	*action = FEED_ACTION_BLOCK;
	*local_data = false;
	if (ldns_dname_compare(target, z->t_root) == 0 ||
	    ldns_dname_compare(target, z->t_nodata) == 0 ||
	    ldns_dname_compare(target, z->t_drop) == 0)
		return 1;
	if (ldns_dname_compare(target, z->t_passthru) == 0) {
		*action = FEED_ACTION_PASSTHRU;
		return 1;
	}
	if (ldns_dname_compare(target, z->t_tcp_only) == 0)
		return 0;
	if (labels_text(ldns_rdf_data(target), ldns_dname_label_count(target), text) == 0 &&
	    strcasecmp(text, rel) == 0) {
		*action = FEED_ACTION_PASSTHRU;
		return 1;
	}
	*local_data = true;
	return 1;
}

/* What a parsed record means. Numbered as in docs/feeds.md:
 *  1. records owned by the zone apex (SOA, NS, anything) describe the zone: skipped;
 *  2. owners outside the zone are invalid, as BIND ignores them;
 *  3. rpz-ip, rpz-nsip, rpz-nsdname and rpz-client-ip triggers are unsupported;
 *  4. CNAME . / *. / rpz-drop. block, rpz-passthru. is an exception, rpz-tcp-only. is
 *     unsupported, any other target is local data;
 *  5. SOA, NS and DNAME below the apex are unsupported, DNSSEC records are skipped;
 *  6. any other type is local data (A, AAAA, TXT, ...), which blocks. */
static int rpz_apply(struct rpz *z, const ldns_rr *rr)
{
	struct feed_parse_stats *st = z->s->st;
	const ldns_rdf *owner = ldns_rr_owner(rr);
	ldns_rr_type type = ldns_rr_get_type(rr);
	char rel[LABELS_TEXT_MAX], name[SNAPSHOT_NAME_TEXT_MAX];

	if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
		rpz_invalid(z, "class is not IN");
		return 0;
	}
	if (type == 0) {  /* ldns's answer for a type name it does not know */
		rpz_invalid(z, "unknown type");
		return 0;
	}
	if (!z->apex) {
		z->apex = ldns_rdf_clone(type == LDNS_RR_TYPE_SOA ? owner : z->t_root);
		if (!z->apex)
			return -ENOMEM;
	}
	if (ldns_dname_compare(owner, z->apex) == 0) {
		st->skipped++;
		return 0;
	}
	if (!ldns_dname_is_subdomain(owner, z->apex)) {
		rpz_invalid(z, "outside the policy zone");
		return 0;
	}
	size_t below = (size_t)(ldns_dname_label_count(owner) - ldns_dname_label_count(z->apex));
	if (labels_text(ldns_rdf_data(owner), below, rel) < 0) {
		rpz_invalid(z, "bad name");
		return 0;
	}
	if (rpz_is_trigger(rel)) {
		st->unsupported++;
		return 0;
	}

	enum feed_action action = FEED_ACTION_BLOCK;
	bool local_data = true;
	switch (type) {
	case LDNS_RR_TYPE_CNAME:
		if (!rpz_cname_action(z, ldns_rr_rdf(rr, 0), rel, &action, &local_data)) {
			st->unsupported++;
			return 0;
		}
		break;
	case LDNS_RR_TYPE_SOA:
	case LDNS_RR_TYPE_NS:
	case LDNS_RR_TYPE_DNAME:
		st->unsupported++;
		return 0;
	case LDNS_RR_TYPE_RRSIG:
	case LDNS_RR_TYPE_NSEC:
	case LDNS_RR_TYPE_NSEC3:
	case LDNS_RR_TYPE_NSEC3PARAM:
	case LDNS_RR_TYPE_DNSKEY:
		st->skipped++;
		return 0;
	default:
		break;
	}
	if (snapshot_name_text(rel, strlen(rel), name) < 0) {
		rpz_invalid(z, "bad name");
		return 0;
	}
	return emit(z->s, name, action, local_data, is_wildcard(rel, strlen(rel)));
}

/* $TTL and $ORIGIN as RFC 1035 defines them. $INCLUDE is never followed: a feed fetched from
 * elsewhere must not make tenantd read its own files. */
static int rpz_directive(struct rpz *z)
{
	char *save = NULL;
	char *kw = strtok_r(z->rec, " \t", &save);
	char *arg = strtok_r(NULL, " \t", &save);
	bool more = strtok_r(NULL, " \t", &save) != NULL;

	if (strcasecmp(kw, "$INCLUDE") == 0 || strcasecmp(kw, "$GENERATE") == 0) {
		z->s->st->unsupported++;
		return 0;
	}
	if (strcasecmp(kw, "$TTL") == 0) {
		const char *e = NULL;
		uint32_t ttl = arg ? ldns_str2period(arg, &e) : 0;
		if (!arg || more || *e) {
			z->refused = true;
			rpz_invalid(z, "bad $TTL");
			return 0;
		}
		z->ttl = ttl;
		return 0;
	}
	if (strcasecmp(kw, "$ORIGIN") != 0) {
		z->refused = true;
		rpz_invalid(z, "unknown directive");
		return 0;
	}
	ldns_rdf *o = arg && !more ? ldns_dname_new_frm_str(arg) : NULL;
	if (o && !ldns_dname_str_absolute(arg) &&
	    (!z->origin_ok || ldns_dname_cat(o, z->origin) != LDNS_STATUS_OK)) {
		ldns_rdf_deep_free(o);
		o = NULL;
	}
	if (!o) {
		z->refused = true;
		z->origin_ok = false;
		rpz_invalid(z, "bad $ORIGIN");
		return 0;
	}
	ldns_rdf_deep_free(z->origin);
	z->origin = o;
	z->origin_ok = true;
	if (!z->apex) {
		z->apex = ldns_rdf_clone(o);
		if (!z->apex)
			return -ENOMEM;
	}
	return 0;
}

static int rpz_record(struct rpz *z)
{
	const char *r = z->rec;
	while (is_blank(*r))
		r++;
	if (*r == '\0')
		return 0;  /* blank or comment */
	if (z->rec[0] == '$')
		return rpz_directive(z);
	if (!z->origin_ok) {
		rpz_invalid(z, "after a bad $ORIGIN");
		return 0;
	}
	if (r != z->rec && !z->prev_ok) {
		rpz_invalid(z, "blank owner after an invalid record");
		return 0;
	}

	ldns_rr *rr = NULL;
	ldns_status ls = ldns_rr_new_frm_str(&rr, z->rec, z->ttl, z->origin, &z->prev);
	if (ls == LDNS_STATUS_MEM_ERR)
		return -ENOMEM;
	if (ls != LDNS_STATUS_OK) {
		z->refused = true;
		rpz_invalid(z, "bad record");
		return 0;
	}
	z->prev_ok = true;
	int rc = rpz_apply(z, rr);
	ldns_rr_free(rr);
	return rc;
}

/* Reads the record that starts at the cursor: one line, or several joined while parentheses
 * are open (an SOA). A record whose parentheses never close within RPZ_MAX_RECORD_LINES, or
 * whose joined text is refused, costs only its first line: reading resumes at the next one,
 * so one stray "(" cannot swallow the rest of the feed. */
static int rpz_next(struct rpz *z, struct cursor *c)
{
	struct sink *s = z->s;
	const char *line;
	size_t n;

	if (!cursor_next(c, &line, &n))
		return 0;
	s->st->lines++;
	if (++s->at == 1)
		strip_bom(&line, &n);
	if (!line_usable(s, line, n)) {
		z->prev_ok = false;
		return 0;
	}
	z->line = line;
	z->line_len = n;

	int depth = 0;
	bool bad = false;
	size_t used = zone_scan(line, n, &depth, &bad);
	memcpy(z->rec, line, used);
	size_t rec_len = used;
	struct cursor look = *c;
	unsigned extra = 0;
	while (depth > 0 && !bad && extra < RPZ_MAX_RECORD_LINES) {
		if (!cursor_next(&look, &line, &n) || n > FEED_MAX_LINE || memchr(line, '\0', n))
			break;
		extra++;
		used = zone_scan(line, n, &depth, &bad);
		if (rec_len + 1 + used > RPZ_MAX_RECORD)
			break;
		z->rec[rec_len++] = ' ';
		memcpy(z->rec + rec_len, line, used);
		rec_len += used;
	}
	if (depth != 0 || bad) {
		rpz_invalid(z, "unbalanced parentheses");
		return 0;
	}
	z->rec[rec_len] = '\0';

	z->refused = false;
	int rc = rpz_record(z);
	if (extra && !z->refused) {
		*c = look;
		s->st->lines += extra;
		s->at += extra;
	}
	return rc;
}

static ldns_rdf *rpz_origin_new(const char *text)
{
	if (!text || !*text)
		return NULL;
	if (ldns_dname_str_absolute(text))
		return ldns_dname_new_frm_str(text);
	char buf[LDNS_MAX_DOMAINLEN + 2];
	if ((size_t)snprintf(buf, sizeof buf, "%s.", text) >= sizeof buf)
		return NULL;
	return ldns_dname_new_frm_str(buf);
}

static int rpz_parse(struct sink *s, const char *data, size_t len, const char *origin)
{
	struct rpz z = {
		.s = s,
		.prev_ok = true,
		.origin_ok = true,
		.t_root = ldns_dname_new_frm_str("."),
		.t_nodata = ldns_dname_new_frm_str("*."),
		.t_passthru = ldns_dname_new_frm_str("rpz-passthru."),
		.t_drop = ldns_dname_new_frm_str("rpz-drop."),
		.t_tcp_only = ldns_dname_new_frm_str("rpz-tcp-only."),
		.rec = malloc(RPZ_MAX_RECORD + 1),
	};
	int rc = 0;

	if (origin) {
		z.apex = rpz_origin_new(origin);
		if (!z.apex)
			rc = -EINVAL;
	}
	if (rc == 0) {
		z.origin = ldns_rdf_clone(z.apex ? z.apex : z.t_root);
		if (!z.t_root || !z.t_nodata || !z.t_passthru || !z.t_drop || !z.t_tcp_only ||
		    !z.rec || !z.origin)
			rc = -ENOMEM;
	}
	struct cursor c = { data, data + len };
	while (rc == 0 && c.p < c.end)
		rc = rpz_next(&z, &c);

	ldns_rdf_deep_free(z.apex);
	ldns_rdf_deep_free(z.origin);
	ldns_rdf_deep_free(z.prev);
	ldns_rdf_deep_free(z.t_root);
	ldns_rdf_deep_free(z.t_nodata);
	ldns_rdf_deep_free(z.t_passthru);
	ldns_rdf_deep_free(z.t_drop);
	ldns_rdf_deep_free(z.t_tcp_only);
	free(z.rec);
	return rc;
}

int feed_parse(enum feed_format fmt, const char *data, size_t len, const char *rpz_origin,
	       feed_entry_fn fn, void *arg, struct feed_parse_stats *st)
{
	if ((!data && len) || !fn || !st)
		return -EINVAL;
	if (!data)
		data = "";
	struct sink s = { .fn = fn, .arg = arg, .st = st, .unit = "line" };
	switch (fmt) {
	case FEED_FORMAT_RPZ:
		return rpz_parse(&s, data, len, rpz_origin);
	case FEED_FORMAT_HOSTS:
		return text_parse(&s, data, len, hosts_line);
	case FEED_FORMAT_PLAIN:
		return text_parse(&s, data, len, plain_line);
	default:
		return -EINVAL;
	}
}

/* ---- MISP ---- */

static int fail(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static bool uuid_valid(const char *s)
{
	for (int i = 0; i < FEED_UUID_LEN; i++) {
		char c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return s[FEED_UUID_LEN] == '\0';
}

static int uuid_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

int feed_misp_manifest(const char *json, size_t len, char (**uuids)[FEED_UUID_LEN + 1], size_t *n,
		       struct feed_parse_stats *st, char *err, size_t errlen)
{
	if (!json || !uuids || !n || !st)
		return -EINVAL;
	*uuids = NULL;
	*n = 0;

	json_error_t jerr;
	json_auto_t *root = json_loadb(json, len, 0, &jerr);  /* new reference */
	if (!root)
		return fail(err, errlen, "manifest: %s at line %d", jerr.text, jerr.line);
	if (!json_is_object(root))
		return fail(err, errlen, "manifest: not a JSON object");

	size_t cap = json_object_size(root), count = 0;
	if (cap == 0)
		return 0;
	char (*out)[FEED_UUID_LEN + 1] = calloc(cap, sizeof *out);
	if (!out)
		return -ENOMEM;
	struct sink s = { .st = st, .unit = "key" };
	const char *key;
	json_t *value;  /* borrowed */
	json_object_foreach(root, key, value) {
		st->lines++;
		s.at++;
		if (!uuid_valid(key)) {
			note_invalid(&s, "not a UUID", key, strlen(key));
			continue;
		}
		memcpy(out[count++], key, FEED_UUID_LEN + 1);
	}
	if (count == 0) {
		free(out);
		return 0;
	}
	qsort(out, count, sizeof *out, uuid_cmp);
	*uuids = out;
	*n = count;
	return 0;
}

/* The part of an attribute's value that names a host, or NULL for a type we do not take. */
static const char *misp_host_part(const char *type, const char *value, size_t vlen, size_t *len)
{
	*len = vlen;
	if (strcmp(type, "domain") == 0 || strcmp(type, "hostname") == 0)
		return value;
	if (strcmp(type, "domain|ip") == 0 || strcmp(type, "hostname|port") == 0) {
		const char *bar = memchr(value, '|', vlen);
		*len = bar ? (size_t)(bar - value) : vlen;
		return value;
	}
	return NULL;
}

/* attr is borrowed. Only indicators marked for detection (to_ids) block: the others are
 * context (a victim's site, a legitimate service the malware also contacts), and blocking
 * them would cut off what the analyst deliberately left open. */
static int misp_attribute(struct sink *s, json_t *attr, bool object_deleted)
{
	struct feed_parse_stats *st = s->st;
	if (!json_is_object(attr)) {
		note_invalid(s, "not an object", "", 0);
		return 0;
	}
	json_t *type = json_object_get(attr, "type");    /* borrowed */
	json_t *value = json_object_get(attr, "value");  /* borrowed */
	json_t *to_ids = json_object_get(attr, "to_ids");  /* borrowed */
	if (!json_is_string(type) || !json_is_string(value)) {
		note_invalid(s, "no type or value string", "", 0);
		return 0;
	}
	if (object_deleted || json_is_true(json_object_get(attr, "deleted"))) {
		st->skipped++;
		return 0;
	}
	const char *v = json_string_value(value);
	size_t vlen = json_string_length(value), hlen;
	const char *host = misp_host_part(json_string_value(type), v, vlen, &hlen);
	if (!host) {
		st->skipped++;
		return 0;
	}
	if (!json_is_boolean(to_ids)) {
		note_invalid(s, "to_ids is not a boolean", v, vlen);
		return 0;
	}
	if (json_is_false(to_ids)) {
		st->not_to_ids++;
		return 0;
	}
	char name[SNAPSHOT_NAME_TEXT_MAX];
	if (snapshot_name_text(host, hlen, name) < 0) {
		note_invalid(s, "bad name", v, vlen);
		return 0;
	}
	return emit(s, name, FEED_ACTION_BLOCK, false, is_wildcard(host, hlen));
}

/* attrs (borrowed) is an array or NULL. */
static int misp_attributes(struct sink *s, json_t *attrs, bool object_deleted)
{
	size_t i;
	json_t *attr;  /* borrowed */
	json_array_foreach(attrs, i, attr) {
		s->st->lines++;
		s->at++;
		int rc = misp_attribute(s, attr, object_deleted);
		if (rc)
			return rc;
	}
	return 0;
}

int feed_misp_event(const char *json, size_t len, feed_entry_fn fn, void *arg,
		    struct feed_parse_stats *st, char *err, size_t errlen)
{
	if (!json || !fn || !st)
		return -EINVAL;
	json_error_t jerr;
	json_auto_t *root = json_loadb(json, len, 0, &jerr);  /* new reference */
	if (!root)
		return fail(err, errlen, "event: %s at line %d", jerr.text, jerr.line);
	json_t *event = json_object_get(root, "Event");       /* borrowed, as all below */
	if (!json_is_object(event))
		return fail(err, errlen, "event: no \"Event\" object");
	json_t *attrs = json_object_get(event, "Attribute");
	json_t *objects = json_object_get(event, "Object");
	if (attrs && !json_is_array(attrs))
		return fail(err, errlen, "event: \"Attribute\" is not an array");
	if (objects && !json_is_array(objects))
		return fail(err, errlen, "event: \"Object\" is not an array");

	struct sink s = { .fn = fn, .arg = arg, .st = st, .unit = "attribute" };
	int rc = misp_attributes(&s, attrs, false);
	size_t i;
	json_t *obj;
	json_array_foreach(objects, i, obj) {
		if (rc)
			break;
		json_t *oattrs = json_object_get(obj, "Attribute");
		if (!json_is_object(obj) || (oattrs && !json_is_array(oattrs))) {
			st->lines++;
			note_invalid_at(st, "object", i + 1, "not an object with an Attribute array",
					"", 0);
			continue;
		}
		rc = misp_attributes(&s, oattrs, json_is_true(json_object_get(obj, "deleted")));
	}
	return rc;
}
