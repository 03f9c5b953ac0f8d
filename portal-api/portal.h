/* portal.h -- the API server: settings it runs with, its HTTP daemon, pool and counters.
 *
 * main.c fills struct portal_config from the configuration file and calls portal_start(),
 * which binds the listener (refusing plain HTTP off loopback unless allowed) and starts
 * libmicrohttpd's thread pool; portal_stop() stops it and releases everything. The portal
 * owns its pool and daemon; the config strings stay the caller's for the portal's life.
 */
#ifndef AEGIS_PORTAL_PORTAL_H
#define AEGIS_PORTAL_PORTAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct pgpool;
struct throttle;

struct portal_config {
	const char *dsn;
	unsigned pool_size;
	const char *listen;                 /* "127.0.0.1:8080" or "[::1]:8080" */
	bool allow_plain_non_loopback;
	bool trust_forwarded_for;           /* take the client address from X-Forwarded-For */
	const char *tls_cert_file, *tls_key_file;  /* both set: serve HTTPS directly */
	unsigned threads;
	unsigned rate_per_address, burst_per_address;   /* requests per second; 0: no limit */
	unsigned rate_per_principal, burst_per_principal;
	size_t max_body, max_import_body;
	unsigned session_seconds;
	unsigned lockout_failures, lockout_seconds;
	unsigned scrypt_ln;
	const char *totp_key_file;          /* 32-byte AES key sealing TOTP secrets, or NULL */
	unsigned char totp_key[32];
	bool totp_key_loaded;
};

/* Status classes counted for /metrics. */
enum { PORTAL_STATUS_SLOTS = 6 };

struct portal_metrics {
	atomic_ulong requests[PORTAL_STATUS_SLOTS];   /* by status / 100: 1xx..5xx, [0] others */
	atomic_ulong status_401, status_403, status_404, status_429, status_503;
	atomic_ulong auth_failures, logins_ok, logins_failed, rate_limited;
	atomic_ulong audit_rows;
};

struct portal {
	const struct portal_config *cfg;
	struct pgpool *pool;
	void *mhd;                          /* struct MHD_Daemon * */
	char *tls_mem[2];                   /* certificate and key PEM, for the daemon's life */
	struct throttle *by_address, *by_principal;
	struct portal_metrics metrics;
};

int portal_start(struct portal *p, const struct portal_config *cfg)
	__attribute__((warn_unused_result));
void portal_stop(struct portal *p);

#endif
