/* test_portal_auth.c -- the portal's secrets: scrypt password strings, RFC 4226/6238 codes,
 * sealed TOTP secrets, bearer token shapes. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "password.h"
#include "throttle.h"
#include "token.h"
#include "totp.h"

Test(password, round_trip_and_phc_shape)
{
	char h[PASSWORD_HASH_MAX];
	cr_assert_eq(password_hash("correct horse battery", 10, 8, 1, h), 0);
	cr_assert(strncmp(h, "$scrypt$ln=10,r=8,p=1$", 22) == 0, "%s", h);
	cr_assert(password_verify("correct horse battery", h));
	cr_assert_not(password_verify("correct horse batterx", h));
	cr_assert_not(password_verify("", h));
	char h2[PASSWORD_HASH_MAX];
	cr_assert_eq(password_hash("correct horse battery", 10, 8, 1, h2), 0);
	cr_assert_str_neq(h, h2, "a fresh salt every time");
}

/* RFC 7914 section 12, second vector (N = 1024, r = 8, p = 16): the first 32 bytes of the
 * 64-byte output, as PBKDF2's first block does not depend on the length asked for. */
Test(password, rfc7914_known_answer)
{
	const char *stored = "$scrypt$ln=10,r=8,p=16$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI";
	cr_assert(password_verify("password", stored));
	cr_assert_not(password_verify("Password", stored));
}

