/* throttle.c -- striped token buckets keyed by a hash of the client address or principal. */
#include "throttle.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 4096u
#define STRIPES 64u

struct bucket {
	uint64_t key;            /* hash of the key holding the slot, 0 when free */
	uint64_t at_us;          /* last refill */
	double tokens;
};

struct throttle {
	double rate, burst;      /* tokens per microsecond, bucket size */
	pthread_mutex_t locks[STRIPES];
	struct bucket slots[SLOTS];
};

struct throttle *throttle_new(unsigned rate, unsigned burst)
{
	if (rate == 0)
		return NULL;
	struct throttle *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->rate = rate / 1e6;
	t->burst = burst ? burst : rate;
	for (unsigned i = 0; i < STRIPES; i++)
		pthread_mutex_init(&t->locks[i], NULL);
	return t;
}

void throttle_free(struct throttle *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < STRIPES; i++)
		pthread_mutex_destroy(&t->locks[i]);
	free(t);
}

/* FNV-1a, never 0 (0 marks a free slot). */
static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h ? h : 1;
}

bool throttle_allow(struct throttle *t, const char *key, uint64_t now_us, unsigned *retry_after)
{
	if (!t)
		return true;
	uint64_t h = hash(key);
	unsigned slot = (unsigned)(h % SLOTS);
	pthread_mutex_t *lock = &t->locks[slot % STRIPES];
	struct bucket *b = &t->slots[slot];
	bool ok;

	pthread_mutex_lock(lock);
	/* A slot held by another key is taken over once that key's bucket has refilled: an idle
	 * key loses nothing by it. */
	if (b->key != h) {
		double refilled = b->tokens + (double)(now_us - b->at_us) * t->rate;
		if (b->key == 0 || refilled >= t->burst) {
			b->key = h;
			b->tokens = t->burst;
			b->at_us = now_us;
		}
	}
	if (now_us > b->at_us) {
		b->tokens += (double)(now_us - b->at_us) * t->rate;
		if (b->tokens > t->burst)
			b->tokens = t->burst;
		b->at_us = now_us;
	}
	ok = b->tokens >= 1.0;
	if (ok)
		b->tokens -= 1.0;
	else
		*retry_after = (unsigned)((1.0 - b->tokens) / t->rate / 1e6) + 1;
	pthread_mutex_unlock(lock);
	return ok;
}
