/* snapshot.c -- writer and validating reader of the policy snapshot (docs/snapshot.md). */
#include "snapshot.h"

#include "atomicfile.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "cleanup.h"

/* The file is little-endian and mapped as structs, so a big-endian host would need byte
 * swapping on every access; no such host runs Aegis. */
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "snapshot.c reads the little-endian file format in place"
#endif

#define MAGIC "AEGISNAP"
/* Refuse absurd sizes before allocating: 2,000,000 names take about 56 MiB. */
#define MAX_FILE_SIZE (1ull << 32)

/* Name slot mask bits above the 24 category bits. */
#define NAME_CATEGORIES     0x00FFFFFFu
#define NAME_NATIONAL_BLOCK (1u << 24)
#define NAME_NATIONAL_ALLOW (1u << 25)
#define NAME_TENANT_RULES   (1u << 26)
#define NAME_KNOWN_BITS     (NAME_CATEGORIES | NAME_NATIONAL_BLOCK | NAME_NATIONAL_ALLOW | \
			     NAME_TENANT_RULES)

/* Rule kinds are bits: a tenant may list a name as both allowed and denied, and which wins
 * is the resolver's precedence, not the file's. */
#define RULE_ALLOW 1u
#define RULE_DENY  2u

/* Home range = names / 0.85: linear probing stays short at that load (docs/snapshot.md). */
#define LOAD_NUM 17
#define LOAD_DEN 20

enum section {
	SEC_STRINGS,
	SEC_CATEGORIES,
	SEC_TENANTS,
	SEC_NET4,
	SEC_NET6,
	SEC_NAMES,
	SEC_RULES,
	SEC_COUNT
};

static const char *const section_names[SEC_COUNT] = {
	"strings", "categories", "tenants", "net4", "net6", "names", "rules",
};

struct file_section {
	uint64_t offset;
	uint64_t size;
};

struct file_header {
	char magic[8];
	uint32_t format_version;
	uint32_t header_size;
	uint64_t serial;
	uint64_t created_unix;
	uint64_t hash_seed;
	uint64_t content_size;
	uint8_t sha256[32];
	uint64_t name_count;
	uint64_t name_home_slots;
	struct file_section sections[SEC_COUNT];
	uint8_t base_sha256[32];   /* the feed base this snapshot needs; all zero for none */
};
static_assert(sizeof(struct file_header) == 240, "format 2 header is 240 bytes");
static_assert(offsetof(struct file_header, sha256) == 48, "checksum at 48");
static_assert(offsetof(struct file_header, sections) == 96, "section table at 96");
static_assert(offsetof(struct file_header, base_sha256) == 208, "base reference at 208");

struct file_category {
	uint32_t name;
	uint8_t kind;
	uint8_t reserved[3];
};
static_assert(sizeof(struct file_category) == 8, "category record is 8 bytes");

struct file_net4 {
	uint32_t start;
	uint32_t end;
	uint32_t tenant;
};
static_assert(sizeof(struct file_net4) == 12, "net4 record is 12 bytes");

struct file_net6 {
	uint8_t start[16];
	uint8_t end[16];
	uint32_t tenant;
	uint32_t reserved;
};
static_assert(sizeof(struct file_net6) == 40, "net6 record is 40 bytes");

struct file_slot {
	uint64_t k0;
	uint64_t k1;
	uint32_t mask;
	uint32_t rules;
};
static_assert(sizeof(struct file_slot) == 24, "name slot is 24 bytes");

struct file_rule {
	uint32_t tenant;
	uint8_t kind;
	uint8_t reserved[3];
};
static_assert(sizeof(struct file_rule) == 8, "rule record is 8 bytes");

/* snapshot_match_name() resets the offsets with one memset from national_block_at on. */
static_assert(offsetof(struct snapshot_match, category_at) ==
	      offsetof(struct snapshot_match, national_block_at) + 4 &&
	      sizeof(struct snapshot_match) ==
	      offsetof(struct snapshot_match, category_at) + SNAPSHOT_MAX_CATEGORIES,
	      "the match offsets are one run of bytes at the end");

static_assert(offsetof(struct snapshot_tenant, block_action) == 32, "tenant layout");
static_assert(offsetof(struct snapshot_tenant, sinkhole_v4) == 40, "tenant layout");
static_assert(offsetof(struct snapshot_tenant, sinkhole_v6) == 44, "tenant layout");

static const size_t record_sizes[SEC_COUNT] = {
	[SEC_STRINGS] = 1,
	[SEC_CATEGORIES] = sizeof(struct file_category),
	[SEC_TENANTS] = sizeof(struct snapshot_tenant),
	[SEC_NET4] = sizeof(struct file_net4),
	[SEC_NET6] = sizeof(struct file_net6),
	[SEC_NAMES] = sizeof(struct file_slot),
	[SEC_RULES] = 1,
};

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -code;
}

static uint64_t align8(uint64_t v)
{
	return (v + 7) & ~(uint64_t)7;
}

/* ---- Shared by writer and reader ---- */

static inline void name_key(const uint8_t *wire, size_t len, uint64_t seed, uint64_t *k0,
			    uint64_t *k1)
{
	XXH128_hash_t h = XXH3_128bits_withSeed(wire, len, seed);
	*k0 = h.low64;
	*k1 = h.high64;
	/* All zeros marks an empty slot; the remapped key collides only with a 2^-128 chance. */
	if ((*k0 | *k1) == 0)
		*k1 = 1;
}

/* Multiply-shift maps k0 onto [0, home_slots) without a power-of-two table (which would
 * double the file for 2M names) and keeps home slots in k0 order, which the sorted table
 * relies on. */
static inline uint64_t home_slot(uint64_t k0, uint64_t home_slots)
{
	return (uint64_t)(((unsigned __int128)k0 * home_slots) >> 64);
}

static inline int key_cmp(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	if (a0 != b0)
		return a0 < b0 ? -1 : 1;
	if (a1 != b1)
		return a1 < b1 ? -1 : 1;
	return 0;
}

/* SHA-256 over every byte of the image except the 32 checksum bytes themselves, so the
 * header's seed, serial and section table are covered as well as the content. */
static int compute_checksum(const uint8_t *data, size_t len, uint8_t out[32])
{
	size_t at = offsetof(struct file_header, sha256);
	if (len < sizeof(struct file_header))
		return -EINVAL;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	if (!ctx)
		return -ENOMEM;
	int ok = EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) &&
		 EVP_DigestUpdate(ctx, data, at) &&
		 EVP_DigestUpdate(ctx, data + at + 32, len - at - 32) &&
		 EVP_DigestFinal_ex(ctx, out, NULL);
	EVP_MD_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

int snapshot_seal_buffer(void *data, size_t len)
{
	uint8_t sum[32];
	int rc = compute_checksum(data, len, sum);
	if (rc == 0)
		memcpy((uint8_t *)data + offsetof(struct file_header, sha256), sum, sizeof sum);
	return rc;
}

int snapshot_parse_name(const char *text, uint8_t wire[SNAPSHOT_MAX_NAME_WIRE], size_t *wire_len)
{
	if (!text)
		return -EINVAL;
	if (text[0] == '*' && text[1] == '.')
		text += 2;
	size_t n = strnlen(text, SNAPSHOT_MAX_NAME_WIRE + 1);
	if (n > 0 && text[n - 1] == '.')
		n--;
	/* Wire form is one byte longer than the dotted text plus the root label. */
	if (n == 0 || n + 2 > SNAPSHOT_MAX_NAME_WIRE)
		return -EINVAL;

	size_t out = 0;
	size_t label = 0;  /* position of the current label's length byte */
	wire[out++] = 0;
	for (size_t i = 0; i <= n; i++) {
		if (i == n || text[i] == '.') {
			size_t len = out - label - 1;
			if (len == 0 || len > 63)
				return -EINVAL;
			wire[label] = (uint8_t)len;
			label = out;
			wire[out++] = 0;
			continue;
		}
		unsigned char c = (unsigned char)text[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c | 0x20);
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_'))
			return -EINVAL;
		wire[out++] = c;
	}
	*wire_len = out;
	return 0;
}

