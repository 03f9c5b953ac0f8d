/* qlog.h -- the query-log record: one DNS query as a resolver node logs it, its JSON form
 * (schema v1, field by field in docs/querylog.md), and the event-id generator.
 *
 * A struct qlog_record is plain fixed-size data with no pointers, so it is copied by value
 * into queues. The encoder writes into the caller's buffer, the decoder fills the caller's
 * struct; nothing here hands out memory to free.
 */
#ifndef AEGIS_QLOG_H
#define AEGIS_QLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;

#define QLOG_VERSION       1
#define QLOG_NAME_MAX      255   /* wire-format domain name (RFC 1035 2.3.4) */
#define QLOG_NODE_MAX      64    /* resolver_nodes.name */
#define QLOG_CATEGORY_MAX  63    /* categories.name */
#define QLOG_PSEUDONYM_MAX 32    /* bytes: an HMAC-SHA256, possibly truncated */
#define QLOG_JSON_MAX      8192  /* no record encodes longer (NUL included) */
#define QLOG_UUID_TEXT     36    /* "8-4-4-4-12" lowercase hex, as the record writes ids */

enum qlog_transport {
	QLOG_TRANSPORT_UDP, QLOG_TRANSPORT_TCP, QLOG_TRANSPORT_DOT, QLOG_TRANSPORT_DOH,
	QLOG_TRANSPORT_DOQ,
};

enum qlog_action {
	QLOG_ACTION_ALLOW, QLOG_ACTION_BLOCK, QLOG_ACTION_MONITOR, QLOG_ACTION_REFUSED,
	QLOG_ACTION_RATELIMITED, QLOG_ACTION_LOCAL, QLOG_ACTION_ERROR,
};

enum qlog_rule_kind {
	QLOG_RULE_NONE,           /* no rule matched: "rule": null */
	QLOG_RULE_NATIONAL_BLOCK, QLOG_RULE_NATIONAL_ALLOW, QLOG_RULE_TENANT_ALLOW,
	QLOG_RULE_TENANT_DENY, QLOG_RULE_CATEGORY,
};

enum qlog_mode { QLOG_MODE_NONE, QLOG_MODE_BLOCK, QLOG_MODE_MONITOR };

struct qlog_addr {
	uint8_t family;     /* 0 (absent), AF_INET or AF_INET6 */
	uint8_t prefix;     /* leading bits kept: 32/128 for a whole address, less when truncated */
	uint8_t addr[16];   /* network order; IPv4 in the first 4 bytes */
};

struct qlog_rule {
	uint8_t kind;                            /* enum qlog_rule_kind */
	uint8_t mode;                            /* enum qlog_mode */
	bool has_list_id, has_feed_id;           /* at most one */
	uint8_t list_id[16], feed_id[16];        /* lists.id / feeds.id that decided it */
	char category[QLOG_CATEGORY_MAX + 1];    /* "" = none; required for QLOG_RULE_CATEGORY */
	uint8_t matched_len;                     /* >= 1 */
	uint8_t matched[QLOG_NAME_MAX];          /* the listed name that matched, wire format */
};

/* Fill it from a zeroed struct: absent values and bytes beyond a length are not encoded and
 * the decoder zeroes them, so a zero-initialised record round-trips byte for byte. */
struct qlog_record {
	int64_t ts_us;                  /* receive time, µs since the epoch, UTC, years 1970..9999 */
	uint64_t snapshot;              /* policy snapshot version, <= INT64_MAX (SQL bigint) */
	uint8_t event_id[16];           /* from qlog_new_event_id() */
	uint8_t tenant_id[16];          /* when has_tenant */
	struct qlog_addr client;        /* exactly one of client.family, client_pseudonym_len */
	uint8_t client_pseudonym_len;
	uint8_t client_pseudonym[QLOG_PSEUDONYM_MAX];
	struct qlog_addr upstream;      /* family 0 = none; else a whole address */
	uint32_t upstream_latency_us;   /* when has_latency; <= INT32_MAX (SQL integer) */
	uint16_t client_port, upstream_port;
	uint16_t qtype;
	uint16_t rcode;                 /* when has_rcode (no answer sent otherwise); <= 4095 */
	uint16_t ede;                   /* when has_ede: RFC 8914 INFO-CODE */
	uint8_t transport;              /* enum qlog_transport */
	uint8_t action;                 /* enum qlog_action */
	bool has_tenant, has_rcode, has_ede, has_latency, cache_hit;
	char node[QLOG_NODE_MAX + 1];   /* non-empty */
	/* Names last, qname then rule with matched at its end: a queue copies only the bytes
	 * in use (resolver/querylog.c). */
	uint8_t qname_len;              /* 0 when no question could be read */
	uint8_t qname[QLOG_NAME_MAX];   /* wire format, case as asked */
	struct qlog_rule rule;          /* ignored when rule.kind is QLOG_RULE_NONE */
};

/* Sets a to the address of sa (AF_INET or AF_INET6, IPv4-mapped IPv6 turned into IPv4) and
 * *port to its port. -EAFNOSUPPORT for other families. */
int qlog_addr_from_sockaddr(struct qlog_addr *a, uint16_t *port, const struct sockaddr *sa)
	__attribute__((warn_unused_result));

/* Writes the record as one JSON object, NUL-terminated, no newline. Returns its length,
 * -ENOSPC if cap is too small (it needs length + 1; QLOG_JSON_MAX always suffices) or -EINVAL
 * if the record breaks a rule of the schema (so every encoded record decodes). Thread-safe. */
int qlog_encode_json(const struct qlog_record *r, char *buf, size_t cap)
	__attribute__((warn_unused_result));

/* Parses one v1 record (len bytes, no NUL needed) into *out. Returns 0, or -EINVAL with a
 * message naming the offending field in err ("rule.kind: unknown value"). Unknown fields are
 * ignored; a missing field, a wrong type or another version is refused. */
int qlog_decode_json(const char *json, size_t len, struct qlog_record *out, char *err,
		     size_t errlen) __attribute__((warn_unused_result));

/* Writes u as the record writes ids: QLOG_UUID_TEXT characters, no quotes, no NUL. */
void qlog_format_uuid(char out[QLOG_UUID_TEXT], const uint8_t u[16]);

/* Writes a UUIDv7 for now_ms (ms since the epoch): unique and ordered by millisecond. Random
 * bits come from a per-thread buffer that getrandom() refills. */
void qlog_new_event_id(uint8_t out[16], uint64_t now_ms);

#endif
