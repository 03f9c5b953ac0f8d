/* test_cache.c -- the answer cache: keys, TTL rewriting, expiry, negative and stale answers,
 * the memory bound and eviction order, and concurrent use. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"

#define NAME_EXAMPLE "\7example\3com" /* sizeof includes the root label's 0 */

static struct cache_key key_of(const char *name, size_t len, uint16_t qtype, uint8_t flags)
{
	return (struct cache_key){.name = (const uint8_t *)name, .name_len = (uint8_t)len,
				  .qtype = qtype, .qclass = 1, .flags = flags};
}

static struct cache_key example_key(void)
{
	return key_of(NAME_EXAMPLE, sizeof NAME_EXAMPLE, 1, 0);
}

/* A fake answer: the cache never parses messages, so a byte pattern shows what it touched. */
static void fill_msg(uint8_t *msg, size_t len, uint8_t seed)
{
	for (size_t i = 0; i < len; i++)
		msg[i] = (uint8_t)(seed + i * 7);
}

static uint32_t be32_at(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static struct cache *new_cache(size_t max_bytes, unsigned shards)
{
	struct cache_config cfg;
	cache_default_config(&cfg);
	cfg.max_bytes = max_bytes;
	cfg.shards = shards;
	struct cache *c = cache_new(&cfg);
	cr_assert_not_null(c);
	return c;
}

static struct cache_stats stats_of(struct cache *c)
{
	struct cache_stats st;
	cache_get_stats(c, &st);
	return st;
}

/* Inserts a 64-byte answer with one TTL at offset 20. */
static int put(struct cache *c, const struct cache_key *k, uint8_t seed, uint32_t ttl,
	       uint64_t now_ms)
{
	uint8_t msg[64];
	static const uint16_t off[] = {20};
	fill_msg(msg, sizeof msg, seed);
	return cache_insert(c, k, msg, sizeof msg, off, 1, ttl, false, now_ms);
}

/* TTL the cached answer carries at now_ms, or -1 on a miss. */
static int64_t ttl_at(struct cache *c, const struct cache_key *k, uint64_t now_ms,
		      enum cache_want want, bool *stale)
{
	uint8_t out[512];
	uint16_t n = cache_lookup(c, k, now_ms, want, out, sizeof out, stale);
	return n ? (int64_t)be32_at(out + 20) : -1;
}

Test(cache, config_validation)
{
	struct cache_config cfg;
	cache_default_config(&cfg);
	cr_assert_null(cache_new(NULL));
	cfg.shards = 0;
	cr_assert_null(cache_new(&cfg));
	cfg.shards = 3;
	cr_assert_null(cache_new(&cfg));
	cache_default_config(&cfg);
	cfg.min_ttl = cfg.max_negative_ttl + 1;
	cr_assert_null(cache_new(&cfg));
	cache_default_config(&cfg);
	cfg.max_bytes = 16 * 64 * 1024 - 1;
	cr_assert_null(cache_new(&cfg));
	cache_default_config(&cfg);
	struct cache *c = cache_new(&cfg);
	cr_assert_not_null(c);
	struct cache_stats st = stats_of(c);
	cr_assert_eq(st.entries, 0);
	cr_assert_gt(st.bytes, 0, "the tables count against the bound from the start");
	cr_assert_leq(st.bytes, cfg.max_bytes);
	cache_free(c);
	cache_free(NULL);
}

Test(cache, hit_and_miss)
{
	struct cache *c = new_cache(1 << 20, 4);
	struct cache_key k = example_key();
	struct cache_key other = key_of("\5other\3com", sizeof "\5other\3com", 1, 0);
	uint8_t msg[64], out[512];
	fill_msg(msg, sizeof msg, 1);
	uint16_t off = 20;
	bool stale = true;

	cr_assert_eq(cache_lookup(c, &k, 1000, CACHE_FRESH, out, sizeof out, &stale), 0);
	cr_assert_eq(cache_insert(c, &k, msg, sizeof msg, &off, 1, 300, false, 1000), 0);
	cr_assert_eq(cache_lookup(c, &k, 1000, CACHE_FRESH, out, sizeof out, &stale), sizeof msg);
	cr_assert_not(stale);
	cr_assert_eq(cache_lookup(c, &other, 1000, CACHE_FRESH, out, sizeof out, NULL), 0);

	struct cache_stats st = stats_of(c);
	cr_assert_eq(st.entries, 1);
	cr_assert_eq(st.inserts, 1);
	cr_assert_eq(st.hits, 1);
	cr_assert_eq(st.misses, 2);
	cr_assert_eq(st.stale_hits, 0);
	cache_free(c);
}

Test(cache, key_parts_are_distinct)
{
	struct cache *c = new_cache(1 << 20, 4);
	static const char sub[] = "\3www\7example\3com";
	struct cache_key keys[] = {
		example_key(),
		key_of(NAME_EXAMPLE, sizeof NAME_EXAMPLE, 28, 0),                  /* AAAA */
		key_of(NAME_EXAMPLE, sizeof NAME_EXAMPLE, 1, CACHE_FLAG_DO),
		key_of(NAME_EXAMPLE, sizeof NAME_EXAMPLE, 1, CACHE_FLAG_CD),
		key_of(NAME_EXAMPLE, sizeof NAME_EXAMPLE, 1, CACHE_FLAG_DO | CACHE_FLAG_CD),
		key_of(sub, sizeof sub, 1, 0),
		key_of(sub + 4, sizeof sub - 4, 1, 0), /* "example.com" again, from another buffer */
		key_of(NAME_EXAMPLE, sizeof NAME_EXAMPLE, 1, 0),                  /* class CH below */
	};
	keys[7].qclass = 3;
	size_t n = sizeof keys / sizeof keys[0];

	cr_assert_eq(put(c, &keys[0], 0, 300, 0), 0);
	for (size_t i = 1; i < n; i++) {
		if (i == 6) {
			cr_assert_geq(ttl_at(c, &keys[i], 0, CACHE_FRESH, NULL), 0,
				      "the same name in another buffer is the same key");
			continue;
		}
		cr_assert_eq(ttl_at(c, &keys[i], 0, CACHE_FRESH, NULL), -1, "key %zu", i);
		cr_assert_eq(put(c, &keys[i], (uint8_t)(i * 16), 300, 0), 0);
	}
	for (size_t i = 0; i < n; i++) {
		uint8_t out[512], want[64];
		size_t seed_of = i == 6 ? 0 : i;
		fill_msg(want, sizeof want, (uint8_t)(seed_of * 16));
		cr_assert_eq(cache_lookup(c, &keys[i], 0, CACHE_FRESH, out, sizeof out, NULL), 64);
		cr_assert_eq(memcmp(out, want, 20), 0, "key %zu got another key's answer", i);
	}
	cr_assert_eq(stats_of(c).entries, n - 1);
	cache_free(c);
}

Test(cache, ttl_fields_count_down)
{
	struct cache *c = new_cache(1 << 20, 4);
	struct cache_key k = example_key();
	uint8_t msg[200], out[512];
	const uint16_t off[] = {40, 100, 196}; /* the last one ends exactly at the message's end */
	fill_msg(msg, sizeof msg, 3);
	cr_assert_eq(cache_insert(c, &k, msg, sizeof msg, off, 3, 300, false, 10000), 0);

	const struct {
		uint64_t now_ms;
		uint32_t ttl;
	} steps[] = {{10000, 300}, {10999, 299}, {11000, 299}, {11500, 298}, {10000 + 299999, 0}};
	for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
		memset(out, 0xee, sizeof out);
		cr_assert_eq(cache_lookup(c, &k, steps[s].now_ms, CACHE_FRESH, out, sizeof out, NULL),
			     sizeof msg);
		for (size_t i = 0; i < sizeof msg; i++) {
			bool in_ttl = false;
			for (size_t j = 0; j < 3; j++)
				in_ttl |= i >= off[j] && i < off[j] + 4u;
			if (!in_ttl)
				cr_assert_eq(out[i], msg[i], "byte %zu changed", i);
		}
		for (size_t j = 0; j < 3; j++)
			cr_assert_eq(be32_at(out + off[j]), steps[s].ttl, "now=%llu offset %u",
				     (unsigned long long)steps[s].now_ms, off[j]);
		cr_assert_eq(out[sizeof msg], 0xee, "nothing written past the answer");
	}
	cache_free(c);
}