int snapshot_name_text(const char *text, size_t len, char out[SNAPSHOT_NAME_TEXT_MAX])
{
	char buf[SNAPSHOT_MAX_NAME_WIRE + 4];  /* room for "*." and the dot of the longest name */
	uint8_t wire[SNAPSHOT_MAX_NAME_WIRE];
	size_t wire_len;

	if (len >= sizeof buf || memchr(text, '\0', len))
		return -EINVAL;
	memcpy(buf, text, len);
	buf[len] = '\0';
	if (snapshot_parse_name(buf, wire, &wire_len) < 0)
		return -EINVAL;

	size_t o = 0;
	bool digits = false;
	for (size_t i = 0; wire[i] != 0; i += wire[i] + 1u) {
		if (o)
			out[o++] = '.';
		digits = true;
		for (size_t j = 1; j <= wire[i]; j++) {
			uint8_t c = wire[i + j];
			digits = digits && c >= '0' && c <= '9';
			out[o++] = (char)c;
		}
	}
	out[o] = '\0';
	return digits ? -EINVAL : 0;
}

/* ---- Writer ---- */

struct prefix {
	unsigned __int128 start;
	unsigned __int128 end;
	uint32_t tenant;
	uint8_t len;
};

struct interval {
	unsigned __int128 start;
	unsigned __int128 end;
	uint32_t tenant;
};

struct builder_tenant {
	struct snapshot_tenant rec;
	char *name;
	char *ede_text;
};

struct builder_rule {
	uint64_t k0;
	uint64_t k1;
	uint32_t tenant;
	uint32_t kind;
};

struct vec {
	void *items;
	size_t count;
	size_t cap;
};

struct snapshot_builder {
	uint64_t serial;
	uint64_t seed;
	bool has_base;
	uint8_t base_sha256[32];
	const struct snapshot *base;   /* for its categories, checked at write */
	char *category_names[SNAPSHOT_MAX_CATEGORIES];
	uint8_t category_kinds[SNAPSHOT_MAX_CATEGORIES];
	uint32_t ncategories;
	struct vec tenants;  /* struct builder_tenant */
	struct vec net4;     /* struct prefix */
	struct vec net6;
	struct vec names;    /* struct file_slot, duplicates until write() merges them */
	struct vec rules;    /* struct builder_rule */
};

static void *vec_push(struct vec *v, size_t size)
{
	if (v->count == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 64;
		void *items = reallocarray(v->items, cap, size);
		if (!items)
			return NULL;
		v->items = items;
		v->cap = cap;
	}
	return (char *)v->items + size * v->count++;
}

struct snapshot_builder *snapshot_builder_new(uint64_t serial)
{
	struct snapshot_builder *b = calloc(1, sizeof *b);
	if (!b)
		return NULL;
	b->serial = serial;
	/* A fresh seed per compile: a colliding name prepared for one compile fails the next. */
	if (getrandom(&b->seed, sizeof b->seed, 0) != (ssize_t)sizeof b->seed) {
		free(b);
		return NULL;
	}
	return b;
}

void snapshot_builder_free(struct snapshot_builder *b)
{
	if (!b)
		return;
	for (uint32_t i = 0; i < b->ncategories; i++)
		free(b->category_names[i]);
	struct builder_tenant *t = b->tenants.items;
	for (size_t i = 0; i < b->tenants.count; i++) {
		free(t[i].name);
		free(t[i].ede_text);
	}
	free(b->tenants.items);
	free(b->net4.items);
	free(b->net6.items);
	free(b->names.items);
	free(b->rules.items);
	free(b);
}

int snapshot_builder_add_category(struct snapshot_builder *b, const char *name,
				  enum snapshot_category_kind kind)
{
	if (!name || !name[0] || strlen(name) > SNAPSHOT_MAX_STRING ||
	    (kind != SNAPSHOT_CATEGORY_THREAT && kind != SNAPSHOT_CATEGORY_CONTENT))
		return -EINVAL;
	for (uint32_t i = 0; i < b->ncategories; i++)
		if (strcmp(b->category_names[i], name) == 0)
			return -EEXIST;
	if (b->ncategories == SNAPSHOT_MAX_CATEGORIES)
		return -ENOSPC;
	if (!(b->category_names[b->ncategories] = strdup(name)))
		return -ENOMEM;
	b->category_kinds[b->ncategories] = (uint8_t)kind;
	return (int)b->ncategories++;
}

static bool string_ok(const char *s)
{
	return !s || strlen(s) <= SNAPSHOT_MAX_STRING;
}

int snapshot_builder_add_tenant(struct snapshot_builder *b, const struct snapshot_tenant_spec *spec)
{
	uint32_t known = (uint32_t)((1ull << b->ncategories) - 1);
	bool any_sinkhole = spec->has_sinkhole_v4 || spec->has_sinkhole_v6;
	if ((spec->block_mask | spec->monitor_mask) & ~known ||
	    (spec->block_mask & spec->monitor_mask) ||
	    (unsigned)spec->block_action > SNAPSHOT_ACTION_SINKHOLE ||
	    (unsigned)spec->privacy > SNAPSHOT_PRIVACY_TRUNCATED ||
	    spec->trunc_v4 > 32 || spec->trunc_v6 > 128 ||
	    (spec->block_action == SNAPSHOT_ACTION_SINKHOLE && !any_sinkhole) ||
	    !string_ok(spec->name) || !string_ok(spec->ede_text))
		return -EINVAL;
	if (b->tenants.count >= INT32_MAX)
		return -ENOSPC;

	struct builder_tenant t = { 0 };
	memcpy(t.rec.id, spec->id, sizeof t.rec.id);
	t.rec.block_mask = spec->block_mask;
	t.rec.monitor_mask = spec->monitor_mask;
	t.rec.block_action = (uint8_t)spec->block_action;
	t.rec.safe_search = spec->safe_search;
	t.rec.privacy = (uint8_t)spec->privacy;
	t.rec.trunc_v4 = spec->trunc_v4;
	t.rec.trunc_v6 = spec->trunc_v6;
	if (spec->has_sinkhole_v4) {
		t.rec.flags |= SNAPSHOT_TENANT_SINKHOLE_V4;
		memcpy(t.rec.sinkhole_v4, spec->sinkhole_v4, 4);
	}
	if (spec->has_sinkhole_v6) {
		t.rec.flags |= SNAPSHOT_TENANT_SINKHOLE_V6;
		memcpy(t.rec.sinkhole_v6, spec->sinkhole_v6, 16);
	}
	if ((spec->name && !(t.name = strdup(spec->name))) ||
	    (spec->ede_text && !(t.ede_text = strdup(spec->ede_text)))) {
		free(t.name);
		free(t.ede_text);
		return -ENOMEM;
	}
	struct builder_tenant *slot = vec_push(&b->tenants, sizeof *slot);
	if (!slot) {
		free(t.name);
		free(t.ede_text);
		return -ENOMEM;
	}
	*slot = t;
	return (int)(b->tenants.count - 1);
}

