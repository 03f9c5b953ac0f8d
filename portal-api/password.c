/* password.c -- scrypt (EVP_KDF "SCRYPT") password hashes in PHC string form. */
#include "password.h"

#include <errno.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define SALT_LEN 16
#define KEY_LEN 32

static int scrypt(const char *password, const unsigned char *salt, size_t salt_len,
		  unsigned ln, unsigned r, unsigned p, unsigned char key[KEY_LEN])
{
	uint64_t n = (uint64_t)1 << ln;
	uint32_t rr = r, pp = p;
	/* N * r * 128 bytes for V, plus p * r * 128 for B: allow exactly what the cost needs. */
	uint64_t maxmem = (n + p + 2) * (uint64_t)r * 128u + (1u << 20);
	EVP_KDF *kdf = EVP_KDF_fetch(NULL, "SCRYPT", NULL);
	if (!kdf)
		return -EIO;
	EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
	EVP_KDF_free(kdf);
	if (!ctx)
		return -ENOMEM;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD, (void *)password,
						  strlen(password)),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, (void *)salt, salt_len),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &rr),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &pp),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
		OSSL_PARAM_construct_end(),
	};
	int ok = EVP_KDF_derive(ctx, key, KEY_LEN, params);
	EVP_KDF_CTX_free(ctx);
	return ok == 1 ? 0 : -EIO;
}

/* Unpadded standard base64, as PHC strings use. */
static void b64_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
	unsigned char buf[64];
	int n = EVP_EncodeBlock(buf, in, (int)len);
	while (n > 0 && buf[n - 1] == '=')
		n--;
	size_t m = (size_t)n < cap - 1 ? (size_t)n : cap - 1;
	memcpy(out, buf, m);
	out[m] = '\0';
}

/* Decodes into out (cap bytes); returns the length, or -EINVAL. */
static int b64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
	char buf[64];
	unsigned char dec[64];
	if (len + 3 > sizeof buf)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = in[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '+' || c == '/'))
			return -EINVAL;
	}
	memcpy(buf, in, len);
	size_t padded = len;
	while (padded % 4)
		buf[padded++] = '=';
	int n = EVP_DecodeBlock(dec, (unsigned char *)buf, (int)padded);
	if (n < 0)
		return -EINVAL;
	n -= (int)(padded - len);   /* EVP_DecodeBlock counts padding as zero bytes */
	if (n <= 0 || (size_t)n > cap)
		return -EINVAL;
	memcpy(out, dec, (size_t)n);
	return n;
}

int password_hash(const char *password, unsigned ln, unsigned r, unsigned p,
		  char out[PASSWORD_HASH_MAX])
{
	unsigned char salt[SALT_LEN], key[KEY_LEN];
	char salt64[32], key64[64];

	if (ln < PASSWORD_LN_MIN || ln > PASSWORD_LN_MAX || r < 1 || r > 32 || p < 1 || p > 16)
		return -EINVAL;
	if (RAND_bytes(salt, sizeof salt) != 1)
		return -EIO;
	int rc = scrypt(password, salt, sizeof salt, ln, r, p, key);
	if (rc < 0)
		return rc;
	b64_encode(salt, sizeof salt, salt64, sizeof salt64);
	b64_encode(key, sizeof key, key64, sizeof key64);
	OPENSSL_cleanse(key, sizeof key);
	snprintf(out, PASSWORD_HASH_MAX, "$scrypt$ln=%u,r=%u,p=%u$%s$%s", ln, r, p, salt64, key64);
	return 0;
}

bool password_verify(const char *password, const char *stored)
{
	unsigned ln, r, p;
	int used = 0;
	unsigned char salt[48], key[KEY_LEN], want[KEY_LEN];

	if (!stored || sscanf(stored, "$scrypt$ln=%u,r=%u,p=%u$%n", &ln, &r, &p, &used) != 3 ||
	    used == 0)
		return false;
	if (ln < PASSWORD_LN_MIN || ln > PASSWORD_LN_MAX || r < 1 || r > 32 || p < 1 || p > 16)
		return false;
	const char *s = stored + used, *dollar = strchr(s, '$');
	int salt_len;
	if (!dollar || (salt_len = b64_decode(s, (size_t)(dollar - s), salt, sizeof salt)) < 1 ||
	    b64_decode(dollar + 1, strlen(dollar + 1), want, sizeof want) != KEY_LEN)
		return false;
	if (scrypt(password, salt, (size_t)salt_len, ln, r, p, key) < 0) {
		log_err("password_kdf_failed");
		return false;
	}
	bool ok = CRYPTO_memcmp(key, want, sizeof key) == 0;
	OPENSSL_cleanse(key, sizeof key);
	return ok;
}
