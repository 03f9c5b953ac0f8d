/* ratelimit.c -- GCRA (the token bucket kept as one timestamp) over a hashed bucket table.
 *
 * Each bucket is one _Atomic uint64_t holding a "theoretical arrival time" (TAT) in ticks of
 * 1/64 us. A client at rate r = 1/T with burst b is a token bucket holding
 * min(b, (now + b*T - TAT) / T) tokens: a query passes if max(TAT, now) + T - now <= b*T and then
 * moves TAT to max(TAT, now) + T. Keeping only the timestamp (instead of packing a token
 * count beside a coarser clock) needs no fixed-point rounding at any rate, puts no ceiling on
 * the burst, and lets a stale bucket (TAT in the past) read as a full one without a reset.
 * 64 bits of ticks last 9,000 years of monotonic clock.
 */
#include "ratelimit.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define XXH_INLINE_ALL /* a 4- or 16-byte key: the call would cost more than the hash */
#include <xxhash.h>

#include "log.h"
#include "netaddr.h"

#define TICKS_PER_US 64u
#define TICKS_PER_S  (1000000ull * TICKS_PER_US)
/* A failed compare-and-swap means another thread just updated the same bucket. After this
 * many the query passes rather than spin: over-admission is bounded by one query per
 * exhausted loop, and only a hot, shared bucket ever gets there. */
#define CAS_TRIES 4

#define TABLE_BITS_MIN     8
#define TABLE_BITS_MAX     24
#define TABLE_BITS_DEFAULT 20
#define V4_PREFIX_DEFAULT  32
#define V6_PREFIX_DEFAULT  56

struct rate {
	uint64_t interval;  /* T: ticks one query costs */
	uint64_t tolerance; /* b*T: how far TAT may run ahead of now */
};

struct exemption {
	struct netaddr_prefix prefix;
	bool unlimited;
	struct rate rate;
};

struct ratelimit {
	bool enabled;
	struct rate rate;
	unsigned slip;
	unsigned shift;        /* 64 - table_bits: the hash's top bits pick the bucket */
	uint64_t seed;         /* random, so nobody can aim addresses at one bucket */
	uint32_t v4_mask;      /* network-order masks applied before hashing */
	uint64_t v6_mask[2];
	struct exemption *exempt; /* longest prefix first, so the first match is the best */
	size_t nexempt;
	_Atomic uint64_t *buckets;
};

/* Each worker thread slips every slip-th of the limited queries it sees. A per-thread count
 * keeps the limited path free of shared writes: under a flood a limited query only reads its
 * bucket, so the cache line stays shared between cores instead of bouncing. */
static _Thread_local unsigned slip_count;

static struct rate rate_of(uint32_t qps, uint32_t burst)
{
	uint64_t interval = (TICKS_PER_S + qps / 2) / qps;
	/* Rounding to the nearest tick keeps the rate within 0.1% up to 100,000 qps; past
	 * 64M qps it would round to zero, which no single address needs told apart. */
	if (interval == 0)
		interval = 1;
	return (struct rate){ .interval = interval, .tolerance = (uint64_t)burst * interval };
}