Test(cache, expiry_is_exact)
{
	struct cache *c = new_cache(1 << 20, 4);
	struct cache_key k = example_key();
	cr_assert_eq(put(c, &k, 0, 10, 5000), 0);
	cr_assert_eq(ttl_at(c, &k, 14999, CACHE_FRESH, NULL), 0, "fresh until the last ms");
	cr_assert_eq(ttl_at(c, &k, 15000, CACHE_FRESH, NULL), -1, "expired at insert + TTL");
	cache_free(c);
}

Test(cache, ttl_clamps)
{
	struct cache_config cfg;
	cache_default_config(&cfg);
	cfg.min_ttl = 60;
	struct cache *c = cache_new(&cfg);
	cr_assert_not_null(c);
	struct cache_key k = example_key();

	cr_assert_eq(put(c, &k, 0, 5, 0), 0);
	cr_assert_eq(ttl_at(c, &k, 0, CACHE_FRESH, NULL), 60);
	cr_assert_eq(put(c, &k, 0, 1000000, 0), 0);
	cr_assert_eq(ttl_at(c, &k, 0, CACHE_FRESH, NULL), 86400);
	cache_free(c);
}

Test(cache, lagging_clock_never_raises_ttl)
{
	struct cache *c = new_cache(1 << 20, 4);
	struct cache_key k = example_key();
	cr_assert_eq(put(c, &k, 0, 300, 50000), 0);
	cr_assert_eq(ttl_at(c, &k, 20000, CACHE_FRESH, NULL), 300,
		     "a worker whose clock reads earlier than the inserter's");
	cache_free(c);
}

