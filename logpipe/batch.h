/* batch.h -- the records logpipe has taken from Kafka and not yet committed: their COPY rows
 * in one buffer, and for each record its partition, offset and message.
 *
 * A batch is due when it holds max_records entries or its first entry is max_us old. Entries
 * keep the order they were added in. The batch owns its buffers; the messages stay the
 * caller's, handed back to a release function by batch_clear().
 */
#ifndef AEGIS_LOGPIPE_BATCH_H
#define AEGIS_LOGPIPE_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct batch_entry {
	int32_t partition;
	int64_t offset;
	void *msg;            /* the caller's message, for dead-lettering it */
	size_t start, len;    /* its row in batch.text; len 0: no row */
	int32_t day;          /* UTC day of the row, days since 1970-01-01 */
	int dead;             /* > 0: goes to the dead-letter topic, for this reason (caller's
				 code) */
	char *why;            /* ... with this text (owned by the batch) */
};

struct batch {
	struct batch_entry *e;
	size_t n, cap;
	char *text;           /* the rows, one COPY line each, in entry order */
	size_t text_len, text_cap;
	int64_t first_us;     /* monotonic time the first entry was added */
};

/* A partition and the offset to commit for it: the last offset in the batch plus one. */
struct batch_offset {
	int32_t partition;
	int64_t next;
};

void batch_init(struct batch *b);

/* Adds a record with its row. Returns 0 or -ENOMEM. */
int batch_add(struct batch *b, int32_t partition, int64_t offset, void *msg, const char *row,
	      size_t len, int32_t day, int64_t now_us) __attribute__((warn_unused_result));

/* Adds a record that has no row and must be dead-lettered for reason (> 0), why (copied).
 * Returns 0 or -ENOMEM. */
int batch_add_dead(struct batch *b, int32_t partition, int64_t offset, void *msg, int reason,
		   const char *why, int64_t now_us) __attribute__((warn_unused_result));

/* Turns entry i into one to dead-letter (its row is dropped): PostgreSQL refused it. Returns
 * 0 or -ENOMEM (then the entry is unchanged). */
int batch_kill(struct batch *b, size_t i, int reason, const char *why)
	__attribute__((warn_unused_result));

/* Entries that still carry a row. */
size_t batch_rows(const struct batch *b);

bool batch_due(const struct batch *b, size_t max_records, int64_t max_us, int64_t now_us);

/* The offsets to commit once every entry is stored or dead-lettered: one per partition, in
 * order of first appearance. Writes at most cap and returns how many partitions there are. */
size_t batch_offsets(const struct batch *b, struct batch_offset *out, size_t cap);

/* The distinct days of the rows in entries [lo, hi), ascending, into out. Returns how many,
 * or cap + 1 when there are more than cap (out then holds cap of them). */
size_t batch_days(const struct batch *b, size_t lo, size_t hi, int32_t *out, size_t cap);

/* Empties the batch, passing each message to release (if not NULL). */
void batch_clear(struct batch *b, void (*release)(void *msg));

void batch_free(struct batch *b, void (*release)(void *msg));

#endif
