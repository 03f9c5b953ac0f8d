/* publish.h -- one compile as a recorded snapshot version.
 *
 * A version number is taken from the snapshots table before compiling (so versions only go
 * up, whichever tenantd compiles), the snapshot is written to DIR/policy-<version>.snap, read
 * back and validated with the reader the nodes use, and its row is marked ok with the
 * checksum and counts, or failed with the reason. publish_store() then adds the image (so
 * other tenantd instances can serve it; they hear of it on aegis_snapshot_published): a
 * leader serves its nodes first and stores after, so the 57 MiB write into PostgreSQL is off
 * a change's path to the nodes. Nothing returned needs freeing.
 */
#ifndef AEGIS_PUBLISH_H
#define AEGIS_PUBLISH_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "compile.h"

struct published {
	uint64_t version;
	char path[4096];
	uint8_t sha256[32];
};

int publish_compile(PGconn *conn, const char *dir, const char *compiled_by,
		    struct feed_cache *cache, struct published *out, struct compile_stats *stats,
		    char *err, size_t errlen) __attribute__((warn_unused_result));

/* Stores the image of a version publish_compile() recorded, keeps only the last few images,
 * and announces it to the other instances. 0, or -EIO (logged): the version stays ok and
 * served by this instance, the others skip it. */
int publish_store(PGconn *conn, const struct published *p) __attribute__((warn_unused_result));

/* For an instance that does not compile: writes the newest published version above
 * `newer_than` into DIR and fills out. Returns 1 when there was one, 0 when not, -1 on
 * error (logged). */
int publish_fetch_latest(PGconn *conn, const char *dir, uint64_t newer_than,
			 struct published *out) __attribute__((warn_unused_result));

#endif
