/* cache.c -- sharded chained hash tables, CLOCK eviction and an expiry heap per shard. */
#include "cache.h"

#include <endian.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <xxhash.h>

#include "log.h"

#define DNS_HEADER_LEN   12
#define MIN_SHARD_BYTES  (64 * 1024)
#define BYTES_PER_BUCKET 128 /* budget per bucket, at least: chains stay about one long */
#define MAX_BUCKETS      (1u << 30)
#define HEAP_MIN_CAP     64u

/* One allocation per entry; data holds the TTL offsets, then the name, then the message. */
struct entry {
	struct entry *chain;         /* next in the hash bucket, or in a list of entries to free */
	struct entry *older, *newer; /* CLOCK ring: the hand moves towards newer */
	uint64_t hash;
	uint64_t id; /* key_id(): the key but its name */
	uint64_t expire_ms;
	uint32_t charge; /* bytes this entry counts against its shard */
	uint32_t heap_pos;
	uint32_t ttl; /* as stored: a worker whose clock lags the inserter's must not see more */
	uint16_t msg_len;
	uint8_t n_ttl;
	bool referenced; /* set by a hit, cleared by the passing CLOCK hand */
	uint16_t data[];
};

/* Everything in a shard, counters included, is guarded by its lock. */
struct shard {
	pthread_mutex_t lock;
	struct entry **buckets;
	uint64_t bucket_mask;
	struct entry *hand;  /* the next entry CLOCK looks at; NULL when the shard is empty */
	struct entry **heap; /* min-heap on expire_ms, so the first entry to die is on top */
	uint32_t heap_len, heap_cap;
	size_t budget;    /* bytes this shard may account for */
	size_t max_entry; /* one answer may not take more than this */
	struct cache_stats stats;
} __attribute__((aligned(64))); /* a cache line each, so workers on two shards never share one */

struct cache {
	uint64_t seed;
	uint64_t shard_mask;
	uint64_t max_stale_ms;
	uint32_t min_ttl, max_ttl, max_negative_ttl, stale_ttl_served;
	size_t fixed_bytes;
	struct shard shards[];
};

/* Counters change only under the shard lock, so a plain read plus an atomic store suffices; the
 * store keeps cache_get_stats(), which does not lock, free of data races. */
#define STAT_ADD(s, field, n) \
	__atomic_store_n(&(s)->stats.field, (s)->stats.field + (n), __ATOMIC_RELAXED)
#define STAT_SUB(s, field, n) \
	__atomic_store_n(&(s)->stats.field, (s)->stats.field - (n), __ATOMIC_RELAXED)

/* What a block really costs: its usable size plus glibc's 8-byte chunk header. */
static size_t charge_of(void *block)
{
	return malloc_usable_size(block) + sizeof(size_t);
}

/* The most a fresh block of request bytes can cost with glibc: header, 16-byte alignment, and
 * page rounding once it is large enough to be mmap'd. */
static size_t charge_bound(size_t request)
{
	return request + 4096 + 64;
}

static bool key_valid(const struct cache_key *k)
{
	return k && k->name && k->name_len > 0 && !(k->flags & ~(CACHE_FLAG_DO | CACHE_FLAG_CD));
}

/* Everything in the key but the name's bytes, in one word (name length in the low byte): one
 * comparison checks it all. */
static uint64_t key_id(const struct cache_key *k)
{
	return (uint64_t)k->qtype << 32 | (uint64_t)k->qclass << 16 | (uint64_t)k->flags << 8 |
	       k->name_len;
}

/* One XXH3 pass over the name where the caller holds it, the rest of the key folded into the
 * seed (spread by a multiply so one flag bit changes many seed bits): the lookup copies no key.
 * The random base seed keeps clients from aiming names at one bucket. */
static uint64_t key_hash(const struct cache *c, const struct cache_key *k, uint64_t id)
{
	return XXH3_64bits_withSeed(k->name, k->name_len, c->seed ^ (id * 0x9e3779b97f4a7c15u));
}

static const uint8_t *entry_name(const struct entry *e)
{
	return (const uint8_t *)(e->data + e->n_ttl);
}

static const uint8_t *entry_msg(const struct entry *e)
{
	return entry_name(e) + (uint8_t)e->id;
}

/* The top half of the hash picks the shard, the bottom half the bucket, so they never overlap. */
static struct shard *shard_of(struct cache *c, uint64_t hash)
{
	return &c->shards[(hash >> 32) & c->shard_mask];
}

