/* netaddr.h -- IPv4/IPv6 addresses and CIDR prefixes as plain values, shared by the modules
 * that match client addresses (rate-limit exemptions, PROXY v2 acceptance). Nothing here
 * allocates: every value lives in storage the caller owns.
 */
#ifndef AEGIS_NETADDR_H
#define AEGIS_NETADDR_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

/* An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is always held as the IPv4 address, so one
 * host has one identity whichever socket family it arrived on. */
struct netaddr {
	sa_family_t family;  /* AF_INET or AF_INET6 */
	uint8_t bytes[16];   /* network order; IPv4 uses the first 4, the rest are zero */
};

struct netaddr_prefix {
	struct netaddr addr; /* bits past len are zero */
	uint8_t len;         /* 0..32 for IPv4, 0..128 for IPv6 */
};

/* Reads the address of an AF_INET or AF_INET6 sockaddr (port ignored). -EAFNOSUPPORT for any
 * other family. */
int netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out)
	__attribute__((warn_unused_result));

/* Parses "192.0.2.0/24", "2001:db8::/32" or a bare address (a host prefix, /32 or /128).
 * Strict: the length is 1-3 decimal digits within the family's range, and bits set past the
 * length are refused rather than masked, because "10.1.2.3/8" is more likely a typo than a
 * wish to cover 10/8. "::ffff:192.0.2.0/120" becomes 192.0.2.0/24. -EINVAL on anything else. */
int netaddr_parse_prefix(const char *text, struct netaddr_prefix *out)
	__attribute__((warn_unused_result));

/* Whether addr lies inside prefix. Families must agree: an IPv6 prefix, even ::/0, never
 * matches an IPv4 (or IPv4-mapped) address. */
bool netaddr_prefix_match(const struct netaddr_prefix *prefix, const struct netaddr *addr);

#endif