static void prefix_mask(uint8_t *mask, unsigned nbytes, unsigned len)
{
	memset(mask, 0, nbytes);
	for (unsigned bit = 0; bit < len; bit++)
		mask[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
}

static bool config_fails(const char *field, unsigned value, unsigned min, unsigned max)
{
	if (value >= min && value <= max)
		return false;
	log_err("ratelimit_config_invalid", "field=%s value=%u min=%u max=%u", field, value, min,
		max);
	return true;
}

struct ratelimit *ratelimit_new(const struct ratelimit_config *config)
{
	unsigned bits = config->table_bits ? config->table_bits : TABLE_BITS_DEFAULT;
	unsigned v4 = config->v4_prefix ? config->v4_prefix : V4_PREFIX_DEFAULT;
	unsigned v6 = config->v6_prefix ? config->v6_prefix : V6_PREFIX_DEFAULT;
	if (config_fails("table_bits", bits, TABLE_BITS_MIN, TABLE_BITS_MAX) ||
	    config_fails("v4_prefix", v4, 1, 32) || config_fails("v6_prefix", v6, 1, 128)) {
		errno = EINVAL;
		return NULL;
	}

	struct ratelimit *rl = calloc(1, sizeof *rl);
	if (!rl) {
		log_err("ratelimit_alloc_failed", "what=limiter");
		return NULL;
	}
	rl->slip = config->slip;
	if (config->qps == 0)
		return rl;

	/* calloc of this size maps fresh zero pages: a bucket costs memory once first used. */
	rl->buckets = calloc((size_t)1 << bits, sizeof *rl->buckets);
	if (!rl->buckets) {
		log_err("ratelimit_alloc_failed", "what=table table_bits=%u", bits);
		free(rl);
		errno = ENOMEM;
		return NULL;
	}
	if (getrandom(&rl->seed, sizeof rl->seed, 0) != (ssize_t)sizeof rl->seed) {
		int err = errno;
		log_err("ratelimit_seed_failed", "errno=%d", err);
		ratelimit_free(rl);
		errno = err;
		return NULL;
	}
	uint8_t mask[16];
	prefix_mask(mask, 4, v4);
	memcpy(&rl->v4_mask, mask, 4);
	prefix_mask(mask, 16, v6);
	memcpy(rl->v6_mask, mask, 16);
	rl->shift = 64 - bits;
	rl->rate = rate_of(config->qps, config->burst ? config->burst : config->qps);
	rl->enabled = true;
	return rl;
}

int ratelimit_add_exemption(struct ratelimit *rl, const char *cidr, uint32_t qps)
{
	struct exemption e = { .unlimited = qps == 0 };
	if (netaddr_parse_prefix(cidr, &e.prefix) < 0)
		return -EINVAL;
	if (qps)
		e.rate = rate_of(qps, qps);

	struct exemption *grown = realloc(rl->exempt, (rl->nexempt + 1) * sizeof *grown);
	if (!grown)
		return -ENOMEM;
	rl->exempt = grown;
	size_t at = rl->nexempt;
	while (at > 0 && grown[at - 1].prefix.len < e.prefix.len) {
		grown[at] = grown[at - 1];
		at--;
	}
	grown[at] = e;
	rl->nexempt++;
	return 0;
}

static uint64_t bucket_index(const struct ratelimit *rl, const struct netaddr *a)
{
	uint64_t hash;
	if (a->family == AF_INET) {
		uint32_t key;
		memcpy(&key, a->bytes, sizeof key);
		key &= rl->v4_mask;
		hash = XXH3_64bits_withSeed(&key, sizeof key, rl->seed);
	} else {
		/* A different key length also keeps IPv6 keys apart from IPv4 ones. */
		uint64_t key[2];
		memcpy(key, a->bytes, sizeof key);
		key[0] &= rl->v6_mask[0];
		key[1] &= rl->v6_mask[1];
		hash = XXH3_64bits_withSeed(key, sizeof key, rl->seed);
	}
	return hash >> rl->shift;
}

static enum ratelimit_verdict verdict_limited(const struct ratelimit *rl)
{
	if (rl->slip == 0)
		return RATELIMIT_DROP;
	if (++slip_count < rl->slip)
		return RATELIMIT_DROP;
	slip_count = 0;
	return RATELIMIT_SLIP;
}

/* The rate-limiting rule (quoted in docs/ratelimit.md):
 *  1. Only queries received over UDP are counted, one per datagram, whatever they ask;
 *     TCP is never limited.
 *  2. The client is the query's source address, or the address a trusted PROXY v2 header
 *     gives. An IPv4-mapped IPv6 address counts as the IPv4 address. IPv4 clients are
 *     grouped by /32 and IPv6 clients by /56 (both configurable): one group, one limit.
 *  3. If the client lies in an exemption prefix, the most specific such exemption's limit
 *     replaces the default one (its burst is 1 s worth); an exemption of 0 means unlimited.
 *  4. Each group may send qps queries per second on average and up to burst at once; a
 *     quiet group earns its burst back at qps per second.
 *  5. A query over the limit is not charged: a group sending ten times its limit still gets
 *     exactly its limit through.
 *  6. Of the queries over the limit, every slip-th (counted per worker thread) is answered
 *     with an empty TC=1 reply so a real client can retry over TCP; the rest are dropped.
 *     slip 0 drops them all.
 *  7. Groups are kept in 2^table_bits hashed buckets with a random key; groups that land in
 *     the same bucket share one limit.
 */
enum ratelimit_verdict ratelimit_check(struct ratelimit *rl, const struct sockaddr *client,
				       uint64_t now_us)
{
	struct netaddr a;
	if (!rl->enabled || netaddr_from_sockaddr(client, &a) < 0)
		return RATELIMIT_PASS;

	const struct rate *rate = &rl->rate;
	for (size_t i = 0; i < rl->nexempt; i++) {
		if (netaddr_prefix_match(&rl->exempt[i].prefix, &a)) {
			if (rl->exempt[i].unlimited)
				return RATELIMIT_PASS;
			rate = &rl->exempt[i].rate;
			break;
		}
	}

	_Atomic uint64_t *bucket = &rl->buckets[bucket_index(rl, &a)];
	uint64_t now = now_us * TICKS_PER_US;
	uint64_t tat = atomic_load_explicit(bucket, memory_order_relaxed);
	for (unsigned tries = 1;; tries++) {
		uint64_t next = (tat > now ? tat : now) + rate->interval;
		if (next - now > rate->tolerance)
			return verdict_limited(rl);
		/* The bucket guards no other data, so relaxed order is enough. On failure tat is
		 * reloaded and the query judged again against the newer state. */
		if (atomic_compare_exchange_weak_explicit(bucket, &tat, next, memory_order_relaxed,
							  memory_order_relaxed) ||
		    tries == CAS_TRIES)
			return RATELIMIT_PASS;
	}
}

void ratelimit_free(struct ratelimit *rl)
{
	if (!rl)
		return;
	free(rl->buckets);
	free(rl->exempt);
	free(rl);
}