static struct entry *shard_find(struct shard *s, uint64_t hash, uint64_t id,
				const uint8_t *name)
{
	struct entry *e = s->buckets[hash & s->bucket_mask];
	while (e && (e->hash != hash || e->id != id || memcmp(entry_name(e), name, (uint8_t)id)))
		e = e->chain;
	return e;
}

/* Past max_stale an entry is of no use to anyone, not even serve-stale. */
static bool entry_dead(const struct cache *c, const struct entry *e, uint64_t now_ms)
{
	return now_ms >= e->expire_ms + c->max_stale_ms;
}

static void heap_place(struct shard *s, struct entry *e, uint32_t pos)
{
	s->heap[pos] = e;
	e->heap_pos = pos;
}

static void heap_sift_up(struct shard *s, uint32_t pos)
{
	struct entry *e = s->heap[pos];
	while (pos > 0) {
		uint32_t parent = (pos - 1) / 2;
		if (s->heap[parent]->expire_ms <= e->expire_ms)
			break;
		heap_place(s, s->heap[parent], pos);
		pos = parent;
	}
	heap_place(s, e, pos);
}

static void heap_sift_down(struct shard *s, uint32_t pos)
{
	struct entry *e = s->heap[pos];
	for (;;) {
		uint32_t child = 2 * pos + 1;
		if (child >= s->heap_len)
			break;
		if (child + 1 < s->heap_len &&
		    s->heap[child + 1]->expire_ms < s->heap[child]->expire_ms)
			child++;
		if (e->expire_ms <= s->heap[child]->expire_ms)
			break;
		heap_place(s, s->heap[child], pos);
		pos = child;
	}
	heap_place(s, e, pos);
}

static void heap_delete(struct shard *s, struct entry *e)
{
	struct entry *last = s->heap[--s->heap_len];
	if (last == e)
		return;
	heap_place(s, last, e->heap_pos);
	heap_sift_up(s, last->heap_pos);
	heap_sift_down(s, last->heap_pos);
}

static size_t heap_next_cap(const struct shard *s)
{
	return s->heap_cap ? 2 * (size_t)s->heap_cap : HEAP_MIN_CAP;
}

/* Bytes to keep free so that growing the full heap cannot take the shard over its budget. */
static size_t heap_growth_reserve(struct shard *s)
{
	if (s->heap_len < s->heap_cap)
		return 0;
	return charge_bound(heap_next_cap(s) * sizeof *s->heap);
}

static int heap_grow(struct shard *s)
{
	size_t cap = heap_next_cap(s);
	size_t old = s->heap ? charge_of(s->heap) : 0;
	if (cap > UINT32_MAX)
		return -ENOMEM;
	struct entry **heap = realloc(s->heap, cap * sizeof *heap);
	if (!heap)
		return -ENOMEM;
	s->heap = heap;
	s->heap_cap = (uint32_t)cap;
	STAT_SUB(s, bytes, old);
	STAT_ADD(s, bytes, charge_of(heap));
	return 0;
}

/* New entries go just behind the hand, so they are the last it reaches. */
static void ring_add(struct shard *s, struct entry *e)
{
	struct entry *h = s->hand;
	if (!h) {
		e->older = e->newer = e;
		s->hand = e;
		return;
	}
	e->newer = h;
	e->older = h->older;
	h->older->newer = e;
	h->older = e;
}

static void ring_delete(struct shard *s, struct entry *e)
{
	if (s->hand == e)
		s->hand = e->newer == e ? NULL : e->newer;
	e->older->newer = e->newer;
	e->newer->older = e->older;
}

/* Unhooks e from the bucket, the ring and the heap and pushes it onto *trash, to be freed once
 * the lock is released. */
static void shard_detach(struct shard *s, struct entry *e, struct entry **trash)
{
	struct entry **link = &s->buckets[e->hash & s->bucket_mask];
	while (*link != e)
		link = &(*link)->chain;
	*link = e->chain;
	ring_delete(s, e);
	heap_delete(s, e);
	STAT_SUB(s, entries, 1);
	STAT_SUB(s, bytes, e->charge);
	e->chain = *trash;
	*trash = e;
}

static void trash_free(struct entry *trash)
{
	while (trash) {
		struct entry *next = trash->chain;
		free(trash);
		trash = next;
	}
}

/* Eviction order: entries past max_stale first, the soonest dead first, since nobody can use
 * them; then CLOCK, which spares entries hit since the hand last passed (a cheap LRU: a hit
 * only sets a bit in the entry it already reads). */
