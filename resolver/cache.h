/* cache.h -- the resolver's answer cache: upstream answers in wire format, shared by all workers.
 * The cache keeps private copies of what cache_insert() is given and cache_lookup() copies out
 * into the caller's buffer, so no pointer into the cache ever leaves it.
 *
 * Thread-safe: entries live in power-of-two shards chosen by hash bits, each behind one mutex.
 * Each entry is one malloc holding header, TTL offsets, key and message: sizes run from ~100 B
 * to 64 KiB, which a slab would serve only with many size classes and their rounding waste,
 * while glibc's per-thread caches make malloc cheap and inserts follow an upstream round trip
 * anyway. Lookups never allocate. Design, eviction and memory accounting: docs/cache.md.
 */
#ifndef AEGIS_RESOLVER_CACHE_H
#define AEGIS_RESOLVER_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cache;

/* Fill with cache_default_config() and change what you need; cache_new() validates it. */
struct cache_config {
	size_t max_bytes;          /* everything the cache allocates, fixed part included */
	unsigned shards;           /* power of two, 1..1024 */
	uint32_t min_ttl;          /* seconds; applies to positive and negative answers */
	uint32_t max_ttl;
	uint32_t max_negative_ttl; /* RFC 2308 answers (NXDOMAIN, NODATA) */
	uint32_t stale_ttl_served; /* TTL written into a stale answer (RFC 8767 suggests 30) */
	uint32_t max_stale;        /* seconds past expiry an entry may still be served stale */
};

/* 32 MiB, 16 shards, TTL in [0, 86400], negative TTL at most 3600, stale answers served with
 * TTL 30 for up to 86400 s past expiry. */
void cache_default_config(struct cache_config *cfg);

/* NULL (logged) if cfg is invalid or memory runs out. */
struct cache *cache_new(const struct cache_config *cfg) __attribute__((warn_unused_result));

/* No other thread may use the cache during or after this call. NULL is accepted. */
void cache_free(struct cache *cache);

#define CACHE_FLAG_DO 0x01u /* the query had EDNS DO set */
#define CACHE_FLAG_CD 0x02u /* the query had CD set */

/* name is the query name in uncompressed wire format, already lowercased by the caller
 * (1..255 bytes); flags is a combination of CACHE_FLAG_*. The cache does not keep the pointer. */
struct cache_key {
	const uint8_t *name;
	uint8_t name_len;
	uint16_t qtype, qclass;
	uint8_t flags;
};

/* Stores an answer (msg, len bytes, header included, OPT already removed), replacing any entry
 * for the same key. ttl_offsets gives the n_ttl byte offsets of the RRs' 32-bit TTL fields; ttl
 * is the lifetime the caller derived (lowest answer TTL, or the RFC 2308 negative TTL) and is
 * clamped by the config. A TTL that clamps to 0 means "do not cache" (RFC 1035 3.2.1): the key's
 * old entry is dropped and 0 returned. now_ms is a monotonic clock in milliseconds.
 * May evict other entries to stay within max_bytes. Returns 0, -EINVAL (bad key, msg shorter
 * than a DNS header, an offset outside the message or inside the header), -E2BIG (entry larger
 * than an eighth of a shard) or -ENOMEM (the key's older entry may be gone). */
int cache_insert(struct cache *cache, const struct cache_key *key, const uint8_t *msg,
		 uint16_t len, const uint16_t *ttl_offsets, uint8_t n_ttl, uint32_t ttl,
		 bool negative, uint64_t now_ms);

enum cache_want {
	CACHE_FRESH,    /* only answers whose TTL has not run out */
	CACHE_STALE_OK, /* also expired ones within max_stale: pass only after every upstream failed
			 * and only for names the current policy allows (RFC 8767) */
};

/* A hint that key is about to be looked up: starts loading its bucket (and the page-table
 * entries to it), so that the lookup, done after other work such as the policy decision,
 * does not wait for memory. Changes nothing; an invalid key is ignored. */
void cache_prefetch(struct cache *cache, const struct cache_key *key);

/* Copies the answer for key into out (cap bytes) with every TTL field rewritten to the whole
 * seconds left (or stale_ttl_served when served stale) and returns its length. Returns 0 on a
 * miss: no entry, an expired one not allowed stale, or an answer longer than cap. *stale (may be
 * NULL) says whether the answer is stale. The caller patches ID, flags and question case. */
uint16_t cache_lookup(struct cache *cache, const struct cache_key *key, uint64_t now_ms,
		      enum cache_want want, uint8_t *out, uint16_t cap, bool *stale)
	__attribute__((warn_unused_result));

/* Drops the entry for key if there is one (for instance when policy changes). */
void cache_remove(struct cache *cache, const struct cache_key *key);

/* Counters since cache_new(). hits are fresh hits; stale_hits are counted apart; misses include
 * answers too long for the caller's buffer; evictions are live or stale entries dropped for
 * room; expired are entries dropped because they were past max_stale. inserts include
 * replacements. */
struct cache_stats {
	uint64_t entries, bytes, hits, misses, stale_hits, inserts, evictions, expired;
};

/* Read without locking (relaxed atomics): each counter is exact, the set is not a snapshot. */
void cache_get_stats(struct cache *cache, struct cache_stats *stats);

#endif