Test(cache, zero_ttl_is_not_cached)
{
	struct cache *c = new_cache(1 << 20, 4);
	struct cache_key k = example_key();
	cr_assert_eq(put(c, &k, 0, 300, 0), 0);
	cr_assert_eq(put(c, &k, 0, 0, 1000), 0);
	cr_assert_eq(ttl_at(c, &k, 1000, CACHE_STALE_OK, NULL), -1, "the older answer went too");
	cr_assert_eq(stats_of(c).entries, 0);
	cache_free(c);
}

Test(cache, negative_answers)
{
	struct cache *c = new_cache(1 << 20, 4);
	struct cache_key k = example_key();
	uint8_t msg[80];
	uint16_t off = 50; /* the SOA's TTL in the authority section */
	fill_msg(msg, sizeof msg, 9);

	cr_assert_eq(cache_insert(c, &k, msg, sizeof msg, &off, 1, 7200, true, 0), 0);
	uint8_t out[128];
	cr_assert_eq(cache_lookup(c, &k, 0, CACHE_FRESH, out, sizeof out, NULL), sizeof msg);
	cr_assert_eq(be32_at(out + 50), 3600, "clamped to max_negative_ttl");
	cr_assert_eq(cache_lookup(c, &k, 3599999, CACHE_FRESH, out, sizeof out, NULL), sizeof msg);
	cr_assert_eq(cache_lookup(c, &k, 3600000, CACHE_FRESH, out, sizeof out, NULL), 0);

	/* A short negative TTL is kept as given; a positive answer is not held to the cap. */
	cr_assert_eq(cache_insert(c, &k, msg, sizeof msg, &off, 1, 900, true, 0), 0);
	cr_assert_eq(cache_lookup(c, &k, 0, CACHE_FRESH, out, sizeof out, NULL), sizeof msg);
	cr_assert_eq(be32_at(out + 50), 900);
	cr_assert_eq(cache_insert(c, &k, msg, sizeof msg, &off, 1, 7200, false, 0), 0);
	cr_assert_eq(cache_lookup(c, &k, 0, CACHE_FRESH, out, sizeof out, NULL), sizeof msg);
	cr_assert_eq(be32_at(out + 50), 7200);
	cache_free(c);
}

