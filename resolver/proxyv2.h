/* proxyv2.h -- PROXY protocol v2 headers (haproxy's spec) from forwarders and load balancers.
 * proxyv2_parse() writes only into the caller's storage; a proxyv2_allow list belongs to the
 * caller from proxyv2_allow_new() to proxyv2_allow_free(), read-only once shared.
 */
#ifndef AEGIS_PROXYV2_H
#define AEGIS_PROXYV2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sockaddr;
struct sockaddr_storage;
struct proxyv2_allow;

/* Longest header accepted, TLVs included; a longer one is refused rather than waited for. */
#define PROXYV2_MAX_HEADER 536

/* Parses a header at the start of buf (UDP: before every datagram; TCP: once, before the
 * stream). Returns the header length (> 0) with src/dst filled (AF_INET or AF_INET6, address
 * and port as the header gives them); 0 if buf holds only a prefix of a header that may
 * still be valid (TCP: read more); -EINVAL if it is not a valid v2 header: bad signature
 * (a v1 text header included), version other than 2, command other than LOCAL or PROXY,
 * family other than UNSPEC/TCP4/UDP4/TCP6/UDP6, address block shorter than the family needs,
 * TLVs that overrun the block, or more than PROXYV2_MAX_HEADER bytes in all. For LOCAL, and
 * for PROXY with family UNSPEC, src/dst get ss_family AF_UNSPEC (use the real peer) and the
 * block is skipped unread, as the spec says; otherwise the TLVs after the addresses are
 * checked to fit and skipped. src and dst may be NULL; on 0 or -EINVAL they are untouched. */
int proxyv2_parse(const uint8_t *buf, size_t len, struct sockaddr_storage *src,
		  struct sockaddr_storage *dst) __attribute__((warn_unused_result));

/* NULL if out of memory. An empty list allows no peer. */
struct proxyv2_allow *proxyv2_allow_new(void) __attribute__((warn_unused_result));

/* Adds a prefix ("192.0.2.10", "10.0.0.0/8", "2001:db8::/48"; see netaddr_parse_prefix) before
 * the list is shared. -EINVAL on a bad CIDR, -ENOMEM. */
int proxyv2_allow_add(struct proxyv2_allow *allow, const char *cidr)
	__attribute__((warn_unused_result));

/* Whether peer, the real sender of the packet or connection, may send PROXY headers. An
 * IPv4-mapped IPv6 peer is matched as IPv4. */
bool proxyv2_allowed(const struct proxyv2_allow *allow, const struct sockaddr *peer);

void proxyv2_allow_free(struct proxyv2_allow *allow);

#endif
