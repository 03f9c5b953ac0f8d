/* wire.c -- bounded reading and writing of the DNS structures the packet path needs. */
#include "wire.h"

#include <string.h>

#define EDNS_OPTION_EDE 15
#define ADDITIONAL_LIMIT 8 /* more records than this in a query's additional section is abuse */

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

void wire_name_lower(uint8_t *name, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (name[i] >= 'A' && name[i] <= 'Z')
			name[i] |= 0x20;
}

/* An uncompressed name at pkt[off]: returns its length, or 0 if it is malformed, runs past
 * len, exceeds 255 bytes, or uses compression (never needed in a question). Label length
 * bytes are copied too; lowercasing them is harmless since they are at most 63. */
static size_t read_plain_name(const uint8_t *pkt, size_t len, size_t off, uint8_t *copy)
{
	size_t start = off;
	for (;;) {
		if (off >= len)
			return 0;
		uint8_t l = pkt[off];
		if (l == 0)
			break;
		if (l > 63)
			return 0;
		off += 1u + l;
		if (off - start >= WIRE_MAX_NAME)
			return 0;
	}
	size_t n = off + 1 - start;
	if (copy) {
		memcpy(copy, pkt + start, n);
		wire_name_lower(copy, n);
	}
	return n;
}

/* Skips a possibly compressed name without following pointers. Returns the offset after it,
 * or 0 if malformed. */
static size_t skip_name(const uint8_t *pkt, size_t len, size_t off)
{
	size_t total = 0;
	for (;;) {
		if (off >= len)
			return 0;
		uint8_t l = pkt[off];
		if ((l & 0xC0) == 0xC0)
			return off + 2 <= len ? off + 2 : 0;
		if (l > 63)
			return 0;
		if (l == 0)
			return off + 1;
		total += 1u + l;
		if (total >= WIRE_MAX_NAME)
			return 0;
		off += 1u + l;
	}
}

/* Reads the OPT record whose RDATA starts at rdata (rdlen bytes): checks every option fits. */
static bool read_opt(struct wire_query *q, uint16_t rclass, uint32_t ttl, const uint8_t *rdata,
		     uint16_t rdlen)
{
	q->has_edns = true;
	q->udp_size = rclass < WIRE_MIN_UDP ? WIRE_MIN_UDP : rclass;
	q->edns_version = (uint8_t)(ttl >> 16);
	q->do_bit = (ttl & 0x8000) != 0;
	for (uint16_t i = 0; i < rdlen;) {
		if (rdlen - i < 4)
			return false;
		uint16_t optlen = get16(rdata + i + 2);
		if (optlen > rdlen - i - 4)
			return false;
		i = (uint16_t)(i + 4 + optlen); /* unknown options are ignored (RFC 6891 6.1.2) */
	}
	return true;
}

enum wire_verdict wire_parse_query(const uint8_t *pkt, size_t len, struct wire_query *q)
{
	q->has_question = false;
	q->has_edns = false;
	q->do_bit = false;
	q->edns_version = 0;
	q->udp_size = WIRE_MIN_UDP;
	if (len < WIRE_HEADER_LEN)
		return WIRE_DROP;
	q->id = get16(pkt);
	q->flags = get16(pkt + 2);
	q->opcode = (uint8_t)((q->flags >> 11) & 0xF);
	if (q->flags & WIRE_FLAG_QR)
		return WIRE_DROP;

	uint16_t qd = get16(pkt + 4), an = get16(pkt + 6), ns = get16(pkt + 8);
	uint16_t ar = get16(pkt + 10);
	size_t off = WIRE_HEADER_LEN;
	if (qd == 1) {
		size_t n = read_plain_name(pkt, len, off, q->qname);
		if (n && off + n + 4 <= len) {
			q->qname_len = (uint8_t)n;
			q->qtype = get16(pkt + off + n);
			q->qclass = get16(pkt + off + n + 2);
			q->question_end = off + n + 4;
			q->has_question = true;
			off = q->question_end;
		}
	}
	if (q->opcode != 0)
		return WIRE_NOTIMP;
	if (!q->has_question || an != 0 || ns != 0 || ar > ADDITIONAL_LIMIT)
		return WIRE_FORMERR;