Test(cache, stale_rules)
{
	struct cache_config cfg;
	cache_default_config(&cfg);
	cfg.max_stale = 100;
	struct cache *c = cache_new(&cfg);
	cr_assert_not_null(c);
	struct cache_key k = example_key();
	bool stale = false;
	cr_assert_eq(put(c, &k, 0, 10, 0), 0);

	cr_assert_eq(ttl_at(c, &k, 9999, CACHE_STALE_OK, &stale), 0, "fresh is preferred");
	cr_assert_not(stale);
	cr_assert_eq(ttl_at(c, &k, 10000, CACHE_FRESH, &stale), -1);
	cr_assert_not(stale);
	cr_assert_eq(ttl_at(c, &k, 10000, CACHE_STALE_OK, &stale), 30);
	cr_assert(stale);
	cr_assert_eq(ttl_at(c, &k, 109999, CACHE_STALE_OK, &stale), 30, "last ms of max_stale");
	cr_assert(stale);
	cr_assert_eq(stats_of(c).entries, 1, "a stale entry waits");
	cr_assert_eq(ttl_at(c, &k, 110000, CACHE_STALE_OK, &stale), -1, "past max_stale");
	cr_assert_not(stale);

	struct cache_stats st = stats_of(c);
	cr_assert_eq(st.stale_hits, 2);
	cr_assert_eq(st.hits, 1);
	cr_assert_eq(st.expired, 1);
	cr_assert_eq(st.entries, 0, "a dead entry found by a lookup is dropped");
	cache_free(c);
}

Test(cache, replace)
{
	struct cache *c = new_cache(1 << 20, 4);
	struct cache_key k = example_key();
	uint8_t big[300], out[512];
	uint16_t off = 12;
	fill_msg(big, sizeof big, 5);
	cr_assert_eq(put(c, &k, 1, 300, 0), 0);
	uint64_t bytes_small = stats_of(c).bytes;
	cr_assert_eq(cache_insert(c, &k, big, sizeof big, &off, 1, 60, false, 1000), 0);

	cr_assert_eq(cache_lookup(c, &k, 1000, CACHE_FRESH, out, sizeof out, NULL), sizeof big);
	cr_assert_eq(memcmp(out + 16, big + 16, sizeof big - 16), 0);
	cr_assert_eq(be32_at(out + 12), 60);
	struct cache_stats st = stats_of(c);
	cr_assert_eq(st.entries, 1);
	cr_assert_eq(st.inserts, 2);
	cr_assert_gt(st.bytes, bytes_small, "the old entry's bytes were released, the new counted");
	cr_assert_lt(st.bytes, bytes_small + sizeof big);
	cache_free(c);
}

Test(cache, remove)
{
	struct cache *c = new_cache(1 << 20, 4);
	struct cache_key k = example_key();
	cache_remove(c, &k);
	cr_assert_eq(put(c, &k, 0, 300, 0), 0);
	uint64_t full = stats_of(c).bytes;
	cache_remove(c, &k);
	cr_assert_eq(ttl_at(c, &k, 0, CACHE_STALE_OK, NULL), -1);
	cr_assert_eq(stats_of(c).entries, 0);
	cr_assert_lt(stats_of(c).bytes, full);
	cache_free(c);
}

Test(cache, out_buffer_too_small)
{
	struct cache *c = new_cache(1 << 20, 4);
	struct cache_key k = example_key();
	uint8_t out[64];
	cr_assert_eq(put(c, &k, 0, 300, 0), 0);
	cr_assert_eq(cache_lookup(c, &k, 0, CACHE_FRESH, out, 63, NULL), 0);
	cr_assert_eq(cache_lookup(c, &k, 0, CACHE_FRESH, out, 64, NULL), 64);
	cr_assert_eq(stats_of(c).misses, 1);
	cache_free(c);
}

