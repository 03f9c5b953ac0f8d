/* test_wire.c -- the packet path's parser and writers, with ldns as the independent oracle. */
#include <criterion/criterion.h>
#include <ldns/ldns.h>
#include <string.h>

#include "wire.h"

/* A query built and serialised by ldns. */
static size_t ldns_query(const char *name, ldns_rr_type type, bool edns, uint16_t udp_size,
			 bool do_bit, uint8_t *out)
{
	ldns_pkt *p = NULL;
	cr_assert_eq(ldns_pkt_query_new_frm_str(&p, name, type, LDNS_RR_CLASS_IN, LDNS_RD),
		     LDNS_STATUS_OK);
	ldns_pkt_set_id(p, 0x1234);
	if (edns) {
		ldns_pkt_set_edns_udp_size(p, udp_size);
		ldns_pkt_set_edns_do(p, do_bit);
		ldns_pkt_set_edns_data(p, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, 0, ""));
	}
	uint8_t *wire;
	size_t len;
	cr_assert_eq(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	memcpy(out, wire, len);
	free(wire);
	ldns_pkt_free(p);
	return len;
}

static ldns_pkt *parse_with_ldns(const uint8_t *wire, size_t len)
{
	ldns_pkt *p = NULL;
	cr_assert_eq(ldns_wire2pkt(&p, wire, len), LDNS_STATUS_OK, "ldns cannot parse our output");
	return p;
}

Test(wire, parses_an_edns_query_and_lowercases_the_name)
{
	uint8_t pkt[512];
	struct wire_query q;
	size_t len = ldns_query("WwW.School.TEST.", LDNS_RR_TYPE_AAAA, true, 4096, true, pkt);
	cr_assert_eq(wire_parse_query(pkt, len, &q), WIRE_OK);
	cr_assert_eq(q.id, 0x1234);
	cr_assert_eq(q.qtype, WIRE_TYPE_AAAA);
	cr_assert_eq(q.qclass, WIRE_CLASS_IN);
	cr_assert_eq(q.qname_len, 17);
	cr_assert_eq(memcmp(q.qname, "\3www\6school\4test", 17), 0);
	cr_assert(q.has_edns);
	cr_assert(q.do_bit);
	cr_assert_eq(q.udp_size, 4096);
	cr_assert_eq(wire_udp_limit(&q), WIRE_EDNS_SIZE);
	/* the packet itself keeps the client's spelling */
	cr_assert_eq(memcmp(pkt + 12, "\3WwW\6School\4TEST", 17), 0);
}

Test(wire, plain_query_limits_answers_to_512)
{
	uint8_t pkt[512];
	struct wire_query q;
	size_t len = ldns_query("a.test.", LDNS_RR_TYPE_A, false, 0, false, pkt);
	cr_assert_eq(wire_parse_query(pkt, len, &q), WIRE_OK);
	cr_assert_not(q.has_edns);
	cr_assert_eq(wire_udp_limit(&q), 512);
}

static enum wire_verdict verdict_of(const uint8_t *pkt, size_t len)
{
	struct wire_query q;
	return wire_parse_query(pkt, len, &q);
}

