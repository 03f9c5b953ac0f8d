/* totp.c -- RFC 6238 TOTP and RFC 4226 HOTP with OpenSSL's HMAC. */
#include "totp.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

int totp_hotp(enum totp_hash hash, const uint8_t *secret, size_t len, uint64_t counter,
	      unsigned digits)
{
	static const uint32_t pow10[] = { 1, 10, 100, 1000, 10000, 100000, 1000000, 10000000,
					  100000000 };
	const EVP_MD *md = hash == TOTP_SHA256 ? EVP_sha256() :
			   hash == TOTP_SHA512 ? EVP_sha512() : EVP_sha1();
	uint8_t msg[8], mac[EVP_MAX_MD_SIZE];
	unsigned mac_len = 0;

	if (digits < 6 || digits > 8)
		return -EINVAL;
	for (int i = 7; i >= 0; i--, counter >>= 8)
		msg[i] = (uint8_t)(counter & 0xff);
	if (!HMAC(md, secret, (int)len, msg, sizeof msg, mac, &mac_len) || mac_len < 20)
		return -EIO;
	/* RFC 4226 5.3: dynamic truncation. */
	unsigned off = mac[mac_len - 1] & 0x0f;
	uint32_t bin = ((uint32_t)(mac[off] & 0x7f) << 24) | ((uint32_t)mac[off + 1] << 16) |
		       ((uint32_t)mac[off + 2] << 8) | mac[off + 3];
	return (int)(bin % pow10[digits]);
}

int totp_check(const uint8_t *secret, size_t len, const char *code, int64_t now,
	       int64_t *last_step)
{
	char want[16];
	if (!code || strlen(code) != 6 || strspn(code, "0123456789") != 6 || now < 0)
		return -EACCES;
	int64_t step = now / TOTP_STEP_SECONDS;
	int ok_step = -1;
	for (int d = -1; d <= 1; d++) {
		int v = totp_hotp(TOTP_SHA1, secret, len, (uint64_t)(step + d), 6);
		if (v < 0)
			return v;
		snprintf(want, sizeof want, "%06d", v);
		/* Try every window so the time taken does not say which step matched. */
		if (CRYPTO_memcmp(want, code, 6) == 0 && step + d > *last_step)
			ok_step = d + 1;
	}
	if (ok_step < 0)
		return -EACCES;
	*last_step = step + ok_step - 1;
	return 0;
}

void totp_base32(const uint8_t *in, size_t len, char *out, size_t cap)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
	size_t o = 0;
	unsigned buf = 0, bits = 0;
	for (size_t i = 0; i < len; i++) {
		buf = (buf << 8) | in[i];
		bits += 8;
		while (bits >= 5 && o + 1 < cap) {
			out[o++] = alphabet[(buf >> (bits - 5)) & 31];
			bits -= 5;
		}
	}
	if (bits > 0 && o + 1 < cap)
		out[o++] = alphabet[(buf << (5 - bits)) & 31];
	if (cap)
		out[o] = '\0';
}

int totp_seal(const uint8_t key[32], uint8_t key_id, const char *user_id,
	      const uint8_t secret[TOTP_SECRET_LEN], uint8_t out[TOTP_SEALED_LEN])
{
	int n = 0, ok;
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	out[0] = 1;
	out[1] = key_id;
	ok = RAND_bytes(out + 2, 12) == 1 &&
	     EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, out + 2) == 1 &&
	     EVP_EncryptUpdate(ctx, NULL, &n, (const uint8_t *)user_id, (int)strlen(user_id)) == 1 &&
	     EVP_EncryptUpdate(ctx, out + 14, &n, secret, TOTP_SECRET_LEN) == 1 &&
	     EVP_EncryptFinal_ex(ctx, out + 14 + n, &n) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, 16, out + 14 + TOTP_SECRET_LEN) == 1;
	EVP_CIPHER_CTX_free(ctx);
	return ok ? 0 : -EIO;
}

int totp_open(const uint8_t key[32], const char *user_id, const uint8_t *in, size_t len,
	      uint8_t secret[TOTP_SECRET_LEN])
{
	int n = 0, ok;
	uint8_t tag[16];
	if (len != TOTP_SEALED_LEN || in[0] != 1)
		return -EINVAL;
	memcpy(tag, in + 14 + TOTP_SECRET_LEN, sizeof tag);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	if (!ctx)
		return -ENOMEM;
	ok = EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, key, in + 2) == 1 &&
	     EVP_DecryptUpdate(ctx, NULL, &n, (const uint8_t *)user_id, (int)strlen(user_id)) == 1 &&
	     EVP_DecryptUpdate(ctx, secret, &n, in + 14, TOTP_SECRET_LEN) == 1 &&
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, 16, tag) == 1 &&
	     EVP_DecryptFinal_ex(ctx, secret + n, &n) == 1;
	EVP_CIPHER_CTX_free(ctx);
	if (!ok)
		OPENSSL_cleanse(secret, TOTP_SECRET_LEN);
	return ok ? 0 : -EACCES;
}