Test(cache, insert_refuses_bad_input)
{
	struct cache *c = new_cache(16 * 64 * 1024 + 16384, 16); /* 64 KiB shards: 8 KiB entries */
	struct cache_key k = example_key();
	static uint8_t msg[10000];
	uint16_t off;

	off = 61; /* TTL field would end one byte past a 64-byte message */
	cr_assert_eq(cache_insert(c, &k, msg, 64, &off, 1, 300, false, 0), -EINVAL);
	off = 60;
	cr_assert_eq(cache_insert(c, &k, msg, 64, &off, 1, 300, false, 0), 0);
	off = 11; /* overlaps the DNS header */
	cr_assert_eq(cache_insert(c, &k, msg, 64, &off, 1, 300, false, 0), -EINVAL);
	cr_assert_eq(cache_insert(c, &k, msg, 64, NULL, 1, 300, false, 0), -EINVAL);
	cr_assert_eq(cache_insert(c, &k, msg, 11, NULL, 0, 300, false, 0), -EINVAL);
	cr_assert_eq(cache_insert(c, &k, NULL, 64, NULL, 0, 300, false, 0), -EINVAL);
	cr_assert_eq(cache_insert(c, NULL, msg, 64, NULL, 0, 300, false, 0), -EINVAL);

	struct cache_key bad = k;
	bad.name_len = 0;
	cr_assert_eq(cache_insert(c, &bad, msg, 64, NULL, 0, 300, false, 0), -EINVAL);
	bad = k;
	bad.flags = 0x04;
	cr_assert_eq(cache_insert(c, &bad, msg, 64, NULL, 0, 300, false, 0), -EINVAL);
	cr_assert_eq(cache_lookup(c, &bad, 0, CACHE_FRESH, msg, 64, NULL), 0);

	cr_assert_eq(cache_insert(c, &k, msg, sizeof msg, NULL, 0, 300, false, 0), -E2BIG);
	cr_assert_eq(stats_of(c).entries, 1, "only the valid insert is kept");
	cache_free(c);
}

/* Fills a one-shard cache with same-sized entries until the first eviction; returns how many
 * names were inserted. */
static unsigned fill_until_eviction(struct cache *c, char names[][8], uint64_t now_ms)
{
	for (unsigned i = 0;; i++) {
		snprintf(names[i], 8, "\4%04u", i);
		struct cache_key k = key_of(names[i], 6, 1, 0);
		cr_assert_eq(put(c, &k, (uint8_t)i, 3600, now_ms), 0);
		if (stats_of(c).evictions)
			return i + 1;
		cr_assert_lt(i, 4000);
	}
}

Test(cache, recently_used_entry_survives)
{
	struct cache *c = new_cache(64 * 1024 + 8192, 1);
	static char names[4096][8];
	unsigned n = fill_until_eviction(c, names, 0);
	struct cache_key first = key_of(names[0], 6, 1, 0);
	struct cache_key second = key_of(names[1], 6, 1, 0);
	struct cache_key third = key_of(names[2], 6, 1, 0);
	cr_assert_eq(ttl_at(c, &first, 0, CACHE_FRESH, NULL), -1, "the oldest went first");
	cr_assert_geq(ttl_at(c, &second, 0, CACHE_FRESH, NULL), 0);

	/* Two more inserts: the used entry's second chance lasts until the hand comes round again,
	 * not just for the next eviction. */
	char extra[8] = "\4more", extra2[8] = "\5extra";
	struct cache_key k = key_of(extra, 6, 1, 0);
	struct cache_key k2 = key_of(extra2, 7, 1, 0);
	struct cache_key fourth = key_of(names[3], 6, 1, 0);
	cr_assert_eq(put(c, &k, 0, 3600, 0), 0);
	cr_assert_eq(put(c, &k2, 0, 3600, 0), 0);
	cr_assert_geq(ttl_at(c, &second, 0, CACHE_FRESH, NULL), 0, "used, so kept");
	cr_assert_eq(ttl_at(c, &third, 0, CACHE_FRESH, NULL), -1, "older and unused: evicted");
	cr_assert_eq(ttl_at(c, &fourth, 0, CACHE_FRESH, NULL), -1, "likewise");
	cr_assert_gt(n, 100);
	cache_free(c);
	c = new_cache(64 * 1024 + 8192, 1);
	n = fill_until_eviction(c, names, 0);
	for (unsigned i = 1; i < n; i++) {
		struct cache_key used = key_of(names[i], 6, 1, 0);
		cr_assert_geq(ttl_at(c, &used, 0, CACHE_FRESH, NULL), 0);
	}
	cr_assert_eq(put(c, &k, 0, 3600, 0), 0);
	cr_assert_eq(ttl_at(c, &second, 0, CACHE_FRESH, NULL), -1,
		     "with every entry used, CLOCK falls back to the oldest");
	cache_free(c);
}