static unsigned __int128 bytes_to_u128(const uint8_t *p, size_t n)
{
	unsigned __int128 v = 0;
	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

static void u128_to_bytes(unsigned __int128 v, uint8_t *p, size_t n)
{
	for (size_t i = n; i-- > 0; v >>= 8)
		p[i] = (uint8_t)v;
}

int snapshot_builder_add_network(struct snapshot_builder *b, uint32_t tenant_index,
				 const char *cidr)
{
	if (tenant_index >= b->tenants.count)
		return -ERANGE;
	if (!cidr)
		return -EINVAL;
	char addr[INET6_ADDRSTRLEN];
	const char *slash = strchr(cidr, '/');
	size_t alen = slash ? (size_t)(slash - cidr) : strlen(cidr);
	if (alen == 0 || alen >= sizeof addr)
		return -EINVAL;
	memcpy(addr, cidr, alen);
	addr[alen] = '\0';

	uint8_t raw[16];
	unsigned bits;
	struct vec *v;
	if (inet_pton(AF_INET, addr, raw) == 1) {
		bits = 32;
		v = &b->net4;
	} else if (inet_pton(AF_INET6, addr, raw) == 1) {
		bits = 128;
		v = &b->net6;
	} else {
		return -EINVAL;
	}

	unsigned len = bits;
	if (slash) {
		const char *p = slash + 1;
		if (*p < '0' || *p > '9' || strlen(p) > 3)
			return -EINVAL;
		char *end;
		unsigned long l = strtoul(p, &end, 10);
		if (*end || l > bits)
			return -EINVAL;
		len = (unsigned)l;
	}
	unsigned __int128 start = bytes_to_u128(raw, bits / 8);
	/* Shifting a 128-bit value by 128 is undefined: /0 in IPv6 needs the all-ones case. */
	unsigned __int128 host = len == bits ? 0 : ~(unsigned __int128)0 >> (128 - (bits - len));
	if (start & host)
		return -EINVAL;

	struct prefix *p = vec_push(v, sizeof *p);
	if (!p)
		return -ENOMEM;
	*p = (struct prefix){ .start = start, .end = start | host, .tenant = tenant_index,
			      .len = (uint8_t)len };
	return 0;
}

static int add_wire(struct snapshot_builder *b, const uint8_t *wire, size_t len,
		    enum snapshot_list list, uint32_t arg)
{
	uint32_t mask;
	uint32_t kind = 0;
	if (len == 0 || len > SNAPSHOT_MAX_NAME_WIRE)
		return -EINVAL;
	switch (list) {
	case SNAPSHOT_NATIONAL_BLOCK:
		mask = NAME_NATIONAL_BLOCK;
		break;
	case SNAPSHOT_NATIONAL_ALLOW:
		mask = NAME_NATIONAL_ALLOW;
		break;
	case SNAPSHOT_TENANT_ALLOW:
	case SNAPSHOT_TENANT_DENY:
		if (arg >= b->tenants.count)
			return -ERANGE;
		mask = NAME_TENANT_RULES;
		kind = list == SNAPSHOT_TENANT_ALLOW ? RULE_ALLOW : RULE_DENY;
		break;
	case SNAPSHOT_FEED:
		if (arg >= b->ncategories)
			return -ERANGE;
		mask = 1u << arg;
		break;
	default:
		return -ERANGE;
	}

	uint64_t k0, k1;
	name_key(wire, len, b->seed, &k0, &k1);

	if (kind) {
		struct builder_rule *r = vec_push(&b->rules, sizeof *r);
		if (!r)
			return -ENOMEM;
		*r = (struct builder_rule){ .k0 = k0, .k1 = k1, .tenant = arg, .kind = kind };
	}
	struct file_slot *s = vec_push(&b->names, sizeof *s);
	if (!s) {
		if (kind)
			b->rules.count--;
		return -ENOMEM;
	}
	*s = (struct file_slot){ .k0 = k0, .k1 = k1, .mask = mask };
	return 0;
}

int snapshot_builder_add_name(struct snapshot_builder *b, const char *name, enum snapshot_list list,
			      uint32_t arg)
{
	uint8_t wire[SNAPSHOT_MAX_NAME_WIRE];
	size_t len;
	if (snapshot_parse_name(name, wire, &len) < 0)
		return -EINVAL;
	return add_wire(b, wire, len, list, arg);
}

/* -- network flattening -- */

static int prefix_cmp(const void *a, const void *b)
{
	const struct prefix *x = a, *y = b;
	if (x->start != y->start)
		return x->start < y->start ? -1 : 1;
	return (int)x->len - (int)y->len;
}

static void format_prefix(const struct prefix *p, bool v6, char *buf, size_t buflen)
{
	uint8_t raw[16];
	char addr[INET6_ADDRSTRLEN];
	u128_to_bytes(p->start, raw, v6 ? 16 : 4);
	inet_ntop(v6 ? AF_INET6 : AF_INET, raw, addr, sizeof addr);
	snprintf(buf, buflen, "%s/%u", addr, p->len);
}

struct flat {
	struct interval *items;
	size_t count;
	bool full;  /* the last interval ended at the top of the address space */
};

static void flat_emit(struct flat *f, unsigned __int128 lo, unsigned __int128 hi, uint32_t tenant)
{
	if (f->full || lo > hi)
		return;
	struct interval *last = f->count ? &f->items[f->count - 1] : NULL;
	/* Adjacent pieces of one tenant (a /16 around the same tenant's /28) become one. */
	if (last && last->tenant == tenant && last->end + 1 == lo)
		last->end = hi;
	else
		f->items[f->count++] =
			(struct interval){ .start = lo, .end = hi, .tenant = tenant };
}

/* Which tenant an address belongs to (quoted in docs/snapshot.md):
 *   1. The tenant of the most specific (longest) prefix that contains the address.
 *   2. A prefix listed twice for one tenant counts once; the same prefix for two tenants
 *      fails the compile, naming the prefix and both tenants.
 *   3. An address no prefix contains belongs to no tenant.
 * Sorted by start and then by length, a prefix lies either inside the one on top of the
 * stack or after it (CIDR blocks never partly overlap), so one sweep suffices: O(n log n) for
 * the sort, O(n) for the sweep, at most 2n + 1 intervals. */
static int flatten(struct snapshot_builder *b, struct vec *v, bool v6, struct flat *out,
		   char *err, size_t errlen)
{
	struct prefix *p = v->items;
	size_t n = v->count;
	out->items = NULL;
	out->count = 0;
	out->full = false;
	if (n == 0)
		return 0;
	qsort(p, n, sizeof *p, prefix_cmp);
	if (!(out->items = calloc(2 * n + 1, sizeof *out->items)))
		return fail(err, errlen, ENOMEM, "out of memory flattening networks");

	const struct builder_tenant *tenants = b->tenants.items;
	const struct prefix *stack[129];
	size_t depth = 0;
	unsigned __int128 cursor = 0;
	for (size_t i = 0; i < n; i++) {
		if (i > 0 && p[i].start == p[i - 1].start && p[i].len == p[i - 1].len) {
			if (p[i].tenant == p[i - 1].tenant)
				continue;
			char buf[64];
			format_prefix(&p[i], v6, buf, sizeof buf);
			const char *a = tenants[p[i - 1].tenant].name;
			const char *c = tenants[p[i].tenant].name;
			free(out->items);
			out->items = NULL;
			return fail(err, errlen, EINVAL, "network %s is assigned to two tenants: "
				    "'%s' (index %u) and '%s' (index %u)", buf, a ? a : "",
				    p[i - 1].tenant, c ? c : "", p[i].tenant);
		}
		while (depth && stack[depth - 1]->end < p[i].start) {
			const struct prefix *t = stack[--depth];
			flat_emit(out, cursor, t->end, t->tenant);
			cursor = t->end + 1;
		}
		if (depth && cursor < p[i].start)
			flat_emit(out, cursor, p[i].start - 1, stack[depth - 1]->tenant);
		cursor = p[i].start;
		stack[depth++] = &p[i];
	}
	while (depth) {
		const struct prefix *t = stack[--depth];
		flat_emit(out, cursor, t->end, t->tenant);
		if (t->end == (v6 ? ~(unsigned __int128)0 : 0xFFFFFFFFu))
			out->full = true;
		cursor = t->end + 1;
	}
	return 0;
}

/* -- name table -- */

static int slot_cmp(const void *a, const void *b)
{
	const struct file_slot *x = a, *y = b;
	return key_cmp(x->k0, x->k1, y->k0, y->k1);
}

static int rule_cmp(const void *a, const void *b)
{
	const struct builder_rule *x = a, *y = b;
	int c = key_cmp(x->k0, x->k1, y->k0, y->k1);
	if (c)
		return c;
	return x->tenant < y->tenant ? -1 : x->tenant > y->tenant;
}

/* Sorts the names by key and merges duplicates. Keys are uniform, so one counting pass over
 * the top bits of k0 leaves buckets of one or two, finished by insertion sort: linear time,
 * where qsort of 2M records costs several times more. */
static int sort_names(struct vec *v)
{
	struct file_slot *a = v->items;
	size_t n = v->count;
	if (n > 1) {
		unsigned bits = 1;
		while (bits < 32 && (1ull << bits) < n)
			bits++;
		size_t nb = (size_t)1 << bits;
		unsigned shift = 64 - bits;
		auto_free size_t *count = calloc(nb + 1, sizeof *count);
		struct file_slot *tmp = malloc(n * sizeof *tmp);
		if (!count || !tmp) {
			free(tmp);
			return -ENOMEM;
		}
		for (size_t i = 0; i < n; i++)
			count[(a[i].k0 >> shift) + 1]++;
		for (size_t i = 1; i <= nb; i++)
			count[i] += count[i - 1];
		for (size_t i = 0; i < n; i++)
			tmp[count[a[i].k0 >> shift]++] = a[i];
		/* count[i] is now the end of bucket i. */
		size_t start = 0;
		for (size_t bkt = 0; bkt < nb; bkt++) {
			size_t end = count[bkt];
			for (size_t i = start + 1; i < end; i++) {
				struct file_slot x = tmp[i];
				size_t j = i;
				while (j > start && slot_cmp(&tmp[j - 1], &x) > 0) {
					tmp[j] = tmp[j - 1];
					j--;
				}
				tmp[j] = x;
			}
			start = end;
		}
		free(v->items);
		v->items = a = tmp;
		v->cap = n;
	}
	size_t out = 0;
	for (size_t i = 0; i < n; i++) {
		if (out && a[out - 1].k0 == a[i].k0 && a[out - 1].k1 == a[i].k1)
			a[out - 1].mask |= a[i].mask;
		else
			a[out++] = a[i];
	}
	v->count = out;
	return 0;
}

static void sort_rules(struct vec *v)
{
	struct builder_rule *r = v->items;
	size_t out = 0;
	if (v->count > 1)
		qsort(r, v->count, sizeof *r, rule_cmp);
	for (size_t i = 0; i < v->count; i++) {
		if (out && rule_cmp(&r[out - 1], &r[i]) == 0)
			r[out - 1].kind |= r[i].kind;
		else
			r[out++] = r[i];
	}
	v->count = out;
}

/* -- strings -- */

struct strbuf {
	uint8_t *data;
	size_t len;
	size_t cap;
};

/* Appends {u16 len, bytes, NUL} and returns its offset; NULL becomes 0, the "none" entry. */
static int64_t strbuf_add(struct strbuf *sb, const char *s)
{
	if (!s)
		return 0;
	size_t n = strlen(s);
	if (sb->len + n + 3 > sb->cap) {
		size_t cap = sb->cap ? sb->cap : 4096;
		while (cap < sb->len + n + 3)
			cap *= 2;
		uint8_t *d = realloc(sb->data, cap);
		if (!d)
			return -ENOMEM;
		sb->data = d;
		sb->cap = cap;
	}
	if (sb->len + n + 3 > UINT32_MAX)
		return -E2BIG;
	int64_t off = (int64_t)sb->len;
	uint16_t len16 = (uint16_t)n;
	memcpy(sb->data + sb->len, &len16, 2);
	memcpy(sb->data + sb->len + 2, s, n);
	sb->data[sb->len + 2 + n] = 0;
	sb->len += n + 3;
	return off;
}

/* -- file assembly -- */

static int id_cmp(const void *a, const void *b)
{
	return memcmp(a, b, 16);
}

static int check_unique_ids(struct snapshot_builder *b, char *err, size_t errlen)
{
	size_t n = b->tenants.count;
	if (n < 2)
		return 0;
	auto_free uint8_t *ids = malloc(n * 16);
	if (!ids)
		return fail(err, errlen, ENOMEM, "out of memory");
	const struct builder_tenant *t = b->tenants.items;
	for (size_t i = 0; i < n; i++)
		memcpy(ids + 16 * i, t[i].rec.id, 16);
	qsort(ids, n, 16, id_cmp);
	for (size_t i = 1; i < n; i++) {
		if (memcmp(ids + 16 * (i - 1), ids + 16 * i, 16) == 0) {
			const uint8_t *d = ids + 16 * i;
			return fail(err, errlen, EINVAL,
				    "tenant id %02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
				    "%02x%02x%02x%02x%02x%02x is used by two tenants",
				    d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7], d[8], d[9],
				    d[10], d[11], d[12], d[13], d[14], d[15]);
		}
	}
	return 0;
}