	bool seen_opt = false;
	for (uint16_t i = 0; i < ar; i++) {
		size_t owner = off;
		off = skip_name(pkt, len, off);
		if (!off || off + 10 > len)
			return WIRE_FORMERR;
		uint16_t type = get16(pkt + off), rclass = get16(pkt + off + 2);
		uint32_t ttl = get32(pkt + off + 4);
		uint16_t rdlen = get16(pkt + off + 8);
		off += 10;
		if (rdlen > len - off)
			return WIRE_FORMERR;
		if (type == WIRE_TYPE_OPT) {
			/* One OPT, owned by the root (RFC 6891 6.1.1). */
			if (seen_opt || pkt[owner] != 0 ||
			    !read_opt(q, rclass, ttl, pkt + off, rdlen))
				return WIRE_FORMERR;
			seen_opt = true;
		}
		off += rdlen;
	}
	if (off != len)
		return WIRE_FORMERR;
	if (q->has_edns && q->edns_version != 0)
		return WIRE_BADVERS;
	return WIRE_OK;
}

/* --- writing ----------------------------------------------------------------------------- */

static void put_bytes(struct wire_writer *w, const void *data, size_t n)
{
	if (w->overflow || n > w->cap - w->len) {
		w->overflow = true;
		return;
	}
	memcpy(w->buf + w->len, data, n);
	w->len += n;
}

static void put_u16(struct wire_writer *w, uint16_t v)
{
	uint8_t b[2];
	put16(b, v);
	put_bytes(w, b, 2);
}

static void put_u32(struct wire_writer *w, uint32_t v)
{
	uint8_t b[4];
	put32(b, v);
	put_bytes(w, b, 4);
}

static void bump_count(struct wire_writer *w, uint16_t count_offset)
{
	if (!w->overflow)
		put16(w->buf + count_offset, (uint16_t)(get16(w->buf + count_offset) + 1));
}

static uint16_t answer_flags(const struct wire_query *q, uint16_t rcode)
{
	return (uint16_t)(WIRE_FLAG_QR | (q->flags & (0x7800 | WIRE_FLAG_RD | WIRE_FLAG_CD)) |
			  WIRE_FLAG_RA | (rcode & 0xF));
}

void wire_answer_begin(struct wire_writer *w, const struct wire_query *q, const uint8_t *pkt,
		       uint8_t rcode)
{
	w->len = 0;
	w->overflow = w->cap < WIRE_HEADER_LEN;
	if (w->overflow)
		return;
	memset(w->buf, 0, WIRE_HEADER_LEN);
	put16(w->buf, q->id);
	put16(w->buf + 2, answer_flags(q, rcode));
	w->len = WIRE_HEADER_LEN;
	if (q->has_question) {
		put16(w->buf + 4, 1);
		put_bytes(w, pkt + WIRE_HEADER_LEN, q->question_end - WIRE_HEADER_LEN);
	}
}

void wire_answer_add_rr(struct wire_writer *w, uint16_t section_count_offset, uint16_t type,
			uint32_t ttl, const uint8_t *rdata, uint16_t rdlen)
{
	put_u16(w, 0xC000 | WIRE_HEADER_LEN); /* the question name */
	put_u16(w, type);
	put_u16(w, WIRE_CLASS_IN);
	put_u32(w, ttl);
	put_u16(w, rdlen);
	put_bytes(w, rdata, rdlen);
	bump_count(w, section_count_offset);
}

/* MNAME and RNAME of synthesised SOAs: names under .invalid (RFC 6761) can never resolve. */
static const uint8_t block_mname[] = "\x07" "blocked" "\x05" "aegis" "\x07" "invalid";
static const uint8_t block_rname[] = "\x06" "nobody" "\x07" "invalid";

void wire_answer_add_block_soa(struct wire_writer *w, const struct wire_query *q,
			       uint8_t zone_len, uint32_t ttl)
{
	/* The zone is a suffix of the question name, so its owner is a pointer into it. */
	if (zone_len == 0 || zone_len > q->qname_len) {
		w->overflow = true;
		return;
	}
	uint16_t owner = (uint16_t)(WIRE_HEADER_LEN + q->qname_len - zone_len);
	put_u16(w, 0xC000 | owner);
	put_u16(w, WIRE_TYPE_SOA);
	put_u16(w, WIRE_CLASS_IN);
	put_u32(w, ttl);
	put_u16(w, (uint16_t)(sizeof block_mname + sizeof block_rname + 20));
	put_bytes(w, block_mname, sizeof block_mname);
	put_bytes(w, block_rname, sizeof block_rname);
	put_u32(w, 1);    /* serial */
	put_u32(w, 3600); /* refresh */
	put_u32(w, 600);  /* retry */
	put_u32(w, 86400);/* expire */
	put_u32(w, ttl);  /* minimum: the negative TTL (RFC 2308) */
	bump_count(w, WIRE_NSCOUNT);
}

