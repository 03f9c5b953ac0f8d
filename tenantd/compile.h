/* compile.h -- turns the policy in PostgreSQL into a policy snapshot.
 *
 * Everything is read in one REPEATABLE READ, READ ONLY transaction, so a snapshot never mixes
 * two states of the database. Invalid data (a name the snapshot refuses, a network given to
 * two tenants) fails the compile with the reason; the caller keeps serving the previous
 * snapshot. Only a feed_base needs freeing.
 */
#ifndef AEGIS_COMPILE_H
#define AEGIS_COMPILE_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct compile_stats {
	uint32_t tenants;
	uint32_t networks;
	uint64_t list_entries;
	uint64_t feed_names;
	uint64_t passthru;      /* feed exceptions (RPZ passthru), compiled as national allows */
	uint64_t skipped_names; /* names the snapshot refused, counted and logged, not fatal */
	bool feeds_cached;      /* the feed base was reused, not rebuilt from PostgreSQL */
	long compile_ms;
};

/* The enabled feeds' names compiled as a feed base (docs/snapshot.md), kept by a
 * long-running compiler between compiles and rebuilt only when feed_revision (moved in the
 * same transaction as any change of feed entries, feeds or categories) differs from the one
 * it was built under. Each compile then writes only an overlay naming the base: a one-row
 * change no longer rehashes and resends millions of feed names. Owned by the caller; one
 * compile at a time may use it. */
struct feed_base;
struct snapshot;

struct feed_base *feed_base_new(void);
void feed_base_free(struct feed_base *fb);
/* The base the last successful compile used (NULL / "" before one), and its file. */
struct snapshot *feed_base_snapshot(const struct feed_base *fb);
const char *feed_base_path(const struct feed_base *fb);

/* Compiles the database's policy as snapshot version serial into out_path (written aside and
 * renamed). With fb, the policy is an overlay of fb's base, which is first rebuilt into
 * base-<serial>.snap beside out_path if the feeds changed; without, one self-contained
 * snapshot. Returns 0, or a negative errno with the reason in err. */
int compile_snapshot(PGconn *conn, uint64_t serial, const char *out_path, struct feed_base *fb,
		     struct compile_stats *stats, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