static int shard_make_room(struct cache *c, struct shard *s, size_t charge, uint64_t now_ms,
			   struct entry **trash)
{
	while (s->stats.bytes + charge + heap_growth_reserve(s) > s->budget) {
		if (s->heap_len && entry_dead(c, s->heap[0], now_ms)) {
			shard_detach(s, s->heap[0], trash);
			STAT_ADD(s, expired, 1);
		} else if (s->hand) {
			while (s->hand->referenced) {
				s->hand->referenced = false;
				s->hand = s->hand->newer;
			}
			shard_detach(s, s->hand, trash);
			STAT_ADD(s, evictions, 1);
		} else {
			return -ENOMEM;
		}
	}
	return 0;
}

static uint16_t entry_copy(const struct entry *e, uint8_t *out, uint16_t cap, uint32_t ttl)
{
	if (e->msg_len > cap)
		return 0;
	memcpy(out, entry_msg(e), e->msg_len);
	uint32_t be = htobe32(ttl);
	for (unsigned i = 0; i < e->n_ttl; i++)
		memcpy(out + e->data[i], &be, sizeof be);
	return e->msg_len;
}

void cache_default_config(struct cache_config *cfg)
{
	*cfg = (struct cache_config){
		.max_bytes = 32u << 20,
		.shards = 16,
		.min_ttl = 0,
		.max_ttl = 86400,
		.max_negative_ttl = 3600,
		.stale_ttl_served = 30,
		.max_stale = 86400,
	};
}

static const char *config_problem(const struct cache_config *cfg, size_t fixed)
{
	if (cfg->shards == 0 || cfg->shards > 1024 || (cfg->shards & (cfg->shards - 1)))
		return "shards must be a power of two from 1 to 1024";
	if (cfg->min_ttl > cfg->max_ttl || cfg->min_ttl > cfg->max_negative_ttl)
		return "min_ttl exceeds max_ttl or max_negative_ttl";
	if (cfg->max_bytes < fixed || (cfg->max_bytes - fixed) / cfg->shards < MIN_SHARD_BYTES)
		return "max_bytes leaves less than 64 KiB per shard";
	return NULL;
}

static int shard_init(struct shard *s, size_t budget)
{
	pthread_mutexattr_t attr;
	/* Adaptive: spin briefly before sleeping, since the lock is held for a copy of an answer. */
	if (pthread_mutexattr_init(&attr) != 0 ||
	    pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_ADAPTIVE_NP) != 0 ||
	    pthread_mutex_init(&s->lock, &attr) != 0)
		return -ENOMEM;
	pthread_mutexattr_destroy(&attr);

	size_t n = 16;
	while (n < MAX_BUCKETS && n * 2 * BYTES_PER_BUCKET <= budget)
		n *= 2;
	s->buckets = calloc(n, sizeof *s->buckets);
	if (!s->buckets) {
		pthread_mutex_destroy(&s->lock);
		return -ENOMEM;
	}
	s->bucket_mask = n - 1;
	s->budget = budget;
	s->max_entry = budget / 8;
	s->stats.bytes = charge_of(s->buckets);
	return 0;
}

static void shard_fini(struct shard *s)
{
	struct entry *e = s->hand;
	if (e) {
		e->older->newer = NULL;
		while (e) {
			struct entry *next = e->newer;
			free(e);
			e = next;
		}
	}
	free(s->buckets);
	free(s->heap);
	pthread_mutex_destroy(&s->lock);
}

struct cache *cache_new(const struct cache_config *cfg)
{
	if (!cfg) {
		log_err("cache_config_invalid", "error=\"no config\"");
		return NULL;
	}
	size_t size = sizeof(struct cache) + (size_t)cfg->shards * sizeof(struct shard);
	const char *problem = config_problem(cfg, charge_bound(size));
	if (problem) {
		log_err("cache_config_invalid", "error=\"%s\"", problem);
		return NULL;
	}
	struct cache *c = aligned_alloc(_Alignof(struct cache), size);
	if (!c) {
		log_err("cache_create_failed", "error=\"out of memory\"");
		return NULL;
	}
	memset(c, 0, size);
	if (getrandom(&c->seed, sizeof c->seed, 0) != sizeof c->seed) {
		log_err("cache_create_failed", "error=\"getrandom: %s\"", strerror(errno));
		free(c);
		return NULL;
	}
	c->shard_mask = cfg->shards - 1;
	c->max_stale_ms = (uint64_t)cfg->max_stale * 1000;
	c->min_ttl = cfg->min_ttl;
	c->max_ttl = cfg->max_ttl;
	c->max_negative_ttl = cfg->max_negative_ttl;
	c->stale_ttl_served = cfg->stale_ttl_served;
	c->fixed_bytes = charge_of(c);

