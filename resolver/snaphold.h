/* snaphold.h -- the node's current policy snapshot, swapped whole while workers read it.
 *
 * A new snapshot is loaded and validated aside, then published with one pointer swap:
 * no query is ever judged by a half-loaded policy, and a snapshot that fails validation is
 * refused while the old one stays. Workers read through a snapview: on the hot path that
 * is one atomic load of a generation number; only when it changed does the worker take the
 * lock once to move its reference. An old snapshot is freed when the last worker has moved
 * off it. The holder owns the snapshots; a view holds a counted reference. The holder also
 * keeps the newest feed base the node has, so that a policy overlay naming it is joined to it
 * without reading it again.
 */
#ifndef AEGIS_SNAPHOLD_H
#define AEGIS_SNAPHOLD_H

#include <stdatomic.h>
#include <stdint.h>

#include "snapshot.h"

struct snaphold;
struct snapref;

struct snapview {
	struct snapref *ref;
	uint64_t generation;
};

struct snaphold *snaphold_new(void);
void snaphold_free(struct snaphold *h);

/* Opens and validates path, joins it to the feed base it names (the one held, else the file
 * snapshot_base_path() names), then publishes it. On failure logs why, keeps the current
 * snapshot and returns a negative errno. Serial going backwards is accepted (a ministry may
 * roll back) but logged. */
int snaphold_load_file(struct snaphold *h, const char *path) __attribute__((warn_unused_result));

/* Publishes an already validated snapshot; the holder takes ownership. One whose feed base is
 * not attached is refused (logged and closed). */
void snaphold_publish(struct snaphold *h, struct snapshot *s);

/* Joins s to the held base when s names it: 0 (also when s names none), 1 when s names
 * another base, negative with the reason in err when the base does not fit. */
int snaphold_join_base(struct snaphold *h, struct snapshot *s, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Makes base (validated) the one held for the snapshots that follow; takes the reference. */
void snaphold_keep_base(struct snaphold *h, struct snapshot *base);

/* The snapshot a worker should use now, or NULL when none was ever loaded. */
const struct snapshot *snapview_get(struct snaphold *h, struct snapview *v);

/* Drops the view's reference (worker exit, or an idle worker letting an old one go). */
void snapview_release(struct snaphold *h, struct snapview *v);

/* For metrics: serial and created time of the published snapshot (0 when none). */
void snaphold_info(struct snaphold *h, uint64_t *serial, uint64_t *created, uint64_t *loaded_at);

#endif
