/* netaddr.c -- address and prefix values on top of inet_pton. */
#include "netaddr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void set_v6(struct netaddr *out, const uint8_t bytes[16])
{
	memset(out, 0, sizeof *out);
	if (memcmp(bytes, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) {
		out->family = AF_INET;
		memcpy(out->bytes, bytes + 12, 4);
	} else {
		out->family = AF_INET6;
		memcpy(out->bytes, bytes, 16);
	}
}

int netaddr_from_sockaddr(const struct sockaddr *sa, struct netaddr *out)
{
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		memset(out, 0, sizeof *out);
		out->family = AF_INET;
		memcpy(out->bytes, &sin->sin_addr, 4);
		return 0;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		set_v6(out, sin6->sin6_addr.s6_addr);
		return 0;
	}
	return -EAFNOSUPPORT;
}

/* Accepts exactly 1-3 ASCII digits: strtoul alone would also take "+8", " 8" and "0x8". */
static int parse_len(const char *s, unsigned max, unsigned *len)
{
	size_t n = strlen(s);
	if (n == 0 || n > 3)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
	unsigned long v = strtoul(s, NULL, 10);
	if (v > max)
		return -EINVAL;
	*len = (unsigned)v;
	return 0;
}

static bool host_bits_clear(const uint8_t *bytes, unsigned nbytes, unsigned len)
{
	for (unsigned bit = len; bit < nbytes * 8; bit++)
		if (bytes[bit / 8] & (0x80u >> (bit % 8)))
			return false;
	return true;
}

int netaddr_parse_prefix(const char *text, struct netaddr_prefix *out)
{
	char host[INET6_ADDRSTRLEN];
	const char *slash = strchr(text, '/');
	size_t hostlen = slash ? (size_t)(slash - text) : strlen(text);
	if (hostlen == 0 || hostlen >= sizeof host)
		return -EINVAL;
	memcpy(host, text, hostlen);
	host[hostlen] = '\0';

	uint8_t bytes[16] = { 0 };
	unsigned nbytes, len;
	sa_family_t family;
	if (inet_pton(AF_INET, host, bytes) == 1) {
		family = AF_INET;
		nbytes = 4;
	} else if (inet_pton(AF_INET6, host, bytes) == 1) {
		family = AF_INET6;
		nbytes = 16;
	} else {
		return -EINVAL;
	}
	if (!slash)
		len = nbytes * 8;
	else if (parse_len(slash + 1, nbytes * 8, &len) < 0)
		return -EINVAL;
	if (!host_bits_clear(bytes, nbytes, len))
		return -EINVAL;

	memset(out, 0, sizeof *out);
	if (family == AF_INET6 && len >= 96 &&
	    memcmp(bytes, v4_mapped_prefix, sizeof v4_mapped_prefix) == 0) {
		set_v6(&out->addr, bytes);
		out->len = (uint8_t)(len - 96);
		return 0;
	}
	out->addr.family = family;
	memcpy(out->addr.bytes, bytes, nbytes);
	out->len = (uint8_t)len;
	return 0;
}

bool netaddr_prefix_match(const struct netaddr_prefix *prefix, const struct netaddr *addr)
{
	if (prefix->addr.family != addr->family)
		return false;
	unsigned whole = prefix->len / 8, rest = prefix->len % 8;
	if (memcmp(prefix->addr.bytes, addr->bytes, whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff00u >> rest);
	return (addr->bytes[whole] & mask) == prefix->addr.bytes[whole];
}