	size_t budget = (cfg->max_bytes - c->fixed_bytes) / cfg->shards;
	for (unsigned i = 0; i < cfg->shards; i++) {
		if (shard_init(&c->shards[i], budget) < 0) {
			log_err("cache_create_failed", "error=\"out of memory\"");
			while (i--)
				shard_fini(&c->shards[i]);
			free(c);
			return NULL;
		}
	}
	return c;
}

void cache_free(struct cache *cache)
{
	if (!cache)
		return;
	for (uint64_t i = 0; i <= cache->shard_mask; i++)
		shard_fini(&cache->shards[i]);
	free(cache);
}

/* Caching rules (quoted in docs/cache.md):
 *  1. A positive answer lives for its TTL clamped to [min_ttl, max_ttl]; a negative one
 *     (NXDOMAIN or NODATA, RFC 2308) for its TTL clamped to [min_ttl, max_negative_ttl].
 *  2. A TTL that clamps to 0 is not cached, and the key's older answer is dropped (RFC 1035
 *     3.2.1: a zero TTL is for the transaction in progress only).
 *  3. A new answer for a key replaces the old one.
 *  4. An answer is fresh while now < stored + TTL; it is served with its TTL fields set to the
 *     whole seconds left, rounded down and never more than the TTL it was stored with.
 *  5. From expiry until max_stale seconds later it is served only to a caller that asks for
 *     stale data, with TTL stale_ttl_served (RFC 8767).
 *  6. At expiry + max_stale it is dead: dropped when a lookup finds it, first to go for room.
 *  7. Room is made by dropping dead entries, the soonest dead first, then by CLOCK: the first
 *     entry the hand finds that no hit has touched since the hand last passed. */
static uint32_t ttl_clamp(const struct cache *c, uint32_t ttl, bool negative)
{
	uint32_t max = negative ? c->max_negative_ttl : c->max_ttl;
	if (ttl < c->min_ttl)
		return c->min_ttl;
	return ttl > max ? max : ttl;
}

static void shard_remove(struct shard *s, uint64_t hash, uint64_t id, const uint8_t *name)
{
	struct entry *trash = NULL;
	pthread_mutex_lock(&s->lock);
	struct entry *e = shard_find(s, hash, id, name);
	if (e)
		shard_detach(s, e, &trash);
	pthread_mutex_unlock(&s->lock);
	trash_free(trash);
}

int cache_insert(struct cache *cache, const struct cache_key *key, const uint8_t *msg,
		 uint16_t len, const uint16_t *ttl_offsets, uint8_t n_ttl, uint32_t ttl,
		 bool negative, uint64_t now_ms)
{
	if (!key_valid(key) || !msg || len < DNS_HEADER_LEN || (n_ttl && !ttl_offsets))
		return -EINVAL;
	for (unsigned i = 0; i < n_ttl; i++)
		if (ttl_offsets[i] < DNS_HEADER_LEN || ttl_offsets[i] > len - sizeof(uint32_t))
			return -EINVAL;

	uint64_t id = key_id(key);
	uint64_t hash = key_hash(cache, key, id);
	struct shard *s = shard_of(cache, hash);
	ttl = ttl_clamp(cache, ttl, negative);
	if (ttl == 0) {
		shard_remove(s, hash, id, key->name);
		return 0;
	}

	size_t offsets_len = n_ttl * sizeof *ttl_offsets;
	struct entry *e = malloc(offsetof(struct entry, data) + offsets_len + key->name_len + len);
	if (!e)
		return -ENOMEM;
	e->charge = (uint32_t)charge_of(e);
	if (e->charge > s->max_entry) {
		free(e);
		return -E2BIG;
	}
	e->hash = hash;
	e->id = id;
	e->expire_ms = now_ms + (uint64_t)ttl * 1000;
	e->ttl = ttl;
	e->msg_len = len;
	e->n_ttl = n_ttl;
	e->referenced = false;
	if (n_ttl)
		memcpy(e->data, ttl_offsets, offsets_len);
	uint8_t *p = (uint8_t *)(e->data + n_ttl);
	memcpy(p, key->name, key->name_len);
	memcpy(p + key->name_len, msg, len);

	struct entry *trash = NULL;
	pthread_mutex_lock(&s->lock);
	struct entry *old = shard_find(s, hash, id, key->name);
	if (old)
		shard_detach(s, old, &trash);
	int rc = shard_make_room(cache, s, e->charge, now_ms, &trash);
	if (rc == 0 && s->heap_len == s->heap_cap)
		rc = heap_grow(s);
	if (rc == 0) {
		struct entry **bucket = &s->buckets[hash & s->bucket_mask];
		e->chain = *bucket;
		*bucket = e;
		ring_add(s, e);
		heap_place(s, e, s->heap_len++);
		heap_sift_up(s, e->heap_pos);
		STAT_ADD(s, entries, 1);
		STAT_ADD(s, bytes, e->charge);
		STAT_ADD(s, inserts, 1);
	}
	pthread_mutex_unlock(&s->lock);
	trash_free(trash);
	if (rc < 0)
		free(e);
	return rc;
}