struct layout {
	uint64_t offset[SEC_COUNT];
	uint64_t size[SEC_COUNT];
	uint64_t total;
};

static void layout_sections(struct layout *l)
{
	uint64_t at = sizeof(struct file_header);
	for (int i = 0; i < SEC_COUNT; i++) {
		at = align8(at);
		l->offset[i] = at;
		at += l->size[i];
	}
	l->total = at;
}

/* An overlay's categories are the base's, index for index (see same_categories()). */
static int check_base_categories(const struct snapshot_builder *b, char *err, size_t errlen)
{
	if (!b->base)
		return 0;
	bool same = b->ncategories == snapshot_category_count(b->base);
	for (uint32_t i = 0; same && i < b->ncategories; i++)
		same = strcmp(b->category_names[i], snapshot_category_name(b->base, i)) == 0 &&
		       b->category_kinds[i] == snapshot_category_kind(b->base, i);
	return same ? 0 : fail(err, errlen, EINVAL, "categories differ from the base's");
}

int snapshot_builder_write(struct snapshot_builder *b, const char *path, char *err, size_t errlen)
{
	int rc = check_unique_ids(b, err, errlen);
	if (rc < 0 || (rc = check_base_categories(b, err, errlen)) < 0)
		return rc;
	struct flat f4 = { 0 }, f6 = { 0 };
	struct strbuf sb = { 0 };
	uint8_t *img = NULL;
	if ((rc = flatten(b, &b->net4, false, &f4, err, errlen)) < 0 ||
	    (rc = flatten(b, &b->net6, true, &f6, err, errlen)) < 0)
		goto out;
	if (sort_names(&b->names) < 0) {
		rc = fail(err, errlen, ENOMEM, "out of memory sorting names");
		goto out;
	}
	sort_rules(&b->rules);

	/* Strings: offset 0 is the empty "none" entry. */
	uint32_t cat_refs[SNAPSHOT_MAX_CATEGORIES];
	const size_t ntenants = b->tenants.count;
	struct builder_tenant *tenants = b->tenants.items;
	if (strbuf_add(&sb, "") < 0)
		goto nomem;
	for (uint32_t i = 0; i < b->ncategories; i++) {
		int64_t off = strbuf_add(&sb, b->category_names[i]);
		if (off < 0)
			goto nomem;
		cat_refs[i] = (uint32_t)off;
	}
	for (size_t i = 0; i < ntenants; i++) {
		int64_t name = strbuf_add(&sb, tenants[i].name);
		int64_t ede = strbuf_add(&sb, tenants[i].ede_text);
		if (name < 0 || ede < 0)
			goto nomem;
		tenants[i].rec.name = (uint32_t)name;
		tenants[i].rec.ede_text = (uint32_t)ede;
	}

	/* Names: sorted by key, each at max(home, previous + 1). Only the home range is sized
	 * by the load factor; the few names pushed past its end go to a tail, so no probe wraps. */
	const struct file_slot *names = b->names.items;
	const size_t nnames = b->names.count;
	const uint64_t home_slots = nnames ? (nnames * LOAD_DEN + LOAD_NUM - 1) / LOAD_NUM : 1;
	uint64_t nslots = home_slots;
	uint64_t groups = 0;
	{
		uint64_t next = 0;
		for (size_t i = 0; i < nnames; i++) {
			uint64_t h = home_slot(names[i].k0, home_slots);
			uint64_t pos = h > next ? h : next;
			next = pos + 1;
			groups += (names[i].mask & NAME_TENANT_RULES) != 0;
		}
		if (next > nslots)
			nslots = next;
	}

	struct layout l = { 0 };
	l.size[SEC_STRINGS] = sb.len;
	l.size[SEC_CATEGORIES] = b->ncategories * sizeof(struct file_category);
	l.size[SEC_TENANTS] = ntenants * sizeof(struct snapshot_tenant);
	l.size[SEC_NET4] = f4.count * sizeof(struct file_net4);
	l.size[SEC_NET6] = f6.count * sizeof(struct file_net6);
	l.size[SEC_NAMES] = nslots * sizeof(struct file_slot);
	l.size[SEC_RULES] = groups * 4 + b->rules.count * sizeof(struct file_rule);
	layout_sections(&l);
	if (l.total > MAX_FILE_SIZE || l.size[SEC_RULES] > UINT32_MAX) {
		rc = fail(err, errlen, E2BIG, "snapshot would be %llu bytes, over the limit",
			  (unsigned long long)l.total);
		goto out;
	}
	/* calloc: the name table is mostly zero pages until written. */
	if (!(img = calloc(1, l.total)))
		goto nomem;

	memcpy(img + l.offset[SEC_STRINGS], sb.data, sb.len);
	struct file_category *cats = (struct file_category *)(img + l.offset[SEC_CATEGORIES]);
	for (uint32_t i = 0; i < b->ncategories; i++)
		cats[i] = (struct file_category){ .name = cat_refs[i],
						  .kind = b->category_kinds[i] };
	struct snapshot_tenant *trec = (struct snapshot_tenant *)(img + l.offset[SEC_TENANTS]);
	for (size_t i = 0; i < ntenants; i++)
		trec[i] = tenants[i].rec;
	struct file_net4 *n4 = (struct file_net4 *)(img + l.offset[SEC_NET4]);
	for (size_t i = 0; i < f4.count; i++)
		n4[i] = (struct file_net4){ .start = (uint32_t)f4.items[i].start,
					    .end = (uint32_t)f4.items[i].end,
					    .tenant = f4.items[i].tenant };
	struct file_net6 *n6 = (struct file_net6 *)(img + l.offset[SEC_NET6]);
	for (size_t i = 0; i < f6.count; i++) {
		u128_to_bytes(f6.items[i].start, n6[i].start, 16);
		u128_to_bytes(f6.items[i].end, n6[i].end, 16);
		n6[i].tenant = f6.items[i].tenant;
	}

	/* Names and their rule groups, merged in one pass: both are sorted by key. */
	struct file_slot *slots = (struct file_slot *)(img + l.offset[SEC_NAMES]);
	uint8_t *rules = img + l.offset[SEC_RULES];
	const struct builder_rule *r = b->rules.items;
	size_t ri = 0;
	uint32_t rules_at = 0;
	uint64_t next = 0;
	for (size_t i = 0; i < nnames; i++) {
		uint64_t h = home_slot(names[i].k0, home_slots);
		uint64_t pos = h > next ? h : next;
		next = pos + 1;
		slots[pos] = names[i];
		slots[pos].rules = 0;
		if (!(names[i].mask & NAME_TENANT_RULES))
			continue;
		while (ri < b->rules.count &&
		       key_cmp(r[ri].k0, r[ri].k1, names[i].k0, names[i].k1) < 0)
			ri++;
		uint32_t count = 0;
		uint8_t *group = rules + rules_at;
		for (; ri < b->rules.count &&
		       key_cmp(r[ri].k0, r[ri].k1, names[i].k0, names[i].k1) == 0; ri++, count++) {
			struct file_rule fr = { .tenant = r[ri].tenant,
						.kind = (uint8_t)r[ri].kind };
			memcpy(group + 4 + count * sizeof fr, &fr, sizeof fr);
		}
		memcpy(group, &count, 4);
		slots[pos].rules = rules_at;
		rules_at += 4 + count * (uint32_t)sizeof(struct file_rule);
	}

	struct file_header *hdr = (struct file_header *)img;
	memcpy(hdr->magic, MAGIC, 8);
	hdr->format_version = SNAPSHOT_FORMAT_VERSION;
	hdr->header_size = sizeof *hdr;
	hdr->serial = b->serial;
	hdr->created_unix = (uint64_t)time(NULL);
	hdr->hash_seed = b->seed;
	hdr->content_size = l.total - sizeof *hdr;
	hdr->name_count = nnames;
	hdr->name_home_slots = home_slots;
	for (int i = 0; i < SEC_COUNT; i++)
		hdr->sections[i] = (struct file_section){ l.offset[i], l.size[i] };
	if (b->has_base)
		memcpy(hdr->base_sha256, b->base_sha256, 32);
	if ((rc = snapshot_seal_buffer(img, l.total)) < 0) {
		rc = fail(err, errlen, -rc, "cannot compute SHA-256");
		goto out;
	}
	rc = atomicfile_write(path, img, l.total, err, errlen);
	goto out;
nomem:
	rc = fail(err, errlen, ENOMEM, "out of memory");
out:
	free(img);
	free(sb.data);
	free(f4.items);
	free(f6.items);
	return rc;
}

