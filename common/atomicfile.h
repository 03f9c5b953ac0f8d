/* atomicfile.h -- replace a file so readers see the old content or the new, never half.
 *
 * A temporary file beside the target, fsync, rename over it, fsync of the folder: a crash can
 * leave the old file or the new one, not an empty or partial one. Used for everything a
 * daemon must find intact after a restart (policy snapshots). Owns no memory it hands out.
 */
#ifndef AEGIS_ATOMICFILE_H
#define AEGIS_ATOMICFILE_H

#include <stddef.h>

/* Returns 0, or a negative errno with the reason (naming the path) in err. */
int atomicfile_write(const char *path, const void *data, size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

#endif
