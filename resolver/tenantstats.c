/* tenantstats.c -- open-addressing table of per-tenant counters, one writer. */
#include "tenantstats.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#define PROBE_LIMIT 64

struct slot {
	atomic_bool used;  /* set (release) after id is written */
	uint8_t id[16];
	stat_t counts[TENANTSTATS];
};

struct tenantstats {
	struct slot overflow;
	struct slot slots[TENANTSTATS_SLOTS];
};

struct tenantstats *tenantstats_new(void)
{
	return calloc(1, sizeof(struct tenantstats));
}

void tenantstats_free(struct tenantstats *ts)
{
	free(ts);
}

static struct slot *find(struct tenantstats *ts, const uint8_t id[16])
{
	size_t i = (size_t)XXH3_64bits(id, 16) & (TENANTSTATS_SLOTS - 1);
	for (int probe = 0; probe < PROBE_LIMIT; probe++, i = (i + 1) & (TENANTSTATS_SLOTS - 1)) {
		struct slot *s = &ts->slots[i];
		if (!atomic_load_explicit(&s->used, memory_order_relaxed)) {
			memcpy(s->id, id, 16);
			atomic_store_explicit(&s->used, true, memory_order_release);
			return s;
		}
		if (memcmp(s->id, id, 16) == 0)
			return s;
	}
	return &ts->overflow;
}

void tenantstats_count(struct tenantstats *ts, const uint8_t id[16], bool blocked,
		       bool monitored)
{
	struct slot *s = find(ts, id);
	stat_inc(&s->counts[TENANTSTAT_QUERIES]);
	if (blocked)
		stat_inc(&s->counts[TENANTSTAT_BLOCKED]);
	if (monitored)
		stat_inc(&s->counts[TENANTSTAT_MONITORED]);
}

static void report(const struct slot *s, const uint8_t *id, tenantstats_fn fn, void *arg)
{
	uint64_t counts[TENANTSTATS];
	for (int k = 0; k < TENANTSTATS; k++)
		counts[k] = stat_read(&s->counts[k]);
	if (counts[TENANTSTAT_QUERIES])
		fn(arg, id, counts);
}

void tenantstats_each(const struct tenantstats *ts, tenantstats_fn fn, void *arg)
{
	for (size_t i = 0; i < TENANTSTATS_SLOTS; i++) {
		const struct slot *s = &ts->slots[i];
		if (atomic_load_explicit((atomic_bool *)&s->used, memory_order_acquire))
			report(s, s->id, fn, arg);
	}
	report(&ts->overflow, NULL, fn, arg);
}
