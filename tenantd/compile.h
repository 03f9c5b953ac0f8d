/* compile.h -- turns the policy in PostgreSQL into a policy snapshot.
 *
 * Everything is read in one REPEATABLE READ, READ ONLY transaction, so a snapshot never mixes
 * two states of the database. Invalid data (a name the snapshot refuses, a network given to
 * two tenants) fails the compile with the reason; the caller keeps serving the previous
 * snapshot. Only a feed_cache needs freeing.
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
	bool feeds_cached;      /* the feed names came from the feed_cache, not PostgreSQL */
	long compile_ms;
};

/* The enabled feeds' names, parsed, kept by a long-running compiler between compiles and read
 * from PostgreSQL again only when feed_revision (moved in the same transaction as any change
 * of feed entries, feeds or categories) differs from the one they were read under. About 25
 * bytes per name. Owned by the caller; one compile at a time may use it. */
struct feed_cache;

struct feed_cache *feed_cache_new(void);
void feed_cache_free(struct feed_cache *fc);

/* Compiles the database's policy as snapshot version serial into out_path (written aside and
 * renamed), taking the feed names from cache when still valid (cache may be NULL: always
 * read). Returns 0, or a negative errno with the reason in err. */
int compile_snapshot(PGconn *conn, uint64_t serial, const char *out_path, struct feed_cache *cache,
		     struct compile_stats *stats, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
