/* feeds.h -- keeps the feeds' names in feed_entries current.
 *
 * A thread of its own (fetching may take minutes; compiles must not wait) on its own
 * database session. Only the instance holding the feeds advisory lock refreshes; the others
 * retry it. Every few seconds it refreshes the enabled feeds whose refresh interval has
 * passed: fetch (a file path, or http/https with ETag and Last-Modified), parse
 * (feed_parse.h), and replace the feed's entries in one transaction, recording added,
 * removed and invalid counts in feed_refreshes. A feed that fails to fetch or parse keeps
 * its last good entries and is marked stale (error if it never loaded) with the reason. The
 * commit notifies tenantd's compiler like any other policy change.
 */
#ifndef AEGIS_FEEDS_H
#define AEGIS_FEEDS_H

#include <stddef.h>

struct feeds;

struct feeds_config {
	const char *dsn;
	unsigned check_interval_s;  /* how often due feeds are looked for */
	unsigned fetch_timeout_s;
	size_t max_bytes;           /* a larger document is refused */
};

struct feeds *feeds_start(const struct feeds_config *cfg);
void feeds_stop(struct feeds *f);

/* Refreshes one feed now (by name), on the calling thread: for the command line and tests.
 * Returns 0 when the feed loaded (updated or unchanged), -1 when it failed (recorded). */
int feeds_refresh_named(const char *dsn, const char *name, size_t max_bytes,
			unsigned timeout_s);

#endif