Test(password, refuses_costs_out_of_range_and_malformed_strings)
{
	char h[PASSWORD_HASH_MAX];
	cr_assert_eq(password_hash("x", PASSWORD_LN_MIN - 1, 8, 1, h), -EINVAL);
	cr_assert_eq(password_hash("x", PASSWORD_LN_MAX + 1, 8, 1, h), -EINVAL);
	cr_assert_eq(password_hash("x", 10, 0, 1, h), -EINVAL);
	cr_assert_eq(password_hash("x", 10, 8, 17, h), -EINVAL);
	const char *bad[] = {
		NULL, "", "$scrypt$", "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
		"$scrypt$ln=30,r=8,p=1$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",
		"$scrypt$ln=10,r=8,p=16$TmFDbA$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MW",
		"$scrypt$ln=10,r=8,p=16$TmFD*A$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",
		"$scrypt$ln=10,r=8,p=16$$/bq+HJ00cgB4VucZDQHp/nxq18vII3gw53N2Y0s3MWI",
		"$scrypt$ln=10,r=8,p=16$TmFDbA",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_not(password_verify("password", bad[i]), "case %zu", i);
}

Test(hotp, rfc4226_appendix_d)
{
	static const int want[] = { 755224, 287082, 359152, 969429, 338314,
				    254676, 287922, 162583, 399871, 520489 };
	const uint8_t *k = (const uint8_t *)"12345678901234567890";
	for (uint64_t c = 0; c < 10; c++)
		cr_assert_eq(totp_hotp(TOTP_SHA1, k, 20, c, 6), want[c], "counter %lu", (unsigned long)c);
}

Test(totp, rfc6238_appendix_b)
{
	static const long long times[] = { 59, 1111111109, 1111111111, 1234567890, 2000000000,
					   20000000000LL };
	static const int sha1[] = { 94287082, 7081804, 14050471, 89005924, 69279037, 65353130 };
	static const int sha256[] = { 46119246, 68084774, 67062674, 91819424, 90698825, 77737706 };
	static const int sha512[] = { 90693936, 25091201, 99943326, 93441116, 38618901, 47863826 };
	const uint8_t *k20 = (const uint8_t *)"12345678901234567890";
	const uint8_t *k32 = (const uint8_t *)"12345678901234567890123456789012";
	const uint8_t *k64 = (const uint8_t *)"1234567890123456789012345678901234567890"
					      "123456789012345678901234";
	for (int i = 0; i < 6; i++) {
		uint64_t step = (uint64_t)times[i] / 30;
		cr_assert_eq(totp_hotp(TOTP_SHA1, k20, 20, step, 8), sha1[i], "t=%lld", times[i]);
		cr_assert_eq(totp_hotp(TOTP_SHA256, k32, 32, step, 8), sha256[i], "t=%lld", times[i]);
		cr_assert_eq(totp_hotp(TOTP_SHA512, k64, 64, step, 8), sha512[i], "t=%lld", times[i]);
	}
	cr_assert_eq(totp_hotp(TOTP_SHA1, k20, 20, 1, 5), -EINVAL);
}

Test(totp, window_and_replay)
{
	const uint8_t *k = (const uint8_t *)"12345678901234567890";
	char code[8];
	int64_t now = 1111111111, last = 0;
	snprintf(code, sizeof code, "%06d", totp_hotp(TOTP_SHA1, k, 20, (uint64_t)now / 30 - 1, 6));
	cr_assert_eq(totp_check(k, 20, code, now, &last), 0, "one step of drift is accepted");
	cr_assert_eq(last, now / 30 - 1);
	cr_assert_eq(totp_check(k, 20, code, now, &last), -EACCES, "but only once");
	snprintf(code, sizeof code, "%06d", totp_hotp(TOTP_SHA1, k, 20, (uint64_t)now / 30 + 2, 6));
	cr_assert_eq(totp_check(k, 20, code, now, &last), -EACCES, "two steps ahead is too far");
	snprintf(code, sizeof code, "%06d", totp_hotp(TOTP_SHA1, k, 20, (uint64_t)now / 30, 6));
	cr_assert_eq(totp_check(k, 20, code, now, &last), 0);
	cr_assert_eq(totp_check(k, 20, "12345", now, &last), -EACCES);
	cr_assert_eq(totp_check(k, 20, "12345a", now, &last), -EACCES);
	cr_assert_eq(totp_check(k, 20, NULL, now, &last), -EACCES);
}

Test(totp, sealed_secret_opens_only_for_its_user_and_key)
{
	uint8_t key[32], other[32], secret[TOTP_SECRET_LEN], back[TOTP_SECRET_LEN];
	uint8_t sealed[TOTP_SEALED_LEN];
	memset(key, 7, sizeof key);
	memset(other, 8, sizeof other);
	memset(secret, 0x5a, sizeof secret);
	const char *alice = "11111111-1111-4111-8111-111111111111";
	const char *bob = "22222222-2222-4222-8222-222222222222";
	cr_assert_eq(totp_seal(key, 1, alice, secret, sealed), 0);
	cr_assert_eq(sealed[0], 1);
	cr_assert(memmem(sealed, sizeof sealed, secret, 8) == NULL, "not in clear");
	cr_assert_eq(totp_open(key, alice, sealed, sizeof sealed, back), 0);
	cr_assert_arr_eq(back, secret, sizeof secret);
	cr_assert_eq(totp_open(key, bob, sealed, sizeof sealed, back), -EACCES);
	cr_assert_eq(totp_open(other, alice, sealed, sizeof sealed, back), -EACCES);
	sealed[20] ^= 1;
	cr_assert_eq(totp_open(key, alice, sealed, sizeof sealed, back), -EACCES);
	cr_assert_eq(totp_open(key, alice, sealed, sizeof sealed - 1, back), -EINVAL);
}

Test(totp, base32)
{
	char out[64];
	totp_base32((const uint8_t *)"foobar", 6, out, sizeof out);
	cr_assert_str_eq(out, "MZXW6YTBOI", "RFC 4648 section 10, without padding");
	totp_base32((const uint8_t *)"", 0, out, sizeof out);
	cr_assert_str_eq(out, "");
}

Test(token, shapes)
{
	char key[TOKEN_MAX], prefix[TOKEN_PREFIX_LEN + 1], got[TOKEN_PREFIX_LEN + 1];
	char session[TOKEN_MAX], hash[TOKEN_HASH_HEX];
	cr_assert_eq(token_new_api_key(key, prefix), 0);
	cr_assert_eq(strlen(key), 3 + 12 + 1 + 43, "%s", key);
	cr_assert(token_api_key_prefix(key, got));
	cr_assert_str_eq(got, prefix);
	cr_assert_not(token_is_session(key));
	cr_assert_eq(token_new_session(session), 0);
	cr_assert(token_is_session(session));
	cr_assert_not(token_api_key_prefix(session, got));
	key[20] = '!';
	cr_assert_not(token_api_key_prefix(key, got));
	cr_assert_not(token_api_key_prefix("ak.short.secret", got));
	token_hash_hex("abc", hash);
	cr_assert_str_eq(hash, "\\xba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

Test(throttle, token_bucket_per_key)
{
	unsigned retry = 0;
	struct throttle *t = throttle_new(2, 3);   /* 2 per second, bursts of 3 */
	cr_assert_not_null(t);
	uint64_t now = 1000000;
	for (int i = 0; i < 3; i++)
		cr_assert(throttle_allow(t, "key-a", now, &retry), "burst %d", i);
	cr_assert_not(throttle_allow(t, "key-a", now, &retry));
	cr_assert_eq(retry, 1);
	cr_assert(throttle_allow(t, "key-b", now, &retry), "another key, another bucket");
	cr_assert(throttle_allow(t, "key-a", now + 500000, &retry), "half a second: one token back");
	cr_assert_not(throttle_allow(t, "key-a", now + 500000, &retry));
	cr_assert(throttle_allow(t, "key-a", now + 60000000, &retry));
	throttle_free(t);
	cr_assert_null(throttle_new(0, 10), "rate 0: no limit");
	cr_assert(throttle_allow(NULL, "x", now, &retry));
}
