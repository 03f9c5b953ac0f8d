/* store.h -- logpipe's side of PostgreSQL: one connection, one batch per transaction, and
 * the partition and retention upkeep of query_log.
 *
 * store_write() sends entries of a batch into query_log and the three rollups in ONE
 * transaction (COPY into a temporary staging table, then one INSERT feeding the rollups), so a
 * row and its counts commit together or not at all. A batch holding a record stored before
 * is redone with INSERT ... ON CONFLICT DO NOTHING RETURNING, counting only the new rows, so a
 * re-delivered record is neither stored nor counted twice. The store owns its connection; it
 * reconnects when asked after a failure.
 */
#ifndef AEGIS_LOGPIPE_STORE_H
#define AEGIS_LOGPIPE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct batch;
struct store;

enum store_status {
	STORE_OK,
	STORE_REFUSED,  /* PostgreSQL refused the data (SQLSTATE class 22, 23 or 54): bisect */
	STORE_RETRY,    /* a deadlock or serialisation failure: the same again will do */
	STORE_DOWN,     /* no connection, or another failure: back off, reconnect, retry */
};

struct store *store_new(const char *dsn) __attribute__((warn_unused_result));
void store_free(struct store *s);

/* Connects if not connected (and sets up the staging table). 0, or -1 after logging. */
int store_connect(struct store *s) __attribute__((warn_unused_result));
bool store_connected(const struct store *s);

/* Stores the rows of entries [lo, hi) of b in one transaction. On STORE_OK *inserted is the
 * number of rows that were new; on STORE_REFUSED why holds the SQLSTATE and message. Days the
 * rows fall in get their partition first (query_log_ensure_partitions), and a row that still
 * finds none makes the store create it and try once more. */
enum store_status store_write(struct store *s, const struct batch *b, size_t lo, size_t hi,
			      long long *inserted, char *why, size_t whylen)
	__attribute__((warn_unused_result));

/* query_log_ensure_partitions(from_day, days), from_day in days since 1970-01-01. Returns
 * how many partitions it created, or -1 after logging. */
int store_ensure_partitions(struct store *s, int32_t from_day, int days)
	__attribute__((warn_unused_result));

/* query_log_apply_retention(default_days => default_days), unless another process holds the
 * retention lock (then *ran is false). 0, or -1 after logging. */
int store_apply_retention(struct store *s, int default_days, bool *ran, long long *dropped,
			  long long *deleted) __attribute__((warn_unused_result));

#endif
