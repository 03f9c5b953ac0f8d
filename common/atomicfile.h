/* atomicfile.h -- replace a file so readers see the old content or the new, never half.
 *
 * A temporary file beside the target, fsync, rename over it, fsync of the folder: a crash can
 * leave the old file or the new one, not an empty or partial one. Used for everything a
 * daemon must find intact after a restart (policy snapshots). atomicfile_read() reads such a
 * file back whole; the caller frees what it returns.
 */
#ifndef AEGIS_ATOMICFILE_H
#define AEGIS_ATOMICFILE_H

#include <stddef.h>

/* Returns 0, or a negative errno with the reason (naming the path) in err. */
int atomicfile_write(const char *path, const void *data, size_t len, char *err, size_t errlen)
	__attribute__((warn_unused_result));

/* The whole file in one malloc'd buffer (at least one byte allocated, so an empty file is not
 * NULL), its size in *len; NULL with errno set when it cannot be read. */
void *atomicfile_read(const char *path, size_t *len) __attribute__((warn_unused_result));

#endif
