/* spool.h -- a bounded on-disk FIFO of opaque records that survives a restart.
 *
 * Records are appended to segment files in one folder and read back in order; a record leaves
 * the spool only when the caller confirms it (spool_commit), so a crash between reading and
 * confirming replays it. Every record carries a CRC: a torn or corrupt tail is detected,
 * counted, logged and skipped. The format is in docs/querylog.md. The spool owns its files and
 * buffers; records read are copied into the caller's buffer. One thread at a time.
 */
#ifndef AEGIS_SPOOL_H
#define AEGIS_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct spool;

/* Where a record ends: the position the next one starts at. */
struct spool_pos {
	uint64_t seg;   /* segment sequence number */
	uint64_t off;   /* byte offset in that segment */
};

struct spool_stats {
	uint64_t bytes;           /* size of the segment files on disk */
	uint64_t appended;        /* records appended since open */
	uint64_t refused_full;    /* appends refused because the bound was reached */
	uint64_t corrupt;         /* corrupt or torn stretches skipped (each one logged) */
	uint64_t corrupt_bytes;   /* bytes those stretches held */
	uint64_t write_lost;      /* appended records lost to a failed write (each one logged) */
};

#define SPOOL_RECORD_MAX (1u << 20)   /* no record may be longer */

/* Opens (creating it 0750 if missing) the spool in dir, bounded to max_bytes of segment files
 * (at least 64 KiB). Replay starts at the confirmed cursor left by the last run. A torn last
 * record is cut off and counted. NULL with errno set (and the reason logged) on failure. */
struct spool *spool_open(const char *dir, uint64_t max_bytes);

/* Closes the files (the data written reaches the disk first) and frees. NULL is fine. */
void spool_close(struct spool *s);

/* Appends a record of 1..SPOOL_RECORD_MAX bytes. It is buffered until spool_flush or until the
 * buffer fills. 0, -ENOSPC when the bound would be passed (nothing written, counted), -EINVAL
 * for a bad length, or another negative errno after a failed write (logged). */
int spool_append(struct spool *s, const void *data, size_t len)
	__attribute__((warn_unused_result));

/* Writes buffered records to the segment file (no fsync). 0 or a negative errno; on failure
 * the buffered records are lost, logged and counted in write_lost. */
int spool_flush(struct spool *s);

/* Copies the next unread record into buf (cap >= SPOOL_RECORD_MAX is always enough) and sets
 * *len and *end (where it ends). Returns 1 for a record, 0 when everything appended has been
 * read, or a negative errno. Corrupt stretches are skipped, never returned. */
int spool_read(struct spool *s, void *buf, size_t cap, size_t *len, struct spool_pos *end)
	__attribute__((warn_unused_result));

/* Moves the read position back to the last confirmed position (records read but not confirmed
 * are read again). */
void spool_rewind(struct spool *s);

/* Confirms every record up to pos (a position spool_read returned): they will never be read
 * again, even after a restart. Fully confirmed segments are deleted. 0 or a negative errno. */
int spool_commit(struct spool *s, struct spool_pos pos) __attribute__((warn_unused_result));

/* No record is waiting for confirmation (appended and not yet confirmed). */
bool spool_empty(const struct spool *s);

/* Whether a record of len bytes would fit under the bound now. */
bool spool_fits(const struct spool *s, size_t len);

void spool_get_stats(const struct spool *s, struct spool_stats *st);

#endif
