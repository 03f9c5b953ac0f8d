/* wire.h -- the DNS wire structures the resolver's packet path reads and writes itself.
 *
 * The hot path parses a query's header, question and OPT record, and writes small answers
 * (errors, block answers, EDE, OPT), without allocating: ldns allocates per record, which
 * costs more than the node's whole per-query budget. Everything here reads only inside the
 * given bounds and is fuzzed (tests/fuzz/fuzz_wire.c); ldns is the oracle in the unit tests.
 * Nothing returned owns memory: pointers point into the caller's buffers.
 */
#ifndef AEGIS_WIRE_H
#define AEGIS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WIRE_HEADER_LEN      12
#define WIRE_MAX_NAME        255
#define WIRE_EDNS_SIZE       1232 /* what we advertise and answer within (DNS flag day 2020) */
#define WIRE_MIN_UDP         512

#define WIRE_RCODE_NOERROR   0
#define WIRE_RCODE_FORMERR   1
#define WIRE_RCODE_SERVFAIL  2
#define WIRE_RCODE_NXDOMAIN  3
#define WIRE_RCODE_NOTIMP    4
#define WIRE_RCODE_REFUSED   5
#define WIRE_RCODE_BADVERS   16 /* extended: needs an OPT record to carry the upper bits */

#define WIRE_TYPE_A          1
#define WIRE_TYPE_NS         2
#define WIRE_TYPE_CNAME      5
#define WIRE_TYPE_SOA        6
#define WIRE_TYPE_PTR        12
#define WIRE_TYPE_AAAA       28
#define WIRE_TYPE_OPT        41
#define WIRE_TYPE_IXFR       251
#define WIRE_TYPE_AXFR       252
#define WIRE_TYPE_ANY        255
#define WIRE_CLASS_IN        1

/* Header flag bits in the second 16-bit word. */
#define WIRE_FLAG_QR 0x8000
#define WIRE_FLAG_AA 0x0400
#define WIRE_FLAG_TC 0x0200
#define WIRE_FLAG_RD 0x0100
#define WIRE_FLAG_RA 0x0080
#define WIRE_FLAG_AD 0x0020
#define WIRE_FLAG_CD 0x0010

enum wire_verdict {
	WIRE_OK,        /* a query we can work on */
	WIRE_DROP,      /* too short for a header, or a response: not answered at all */
	WIRE_FORMERR,   /* answer FORMERR */
	WIRE_NOTIMP,    /* unknown opcode: answer NOTIMP */
	WIRE_BADVERS,   /* EDNS version other than 0: answer BADVERS with our OPT */
};

struct wire_query {
	uint16_t id;
	uint16_t flags;
	uint8_t opcode;
	bool has_question;            /* set when the question parsed, even on an error verdict */
	uint8_t qname_len;            /* wire length including the root label */
	uint8_t qname[WIRE_MAX_NAME]; /* lowercased copy, for keys and policy */
	size_t question_end;          /* offset just past QTYPE/QCLASS */
	uint16_t qtype, qclass;
	bool has_edns;
	bool do_bit;
	uint8_t edns_version;
	uint16_t udp_size;            /* the requestor's payload size, at least 512 */
};

/* Reads a query. The packet stays the caller's; q gets a lowercased copy of the name. */
enum wire_verdict wire_parse_query(const uint8_t *pkt, size_t len, struct wire_query *q);

/* How many bytes the client accepts in one UDP answer. */
static inline size_t wire_udp_limit(const struct wire_query *q)
{
	if (!q->has_edns)
		return WIRE_MIN_UDP;
	return q->udp_size < WIRE_EDNS_SIZE ? q->udp_size : WIRE_EDNS_SIZE;
}

/* --- writing answers -------------------------------------------------------------------- */

struct wire_ede {
	uint16_t code;       /* RFC 8914 INFO-CODE */
	const char *text;    /* EXTRA-TEXT, UTF-8, may be NULL */
};

