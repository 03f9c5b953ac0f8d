/* cleanup.h -- scope-bound release of resources, so early returns cannot leak.
 *
 *   auto_free char *s = strdup(x);     freed with free() when s leaves scope
 *   auto_close int fd = open(...);     closed when fd leaves scope (if >= 0)
 *   auto_fclose FILE *f = fopen(...);  fclose()d when f leaves scope (if non-NULL)
 *
 * Hand ownership elsewhere by setting the variable to NULL (or -1) first.
 */
#ifndef AEGIS_CLEANUP_H
#define AEGIS_CLEANUP_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void cleanup_free(void *p)
{
	free(*(void **)p);
}

static inline void cleanup_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
}

static inline void cleanup_fclose(FILE **f)
{
	if (*f)
		fclose(*f);
}

#define auto_free   __attribute__((cleanup(cleanup_free)))
#define auto_close  __attribute__((cleanup(cleanup_close)))
#define auto_fclose __attribute__((cleanup(cleanup_fclose)))

#endif
