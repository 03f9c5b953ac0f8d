/* publish.h -- one compile as a recorded snapshot version.
 *
 * A version number is taken from the snapshots table before compiling (so versions only go
 * up, whichever tenantd compiles), the snapshot is written to DIR/policy-<version>.snap (an
 * overlay of the feed base DIR/base-<serial>.snap), read back and validated with the reader
 * the nodes use, joined to its base, and its row is marked ok with the checksums and counts,
 * or failed with the reason. publish_store() then adds the images (so other tenantd instances
 * can serve them; they hear of it on aegis_snapshot_published): the overlay every time, a
 * base only once. A leader serves its nodes first and stores after, so no write into
 * PostgreSQL is on a change's path to the nodes. Nothing returned needs freeing.
 */
#ifndef AEGIS_PUBLISH_H
#define AEGIS_PUBLISH_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compile.h"

struct published {
	uint64_t version;
	char path[4096];
	uint8_t sha256[32];
	bool has_base;            /* path is an overlay of this base: */
	uint64_t base_version;
	char base_path[4096];     /* not written by publish_fetch_latest() when it is have_base */
	uint8_t base_sha256[32];
};

int publish_compile(PGconn *conn, const char *dir, const char *compiled_by, struct feed_base *fb,
		    struct published *out, struct compile_stats *stats, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* Stores the image of a version publish_compile() recorded, keeps only the last few images,
 * and announces it to the other instances. 0, or -EIO (logged): the version stays ok and
 * served by this instance, the others skip it. */
int publish_store(PGconn *conn, const struct published *p) __attribute__((warn_unused_result));

/* For an instance that does not compile: writes the newest published version above
 * `newer_than` into DIR, and its base unless it is have_base (the base the caller serves
 * already, or NULL), and fills out. Returns 1 when there was one, 0 when not, -1 on error
 * (logged). */
int publish_fetch_latest(PGconn *conn, const char *dir, uint64_t newer_than,
			 const uint8_t *have_base, struct published *out)
	__attribute__((warn_unused_result));

#endif
