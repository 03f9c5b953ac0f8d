/* test_privacy.c -- client truncation and daily pseudonyms, against OpenSSL's one-shot HMAC. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "privacy.h"

#define DAY_US 86400000000LL
#define TS_2026_11_25 1795608000000000LL   /* 2026-11-25T12:00:00Z */

static struct qlog_record client(const char *text, int64_t ts_us)
{
	struct qlog_record r;
	memset(&r, 0, sizeof r);
	r.ts_us = ts_us;
	if (inet_pton(AF_INET, text, r.client.addr) == 1) {
		r.client.family = AF_INET;
		r.client.prefix = 32;
	} else {
		cr_assert_eq(inet_pton(AF_INET6, text, r.client.addr), 1, "%s", text);
		r.client.family = AF_INET6;
		r.client.prefix = 128;
	}
	return r;
}

static struct privacy_secret secret_of(const char *bytes)
{
	char path[] = "/tmp/test_privacy.XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, bytes, strlen(bytes)), (ssize_t)strlen(bytes));
	close(fd);
	struct privacy_secret s;
	int rc = privacy_secret_load(path, &s);
	unlink(path);
	cr_assert_eq(rc, 0);
	return s;
}

/* The documented construction, computed independently. */
static void expected_pseudonym(const char *secret, const char *date, const uint8_t *addr,
			       size_t len, uint8_t out[32])
{
	uint8_t master[32], day_key[32];
	unsigned int n;
	char label[64];
	EVP_Digest(secret, strlen(secret), master, &n, EVP_sha256(), NULL);
	snprintf(label, sizeof label, "aegis client pseudonym v1 %s", date);
	HMAC(EVP_sha256(), master, 32, (const uint8_t *)label, strlen(label), day_key, &n);
	HMAC(EVP_sha256(), day_key, 32, addr, len, out, &n);
}

static const char *SECRET = "0123456789abcdef0123456789abcdef-node-secret";

Test(privacy, full_keeps_the_address)
{
	struct privacy_secret s = secret_of(SECRET);
	struct privacy_day *d = privacy_day_new(&s);
	struct qlog_record r = client("192.0.2.44", TS_2026_11_25), before = r;
	privacy_apply(d, SNAPSHOT_PRIVACY_FULL, 24, 48, &r);
	cr_assert_eq(memcmp(&r, &before, sizeof r), 0);
	privacy_day_free(d);
}

Test(privacy, truncated_keeps_the_prefix_only)
{
	struct privacy_secret s = secret_of(SECRET);
	struct privacy_day *d = privacy_day_new(&s);
	char text[INET6_ADDRSTRLEN];

	struct qlog_record r = client("10.1.2.199", TS_2026_11_25);
	privacy_apply(d, SNAPSHOT_PRIVACY_TRUNCATED, 24, 48, &r);
	cr_assert_eq(r.client.prefix, 24);
	cr_assert_str_eq(inet_ntop(AF_INET, r.client.addr, text, sizeof text), "10.1.2.0");

	r = client("10.1.2.199", TS_2026_11_25);
	privacy_apply(d, SNAPSHOT_PRIVACY_TRUNCATED, 20, 48, &r);
	cr_assert_eq(r.client.prefix, 20);
	cr_assert_str_eq(inet_ntop(AF_INET, r.client.addr, text, sizeof text), "10.1.0.0");

	r = client("2001:db8:abcd:1234:5678::1", TS_2026_11_25);
	privacy_apply(d, SNAPSHOT_PRIVACY_TRUNCATED, 24, 52, &r);
	cr_assert_eq(r.client.prefix, 52);
	cr_assert_str_eq(inet_ntop(AF_INET6, r.client.addr, text, sizeof text),
			 "2001:db8:abcd:1000::");

	r = client("192.0.2.1", TS_2026_11_25);
	privacy_apply(d, SNAPSHOT_PRIVACY_TRUNCATED, 0, 0, &r);
	cr_assert_eq(r.client.prefix, 0);
	cr_assert_str_eq(inet_ntop(AF_INET, r.client.addr, text, sizeof text), "0.0.0.0");
	cr_assert_eq(r.client_pseudonym_len, 0);
	privacy_day_free(d);
}