static void put_opt(struct wire_writer *w, bool do_bit, uint16_t rcode, const struct wire_ede *ede)
{
	size_t text_len = ede && ede->text ? strnlen(ede->text, 400) : 0;
	uint16_t rdlen = ede ? (uint16_t)(4 + 2 + text_len) : 0;

	static const uint8_t root = 0;

	put_bytes(w, &root, 1);
	put_u16(w, WIRE_TYPE_OPT);
	put_u16(w, WIRE_EDNS_SIZE);
	put_u32(w, (uint32_t)((rcode >> 4) & 0xFF) << 24 | (do_bit ? 0x8000u : 0));
	put_u16(w, rdlen);
	if (ede) {
		put_u16(w, EDNS_OPTION_EDE);
		put_u16(w, (uint16_t)(2 + text_len));
		put_u16(w, ede->code);
		put_bytes(w, ede->text, text_len);
	}
}

void wire_answer_end(struct wire_writer *w, const struct wire_query *q, uint16_t rcode,
		     const struct wire_ede *ede)
{
	if (!q->has_edns)
		return;
	put_opt(w, q->do_bit, rcode, ede);
	bump_count(w, 10);
}

size_t wire_answer_minimal(uint8_t *out, size_t cap, const struct wire_query *q,
			   const uint8_t *pkt, uint16_t rcode, bool tc, const struct wire_ede *ede)
{
	struct wire_writer w = { .buf = out, .cap = cap };
	wire_answer_begin(&w, q, pkt, (uint8_t)(rcode & 0xF));
	if (tc && !w.overflow)
		put16(out + 2, (uint16_t)(get16(out + 2) | WIRE_FLAG_TC));
	/* BADVERS needs an OPT to carry it even though the client's was unusable. */
	if (q->has_edns)
		wire_answer_end(&w, q, rcode, ede);
	return w.overflow ? 0 : w.len;
}

/* --- reading upstream answers ------------------------------------------------------------ */

/* Whether the name at msg[off] (compression allowed) spells qname, case-insensitively. */
static bool question_matches(const uint8_t *msg, size_t len, size_t off,
			     const struct wire_query *q, size_t *end)
{
	uint8_t copy[WIRE_MAX_NAME];
	size_t n = read_plain_name(msg, len, off, copy);
	if (!n || n != q->qname_len || memcmp(copy, q->qname, n) != 0)
		return false;
	off += n;
	if (off + 4 > len || get16(msg + off) != q->qtype || get16(msg + off + 2) != q->qclass)
		return false;
	*end = off + 4;
	return true;
}

size_t wire_scan_response(uint8_t *msg, size_t len, const struct wire_query *q,
			  struct wire_response *r)
{
	if (len < WIRE_HEADER_LEN)
		return 0;
	uint16_t flags = get16(msg + 2);
	if (!(flags & WIRE_FLAG_QR) || get16(msg + 4) != 1)
		return 0;
	size_t off;
	if (!question_matches(msg, len, WIRE_HEADER_LEN, q, &off))
		return 0;

	uint16_t counts[3] = { get16(msg + 6), get16(msg + 8), get16(msg + 10) };
	uint32_t min_ttl = UINT32_MAX, soa_negative = UINT32_MAX;
	size_t opt_start = 0, opt_end = 0;
	r->n_ttl = 0;
	r->flags = flags;
	r->rcode = flags & 0xF;
	for (int s = 0; s < 3; s++) {
		for (uint16_t i = 0; i < counts[s]; i++) {
			size_t rr = off;
			off = skip_name(msg, len, off);
			if (!off || off + 10 > len)
				return 0;
			uint16_t type = get16(msg + off);
			uint32_t ttl = get32(msg + off + 4);
			uint16_t rdlen = get16(msg + off + 8);
			if (rdlen > len - off - 10)
				return 0;
			if (type == WIRE_TYPE_OPT) {
				if (s != 2 || opt_start)
					return 0;
				opt_start = rr;
				opt_end = off + 10 + rdlen;
				r->rcode |= (uint16_t)((ttl >> 24) << 4);
			} else {
				if (r->n_ttl == WIRE_MAX_TTLS)
					return 0;
				r->ttl_offsets[r->n_ttl++] = (uint16_t)(off + 4);
				if (ttl > 0x7FFFFFFF) /* RFC 2181 8: treat as zero */
					ttl = 0;
				if (s < 2 && ttl < min_ttl && !(s == 1 && type == WIRE_TYPE_SOA))
					min_ttl = ttl;
				if (s == 1 && type == WIRE_TYPE_SOA && rdlen >= 22) {
					uint32_t minimum = get32(msg + off + 10 + rdlen - 4);
					soa_negative = ttl < minimum ? ttl : minimum;
				}
			}
			off += 10u + rdlen;
		}
	}
	if (off != len)
		return 0;

