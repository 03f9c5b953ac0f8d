/* special.c -- local answers for special-use names. */
#include "special.h"

#include <string.h>

#define SPECIAL_TTL 3600

struct special_zone {
	const char *wire;            /* lowercase wire format, root label included */
	uint8_t len;
	enum special_answer answer;
};

#define Z(w, a) { w, sizeof(w), a }
/* Single-label zones are told apart by their TLD alone. */
static const struct special_tld {
	const char *wire;            /* lowercase wire format of the label, root excluded */
	enum special_answer answer;
} tlds[] = {
	{ "\x09localhost", SPECIAL_LOOPBACK },
	{ "\x07invalid", SPECIAL_NXDOMAIN },
	{ "\x04test", SPECIAL_NXDOMAIN },
	{ "\x05local", SPECIAL_NXDOMAIN },
	{ "\x05onion", SPECIAL_NXDOMAIN },
};

/* The zones under arpa., searched only for names in arpa. */
static const struct special_zone arpa_zones[] = {
	Z("\x04home\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x08resolver\x04" "arpa", SPECIAL_NODATA),
	Z("\x03" "127\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "10\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x03" "168\x03" "192\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x03" "254\x03" "169\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x01" "0\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "16\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "17\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "18\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "19\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "20\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "21\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "22\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "23\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "24\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "25\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "26\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "27\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "28\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "29\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "30\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x02" "31\x03" "172\x07in-addr\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x01" "d\x01" "f\x03ip6\x04" "arpa", SPECIAL_NXDOMAIN),           /* fd00::/8 ULA */
	Z("\x01" "8\x01" "e\x01" "f\x03ip6\x04" "arpa", SPECIAL_NXDOMAIN),   /* fe80::/10 */
	Z("\x01" "9\x01" "e\x01" "f\x03ip6\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x01" "a\x01" "e\x01" "f\x03ip6\x04" "arpa", SPECIAL_NXDOMAIN),
	Z("\x01" "b\x01" "e\x01" "f\x03ip6\x04" "arpa", SPECIAL_NXDOMAIN),
};
#undef Z

/* Whether zone (wire, root included) is the name itself or a suffix at a label boundary. */
static bool under(const uint8_t *name, uint8_t len, const uint8_t *zone, uint8_t zlen)
{
	for (uint8_t off = 0; off < len && name[off] != 0; off = (uint8_t)(off + name[off] + 1))
		if (len - off == zlen && memcmp(name + off, zone, zlen) == 0)
			return true;
	return false;
}

static bool exempted(const uint8_t *qname, uint8_t len, const uint8_t *const *exempt)
{
	for (; exempt && *exempt; exempt++) {
		size_t zlen = strlen((const char *)*exempt) + 1;
		if (under(qname, len, *exempt, (uint8_t)zlen))
			return true;
	}
	return false;
}

void special_classify(const uint8_t *qname, uint8_t qname_len, const uint8_t *const *exempt,
		      struct special_match *m)
{
	m->answer = SPECIAL_NONE;
	/* Find the TLD: every special zone ends in one of six, so most names stop here. */
	uint8_t off = 0, tld = 0;
	while (off < qname_len && qname[off] != 0) {
		tld = off;
		off = (uint8_t)(off + qname[off] + 1);
	}
	if (off >= qname_len || off == 0)
		return;
	const uint8_t *t = qname + tld;
	if (t[0] == 4 && !memcmp(t + 1, "arpa", 4)) {
		for (size_t i = 0; i < sizeof arpa_zones / sizeof arpa_zones[0]; i++) {
			const struct special_zone *z = &arpa_zones[i];
			if (under(qname, qname_len, (const uint8_t *)z->wire, z->len)) {
				if (!exempted(qname, qname_len, exempt)) {
					m->answer = z->answer;
					m->zone_len = z->len;
				}
				return;
			}
		}
		return;
	}
	for (size_t i = 0; i < sizeof tlds / sizeof tlds[0]; i++) {
		if (t[0] == tlds[i].wire[0] && !memcmp(t + 1, tlds[i].wire + 1, t[0])) {
			if (!exempted(qname, qname_len, exempt)) {
				m->answer = tlds[i].answer;
				m->zone_len = (uint8_t)(qname_len - tld);
			}
			return;
		}
	}
}

size_t special_answer(const struct special_match *m, const struct wire_query *q,
		      const uint8_t *pkt, uint8_t *out, size_t cap)
{
	static const uint8_t v4[4] = { 127, 0, 0, 1 };
	static const uint8_t v6[16] = { [15] = 1 };
	struct wire_writer w = { .buf = out, .cap = cap };
	bool nx = m->answer == SPECIAL_NXDOMAIN;

	wire_answer_begin(&w, q, pkt, nx ? WIRE_RCODE_NXDOMAIN : WIRE_RCODE_NOERROR);
	if (m->answer == SPECIAL_LOOPBACK && q->qtype == WIRE_TYPE_A)
		wire_answer_add_rr(&w, WIRE_ANCOUNT, WIRE_TYPE_A, SPECIAL_TTL, v4, sizeof v4);
	else if (m->answer == SPECIAL_LOOPBACK && q->qtype == WIRE_TYPE_AAAA)
		wire_answer_add_rr(&w, WIRE_ANCOUNT, WIRE_TYPE_AAAA, SPECIAL_TTL, v6, sizeof v6);
	else
		wire_answer_add_block_soa(&w, q, m->zone_len, SPECIAL_TTL);
	wire_answer_end(&w, q, nx ? WIRE_RCODE_NXDOMAIN : WIRE_RCODE_NOERROR, NULL);
	return w.overflow ? 0 : w.len;
}