Test(wire, malformed_queries_get_the_right_verdict)
{
	uint8_t base[512];
	size_t len = ldns_query("a.test.", LDNS_RR_TYPE_A, true, 1232, false, base);
	uint8_t p[600];

	cr_assert_eq(verdict_of(base, 11), WIRE_DROP, "shorter than a header");
	memcpy(p, base, len);
	p[2] |= 0x80;
	cr_assert_eq(verdict_of(p, len), WIRE_DROP, "a response is never answered");
	memcpy(p, base, len);
	p[2] = (uint8_t)((p[2] & 0x87) | (2 << 3));
	cr_assert_eq(verdict_of(p, len), WIRE_NOTIMP, "opcode STATUS");
	memcpy(p, base, len);
	p[5] = 0;
	cr_assert_eq(verdict_of(p, len), WIRE_FORMERR, "QDCOUNT 0");
	memcpy(p, base, len);
	p[5] = 2;
	cr_assert_eq(verdict_of(p, len), WIRE_FORMERR, "QDCOUNT 2");
	memcpy(p, base, len);
	p[7] = 1;
	cr_assert_eq(verdict_of(p, len), WIRE_FORMERR, "ANCOUNT in a query");
	memcpy(p, base, len);
	p[10] = 0xFF;
	cr_assert_eq(verdict_of(p, len), WIRE_FORMERR, "absurd ARCOUNT");
	cr_assert_eq(verdict_of(base, len - 1), WIRE_FORMERR, "truncated OPT");
	cr_assert_eq(verdict_of(base, 14), WIRE_FORMERR, "truncated question");
	memcpy(p, base, len);
	p[len] = 0;
	cr_assert_eq(verdict_of(p, len + 1), WIRE_FORMERR, "trailing garbage");
	memcpy(p, base, len);
	p[12] = 0xC0;
	p[13] = 12;
	cr_assert_eq(verdict_of(p, len), WIRE_FORMERR, "compression pointer loop in question");
	memcpy(p, base, len);
	p[12] = 64;
	cr_assert_eq(verdict_of(p, len), WIRE_FORMERR, "label type 0x40");
	/* EDNS version 1 (byte 2 of the OPT TTL) */
	memcpy(p, base, len);
	p[len - 11 + 6] = 1;
	cr_assert_eq(verdict_of(p, len), WIRE_BADVERS);
	/* two OPT records */
	memcpy(p, base, len);
	memcpy(p + len, base + len - 11, 11);
	p[11] = 2;
	cr_assert_eq(verdict_of(p, len + 11), WIRE_FORMERR, "second OPT");
	/* an option longer than the OPT RDATA */
	static const uint8_t opt_bad[] = { 0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 9 };
	memcpy(p, base, len - 11);
	memcpy(p + len - 11, opt_bad, sizeof opt_bad);
	cr_assert_eq(verdict_of(p, len - 11 + sizeof opt_bad), WIRE_FORMERR, "option overflow");
	/* an unknown option is ignored */
	static const uint8_t opt_unknown[] = { 0, 0, 41, 4, 0xD0, 0, 0, 0, 0, 0, 6, 0xFD, 0xE9,
					       0, 2, 0xAB, 0xCD };
	memcpy(p + len - 11, opt_unknown, sizeof opt_unknown);
	cr_assert_eq(verdict_of(p, len - 11 + sizeof opt_unknown), WIRE_OK, "unknown option");
}

Test(wire, names_longer_than_255_are_refused)
{
	uint8_t p[600] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0 };
	size_t off = 12;
	for (int i = 0; i < 5; i++) { /* 5 labels of 63 = 320 bytes */
		p[off++] = 63;
		memset(p + off, 'a', 63);
		off += 63;
	}
	p[off++] = 0;
	p[off++] = 0;
	p[off++] = 1;
	p[off++] = 0;
	p[off++] = 1;
	cr_assert_eq(verdict_of(p, off), WIRE_FORMERR);
}

Test(wire, refused_with_ede_is_what_ldns_reads)
{
	uint8_t pkt[512], out[512];
	struct wire_query q;
	size_t len = ldns_query("Blocked.test.", LDNS_RR_TYPE_A, true, 1232, true, pkt);
	cr_assert_eq(wire_parse_query(pkt, len, &q), WIRE_OK);
	struct wire_ede ede = { 15, "malware; contact soc@ministry.example" };
	size_t n = wire_answer_minimal(out, sizeof out, &q, pkt, WIRE_RCODE_REFUSED, false,
				       &ede);
	cr_assert_gt(n, 0);
	ldns_pkt *p = parse_with_ldns(out, n);
	cr_assert_eq(ldns_pkt_id(p), 0x1234);
	cr_assert(ldns_pkt_qr(p));
	cr_assert(ldns_pkt_ra(p));
	cr_assert(ldns_pkt_rd(p));
	cr_assert_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_REFUSED);
	cr_assert_eq(ldns_pkt_qdcount(p), 1);
	char *qn = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
	cr_assert_str_eq(qn, "Blocked.test.", "the question keeps the client's case");
	free(qn);
	cr_assert(ldns_pkt_edns(p));
	cr_assert(ldns_pkt_edns_do(p));
	cr_assert_eq(ldns_pkt_edns_udp_size(p), WIRE_EDNS_SIZE);
	ldns_rdf *data = ldns_pkt_edns_data(p);
	cr_assert_not_null(data);
	const uint8_t *d = ldns_rdf_data(data);
	size_t dl = ldns_rdf_size(data);
	cr_assert_eq(dl, 4 + 2 + strlen(ede.text));
	cr_assert_eq(d[0] << 8 | d[1], 15, "option code EDE");
	cr_assert_eq(d[2] << 8 | d[3], 2 + strlen(ede.text));
	cr_assert_eq(d[4] << 8 | d[5], 15, "INFO-CODE Blocked");
	cr_assert_eq(memcmp(d + 6, ede.text, strlen(ede.text)), 0);
	ldns_pkt_free(p);
}