/* ---- Reader ---- */

struct snapshot {
	atomic_uint refs;          /* its opener's, plus one per overlay attached to it */
	struct snapshot *base;     /* attached feed base, or NULL */
	bool list_names;           /* a name carries a national block or tenant rules */
	uint64_t *filter;          /* an overlay's keys by the top bits of k0, once attached */
	unsigned filter_shift;
	uint8_t *mem;
	size_t map_len;
	const struct file_header *hdr;
	uint64_t seed;
	const uint8_t *strings;
	uint64_t strings_size;
	const struct file_category *categories;
	uint32_t ncategories;
	const struct snapshot_tenant *tenants;
	uint32_t ntenants;
	const struct file_net4 *net4;
	uint32_t nnet4;
	const struct file_net6 *net6;
	uint32_t nnet6;
	const struct file_slot *slots;
	uint64_t nslots;
	uint64_t home_slots;
	const uint8_t *rules;
	uint64_t rules_size;
};

/* Private anonymous memory, not a file mapping: a file mapping changes if someone rewrites the
 * file in place (cp over it), which would undo the validation, and raises SIGBUS if it is
 * truncated. Huge pages cut TLB misses on random name-table probes. */
static uint8_t *alloc_image(size_t len, size_t *map_len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	*map_len = (len + page - 1) / page * page;
	void *p = mmap(NULL, *map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (*map_len >= (2u << 20))
		madvise(p, *map_len, MADV_HUGEPAGE);
	return p;
}

static bool bit_test(const uint64_t *bits, uint64_t i)
{
	return (bits[i / 64] >> (i % 64)) & 1;
}

static void bit_set(uint64_t *bits, uint64_t i)
{
	bits[i / 64] |= (uint64_t)1 << (i % 64);
}

static int be_cmp16(const uint8_t *a, const uint8_t *b)
{
	return memcmp(a, b, 16);
}

/* Every check that makes later lookups safe without bounds checks, in file order. */
static int validate(struct snapshot *s, size_t len, char *err, size_t errlen)
{
	const uint8_t *base = s->mem;
	const struct file_header *h = s->hdr;

	if (len < sizeof *h)
		return fail(err, errlen, EBADMSG, "truncated: %zu bytes, the header alone is %zu",
			    len, sizeof *h);
	if (memcmp(h->magic, MAGIC, 8) != 0)
		return fail(err, errlen, EBADMSG, "wrong magic: not an Aegis policy snapshot");
	if (h->format_version != SNAPSHOT_FORMAT_VERSION)
		return fail(err, errlen, EPROTONOSUPPORT,
			    "format version %u is not supported (this reader reads version %u)",
			    h->format_version, SNAPSHOT_FORMAT_VERSION);
	if (h->header_size != sizeof *h)
		return fail(err, errlen, EBADMSG, "header size %u, version %u has %zu",
			    h->header_size, SNAPSHOT_FORMAT_VERSION, sizeof *h);
	if (h->content_size != len - sizeof *h)
		return fail(err, errlen, EBADMSG,
			    "%s: header says %llu content bytes, the file has %zu",
			    h->content_size > len - sizeof *h ? "truncated" : "trailing bytes",
			    (unsigned long long)h->content_size, len - sizeof *h);
	uint8_t sum[32];
	if (compute_checksum(base, len, sum) < 0)
		return fail(err, errlen, EIO, "cannot compute SHA-256");
	if (memcmp(sum, h->sha256, 32) != 0)
		return fail(err, errlen, EBADMSG, "checksum mismatch: the file is corrupt");

	/* Sections: in table order, 8-aligned, no gaps beyond alignment, ending at the end. */
	uint64_t at = sizeof *h;
	for (int i = 0; i < SEC_COUNT; i++) {
		const struct file_section *sec = &h->sections[i];
		if (sec->offset % 8)
			return fail(err, errlen, EBADMSG, "section %s misaligned at offset %llu",
				    section_names[i], (unsigned long long)sec->offset);
		if (sec->offset > len || sec->size > len - sec->offset)
			return fail(err, errlen, EBADMSG,
				    "section %s out of range: offset %llu size %llu in %zu bytes",
				    section_names[i], (unsigned long long)sec->offset,
				    (unsigned long long)sec->size, len);
		if (sec->offset != align8(at))
			return fail(err, errlen, EBADMSG,
				    "section %s at offset %llu, expected %llu (overlap or gap)",
				    section_names[i], (unsigned long long)sec->offset,
				    (unsigned long long)align8(at));
		for (uint64_t p = at; p < sec->offset; p++)
			if (base[p])
				return fail(err, errlen, EBADMSG, "non-zero padding at %llu",
					    (unsigned long long)p);
		if (sec->size % record_sizes[i])
			return fail(err, errlen, EBADMSG,
				    "section %s size %llu is not a multiple of %zu",
				    section_names[i], (unsigned long long)sec->size,
				    record_sizes[i]);
		at = sec->offset + sec->size;
	}
	if (at != len)
		return fail(err, errlen, EBADMSG, "%zu bytes after the last section",
			    len - (size_t)at);

#define SEC(i) (base + h->sections[i].offset)
#define COUNT(i, type) (h->sections[i].size / sizeof(type))
	s->strings = SEC(SEC_STRINGS);
	s->strings_size = h->sections[SEC_STRINGS].size;
	s->categories = (const struct file_category *)SEC(SEC_CATEGORIES);
	s->tenants = (const struct snapshot_tenant *)SEC(SEC_TENANTS);
	s->net4 = (const struct file_net4 *)SEC(SEC_NET4);
	s->net6 = (const struct file_net6 *)SEC(SEC_NET6);
	s->slots = (const struct file_slot *)SEC(SEC_NAMES);
	s->rules = SEC(SEC_RULES);
	s->rules_size = h->sections[SEC_RULES].size;
	uint64_t ncat = COUNT(SEC_CATEGORIES, struct file_category);
	uint64_t nten = COUNT(SEC_TENANTS, struct snapshot_tenant);
	uint64_t n4 = COUNT(SEC_NET4, struct file_net4);
	uint64_t n6 = COUNT(SEC_NET6, struct file_net6);
	s->nslots = COUNT(SEC_NAMES, struct file_slot);
	s->home_slots = h->name_home_slots;
	s->seed = h->hash_seed;
#undef SEC
#undef COUNT
	if (ncat > SNAPSHOT_MAX_CATEGORIES)
		return fail(err, errlen, EBADMSG, "%llu categories, at most %d",
			    (unsigned long long)ncat, SNAPSHOT_MAX_CATEGORIES);
	if (nten > INT32_MAX || n4 > UINT32_MAX || n6 > UINT32_MAX ||
	    s->strings_size > UINT32_MAX || s->rules_size > UINT32_MAX)
		return fail(err, errlen, EBADMSG, "a section is too large for 32-bit indexes");
	s->ncategories = (uint32_t)ncat;
	s->ntenants = (uint32_t)nten;
	s->nnet4 = (uint32_t)n4;
	s->nnet6 = (uint32_t)n6;

	/* Strings: a run of {u16 len, bytes, NUL} starting with the empty "none" entry; a
	 * reference must land on the start of one, which the bitmap records. */
	auto_free uint64_t *str_starts = calloc(s->strings_size / 64 + 1, sizeof(uint64_t));
	auto_free uint64_t *rule_starts = calloc(s->rules_size / 4 / 64 + 1, sizeof(uint64_t));
	if (!str_starts || !rule_starts)
		return fail(err, errlen, ENOMEM, "out of memory validating");
	for (uint64_t p = 0; p < s->strings_size;) {
		uint16_t n;
		if (s->strings_size - p < 3)
			return fail(err, errlen, EBADMSG, "string at %llu runs past its section",
				    (unsigned long long)p);
		memcpy(&n, s->strings + p, 2);
		if (n > s->strings_size - p - 3)
			return fail(err, errlen, EBADMSG, "string at %llu runs past its section",
				    (unsigned long long)p);
		if (s->strings[p + 2 + n] != 0 || memchr(s->strings + p + 2, 0, n))
			return fail(err, errlen, EBADMSG,
				    "string at %llu is not NUL-terminated text",
				    (unsigned long long)p);
		if (p == 0 && n != 0)
			return fail(err, errlen, EBADMSG, "string 0 must be the empty entry");
		bit_set(str_starts, p);
		p += 3 + (uint64_t)n;
	}
	if (s->strings_size == 0)
		return fail(err, errlen, EBADMSG, "strings section lacks the empty entry");
#define STRING_OK(ref) ((ref) < s->strings_size && bit_test(str_starts, (ref)))

	for (uint32_t i = 0; i < s->ncategories; i++) {
		const struct file_category *c = &s->categories[i];
		if (!STRING_OK(c->name) || c->name == 0)
			return fail(err, errlen, EBADMSG, "category %u: bad name reference", i);
		if (c->kind > SNAPSHOT_CATEGORY_CONTENT || c->reserved[0] || c->reserved[1] ||
		    c->reserved[2])
			return fail(err, errlen, EBADMSG, "category %u: bad kind %u", i, c->kind);
	}

	const uint32_t cat_mask = (uint32_t)((1ull << s->ncategories) - 1);
	for (uint32_t i = 0; i < s->ntenants; i++) {
		const struct snapshot_tenant *t = &s->tenants[i];
		if (!STRING_OK(t->name) || !STRING_OK(t->ede_text))
			return fail(err, errlen, EBADMSG, "tenant %u: bad string reference", i);
		if ((t->block_mask | t->monitor_mask) & ~cat_mask)
			return fail(err, errlen, EBADMSG,
				    "tenant %u: category masks beyond the %u categories", i,
				    s->ncategories);
		if (t->block_mask & t->monitor_mask)
			return fail(err, errlen, EBADMSG,
				    "tenant %u: a category both blocked and monitored", i);
		if (t->block_action > SNAPSHOT_ACTION_SINKHOLE || t->safe_search > 1 ||
		    t->privacy > SNAPSHOT_PRIVACY_TRUNCATED || t->trunc_v4 > 32 ||
		    t->trunc_v6 > 128 ||
		    t->flags & ~(SNAPSHOT_TENANT_SINKHOLE_V4 | SNAPSHOT_TENANT_SINKHOLE_V6) ||
		    t->reserved0[0] || t->reserved0[1] || t->reserved1)
			return fail(err, errlen, EBADMSG, "tenant %u: a setting is out of range",
				    i);
		if (t->block_action == SNAPSHOT_ACTION_SINKHOLE && !t->flags)
			return fail(err, errlen, EBADMSG, "tenant %u: sinkhole without an address",
				    i);
	}

	for (uint32_t i = 0; i < s->nnet4; i++) {
		const struct file_net4 *n = &s->net4[i];
		if (n->start > n->end || (i && s->net4[i - 1].end >= n->start))
			return fail(err, errlen, EBADMSG,
				    "IPv4 interval %u is not sorted and disjoint", i);
		if (n->tenant >= s->ntenants)
			return fail(err, errlen, EBADMSG,
				    "IPv4 interval %u: tenant %u out of range", i, n->tenant);
	}
	for (uint32_t i = 0; i < s->nnet6; i++) {
		const struct file_net6 *n = &s->net6[i];
		if (be_cmp16(n->start, n->end) > 0 ||
		    (i && be_cmp16(s->net6[i - 1].end, n->start) >= 0))
			return fail(err, errlen, EBADMSG,
				    "IPv6 interval %u is not sorted and disjoint", i);
		if (n->tenant >= s->ntenants || n->reserved)
			return fail(err, errlen, EBADMSG,
				    "IPv6 interval %u: tenant %u out of range", i, n->tenant);
	}

	/* Rules: a run of groups {u32 count >= 1, entries sorted by tenant}. */
	for (uint64_t p = 0; p < s->rules_size;) {
		uint32_t count;
		if (s->rules_size - p < 4)
			return fail(err, errlen, EBADMSG,
				    "rule group at %llu runs past its section",
				    (unsigned long long)p);
		memcpy(&count, s->rules + p, 4);
		if (count == 0 || count > (s->rules_size - p - 4) / sizeof(struct file_rule))
			return fail(err, errlen, EBADMSG, "rule group at %llu: bad count %u",
				    (unsigned long long)p, count);
		const struct file_rule *e = (const struct file_rule *)(s->rules + p + 4);
		for (uint32_t j = 0; j < count; j++) {
			if (e[j].tenant >= s->ntenants || (j && e[j - 1].tenant >= e[j].tenant))
				return fail(err, errlen, EBADMSG,
					    "rule group at %llu: tenant index %u out of range or "
					    "out of order", (unsigned long long)p, e[j].tenant);
			if (e[j].kind == 0 || e[j].kind > (RULE_ALLOW | RULE_DENY) ||
			    e[j].reserved[0] || e[j].reserved[1] || e[j].reserved[2])
				return fail(err, errlen, EBADMSG, "rule group at %llu: bad kind %u",
					    (unsigned long long)p, e[j].kind);
		}
		bit_set(rule_starts, p / 4);
		p += 4 + (uint64_t)count * sizeof(struct file_rule);
	}

	/* Names: keys strictly ascending, each at or after its home slot with no empty slot
	 * between, which is exactly what lets a probe stop at the first empty or larger key. */
	if (s->home_slots == 0 || s->home_slots > s->nslots)
		return fail(err, errlen, EBADMSG, "name table: %llu home slots for %llu slots",
			    (unsigned long long)s->home_slots, (unsigned long long)s->nslots);
	uint64_t occupied = 0;
	uint64_t last_empty = UINT64_MAX;  /* none yet */
	uint64_t p0 = 0, p1 = 0;
	for (uint64_t i = 0; i < s->nslots; i++) {
		const struct file_slot *sl = &s->slots[i];
		if ((sl->k0 | sl->k1) == 0) {
			if (sl->mask || sl->rules)
				return fail(err, errlen, EBADMSG,
					    "name slot %llu: empty but not zero",
					    (unsigned long long)i);
			last_empty = i;
			continue;
		}
		uint64_t home = home_slot(sl->k0, s->home_slots);
		if (occupied && key_cmp(p0, p1, sl->k0, sl->k1) >= 0)
			return fail(err, errlen, EBADMSG, "name slot %llu: keys out of order",
				    (unsigned long long)i);
		if (home > i || (last_empty != UINT64_MAX && last_empty >= home))
			return fail(err, errlen, EBADMSG, "name slot %llu: not reachable from home",
				    (unsigned long long)i);
		if (!sl->mask || (sl->mask & ~NAME_KNOWN_BITS) ||
		    ((sl->mask & NAME_CATEGORIES) & ~cat_mask))
			return fail(err, errlen, EBADMSG, "name slot %llu: bad mask %#x",
				    (unsigned long long)i, sl->mask);
		if (sl->mask & NAME_TENANT_RULES) {
			if (sl->rules % 4 || sl->rules >= s->rules_size ||
			    !bit_test(rule_starts, sl->rules / 4))
				return fail(err, errlen, EBADMSG,
					    "name slot %llu: rules index %u out of range",
					    (unsigned long long)i, sl->rules);
		} else if (sl->rules) {
			return fail(err, errlen, EBADMSG, "name slot %llu: stray rules index",
				    (unsigned long long)i);
		}
		s->list_names |= (sl->mask & (NAME_NATIONAL_BLOCK | NAME_TENANT_RULES)) != 0;
		p0 = sl->k0;
		p1 = sl->k1;
		occupied++;
	}
	if (occupied != h->name_count)
		return fail(err, errlen, EBADMSG, "name count %llu, the table holds %llu",
			    (unsigned long long)h->name_count, (unsigned long long)occupied);
#undef STRING_OK
	return 0;
}

static struct snapshot *finish_open(uint8_t *mem, size_t map_len, size_t len, char *err,
				    size_t errlen)
{
	struct snapshot *s = calloc(1, sizeof *s);
	if (!s) {
		munmap(mem, map_len);
		fail(err, errlen, ENOMEM, "out of memory");
		errno = ENOMEM;
		return NULL;
	}
	atomic_init(&s->refs, 1);
	s->mem = mem;
	s->map_len = map_len;
	s->hdr = (const struct file_header *)mem;
	int rc = validate(s, len, err, errlen);
	if (rc < 0) {
		snapshot_close(s);
		errno = -rc;
		return NULL;
	}
	/* Immutable from here on: a stray write faults instead of corrupting policy. */
	mprotect(mem, map_len, PROT_READ);
	return s;
}

struct snapshot *snapshot_open_buffer(const void *data, size_t len, char *err, size_t errlen)
{
	size_t map_len;
	if (len < sizeof(struct file_header) || len > MAX_FILE_SIZE) {
		fail(err, errlen, EBADMSG, "%s: %zu bytes", len < sizeof(struct file_header) ?
		     "truncated" : "too large", len);
		errno = EBADMSG;
		return NULL;
	}
	uint8_t *mem = alloc_image(len, &map_len);
	if (!mem) {
		fail(err, errlen, ENOMEM, "cannot allocate %zu bytes", len);
		errno = ENOMEM;
		return NULL;
	}
	memcpy(mem, data, len);
	return finish_open(mem, map_len, len, err, errlen);
}

struct snapshot *snapshot_open(const char *path, char *err, size_t errlen)
{
	auto_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) < 0) {
		int e = errno;
		fail(err, errlen, e, "cannot open: %s", strerror(e));
		errno = e;
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < sizeof(struct file_header) ||
	    (uint64_t)st.st_size > MAX_FILE_SIZE) {
		fail(err, errlen, EBADMSG, "%s: %lld bytes",
		     !S_ISREG(st.st_mode) ? "not a regular file" :
		     (uint64_t)st.st_size < sizeof(struct file_header) ? "truncated" : "too large",
		     (long long)st.st_size);
		errno = EBADMSG;
		return NULL;
	}
	size_t len = (size_t)st.st_size, map_len;
	uint8_t *mem = alloc_image(len, &map_len);
	if (!mem) {
		fail(err, errlen, ENOMEM, "cannot allocate %zu bytes", len);
		errno = ENOMEM;
		return NULL;
	}
	for (size_t got = 0; got < len;) {
		ssize_t r = pread(fd, mem + got, len - got, (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EBADMSG;
			fail(err, errlen, e, "%s after %zu of %zu bytes",
			     r < 0 ? strerror(e) : "file shrank while reading", got, len);
			munmap(mem, map_len);
			errno = e;
			return NULL;
		}
		got += (size_t)r;
	}
	return finish_open(mem, map_len, len, err, errlen);
}

