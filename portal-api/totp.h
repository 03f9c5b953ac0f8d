/* totp.h -- time-based one-time passwords (RFC 6238 over RFC 4226 HOTP, HMAC via OpenSSL).
 *
 * Six digits, 30-second steps, HMAC-SHA1: what authenticator apps use by default. Secrets are
 * raw bytes; totp_base32() renders one for the otpauth:// URI. No allocation.
 */
#ifndef AEGIS_PORTAL_TOTP_H
#define AEGIS_PORTAL_TOTP_H

#include <stddef.h>
#include <stdint.h>

#define TOTP_STEP_SECONDS 30
#define TOTP_SECRET_LEN 20

enum totp_hash { TOTP_SHA1, TOTP_SHA256, TOTP_SHA512 };

/* The code for one counter value (RFC 4226 HOTP), digits 6..8. Negative errno on failure. */
int totp_hotp(enum totp_hash hash, const uint8_t *secret, size_t len, uint64_t counter,
	      unsigned digits) __attribute__((warn_unused_result));

/* Checks a six-digit code typed at unix time now against steps now-1, now, now+1 (clock drift)
 * and above *last_step (replay). On success returns 0 and stores the matched step in
 * *last_step; -EACCES when it does not match. */
int totp_check(const uint8_t *secret, size_t len, const char *code, int64_t now,
	       int64_t *last_step) __attribute__((warn_unused_result));

/* Sealed secrets, as users.totp_secret_enc holds them: version 1, key id, 12-byte nonce,
 * AES-256-GCM ciphertext of the secret, 16-byte tag (TOTP_SEALED_LEN bytes in all). The user
 * id is the associated data, so a sealed secret copied to another user's row does not open. */
#define TOTP_SEALED_LEN (2 + 12 + TOTP_SECRET_LEN + 16)

int totp_seal(const uint8_t key[32], uint8_t key_id, const char *user_id,
	      const uint8_t secret[TOTP_SECRET_LEN], uint8_t out[TOTP_SEALED_LEN])
	__attribute__((warn_unused_result));
int totp_open(const uint8_t key[32], const char *user_id, const uint8_t *in, size_t len,
	      uint8_t secret[TOTP_SECRET_LEN]) __attribute__((warn_unused_result));

/* RFC 4648 base32 without padding into out (cap bytes, NUL-terminated). */
void totp_base32(const uint8_t *in, size_t len, char *out, size_t cap);

#endif