Test(wire, badvers_carries_the_extended_rcode)
{
	uint8_t pkt[512], out[512];
	struct wire_query q;
	size_t len = ldns_query("a.test.", LDNS_RR_TYPE_A, true, 1232, false, pkt);
	pkt[len - 11 + 6] = 1;
	cr_assert_eq(wire_parse_query(pkt, len, &q), WIRE_BADVERS);
	size_t n = wire_answer_minimal(out, sizeof out, &q, pkt, WIRE_RCODE_BADVERS, false,
				       NULL);
	ldns_pkt *p = parse_with_ldns(out, n);
	cr_assert_eq(ldns_pkt_get_rcode(p), 0, "low bits of 16 are 0");
	cr_assert_eq(ldns_pkt_edns_extended_rcode(p), 1, "16 >> 4");
	ldns_pkt_free(p);
}

Test(wire, nxdomain_block_answer_has_the_soa_of_the_listed_domain)
{
	uint8_t pkt[512], out[512];
	struct wire_query q;
	size_t len = ldns_query("www.malware.test.", LDNS_RR_TYPE_A, true, 1232, false, pkt);
	cr_assert_eq(wire_parse_query(pkt, len, &q), WIRE_OK);
	struct wire_writer w = { .buf = out, .cap = sizeof out };
	wire_answer_begin(&w, &q, pkt, WIRE_RCODE_NXDOMAIN);
	wire_answer_add_block_soa(&w, &q, 14 /* malware.test. */, 60);
	struct wire_ede ede = { 15, "malware" };
	wire_answer_end(&w, &q, WIRE_RCODE_NXDOMAIN, &ede);
	cr_assert_not(w.overflow);
	ldns_pkt *p = parse_with_ldns(out, w.len);
	cr_assert_eq(ldns_pkt_get_rcode(p), LDNS_RCODE_NXDOMAIN);
	cr_assert_eq(ldns_pkt_nscount(p), 1);
	ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(p), 0);
	cr_assert_eq(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
	char *owner = ldns_rdf2str(ldns_rr_owner(soa));
	cr_assert_str_eq(owner, "malware.test.");
	free(owner);
	cr_assert_eq(ldns_rr_ttl(soa), 60);
	cr_assert_eq(ldns_rdf2native_int32(ldns_rr_rdf(soa, 6)), 60, "SOA MINIMUM");
	ldns_pkt_free(p);
}

Test(wire, sinkhole_answer_is_an_a_record_for_the_question)
{
	uint8_t pkt[512], out[512];
	struct wire_query q;
	size_t len = ldns_query("phish.test.", LDNS_RR_TYPE_A, false, 0, false, pkt);
	cr_assert_eq(wire_parse_query(pkt, len, &q), WIRE_OK);
	struct wire_writer w = { .buf = out, .cap = sizeof out };
	static const uint8_t addr[4] = { 192, 0, 2, 99 };
	wire_answer_begin(&w, &q, pkt, WIRE_RCODE_NOERROR);
	wire_answer_add_rr(&w, WIRE_ANCOUNT, WIRE_TYPE_A, 60, addr, 4);
	wire_answer_end(&w, &q, 0, NULL);
	ldns_pkt *p = parse_with_ldns(out, w.len);
	cr_assert_eq(ldns_pkt_ancount(p), 1);
	cr_assert_not(ldns_pkt_edns(p), "no OPT for a client that sent none");
	char *rr = ldns_rr2str(ldns_rr_list_rr(ldns_pkt_answer(p), 0));
	cr_assert_str_eq(rr, "phish.test.\t60\tIN\tA\t192.0.2.99\n");
	free(rr);
	ldns_pkt_free(p);
}