	r->negative = r->rcode == WIRE_RCODE_NXDOMAIN ||
		      (r->rcode == WIRE_RCODE_NOERROR && counts[0] == 0);
	if (r->negative)
		r->ttl = soa_negative == UINT32_MAX ? 0 : soa_negative;
	else
		r->ttl = min_ttl == UINT32_MAX ? 0 : min_ttl;

	if (opt_start) {
		/* Nothing points into an OPT record (its owner is the root), so cutting it out
		 * leaves every compression pointer before it valid; shift the TTL offsets after. */
		size_t cut = opt_end - opt_start;
		memmove(msg + opt_start, msg + opt_end, len - opt_end);
		len -= cut;
		put16(msg + 10, (uint16_t)(counts[2] - 1));
		for (unsigned i = 0; i < r->n_ttl; i++)
			if (r->ttl_offsets[i] > opt_start)
				r->ttl_offsets[i] = (uint16_t)(r->ttl_offsets[i] - cut);
	}
	return len;
}

size_t wire_build_upstream_query(uint8_t *out, size_t cap, const struct wire_query *q,
				 uint16_t id)
{
	struct wire_writer w = { .buf = out, .cap = cap };
	uint8_t hdr[WIRE_HEADER_LEN] = { 0 };
	put16(hdr, id);
	put16(hdr + 2, (uint16_t)(WIRE_FLAG_RD | (q->flags & WIRE_FLAG_CD)));
	put16(hdr + 4, 1);
	put16(hdr + 10, 1);
	put_bytes(&w, hdr, sizeof hdr);
	put_bytes(&w, q->qname, q->qname_len);
	put_u16(&w, q->qtype);
	put_u16(&w, q->qclass);
	put_opt(&w, q->do_bit, 0, NULL);
	return w.overflow ? 0 : w.len;
}

size_t wire_dress_answer(uint8_t *msg, size_t len, size_t cap, const struct wire_query *q,
			 const uint8_t *pkt, const struct wire_ede *ede)
{
	if (len < (size_t)WIRE_HEADER_LEN + q->qname_len || len > cap)
		return 0;
	uint16_t stored = get16(msg + 2);
	uint16_t flags = (uint16_t)((stored & ~(WIRE_FLAG_AA | WIRE_FLAG_RD | WIRE_FLAG_CD |
						 WIRE_FLAG_TC)) |
				    WIRE_FLAG_RA | (q->flags & (WIRE_FLAG_RD | WIRE_FLAG_CD)));
	put16(msg, q->id);
	put16(msg + 2, flags);
	memcpy(msg + WIRE_HEADER_LEN, pkt + WIRE_HEADER_LEN, q->qname_len);
	struct wire_writer w = { .buf = msg, .cap = cap, .len = len };
	wire_answer_end(&w, q, stored & 0xF, ede);
	return w.overflow ? 0 : w.len;
}

int wire_name_to_text(const uint8_t *name, size_t len, char *out, size_t cap)
{
	size_t o = 0, i = 0;
	if (len == 0 || cap < 2)
		return -1;
	if (name[0] == 0) {
		out[0] = '.';
		out[1] = '\0';
		return 1;
	}
	while (i < len && name[i] != 0) {
		uint8_t l = name[i++];
		if (l > 63 || i + l > len)
			return -1;
		for (uint8_t k = 0; k < l; k++, i++) {
			uint8_t c = name[i];
			if (o + 5 >= cap)
				return -1;
			if (c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' ||
			    c == '@' || c == '$') {
				out[o++] = '\\';
				out[o++] = (char)c;
			} else if (c > 0x20 && c < 0x7F) {
				out[o++] = (char)c;
			} else {
				out[o++] = '\\';
				out[o++] = (char)('0' + c / 100);
				out[o++] = (char)('0' + c / 10 % 10);
				out[o++] = (char)('0' + c % 10);
			}
		}
		if (i < len && name[i] != 0)
			out[o++] = '.';
	}
	out[o] = '\0';
	return (int)o;
}
