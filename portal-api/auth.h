/* auth.h -- who is calling: the Authorization header resolved to a principal.
 *
 * A bearer token is either an API key (looked up by its public prefix, then compared by
 * SHA-256 in constant time; valid while not revoked and not expired) or a session token
 * (looked up by its SHA-256; valid while not revoked, not expired and the user not
 * disabled). On success r->who holds the principal and its roles; otherwise the request is
 * answered 401 with one message for every reason, so a caller learns nothing about which
 * keys exist.
 */
#ifndef AEGIS_PORTAL_AUTH_H
#define AEGIS_PORTAL_AUTH_H

struct req;

int auth_authenticate(struct req *r, const char *authorization)
	__attribute__((warn_unused_result));

#endif