Test(wire, writer_reports_overflow_instead_of_writing_past_the_end)
{
	uint8_t pkt[512], out[40];
	struct wire_query q;
	size_t len = ldns_query("a-rather-long-name.example.test.", LDNS_RR_TYPE_A, true, 1232,
				false, pkt);
	cr_assert_eq(wire_parse_query(pkt, len, &q), WIRE_OK);
	struct wire_ede ede = { 17, "a long explanation that cannot fit" };
	cr_assert_eq(wire_answer_minimal(out, sizeof out, &q, pkt, 5, false, &ede), 0);
}

/* An upstream answer built by ldns: two A records, an authority NS, and an OPT. */
static size_t ldns_response(const char *qname, uint8_t *out, ldns_pkt_rcode rcode, bool with_soa)
{
	ldns_pkt *p = NULL;
	cr_assert_eq(ldns_pkt_query_new_frm_str(&p, qname, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
						LDNS_RD),
		     LDNS_STATUS_OK);
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rcode(p, rcode);
	ldns_rr *rr;
	if (rcode == LDNS_RCODE_NOERROR && !with_soa) {
		ldns_rr_new_frm_str(&rr, "www.school.test. 300 IN A 192.0.2.10", 0, NULL, NULL);
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
		ldns_rr_new_frm_str(&rr, "www.school.test. 120 IN A 192.0.2.11", 0, NULL, NULL);
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, rr);
		ldns_rr_new_frm_str(&rr, "test. 900 IN NS ns1.test.", 0, NULL, NULL);
		ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, rr);
	}
	if (with_soa) {
		ldns_rr_new_frm_str(&rr, "test. 3600 IN SOA ns1.test. h.test. 1 2 3 4 300", 0, NULL,
				    NULL);
		ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, rr);
	}
	ldns_pkt_set_edns_udp_size(p, 1232);
	ldns_pkt_set_edns_data(p, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_UNKNOWN, 0, ""));
	uint8_t *wire;
	size_t len;
	cr_assert_eq(ldns_pkt2wire(&wire, p, &len), LDNS_STATUS_OK);
	memcpy(out, wire, len);
	free(wire);
	ldns_pkt_free(p);
	return len;
}

Test(wire, scan_response_finds_ttls_strips_opt_and_takes_the_minimum)
{
	uint8_t qpkt[512], msg[1024];
	struct wire_query q;
	struct wire_response r;
	size_t qlen = ldns_query("www.school.test.", LDNS_RR_TYPE_A, true, 1232, false, qpkt);
	cr_assert_eq(wire_parse_query(qpkt, qlen, &q), WIRE_OK);
	size_t len = ldns_response("www.school.test.", msg, LDNS_RCODE_NOERROR, false);
	size_t n = wire_scan_response(msg, len, &q, &r);
	cr_assert_eq(n, len - 11, "the OPT record is cut out");
	cr_assert_eq(r.ttl, 120);
	cr_assert_not(r.negative);
	cr_assert_eq(r.n_ttl, 3);
	uint32_t expect[] = { 300, 120, 900 };
	for (int i = 0; i < 3; i++) {
		const uint8_t *t = msg + r.ttl_offsets[i];
		cr_assert_eq((uint32_t)(t[0] << 24 | t[1] << 16 | t[2] << 8 | t[3]), expect[i]);
	}
	ldns_pkt *p = parse_with_ldns(msg, n);
	cr_assert_not(ldns_pkt_edns(p));
	cr_assert_eq(ldns_pkt_ancount(p), 2);
	ldns_pkt_free(p);
}

Test(wire, scan_response_negative_ttl_is_min_of_soa_ttl_and_minimum)
{
	uint8_t qpkt[512], msg[1024];
	struct wire_query q;
	struct wire_response r;
	size_t qlen = ldns_query("nosuch.test.", LDNS_RR_TYPE_A, true, 1232, false, qpkt);
	cr_assert_eq(wire_parse_query(qpkt, qlen, &q), WIRE_OK);
	size_t len = ldns_response("nosuch.test.", msg, LDNS_RCODE_NXDOMAIN, true);
	cr_assert_gt(wire_scan_response(msg, len, &q, &r), 0);
	cr_assert(r.negative);
	cr_assert_eq(r.rcode, WIRE_RCODE_NXDOMAIN);
	cr_assert_eq(r.ttl, 300);
}

