/* token.h -- the bearer secrets the API hands out: API keys and session tokens.
 *
 * An API key reads "ak.<prefix>.<secret>": a 12-character public prefix (the row's
 * api_keys.prefix, 72 random bits) and 43 characters holding 256 random bits, both unpadded
 * base64url. A session token reads "as.<secret>" with the same 256-bit secret. The database
 * keeps only SHA-256 of the whole token, passed to SQL as bytea hex text ("\x..."). All
 * buffers are the caller's.
 */
#ifndef AEGIS_PORTAL_TOKEN_H
#define AEGIS_PORTAL_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define TOKEN_PREFIX_LEN 12
#define TOKEN_SECRET_LEN 43
#define TOKEN_MAX 64                       /* longest token and its NUL */
#define TOKEN_HASH_HEX 67                  /* "\x" + 64 hex digits + NUL */

/* New random API key and its prefix; 0 or -EIO when the random generator fails. */
int token_new_api_key(char key[TOKEN_MAX], char prefix[TOKEN_PREFIX_LEN + 1])
	__attribute__((warn_unused_result));
int token_new_session(char token[TOKEN_MAX]) __attribute__((warn_unused_result));

/* Splits a presented API key: true and the prefix when it has the API-key shape. */
bool token_api_key_prefix(const char *token, char prefix[TOKEN_PREFIX_LEN + 1]);
bool token_is_session(const char *token);

/* SHA-256 of token as bytea hex text for SQL. */
void token_hash_hex(const char *token, char out[TOKEN_HASH_HEX]);

/* Fills out with len random bytes; 0 or -EIO. */
int token_random(unsigned char *out, size_t len) __attribute__((warn_unused_result));

#endif
