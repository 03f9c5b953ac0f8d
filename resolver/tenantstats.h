/* tenantstats.h -- per-tenant query counters, kept per worker and keyed by tenant id.
 *
 * Keyed by the tenant's UUID rather than its index in the snapshot, so counters stay
 * monotonic across policy swaps. Each worker owns one fixed-size table and is its only
 * writer; the metrics thread reads slots whose id has been published (release/acquire on
 * the slot's state). A full table counts into an "other" slot, never allocates.
 */
#ifndef AEGIS_TENANTSTATS_H
#define AEGIS_TENANTSTATS_H

#include <stdbool.h>
#include <stdint.h>

#include "stats.h"

#define TENANTSTATS_SLOTS 32768 /* per worker; three times the tenants a node is sized for */

enum tenantstat { TENANTSTAT_QUERIES, TENANTSTAT_BLOCKED, TENANTSTAT_MONITORED, TENANTSTATS };

struct tenantstats;

struct tenantstats *tenantstats_new(void);
void tenantstats_free(struct tenantstats *ts);

/* Worker thread only. */
void tenantstats_count(struct tenantstats *ts, const uint8_t id[16], bool blocked,
		       bool monitored);

/* Metrics thread: calls fn for every tenant seen (and for the overflow slot with id NULL). */
typedef void (*tenantstats_fn)(void *arg, const uint8_t *id, const uint64_t counts[TENANTSTATS]);
void tenantstats_each(const struct tenantstats *ts, tenantstats_fn fn, void *arg);

#endif