Test(cache, dead_entries_are_evicted_first)
{
	struct cache *c = new_cache(64 * 1024 + 8192, 1);
	static char names[4096][8];
	unsigned n = fill_until_eviction(c, names, 0);
	/* Replace a recent entry with a short-lived one, then come back once it is dead. */
	struct cache_key doomed = key_of(names[n - 2], 6, 1, 0);
	cr_assert_eq(put(c, &doomed, 0, 1, 0), 0);
	uint64_t later = (1 + 86400) * 1000ull;

	char extra[8] = "\4more";
	struct cache_key k = key_of(extra, 6, 1, 0);
	struct cache_stats before = stats_of(c);
	cr_assert_eq(put(c, &k, 0, 3600, later), 0);
	struct cache_stats after = stats_of(c);
	cr_assert_eq(after.expired, before.expired + 1);
	cr_assert_eq(after.evictions, before.evictions, "no live entry had to go");
	struct cache_key oldest = key_of(names[1], 6, 1, 0);
	cr_assert_geq(ttl_at(c, &oldest, later, CACHE_STALE_OK, NULL), 0);
	cache_free(c);
}

Test(cache, memory_bound_holds)
{
	struct cache_config cfg;
	cache_default_config(&cfg);
	cfg.max_bytes = 1 << 20;
	cfg.shards = 4;
	cfg.max_stale = 60;
	struct cache *c = cache_new(&cfg);
	cr_assert_not_null(c);
	static uint8_t msg[4096], out[4096];
	uint16_t offs[255];
	char name[32];
	unsigned seed = 42;
	uint64_t now_ms = 0;

	for (int i = 0; i < 100000; i++) {
		uint16_t len = (uint16_t)(12 + rand_r(&seed) % (sizeof msg - 12));
		uint8_t n_ttl = (uint8_t)(rand_r(&seed) % 256);
		if (len < 16)
			n_ttl = 0;
		for (unsigned j = 0; j < n_ttl; j++)
			offs[j] = (uint16_t)(12 + rand_r(&seed) % (len - 15));
		int nl = snprintf(name + 1, sizeof name - 1, "h%u", rand_r(&seed) % 20000);
		name[0] = (char)nl;
		name[nl + 1] = 0;
		struct cache_key k = key_of(name, (size_t)nl + 2, (uint16_t)(1 + i % 3),
					    (uint8_t)(i % 4));
		now_ms += (uint64_t)(rand_r(&seed) % 2000);
		uint32_t ttl = 1 + rand_r(&seed) % 600;
		cr_assert_eq(cache_insert(c, &k, msg, len, offs, n_ttl, ttl, i % 5 == 0, now_ms), 0);
		cr_assert_leq(stats_of(c).bytes, cfg.max_bytes, "insert %d", i);
		cr_assert_eq(cache_lookup(c, &k, now_ms, CACHE_FRESH, out, sizeof out, NULL), len);
	}
	struct cache_stats st = stats_of(c);
	cr_assert_eq(st.inserts, 100000);
	cr_assert_gt(st.evictions, 0);
	cr_assert_gt(st.expired, 0, "with time moving, some entries die before they are pushed out");
	cr_assert_gt(st.entries, 100);
	cr_assert_geq(st.bytes, cfg.max_bytes * 3 / 4, "the budget is used, not wasted");
	cache_free(c);
}