void snapshot_close(struct snapshot *s)
{
	if (!s || atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
		return;
	snapshot_close(s->base);
	free(s->filter);
	munmap(s->mem, s->map_len);
	free(s);
}

static bool is_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

const uint8_t *snapshot_base_checksum(const struct snapshot *s)
{
	return is_zero(s->hdr->base_sha256, 32) ? NULL : s->hdr->base_sha256;
}

bool snapshot_is_complete(const struct snapshot *s)
{
	return s->base || !snapshot_base_checksum(s);
}

const struct snapshot *snapshot_base(const struct snapshot *s)
{
	return s->base;
}

void snapshot_checksum_hex(const uint8_t sum[32], char hex[65])
{
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", sum[i]);
}

void snapshot_base_path(const char *path, const uint8_t sum[32], char *out, size_t cap)
{
	char hex[65];
	snapshot_checksum_hex(sum, hex);
	snprintf(out, cap, "%s.base-%s", path, hex);
}

/* The category tables must be the same, index for index: the base's name masks and the
 * overlay's tenant masks use the same bits. */
static bool same_categories(const struct snapshot *a, const struct snapshot *b)
{
	if (a->ncategories != b->ncategories)
		return false;
	for (uint32_t i = 0; i < a->ncategories; i++)
		if (a->categories[i].kind != b->categories[i].kind ||
		    strcmp(snapshot_category_name(a, i), snapshot_category_name(b, i)) != 0)
			return false;
	return true;
}

int snapshot_attach_base(struct snapshot *s, struct snapshot *base, char *err, size_t errlen)
{
	const uint8_t *want = snapshot_base_checksum(s);
	if (!want || s->base)
		return fail(err, errlen, EINVAL, "%s", want ? "a base is already attached"
							    : "this snapshot names no base");
	if (memcmp(want, base->hdr->sha256, 32) != 0)
		return fail(err, errlen, ENOENT, "the base's checksum is not the one this snapshot "
						 "names");
	if (snapshot_base_checksum(base) || base->ntenants || base->nnet4 || base->nnet6 ||
	    base->list_names)
		return fail(err, errlen, EINVAL, "a base holds feed names only (no base of its own, "
						 "tenants, networks, national blocks or tenant rules)");
	if (base->seed != s->seed)
		return fail(err, errlen, EINVAL, "hash seed differs from the base's");
	if (!same_categories(s, base))
		return fail(err, errlen, EINVAL, "categories differ from the base's");
	/* Most suffixes of most queries are in neither table; the overlay is small, so a bit
	 * per 2^shift keys, 16 bits per name, spares it a probe for 15 of 16 such suffixes
	 * with a test that stays in cache. */
	unsigned bits = 6;
	while (bits < 27 && (1ull << bits) < 16 * (s->hdr->name_count + 1))
		bits++;
	s->filter = calloc((1ull << bits) / 64, sizeof(uint64_t));
	if (!s->filter)
		return fail(err, errlen, ENOMEM, "out of memory");
	s->filter_shift = 64 - bits;
	for (uint64_t i = 0; i < s->nslots; i++)
		if (s->slots[i].k0 | s->slots[i].k1)
			bit_set(s->filter, s->slots[i].k0 >> s->filter_shift);
	atomic_fetch_add_explicit(&base->refs, 1, memory_order_relaxed);
	s->base = base;
	return 0;
}

/* Here rather than with the writer: it reads the base's header. */
int snapshot_builder_set_base(struct snapshot_builder *b, const struct snapshot *base)
{
	if (b->names.count || snapshot_base_checksum(base))
		return -EINVAL;
	b->seed = base->seed;
	b->has_base = true;
	memcpy(b->base_sha256, base->hdr->sha256, 32);
	b->base = base;
	return 0;
}

uint64_t snapshot_serial(const struct snapshot *s)
{
	return s->hdr->serial;
}

uint64_t snapshot_created(const struct snapshot *s)
{
	return s->hdr->created_unix;
}

const uint8_t *snapshot_checksum(const struct snapshot *s)
{
	return s->hdr->sha256;
}

uint32_t snapshot_tenant_count(const struct snapshot *s)
{
	return s->ntenants;
}

uint32_t snapshot_interval_count(const struct snapshot *s, int family)
{
	return family == AF_INET ? s->nnet4 : family == AF_INET6 ? s->nnet6 : 0;
}

uint64_t snapshot_name_count(const struct snapshot *s)
{
	return s->hdr->name_count;
}

uint32_t snapshot_category_count(const struct snapshot *s)
{
	return s->ncategories;
}

static const char *string_at(const struct snapshot *s, uint32_t ref, size_t *len)
{
	uint16_t n;
	memcpy(&n, s->strings + ref, 2);
	if (len)
		*len = n;
	return (const char *)s->strings + ref + 2;
}

const char *snapshot_category_name(const struct snapshot *s, uint32_t index)
{
	return index < s->ncategories ? string_at(s, s->categories[index].name, NULL) : NULL;
}

enum snapshot_category_kind snapshot_category_kind(const struct snapshot *s, uint32_t index)
{
	return index < s->ncategories ? (enum snapshot_category_kind)s->categories[index].kind
				      : SNAPSHOT_CATEGORY_THREAT;
}

int snapshot_category_find(const struct snapshot *s, const char *name)
{
	for (uint32_t i = 0; i < s->ncategories; i++)
		if (strcmp(string_at(s, s->categories[i].name, NULL), name) == 0)
			return (int)i;
	return -ENOENT;
}

const struct snapshot_tenant *snapshot_tenant(const struct snapshot *s, uint32_t index)
{
	return index < s->ntenants ? &s->tenants[index] : NULL;
}

const char *snapshot_tenant_name(const struct snapshot *s, const struct snapshot_tenant *t,
				 size_t *len)
{
	return string_at(s, t->name, len);
}

const char *snapshot_tenant_ede_text(const struct snapshot *s, const struct snapshot_tenant *t,
				     size_t *len)
{
	return string_at(s, t->ede_text, len);
}

static inline uint64_t load_be64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return be64toh(v);
}

