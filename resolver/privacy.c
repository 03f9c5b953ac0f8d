/* privacy.c -- client truncation and daily keyed pseudonyms for the query log. */
#include "privacy.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define US_PER_DAY 86400000000LL

struct privacy_day {
	struct privacy_secret secret;
	EVP_MAC *mac;
	EVP_MAC_CTX *ctx;     /* keyed with the key of day; reused per record */
	int64_t day;          /* days since the epoch (UTC) of the current key; -1 = none */
};

int privacy_secret_load(const char *path, struct privacy_secret *s)
{
	uint8_t buf[PRIVACY_SECRET_MAX + 1];
	ssize_t n;
	size_t len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		int e = errno;
		log_err("privacy_secret_unreadable", "path=\"%s\" error=\"%s\"", path, strerror(e));
		return -e;
	}
	while (len < sizeof buf && (n = read(fd, buf + len, sizeof buf - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (len < PRIVACY_SECRET_MIN || len > PRIVACY_SECRET_MAX) {
		log_err("privacy_secret_bad_size", "path=\"%s\" bytes=%zu want=\"%d..%d\"", path,
			len, PRIVACY_SECRET_MIN, PRIVACY_SECRET_MAX);
		OPENSSL_cleanse(buf, sizeof buf);
		return -EINVAL;
	}
	unsigned int out = 0;
	int ok = EVP_Digest(buf, len, s->master, &out, EVP_sha256(), NULL);
	OPENSSL_cleanse(buf, sizeof buf);
	return ok ? 0 : -EIO;
}

int privacy_secret_random(struct privacy_secret *s)
{
	return RAND_bytes(s->master, sizeof s->master) == 1 ? 0 : -EIO;
}

struct privacy_day *privacy_day_new(const struct privacy_secret *s)
{
	struct privacy_day *d = calloc(1, sizeof *d);
	if (!d)
		return NULL;
	d->secret = *s;
	d->day = -1;
	d->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!d->mac || !(d->ctx = EVP_MAC_CTX_new(d->mac))) {
		privacy_day_free(d);
		return NULL;
	}
	return d;
}

void privacy_day_free(struct privacy_day *d)
{
	if (!d)
		return;
	EVP_MAC_CTX_free(d->ctx);
	EVP_MAC_free(d->mac);
	OPENSSL_cleanse(d, sizeof *d);
	free(d);
}

/* Keys ctx for HMAC-SHA256; a NULL key re-initialises it with the key it has. */
static bool mac_init(EVP_MAC_CTX *ctx, const uint8_t *key, size_t key_len)
{
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
		OSSL_PARAM_construct_end(),
	};
	return EVP_MAC_init(ctx, key, key_len, key ? params : NULL);
}

static bool mac_sum(EVP_MAC_CTX *ctx, const void *msg, size_t len, uint8_t out[32])
{
	size_t out_len = 0;
	return EVP_MAC_update(ctx, msg, len) && EVP_MAC_final(ctx, out, &out_len, 32) &&
	       out_len == 32;
}

/* The key of a day: HMAC-SHA256(master, "aegis client pseudonym v1 YYYY-MM-DD"). ctx is
 * left keyed with it, so each record costs only a re-init, an update and a final. */
static bool key_day(struct privacy_day *d, int64_t day)
{
	time_t t = (time_t)(day * 86400);
	struct tm tm;
	char label[64];
	uint8_t key[32];

	gmtime_r(&t, &tm);
	int n = snprintf(label, sizeof label, "aegis client pseudonym v1 %04d-%02d-%02d",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	bool ok = mac_init(d->ctx, d->secret.master, sizeof d->secret.master) &&
		  mac_sum(d->ctx, label, (size_t)n, key) && mac_init(d->ctx, key, sizeof key);
	OPENSSL_cleanse(key, sizeof key);
	d->day = ok ? day : -1;
	return ok;
}

static void truncate_to(struct qlog_addr *a, unsigned bits)
{
	unsigned max = a->family == AF_INET ? 32 : 128;
	if (bits > max)
		bits = max;
	for (unsigned i = 0; i < max / 8; i++) {
		unsigned keep = bits > i * 8 ? bits - i * 8 : 0;
		if (keep < 8)
			a->addr[i] &= (uint8_t)(0xff00u >> keep);
	}
	a->prefix = (uint8_t)bits;
}

void privacy_apply(struct privacy_day *d, enum snapshot_privacy mode, uint8_t trunc_v4,
		   uint8_t trunc_v6, struct qlog_record *rec)
{
	struct qlog_addr *a = &rec->client;

	if (mode == SNAPSHOT_PRIVACY_FULL || !a->family)
		return;
	if (mode == SNAPSHOT_PRIVACY_TRUNCATED) {
		truncate_to(a, a->family == AF_INET ? trunc_v4 : trunc_v6);
		return;
	}
	int64_t day = rec->ts_us / US_PER_DAY;
	uint8_t mac[32];
	if ((day == d->day || key_day(d, day)) && mac_init(d->ctx, NULL, 0) &&
	    mac_sum(d->ctx, a->addr, a->family == AF_INET ? 4 : 16, mac)) {
		memcpy(rec->client_pseudonym, mac, PRIVACY_PSEUDONYM_LEN);
		rec->client_pseudonym_len = PRIVACY_PSEUDONYM_LEN;
		memset(a, 0, sizeof *a);
		return;
	}
	d->day = -1;
	truncate_to(a, 0);
}
