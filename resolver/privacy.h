/* privacy.h -- what a query-log record may say about its client, by the tenant's log privacy
 * mode (docs/querylog.md "Client privacy"): the whole address, a prefix of it, or a keyed
 * pseudonym that stays the same for one UTC day on every node sharing the secret and changes
 * with the day (HMAC-SHA256 under a key derived from the secret and the date).
 *
 * The secret is loaded once and read-only after; each worker thread owns a struct
 * privacy_day (the day's keyed MAC), so nothing here takes a lock.
 */
#ifndef AEGIS_PRIVACY_H
#define AEGIS_PRIVACY_H

#include <stdint.h>

#include "qlog.h"
#include "snapshot.h"

#define PRIVACY_SECRET_MIN 32     /* bytes a secret file holds at least */
#define PRIVACY_SECRET_MAX 4096
#define PRIVACY_PSEUDONYM_LEN 16  /* bytes of the HMAC kept: 32 hex digits in the record */

struct privacy_secret {
	uint8_t master[32];        /* SHA-256 of the secret file's bytes */
};

/* Reads the node's secret from path (32..4096 bytes of anything, e.g. 32 random bytes). 0 or
 * a negative errno, logged. */
int privacy_secret_load(const char *path, struct privacy_secret *s)
	__attribute__((warn_unused_result));

/* A random secret: pseudonyms then hold only within this process's life. */
int privacy_secret_random(struct privacy_secret *s) __attribute__((warn_unused_result));

struct privacy_day;

/* NULL on allocation failure. Keeps a copy of the secret. */
struct privacy_day *privacy_day_new(const struct privacy_secret *s);
void privacy_day_free(struct privacy_day *d);

/* Rewrites the client of rec (whole address in rec->client) for the tenant's mode: full keeps
 * it, truncated keeps trunc_v4/trunc_v6 leading bits, pseudonym replaces it with the day's
 * pseudonym (the day of rec->ts_us). Should the MAC fail, the client becomes the prefix /0:
 * a record never says more than the mode allows, and is never lost for it. */
void privacy_apply(struct privacy_day *d, enum snapshot_privacy mode, uint8_t trunc_v4,
		   uint8_t trunc_v6, struct qlog_record *rec);

#endif