struct wire_writer {
	uint8_t *buf;
	size_t cap;
	size_t len;
	bool overflow;       /* something did not fit; the message must not be sent as is */
};

/* Starts an answer to q: header (ID, opcode, RD and CD copied; QR and RA set), then the
 * question exactly as the client spelt it in pkt (0x20 case preserved). */
void wire_answer_begin(struct wire_writer *w, const struct wire_query *q, const uint8_t *pkt,
		       uint8_t rcode);

/* Appends a record whose owner is the question name (a compression pointer to it). */
void wire_answer_add_rr(struct wire_writer *w, uint16_t section_count_offset, uint16_t type,
			uint32_t ttl, const uint8_t *rdata, uint16_t rdlen);

/* Appends an SOA for the negative answer of a blocked name, owned by the zone made of the
 * last zone_len bytes of the question name (the listed domain that matched), with ttl as
 * its TTL and MINIMUM so stubs cache the block that long (RFC 2308). */
void wire_answer_add_block_soa(struct wire_writer *w, const struct wire_query *q,
			       uint8_t zone_len, uint32_t ttl);

/* Appends our OPT record if the query had one (size 1232, DO echoed, the extended bits of
 * rcode, and the EDE option when ede is non-NULL). Call last. */
void wire_answer_end(struct wire_writer *w, const struct wire_query *q, uint16_t rcode,
		     const struct wire_ede *ede);

/* Section counter offsets for wire_answer_add_rr. */
#define WIRE_ANCOUNT 6
#define WIRE_NSCOUNT 8

/* Writes the whole of a minimal answer: header, question, OPT (with EDE if given). Used for
 * errors (FORMERR, NOTIMP, REFUSED, SERVFAIL, BADVERS) and TC=1 replies. Returns the length,
 * or 0 when nothing sensible can be sent (the packet is dropped). */
size_t wire_answer_minimal(uint8_t *out, size_t cap, const struct wire_query *q,
			   const uint8_t *pkt, uint16_t rcode, bool tc, const struct wire_ede *ede);

/* --- reading upstream answers ----------------------------------------------------------- */

#define WIRE_MAX_TTLS 255

struct wire_response {
	uint16_t rcode;
	uint16_t flags;
	uint32_t ttl;                      /* how long to cache: min TTL, or RFC 2308 negative */
	bool negative;                     /* NXDOMAIN, or NOERROR with no answer records */
	uint8_t n_ttl;
	uint16_t ttl_offsets[WIRE_MAX_TTLS]; /* every TTL field except OPT's, after stripping */
};

/* Checks that msg answers q (QR set, same question, sound structure), removes its OPT record
 * in place (the answer is re-dressed with our own OPT per client) and fills r. Returns the
 * new length, or 0 if the message is malformed or does not answer q. The caller has checked
 * the ID and the source. */
size_t wire_scan_response(uint8_t *msg, size_t len, const struct wire_query *q,
			  struct wire_response *r);

/* Builds the query sent upstream for q: id, RD set, CD copied, EDNS with DO copied. */
size_t wire_build_upstream_query(uint8_t *out, size_t cap, const struct wire_query *q,
				 uint16_t id);

/* Rewrites a stored answer for this client in place: ID, RD/CD from the query, AA cleared,
 * RA set, the question name in the client's spelling; then appends our OPT. Returns the new
 * length, or 0 if it does not fit in cap. */
size_t wire_dress_answer(uint8_t *msg, size_t len, size_t cap, const struct wire_query *q,
			 const uint8_t *pkt, const struct wire_ede *ede);

/* Lowercases the wire name in place (ASCII only, as DNS compares names). */
void wire_name_lower(uint8_t *name, size_t len);

/* Writes the presentation form of a wire name ("www.example.test", "." for the root),
 * escaping non-printable bytes per RFC 4343. Returns the length or -1 if cap is too small. */
int wire_name_to_text(const uint8_t *name, size_t len, char *out, size_t cap);

#endif