/* The last interval starting at or before the address, then one range check. */
int snapshot_tenant_for_address(const struct snapshot *s, int family, const void *addr)
{
	if (family == AF_INET) {
		if (!s->nnet4)
			return -1;
		uint32_t a;
		memcpy(&a, addr, 4);
		a = ntohl(a);
		const struct file_net4 *base = s->net4;
		for (size_t n = s->nnet4; n > 1;) {
			size_t half = n / 2;
			base = base[half].start <= a ? base + half : base;
			n -= half;
		}
		return base->start <= a && a <= base->end ? (int)base->tenant : -1;
	}
	if (family == AF_INET6) {
		if (!s->nnet6)
			return -1;
		const uint8_t *p = addr;
		uint64_t hi = load_be64(p), lo = load_be64(p + 8);
		const struct file_net6 *base = s->net6;
		for (size_t n = s->nnet6; n > 1;) {
			size_t half = n / 2;
			uint64_t sh = load_be64(base[half].start);
			uint64_t sl = load_be64(base[half].start + 8);
			base = (sh < hi || (sh == hi && sl <= lo)) ? base + half : base;
			n -= half;
		}
		uint64_t sh = load_be64(base->start), sl = load_be64(base->start + 8);
		uint64_t eh = load_be64(base->end), el = load_be64(base->end + 8);
		bool after_start = sh < hi || (sh == hi && sl <= lo);
		bool before_end = hi < eh || (hi == eh && lo <= el);
		return after_start && before_end ? (int)base->tenant : -1;
	}
	return -1;
}