void cache_prefetch(struct cache *cache, const struct cache_key *key)
{
	if (!key_valid(key))
		return;
	uint64_t hash = key_hash(cache, key, key_id(key));
	struct shard *s = shard_of(cache, hash);
	__builtin_prefetch(&s->buckets[hash & s->bucket_mask]);
}

uint16_t cache_lookup(struct cache *cache, const struct cache_key *key, uint64_t now_ms,
		      enum cache_want want, uint8_t *out, uint16_t cap, bool *stale)
{
	uint16_t n = 0;
	bool is_stale = false;
	if (stale)
		*stale = false;
	if (!key_valid(key))
		return 0;

	uint64_t id = key_id(key);
	uint64_t hash = key_hash(cache, key, id);
	struct shard *s = shard_of(cache, hash);
	struct entry *trash = NULL;
	/* The bucket array never moves, so its cache miss can overlap taking the lock. */
	__builtin_prefetch(&s->buckets[hash & s->bucket_mask]);
	pthread_mutex_lock(&s->lock);
	struct entry *e = shard_find(s, hash, id, key->name);
	if (e && now_ms < e->expire_ms) {
		uint64_t left = (e->expire_ms - now_ms) / 1000;
		n = entry_copy(e, out, cap, left < e->ttl ? (uint32_t)left : e->ttl);
	} else if (e && entry_dead(cache, e, now_ms)) {
		shard_detach(s, e, &trash);
		STAT_ADD(s, expired, 1);
	} else if (e && want == CACHE_STALE_OK) {
		n = entry_copy(e, out, cap, cache->stale_ttl_served);
		is_stale = n > 0;
	}
	if (n) {
		e->referenced = true;
		if (is_stale)
			STAT_ADD(s, stale_hits, 1);
		else
			STAT_ADD(s, hits, 1);
	} else {
		STAT_ADD(s, misses, 1);
	}
	pthread_mutex_unlock(&s->lock);
	trash_free(trash);
	if (stale)
		*stale = is_stale;
	return n;
}

void cache_remove(struct cache *cache, const struct cache_key *key)
{
	if (!key_valid(key))
		return;
	uint64_t id = key_id(key);
	uint64_t hash = key_hash(cache, key, id);
	shard_remove(shard_of(cache, hash), hash, id, key->name);
}

void cache_get_stats(struct cache *cache, struct cache_stats *stats)
{
	*stats = (struct cache_stats){.bytes = cache->fixed_bytes};
	for (uint64_t i = 0; i <= cache->shard_mask; i++) {
		const struct cache_stats *st = &cache->shards[i].stats;
		stats->entries += __atomic_load_n(&st->entries, __ATOMIC_RELAXED);
		stats->bytes += __atomic_load_n(&st->bytes, __ATOMIC_RELAXED);
		stats->hits += __atomic_load_n(&st->hits, __ATOMIC_RELAXED);
		stats->misses += __atomic_load_n(&st->misses, __ATOMIC_RELAXED);
		stats->stale_hits += __atomic_load_n(&st->stale_hits, __ATOMIC_RELAXED);
		stats->inserts += __atomic_load_n(&st->inserts, __ATOMIC_RELAXED);
		stats->evictions += __atomic_load_n(&st->evictions, __ATOMIC_RELAXED);
		stats->expired += __atomic_load_n(&st->expired, __ATOMIC_RELAXED);
	}
}
