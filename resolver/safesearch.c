/* safesearch.c -- published safe-search names and the CNAME answers that enforce them. */
#include "safesearch.h"

#include <ldns/ldns.h>
#include <string.h>

#define T(s) (const uint8_t *)(s), sizeof(s)

struct safe_name {
	const uint8_t *name; /* wire, root label included */
	uint8_t len;
	const uint8_t *target;
	uint8_t target_len;
};

static const uint8_t google_safe[] = "\x0f" "forcesafesearch" "\x06" "google" "\x03" "com";
static const uint8_t youtube_safe[] = "\x08" "restrict" "\x07" "youtube" "\x03" "com";
static const uint8_t bing_safe[] = "\x06" "strict" "\x04" "bing" "\x03" "com";
static const uint8_t ddg_safe[] = "\x04" "safe" "\x0a" "duckduckgo" "\x03" "com";

#define ENTRY(n, t) { T(n), t, sizeof(t) }
static const struct safe_name exact[] = {
	ENTRY("\x03" "www" "\x07" "youtube" "\x03" "com", youtube_safe),
	ENTRY("\x01" "m" "\x07" "youtube" "\x03" "com", youtube_safe),
	ENTRY("\x07" "youtube" "\x03" "com", youtube_safe),
	ENTRY("\x08" "youtubei" "\x0a" "googleapis" "\x03" "com", youtube_safe),
	ENTRY("\x07" "youtube" "\x0a" "googleapis" "\x03" "com", youtube_safe),
	ENTRY("\x03" "www" "\x10" "youtube-nocookie" "\x03" "com", youtube_safe),
	ENTRY("\x03" "www" "\x04" "bing" "\x03" "com", bing_safe),
	ENTRY("\x04" "bing" "\x03" "com", bing_safe),
	ENTRY("\x0a" "duckduckgo" "\x03" "com", ddg_safe),
	ENTRY("\x03" "www" "\x0a" "duckduckgo" "\x03" "com", ddg_safe),
	ENTRY("\x05" "start" "\x0a" "duckduckgo" "\x03" "com", ddg_safe),
};
#undef ENTRY

/* Google serves search on google.<tld> and google.<sld>.<tld> in every country, with or
 * without www: match those shapes rather than list two hundred domains. */
static bool is_google_search(const uint8_t *q, uint8_t len)
{
	uint8_t off = 0;
	if (q[0] == 3 && memcmp(q + 1, "www", 3) == 0)
		off = 4;
	if (q[off] != 6 || memcmp(q + off + 1, "google", 6) != 0)
		return false;
	off = (uint8_t)(off + 7);
	int labels = 0;
	while (off < len && q[off] != 0) {
		if (q[off] > 3) /* country and second-level labels here are short: co, com, uk */
			return false;
		labels++;
		off = (uint8_t)(off + q[off] + 1);
	}
	return labels == 1 || labels == 2;
}

const uint8_t *safesearch_target(const uint8_t *qname, uint8_t qname_len, uint8_t *len)
{
	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++) {
		if (exact[i].len == qname_len && memcmp(exact[i].name, qname, qname_len) == 0) {
			*len = exact[i].target_len;
			return exact[i].target;
		}
	}
	if (is_google_search(qname, qname_len)) {
		*len = sizeof google_safe;
		return google_safe;
	}
	return NULL;
}

static ldns_rdf *dname(const uint8_t *wire, size_t len)
{
	return ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, len, wire);
}

size_t safesearch_answer(const struct wire_query *q, const uint8_t *pkt, const uint8_t *target,
			 uint8_t target_len, const uint8_t *target_msg, size_t target_msg_len,
			 uint32_t cname_ttl, uint8_t *out, size_t cap)
{
	ldns_pkt *in = NULL, *ans = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;

	if (ldns_wire2pkt(&in, target_msg, target_msg_len) != LDNS_STATUS_OK)
		return 0;
	ans = ldns_pkt_new();
	ldns_rr *question = ldns_rr_new();
	ldns_rr *cname = ldns_rr_new();
	if (!ans || !question || !cname)
		goto out;
	ldns_pkt_set_qr(ans, true);
	ldns_pkt_set_rcode(ans, ldns_pkt_get_rcode(in));
	/* The question as the client spelt it: dress copies those bytes back anyway. */
	ldns_rr_set_owner(question, dname(pkt + WIRE_HEADER_LEN, q->qname_len));
	ldns_rr_set_type(question, (ldns_rr_type)q->qtype);
	ldns_rr_set_class(question, (ldns_rr_class)q->qclass);
	ldns_rr_set_question(question, true);
	ldns_pkt_push_rr(ans, LDNS_SECTION_QUESTION, question);
	question = NULL;

	ldns_rr_set_owner(cname, dname(q->qname, q->qname_len));
	ldns_rr_set_type(cname, LDNS_RR_TYPE_CNAME);
	ldns_rr_set_class(cname, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(cname, cname_ttl);
	ldns_rr_push_rdf(cname, dname(target, target_len));
	ldns_pkt_push_rr(ans, LDNS_SECTION_ANSWER, cname);
	cname = NULL;
	/* push_rr_list takes the records, not the list that held them. */
	ldns_rr_list *answers = ldns_rr_list_clone(ldns_pkt_answer(in));
	ldns_rr_list *authority = ldns_rr_list_clone(ldns_pkt_authority(in));
	if (answers)
		ldns_pkt_push_rr_list(ans, LDNS_SECTION_ANSWER, answers);
	if (authority)
		ldns_pkt_push_rr_list(ans, LDNS_SECTION_AUTHORITY, authority);
	ldns_rr_list_free(answers);
	ldns_rr_list_free(authority);
	if (ldns_pkt2wire(&wire, ans, &len) != LDNS_STATUS_OK || len > cap) {
		len = 0;
		goto out;
	}
	memcpy(out, wire, len);
out:
	free(wire);
	ldns_rr_free(question);
	ldns_rr_free(cname);
	ldns_pkt_free(ans);
	ldns_pkt_free(in);
	return len;
}