/* Scans from the home slot; the table is sorted, so the first empty slot or larger key ends
 * a miss, typically within the same cache line. */
static inline const struct file_slot *find_slot(const struct snapshot *s, uint64_t k0, uint64_t k1)
{
	for (uint64_t i = home_slot(k0, s->home_slots); i < s->nslots; i++) {
		const struct file_slot *sl = &s->slots[i];
		if ((sl->k0 | sl->k1) == 0)
			return NULL;
		int c = key_cmp(sl->k0, sl->k1, k0, k1);
		if (c >= 0)
			return c == 0 ? sl : NULL;
	}
	return NULL;
}

static inline unsigned rule_kind(const struct snapshot *s, uint32_t at, uint32_t tenant)
{
	uint32_t count;
	memcpy(&count, s->rules + at, 4);
	const struct file_rule *e = (const struct file_rule *)(s->rules + at + 4);
	size_t lo = 0, hi = count;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (e[mid].tenant == tenant)
			return e[mid].kind;
		if (e[mid].tenant < tenant)
			lo = mid + 1;
		else
			hi = mid;
	}
	return 0;
}

/* Categories and national lists of a slot found for the suffix at offset at, unless a more
 * specific suffix already reported them. The same for a base's slots, which carry categories
 * and national allows only (checked when it was attached). */
static inline void match_slot_mask(struct snapshot_match *out, uint32_t mask, uint8_t at)
{
	uint32_t fresh = mask & NAME_CATEGORIES & ~out->categories;
	out->categories |= fresh;
	for (; fresh; fresh &= fresh - 1)
		out->category_at[__builtin_ctz(fresh)] = at;
	if ((mask & NAME_NATIONAL_BLOCK) && !out->national_block) {
		out->national_block = true;
		out->national_block_at = at;
	}
	if ((mask & NAME_NATIONAL_ALLOW) && !out->national_allow) {
		out->national_allow = true;
		out->national_allow_at = at;
	}
}

/* What a listed name matches (quoted in docs/snapshot.md):
 *   1. Itself and every name below it, label by label: "bad.example" matches
 *      "x.bad.example", not "notbad.example" nor "example".
 *   2. Without regard to ASCII case (RFC 4343); "*.bad.example" is listed as "bad.example".
 *   3. Every suffix of the query is looked up, from the full name to its TLD (never the root),
 *      and every match is reported; for each kind, the most specific suffix is named. */
void snapshot_match_name(const struct snapshot *s, uint32_t tenant_index,
			 const uint8_t *wire_name, size_t wire_len, struct snapshot_match *out)
{
	memset(out, 0, offsetof(struct snapshot_match, national_block_at));
	memset(&out->national_block_at, SNAPSHOT_NO_MATCH,
	       sizeof *out - offsetof(struct snapshot_match, national_block_at));

	/* Lowercase into a stack copy while finding the label starts. Length bytes are below
	 * 64 and so never in 'A'..'Z': folding every byte is safe. */
	uint8_t name[SNAPSHOT_MAX_NAME_WIRE];
	uint8_t starts[SNAPSHOT_MAX_NAME_WIRE / 2];
	unsigned nlabels = 0;
	size_t pos = 0;
	for (;;) {
		if (pos >= wire_len)
			return;
		uint8_t l = wire_name[pos];
		name[pos] = 0;
		if (l == 0)
			break;
		if (l > 63 || pos + 1 + l >= wire_len || pos + 2 + l > SNAPSHOT_MAX_NAME_WIRE)
			return;
		starts[nlabels++] = (uint8_t)pos;
		name[pos] = l;
		for (size_t j = pos + 1; j <= pos + l; j++) {
			uint8_t c = wire_name[j];
			name[j] = (uint8_t)(c - 'A') < 26 ? (uint8_t)(c | 0x20) : c;
		}
		pos += 1 + (size_t)l;
	}
	const size_t name_len = pos + 1;

	/* Hash every suffix and prefetch its home slots first, so the cache misses of the
	 * probes overlap instead of queuing one after another. An overlay shares its base's
	 * seed, so one key serves both tables. */
	const struct snapshot *base = s->base;
	uint64_t keys[SNAPSHOT_MAX_NAME_WIRE / 2][2];
	for (unsigned i = 0; i < nlabels; i++) {
		name_key(name + starts[i], name_len - starts[i], s->seed, &keys[i][0], &keys[i][1]);
		if (base)
			__builtin_prefetch(&base->slots[home_slot(keys[i][0], base->home_slots)]);
		else
			__builtin_prefetch(&s->slots[home_slot(keys[i][0], s->home_slots)]);
	}

	const bool has_tenant = tenant_index < s->ntenants;
	for (unsigned i = 0; i < nlabels; i++) {
		const uint8_t at = starts[i];
		/* The base holds feed names and their passthru exceptions only (checked when
		 * it was attached): categories and national allows. */
		const struct file_slot *bsl = base ? find_slot(base, keys[i][0], keys[i][1]) : NULL;
		if (bsl)
			match_slot_mask(out, bsl->mask, at);
		if (base && !bit_test(s->filter, keys[i][0] >> s->filter_shift))
			continue;
		const struct file_slot *sl = find_slot(s, keys[i][0], keys[i][1]);
		if (!sl)
			continue;
		match_slot_mask(out, sl->mask, at);
		if ((sl->mask & NAME_TENANT_RULES) && has_tenant) {
			unsigned kind = rule_kind(s, sl->rules, tenant_index);
			if ((kind & RULE_ALLOW) && !out->tenant_allow) {
				out->tenant_allow = true;
				out->tenant_allow_at = at;
			}
			if ((kind & RULE_DENY) && !out->tenant_deny) {
				out->tenant_deny = true;
				out->tenant_deny_at = at;
			}
		}
	}
}