Test(privacy, pseudonym_is_the_documented_hmac)
{
	struct privacy_secret s = secret_of(SECRET);
	struct privacy_day *d = privacy_day_new(&s);
	uint8_t want[32];

	struct qlog_record r = client("192.0.2.44", TS_2026_11_25);
	uint8_t v4[4] = { 192, 0, 2, 44 };
	expected_pseudonym(SECRET, "2026-11-25", v4, 4, want);
	privacy_apply(d, SNAPSHOT_PRIVACY_PSEUDONYM, 24, 48, &r);
	cr_assert_eq(r.client.family, 0, "the address is gone");
	cr_assert_eq(r.client_pseudonym_len, PRIVACY_PSEUDONYM_LEN);
	cr_assert_eq(memcmp(r.client_pseudonym, want, PRIVACY_PSEUDONYM_LEN), 0);

	r = client("2001:db8::1", TS_2026_11_25 + 3600000000LL);
	struct qlog_record copy = client("2001:db8::1", 0);
	expected_pseudonym(SECRET, "2026-11-25", copy.client.addr, 16, want);
	privacy_apply(d, SNAPSHOT_PRIVACY_PSEUDONYM, 24, 48, &r);
	cr_assert_eq(memcmp(r.client_pseudonym, want, PRIVACY_PSEUDONYM_LEN), 0);
	privacy_day_free(d);
}

Test(privacy, pseudonyms_change_with_the_day_and_the_secret)
{
	struct privacy_secret s = secret_of(SECRET);
	struct privacy_secret other = secret_of("another secret of at least thirty-two bytes");
	struct privacy_day *d = privacy_day_new(&s), *e = privacy_day_new(&other);

	struct qlog_record a = client("192.0.2.44", TS_2026_11_25);
	struct qlog_record same_day = client("192.0.2.44", TS_2026_11_25 + 11 * 3600000000LL);
	struct qlog_record next_day = client("192.0.2.44", TS_2026_11_25 + DAY_US);
	struct qlog_record back = client("192.0.2.44", TS_2026_11_25);
	struct qlog_record elsewhere = client("192.0.2.44", TS_2026_11_25);
	struct qlog_record neighbour = client("192.0.2.45", TS_2026_11_25);
	privacy_apply(d, SNAPSHOT_PRIVACY_PSEUDONYM, 24, 48, &a);
	privacy_apply(d, SNAPSHOT_PRIVACY_PSEUDONYM, 24, 48, &same_day);
	privacy_apply(d, SNAPSHOT_PRIVACY_PSEUDONYM, 24, 48, &next_day);
	privacy_apply(d, SNAPSHOT_PRIVACY_PSEUDONYM, 24, 48, &back);
	privacy_apply(d, SNAPSHOT_PRIVACY_PSEUDONYM, 24, 48, &neighbour);
	privacy_apply(e, SNAPSHOT_PRIVACY_PSEUDONYM, 24, 48, &elsewhere);

	cr_assert_eq(memcmp(a.client_pseudonym, same_day.client_pseudonym, 16), 0);
	cr_assert_eq(memcmp(a.client_pseudonym, back.client_pseudonym, 16), 0);
	cr_assert_neq(memcmp(a.client_pseudonym, next_day.client_pseudonym, 16), 0);
	cr_assert_neq(memcmp(a.client_pseudonym, neighbour.client_pseudonym, 16), 0);
	cr_assert_neq(memcmp(a.client_pseudonym, elsewhere.client_pseudonym, 16), 0);
	privacy_day_free(d);
	privacy_day_free(e);
}

Test(privacy, secret_files_of_the_wrong_size_are_refused)
{
	struct privacy_secret s;
	char path[] = "/tmp/test_privacy.XXXXXX";
	int fd = mkstemp(path);
	cr_assert_eq(write(fd, "too short", 9), 9);
	close(fd);
	cr_assert_eq(privacy_secret_load(path, &s), -EINVAL);
	unlink(path);
	cr_assert_eq(privacy_secret_load("/nonexistent/secret", &s), -ENOENT);
}
