/* snapshot.h -- the policy snapshot: what tenantd compiles and every resolver node queries.
 *
 * Writer: a snapshot_builder copies everything it is given and is freed with
 * snapshot_builder_free(). Reader: snapshot_open*() returns an immutable, fully validated
 * snapshot that any number of threads may query without locks; every pointer it hands out
 * points into it and lives until snapshot_close(). A policy may come in two files: a feed
 * base (the feed names, which change with a feed refresh) and an overlay naming it (everything
 * else, which a one-row change recompiles); snapshot_attach_base() joins them, and the overlay
 * then answers for both. Layout, byte by byte: docs/snapshot.md.
 */
#ifndef AEGIS_SNAPSHOT_H
#define AEGIS_SNAPSHOT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SNAPSHOT_FORMAT_VERSION 2
#define SNAPSHOT_MAX_CATEGORIES 24
#define SNAPSHOT_MAX_NAME_WIRE  255   /* RFC 1035 limit, root label included */
#define SNAPSHOT_MAX_STRING     65535
#define SNAPSHOT_NO_MATCH       0xFF  /* in the *_at offsets of struct snapshot_match */

/* Threat categories are answered with EDE 15 (Blocked), content categories with 17 (Filtered). */
enum snapshot_category_kind { SNAPSHOT_CATEGORY_THREAT = 0, SNAPSHOT_CATEGORY_CONTENT = 1 };

enum snapshot_block_action {
	SNAPSHOT_ACTION_NXDOMAIN = 0,
	SNAPSHOT_ACTION_NODATA = 1,
	SNAPSHOT_ACTION_REFUSED = 2,
	SNAPSHOT_ACTION_SINKHOLE = 3,
};

enum snapshot_privacy {
	SNAPSHOT_PRIVACY_FULL = 0,
	SNAPSHOT_PRIVACY_PSEUDONYM = 1,
	SNAPSHOT_PRIVACY_TRUNCATED = 2,
};

enum snapshot_list {
	SNAPSHOT_NATIONAL_BLOCK,
	SNAPSHOT_NATIONAL_ALLOW,
	SNAPSHOT_TENANT_ALLOW,
	SNAPSHOT_TENANT_DENY,
	SNAPSHOT_FEED,
};

#define SNAPSHOT_TENANT_SINKHOLE_V4 0x01
#define SNAPSHOT_TENANT_SINKHOLE_V6 0x02

/* A tenant as stored in the file (little-endian); snapshot_tenant() points straight at it.
 * name and ede_text are string references: read them with snapshot_tenant_name() and
 * snapshot_tenant_ede_text(). */
struct snapshot_tenant {
	uint8_t id[16];            /* UUID, bytes in text order */
	uint32_t name;
	uint32_t ede_text;         /* contact/reference for EDE EXTRA-TEXT */
	uint32_t block_mask;       /* categories blocked; disjoint from monitor_mask */
	uint32_t monitor_mask;     /* categories answered normally but logged */
	uint8_t block_action;      /* enum snapshot_block_action */
	uint8_t safe_search;       /* 0 or 1 */
	uint8_t privacy;           /* enum snapshot_privacy */
	uint8_t trunc_v4;          /* prefix length kept when privacy is truncated, 0..32 */
	uint8_t trunc_v6;          /* 0..128 */
	uint8_t flags;             /* SNAPSHOT_TENANT_SINKHOLE_V4 | _V6 */
	uint8_t reserved0[2];
	uint8_t sinkhole_v4[4];    /* network byte order */
	uint8_t sinkhole_v6[16];
	uint32_t reserved1;
};
static_assert(sizeof(struct snapshot_tenant) == 64, "tenant record is 64 bytes");

/* What snapshot_match_name() found. "_at" is the offset in the query's wire name of the most
 * specific suffix that matched (the first one met walking from the full name up to the TLD),
 * or SNAPSHOT_NO_MATCH. Precedence between these is the caller's decision. */
struct snapshot_match {
	uint32_t categories;       /* OR of feed category bits over every matching suffix */
	bool national_block;
	bool national_allow;
	bool tenant_allow;
	bool tenant_deny;
	uint8_t national_block_at;
	uint8_t national_allow_at;
	uint8_t tenant_allow_at;
	uint8_t tenant_deny_at;
	uint8_t category_at[SNAPSHOT_MAX_CATEGORIES];
};

/* ---- Names ---- */

