/* token.c -- random bearer tokens and their SHA-256 digests. */
#include "token.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

static const char b64url[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Unpadded base64url of len bytes; writes ceil(len * 4 / 3) characters and a NUL. */
static void encode(const unsigned char *in, size_t len, char *out)
{
	size_t o = 0;
	unsigned buf = 0, bits = 0;
	for (size_t i = 0; i < len; i++) {
		buf = (buf << 8) | in[i];
		bits += 8;
		while (bits >= 6) {
			out[o++] = b64url[(buf >> (bits - 6)) & 63];
			bits -= 6;
		}
	}
	if (bits)
		out[o++] = b64url[(buf << (6 - bits)) & 63];
	out[o] = '\0';
}

static bool all_b64url(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!s[i] || !strchr(b64url, s[i]))
			return false;
	return true;
}

int token_random(unsigned char *out, size_t len)
{
	return RAND_bytes(out, (int)len) == 1 ? 0 : -EIO;
}

int token_new_api_key(char key[TOKEN_MAX], char prefix[TOKEN_PREFIX_LEN + 1])
{
	unsigned char p[9], s[32];
	char secret[TOKEN_SECRET_LEN + 1];
	if (token_random(p, sizeof p) < 0 || token_random(s, sizeof s) < 0)
		return -EIO;
	encode(p, sizeof p, prefix);
	encode(s, sizeof s, secret);
	snprintf(key, TOKEN_MAX, "ak.%s.%s", prefix, secret);
	return 0;
}

int token_new_session(char token[TOKEN_MAX])
{
	unsigned char s[32];
	char secret[TOKEN_SECRET_LEN + 1];
	if (token_random(s, sizeof s) < 0)
		return -EIO;
	encode(s, sizeof s, secret);
	snprintf(token, TOKEN_MAX, "as.%s", secret);
	return 0;
}

bool token_api_key_prefix(const char *token, char prefix[TOKEN_PREFIX_LEN + 1])
{
	if (strlen(token) != 3 + TOKEN_PREFIX_LEN + 1 + TOKEN_SECRET_LEN ||
	    strncmp(token, "ak.", 3) != 0 || token[3 + TOKEN_PREFIX_LEN] != '.' ||
	    !all_b64url(token + 3, TOKEN_PREFIX_LEN) ||
	    !all_b64url(token + 4 + TOKEN_PREFIX_LEN, TOKEN_SECRET_LEN))
		return false;
	memcpy(prefix, token + 3, TOKEN_PREFIX_LEN);
	prefix[TOKEN_PREFIX_LEN] = '\0';
	return true;
}

bool token_is_session(const char *token)
{
	return strlen(token) == 3 + TOKEN_SECRET_LEN && strncmp(token, "as.", 3) == 0 &&
	       all_b64url(token + 3, TOKEN_SECRET_LEN);
}

void token_hash_hex(const char *token, char out[TOKEN_HASH_HEX])
{
	unsigned char md[32];
	unsigned len = 0;
	EVP_Digest(token, strlen(token), md, &len, EVP_sha256(), NULL);
	out[0] = '\\';
	out[1] = 'x';
	for (unsigned i = 0; i < 32; i++)
		snprintf(out + 2 + 2 * i, 3, "%02x", md[i]);
}