/* Threads share a clock and 512 keys; every answer carries its key's number in its bytes, so a
 * hit returning another key's answer or a half-written one shows. Criterion's assertions may
 * only run on the test's own thread, so workers count what they saw and the test checks. */
struct hammer {
	struct cache *cache;
	uint64_t *clock_ms; /* shared, atomic */
	unsigned seed;
	unsigned long hits, failures;
};

static void hammer_key(unsigned id, char *name, struct cache_key *k)
{
	int nl = snprintf(name + 1, 15, "k%u", id / 8);
	name[0] = (char)nl;
	*k = key_of(name, (size_t)nl + 2, (uint16_t)(1 + id % 4), (uint8_t)(id / 4 % 2));
}

static bool hammer_answer_ok(const uint8_t *out, uint16_t n, unsigned id, bool stale)
{
	if (n != 16 + id * 3 || be32_at(out + 12) > (stale ? 30u : 5u))
		return false;
	for (uint16_t j = 16; j < n; j++)
		if (out[j] != (id & 0xff))
			return false;
	return true;
}

static void hammer_once(struct hammer *h)
{
	static const uint16_t off = 12;
	uint8_t msg[2048], out[2048];
	char name[16];
	struct cache_key k;
	unsigned id = rand_r(&h->seed) % 512;
	unsigned op = rand_r(&h->seed) % 8;
	uint64_t now = __atomic_add_fetch(h->clock_ms, 1, __ATOMIC_RELAXED);
	hammer_key(id, name, &k);

	if (op < 3) {
		uint16_t len = (uint16_t)(16 + id * 3);
		memset(msg, (int)(id & 0xff), len);
		uint32_t ttl = 1 + rand_r(&h->seed) % 5;
		if (cache_insert(h->cache, &k, msg, len, &off, 1, ttl, op == 0, now) != 0)
			h->failures++;
	} else if (op == 3) {
		cache_remove(h->cache, &k);
	} else {
		bool stale;
		enum cache_want want = op % 2 ? CACHE_STALE_OK : CACHE_FRESH;
		uint16_t n = cache_lookup(h->cache, &k, now, want, out, sizeof out, &stale);
		if (n) {
			h->hits++;
			h->failures += !hammer_answer_ok(out, n, id, stale);
		}
	}
}

static void *hammer_run(void *arg)
{
	struct hammer *h = arg;
	struct timespec start, t;
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		for (int i = 0; i < 256; i++)
			hammer_once(h);
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while ((t.tv_sec - start.tv_sec) * 1000000000L + (t.tv_nsec - start.tv_nsec) < 500000000L);
	return NULL;
}

Test(cache, concurrent_use, .timeout = 30)
{
	const size_t max_bytes = 4 * 64 * 1024 + 8192;
	struct cache *c = new_cache(max_bytes, 4);
	struct hammer h[4];
	pthread_t tid[4];
	uint64_t clock_ms = 0;
	for (int i = 0; i < 4; i++) {
		h[i] = (struct hammer){.cache = c, .clock_ms = &clock_ms, .seed = (unsigned)i + 1};
		cr_assert_eq(pthread_create(&tid[i], NULL, hammer_run, &h[i]), 0);
	}
	unsigned long hits = 0, failures = 0;
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(pthread_join(tid[i], NULL), 0);
		hits += h[i].hits;
		failures += h[i].failures;
	}
	struct cache_stats st = stats_of(c);
	cr_assert_eq(failures, 0);
	cr_assert_gt(hits, 1000);
	cr_assert_eq(st.hits + st.stale_hits, hits);
	cr_assert_gt(st.evictions, 0, "the cache was small enough to be under pressure");
	cr_assert_leq(st.bytes, max_bytes);
	cache_free(c);
}