/* Normalises a domain in text form ("WWW.Example.com.", "*.example.com") to lowercased wire
 * format: trailing dot optional, one leading "*." stripped (a listed name covers everything
 * below it anyway), labels of 1..63 bytes from [a-z0-9-_] (A-labels such as xn--... are
 * plain ASCII), at most 255 bytes in wire form, the root alone refused. 0 or -EINVAL. */
int snapshot_parse_name(const char *text, uint8_t wire[SNAPSHOT_MAX_NAME_WIRE], size_t *wire_len)
	__attribute__((warn_unused_result));

#define SNAPSHOT_NAME_TEXT_MAX 254  /* a normalised name in text (at most 253 bytes) and its NUL */

/* The same normalisation for text[0..len) (no NUL needed), written back as lowercase dotted
 * text without the trailing dot: what feeds, lists and searches store and compare. A last
 * label of digits only is refused too, as the database's dns_name domain refuses it, so an
 * IPv4 address is never taken for a name. 0 or -EINVAL. */
int snapshot_name_text(const char *text, size_t len, char out[SNAPSHOT_NAME_TEXT_MAX])
	__attribute__((warn_unused_result));

/* ---- Writer ---- */

struct snapshot_builder;

struct snapshot_tenant_spec {
	uint8_t id[16];
	const char *name;          /* copied; NULL = none */
	const char *ede_text;      /* copied; NULL = none */
	uint32_t block_mask;
	uint32_t monitor_mask;
	enum snapshot_block_action block_action;
	bool safe_search;
	enum snapshot_privacy privacy;
	uint8_t trunc_v4, trunc_v6;
	bool has_sinkhole_v4, has_sinkhole_v6;
	uint8_t sinkhole_v4[4];
	uint8_t sinkhole_v6[16];
};

/* A new, empty builder with a random hash seed; NULL when out of memory or entropy. */
struct snapshot_builder *snapshot_builder_new(uint64_t serial) __attribute__((warn_unused_result));

struct snapshot;

/* Makes the builder's snapshot an overlay of base (an open snapshot with no base of its
 * own): it takes the base's hash seed and names its checksum, and its categories must be the
 * base's, in the same order (checked by snapshot_builder_write). Call it before adding any
 * name. -EINVAL otherwise. base must stay open until the write. */
int snapshot_builder_set_base(struct snapshot_builder *b, const struct snapshot *base)
	__attribute__((warn_unused_result));

/* Returns the category's index (its bit number, 0..23), -EEXIST for a name already added,
 * -ENOSPC past 24, -EINVAL for an empty name or unknown kind. Add categories first: tenant
 * masks and feeds refer to them. */
int snapshot_builder_add_category(struct snapshot_builder *b, const char *name,
				  enum snapshot_category_kind kind)
	__attribute__((warn_unused_result));

/* Returns the tenant's index, or -EINVAL when the masks overlap or name a category not yet
 * added, an enum or truncation length is out of range, a string is longer than 65535 bytes,
 * or the action is sinkhole without a sinkhole address. */
int snapshot_builder_add_tenant(struct snapshot_builder *b, const struct snapshot_tenant_spec *spec)
	__attribute__((warn_unused_result));

/* "10.0.0.0/8", "2001:db8::/32", or a bare address for a host. Prefixes may nest (the most
 * specific wins); the same prefix for two tenants fails snapshot_builder_write(). -EINVAL for
 * a malformed prefix or host bits set, -ERANGE for an unknown tenant index. */
int snapshot_builder_add_network(struct snapshot_builder *b, uint32_t tenant_index,
				 const char *cidr) __attribute__((warn_unused_result));

/* arg is the tenant index for SNAPSHOT_TENANT_ALLOW/DENY, the category index for
 * SNAPSHOT_FEED, ignored for the national lists. -EINVAL for an invalid name (callers count
 * and skip those), -ERANGE for an unknown list, tenant or category. Duplicates merge. */
int snapshot_builder_add_name(struct snapshot_builder *b, const char *name, enum snapshot_list list,
			      uint32_t arg) __attribute__((warn_unused_result));

/* Compiles and writes the snapshot: a temporary file beside path, fsync, rename, so a reader
 * never sees half a file. Returns 0, or a negative errno with the reason in err (for instance
 * the same network given to two tenants). The builder stays usable. */