Test(wire, scan_response_refuses_answers_to_other_questions_and_broken_messages)
{
	uint8_t qpkt[512], msg[1024];
	struct wire_query q;
	struct wire_response r;
	size_t qlen = ldns_query("www.school.test.", LDNS_RR_TYPE_A, true, 1232, false, qpkt);
	cr_assert_eq(wire_parse_query(qpkt, qlen, &q), WIRE_OK);
	size_t len = ldns_response("www.hospital.test.", msg, LDNS_RCODE_NOERROR, false);
	cr_assert_eq(wire_scan_response(msg, len, &q, &r), 0, "another name");
	len = ldns_response("www.school.test.", msg, LDNS_RCODE_NOERROR, false);
	for (size_t cut = 0; cut < len; cut++) {
		uint8_t copy[1024];
		memcpy(copy, msg, cut);
		cr_assert_eq(wire_scan_response(copy, cut, &q, &r), 0, "truncated at %zu", cut);
	}
	msg[2] &= 0x7F;
	cr_assert_eq(wire_scan_response(msg, len, &q, &r), 0, "QR clear");
}

Test(wire, dressed_answer_has_the_clients_id_flags_case_and_opt)
{
	uint8_t qpkt[512], msg[1024];
	struct wire_query q;
	struct wire_response r;
	size_t qlen = ldns_query("WWW.school.test.", LDNS_RR_TYPE_A, true, 1232, true, qpkt);
	cr_assert_eq(wire_parse_query(qpkt, qlen, &q), WIRE_OK);
	size_t len = ldns_response("www.school.test.", msg, LDNS_RCODE_NOERROR, false);
	msg[2] |= 0x04; /* AA from the authoritative upstream */
	len = wire_scan_response(msg, len, &q, &r);
	q.id = 0xBEEF;
	size_t n = wire_dress_answer(msg, len, sizeof msg, &q, qpkt, NULL);
	cr_assert_gt(n, len);
	ldns_pkt *p = parse_with_ldns(msg, n);
	cr_assert_eq(ldns_pkt_id(p), 0xBEEF);
	cr_assert_not(ldns_pkt_aa(p));
	cr_assert(ldns_pkt_ra(p));
	cr_assert(ldns_pkt_edns(p));
	cr_assert(ldns_pkt_edns_do(p));
	char *qn = ldns_rdf2str(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_question(p), 0)));
	cr_assert_str_eq(qn, "WWW.school.test.");
	free(qn);
	ldns_pkt_free(p);
}

Test(wire, upstream_query_is_recursive_with_edns)
{
	uint8_t qpkt[512], out[512];
	struct wire_query q;
	size_t qlen = ldns_query("Mixed.Case.test.", LDNS_RR_TYPE_AAAA, true, 4096, true, qpkt);
	cr_assert_eq(wire_parse_query(qpkt, qlen, &q), WIRE_OK);
	size_t n = wire_build_upstream_query(out, sizeof out, &q, 0x4242);
	ldns_pkt *p = parse_with_ldns(out, n);
	cr_assert_eq(ldns_pkt_id(p), 0x4242);
	cr_assert(ldns_pkt_rd(p));
	cr_assert(ldns_pkt_edns_do(p));
	cr_assert_eq(ldns_pkt_edns_udp_size(p), WIRE_EDNS_SIZE);
	ldns_pkt_free(p);
}

Test(wire, names_to_text)
{
	char out[64];
	cr_assert_eq(wire_name_to_text((const uint8_t *)"\3www\4test", 10, out, sizeof out), 8);
	cr_assert_str_eq(out, "www.test");
	cr_assert_eq(wire_name_to_text((const uint8_t *)"", 1, out, sizeof out), 1);
	cr_assert_str_eq(out, ".");
	cr_assert_gt(wire_name_to_text((const uint8_t *)"\3a.b\2\x01\"", 9, out, sizeof out), 0);
	cr_assert_str_eq(out, "a\\.b.\\001\\\"");
	cr_assert_eq(wire_name_to_text((const uint8_t *)"\x05" "ab", 4, out, sizeof out), -1);
}
