/* password.h -- password hashing with OpenSSL's scrypt KDF, stored as PHC strings.
 *
 * A hash reads "$scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt>$<hash>" with the salt (16 random
 * bytes) and the 32-byte derived key in unpadded standard base64, as users.password_hash
 * expects. Verification reads the parameters from the string, so raising the cost later
 * leaves old hashes valid. Nothing here allocates memory the caller must free.
 */
#ifndef AEGIS_PORTAL_PASSWORD_H
#define AEGIS_PORTAL_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>

#define PASSWORD_HASH_MAX 160
#define PASSWORD_MIN_LEN 12
#define PASSWORD_MAX_LEN 1024

/* Cost limits accepted from configuration and from stored strings: N = 2^ln, memory about
 * 128 * r * N bytes (ln 15, r 8: 32 MiB). */
#define PASSWORD_LN_MIN 10
#define PASSWORD_LN_MAX 20

/* Hashes password into out (PASSWORD_HASH_MAX bytes). 0, or -EINVAL / -ENOMEM / -EIO. */
int password_hash(const char *password, unsigned ln, unsigned r, unsigned p,
		  char out[PASSWORD_HASH_MAX]) __attribute__((warn_unused_result));

/* True when password matches the stored PHC string (constant-time comparison); false for any
 * malformed or out-of-range string. */
bool password_verify(const char *password, const char *stored);

#endif