int snapshot_builder_write(struct snapshot_builder *b, const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

void snapshot_builder_free(struct snapshot_builder *b);

/* ---- Reader ---- */

/* Reads path into private memory (so a file rewritten in place cannot change bytes already
 * validated), checks magic, version, sizes and SHA-256, and validates every offset, index and
 * count, so no later lookup can read out of bounds even from a hostile file. NULL with the
 * reason in err (and errno set) on any problem. */
struct snapshot *snapshot_open(const char *path, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The same on bytes in memory, which are copied (snapshots received over HTTP, the fuzzer). */
struct snapshot *snapshot_open_buffer(const void *data, size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Drops the caller's reference; the memory goes with the last one (an overlay holds one on
 * its base). */
void snapshot_close(struct snapshot *s);

/* The checksum of the feed base this snapshot needs, or NULL for a self-contained one. */
const uint8_t *snapshot_base_checksum(const struct snapshot *s);

/* Joins an overlay with the base it names: checks the checksum, that the base holds feed
 * names only, the same hash seed and the same categories, then takes a reference on base (the
 * caller keeps its own). From then on snapshot_match_name() on s consults both. 0, or
 * -ENOENT (not the base s names) or -EINVAL, with the reason in err. Not thread-safe: attach
 * before s is shared. */
int snapshot_attach_base(struct snapshot *s, struct snapshot *base, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* False for an overlay whose base is not attached: it must not judge queries (its feed names
 * would be missing). */
bool snapshot_is_complete(const struct snapshot *s);

/* The attached base, or NULL. */
const struct snapshot *snapshot_base(const struct snapshot *s);

/* A checksum as 64 lower-case hex digits and a NUL: how tenantd's URLs, the database and
 * file names write it. */
void snapshot_checksum_hex(const uint8_t sum[32], char hex[65]);

/* Where the base with checksum sum is kept beside a policy file: "<path>.base-<sha256 hex>"
 * (a node's fetched bases, compile-json --split). */
void snapshot_base_path(const char *path, const uint8_t sum[32], char *out, size_t cap);

uint64_t snapshot_serial(const struct snapshot *s);
uint64_t snapshot_created(const struct snapshot *s);          /* unix seconds, for "age" */
const uint8_t *snapshot_checksum(const struct snapshot *s);   /* 32 bytes of SHA-256 */
uint32_t snapshot_tenant_count(const struct snapshot *s);
uint32_t snapshot_interval_count(const struct snapshot *s, int family); /* after flattening */
uint64_t snapshot_name_count(const struct snapshot *s);    /* this file's own, not its base's */
uint32_t snapshot_category_count(const struct snapshot *s);

/* NULL when index is out of range. */
const char *snapshot_category_name(const struct snapshot *s, uint32_t index);
enum snapshot_category_kind snapshot_category_kind(const struct snapshot *s, uint32_t index);
int snapshot_category_find(const struct snapshot *s, const char *name); /* index or -ENOENT */

/* The tenant the most specific network containing addr belongs to, or -1. addr is a struct
 * in_addr or in6_addr (network byte order) for AF_INET or AF_INET6. A v4-mapped IPv6
 * address is looked up as IPv6: convert it first if the socket is dual-stack. */
int snapshot_tenant_for_address(const struct snapshot *s, int family, const void *addr);

const struct snapshot_tenant *snapshot_tenant(const struct snapshot *s, uint32_t index);
/* Never NULL: "" when the tenant set none. len (optional) receives strlen. */
const char *snapshot_tenant_name(const struct snapshot *s, const struct snapshot_tenant *t,
				 size_t *len);
const char *snapshot_tenant_ede_text(const struct snapshot *s, const struct snapshot_tenant *t,
				     size_t *len);

/* The hot path: walks wire_name's suffixes (itself, its parent, ... down to the TLD) and
 * reports every list and category that matched, and tenant_index's own allow/deny rules
 * (pass UINT32_MAX for no tenant). wire_name is uncompressed wire format in any case; it ends
 * at its root label, and wire_len only bounds the read. A malformed name matches nothing.
 * No allocation, no lock, no system call. */
void snapshot_match_name(const struct snapshot *s, uint32_t tenant_index, const uint8_t *wire_name,
			 size_t wire_len, struct snapshot_match *out);

/* For tests and the fuzzer: recomputes the checksum of a snapshot image edited in memory. */
int snapshot_seal_buffer(void *data, size_t len);

#endif
