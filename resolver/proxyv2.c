/* proxyv2.c -- PROXY v2 header parsing and the allowed-peer list. */
#include "proxyv2.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "netaddr.h"

static const uint8_t signature[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

#define FIXED_LEN     16 /* signature, ver_cmd, fam, 16-bit block length */
#define CMD_LOCAL     0x0
#define CMD_PROXY     0x1
#define FAM_UNSPEC    0x00
#define FAM_TCP4      0x11
#define FAM_UDP4      0x12
#define FAM_TCP6      0x21
#define FAM_UDP6      0x22
#define INET_BLOCK    12 /* two IPv4 addresses, two ports */
#define INET6_BLOCK   36 /* two IPv6 addresses, two ports */
#define TLV_HEAD      3  /* type, 16-bit value length */

struct proxyv2_allow {
	struct netaddr_prefix *prefixes;
	size_t count;
};

static size_t read_be16(const uint8_t *p)
{
	return (size_t)p[0] << 8 | p[1];
}

/* Address bytes the family needs at the start of the block; -EINVAL for families the spec
 * defines but DNS cannot use (UNIX sockets) and for values it leaves undefined. */
static int family_block(uint8_t fam)
{
	switch (fam) {
	case FAM_UNSPEC:
		return 0;
	case FAM_TCP4:
	case FAM_UDP4:
		return INET_BLOCK;
	case FAM_TCP6:
	case FAM_UDP6:
		return INET6_BLOCK;
	default:
		return -EINVAL;
	}
}

static int check_tlvs(const uint8_t *p, size_t len)
{
	while (len > 0) {
		if (len < TLV_HEAD)
			return -EINVAL;
		size_t value = read_be16(p + 1);
		if (len - TLV_HEAD < value)
			return -EINVAL;
		p += TLV_HEAD + value;
		len -= TLV_HEAD + value;
	}
	return 0;
}

static void fill_v4(struct sockaddr_storage *ss, const uint8_t *addr, const uint8_t *port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof *ss);
	sin->sin_family = AF_INET;
	memcpy(&sin->sin_addr, addr, 4);
	memcpy(&sin->sin_port, port, 2); /* both network order */
}

static void fill_v6(struct sockaddr_storage *ss, const uint8_t *addr, const uint8_t *port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof *ss);
	sin6->sin6_family = AF_INET6;
	memcpy(&sin6->sin6_addr, addr, 16);
	memcpy(&sin6->sin6_port, port, 2);
}

static void fill_unspec(struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	ss->ss_family = AF_UNSPEC;
}

/* Each field is judged as soon as it has arrived, so a TCP peer sending garbage is refused
 * at once instead of after it has sent up to PROXYV2_MAX_HEADER bytes. */
int proxyv2_parse(const uint8_t *buf, size_t len, struct sockaddr_storage *src,
		  struct sockaddr_storage *dst)
{
	if (len == 0)
		return 0;
	if (memcmp(buf, signature, len < sizeof signature ? len : sizeof signature) != 0)
		return -EINVAL;
	if (len <= 12)
		return 0;
	uint8_t version = buf[12] >> 4, command = buf[12] & 0x0f;
	if (version != 2 || (command != CMD_LOCAL && command != CMD_PROXY))
		return -EINVAL;
	if (len <= 13)
		return 0;
	/* LOCAL (a health check from the proxy itself) ignores the family, as the spec says. */
	int addr_len = command == CMD_PROXY ? family_block(buf[13]) : 0;
	if (addr_len < 0)
		return -EINVAL;
	if (len < FIXED_LEN)
		return 0;
	size_t block = read_be16(buf + 14);
	if (block > PROXYV2_MAX_HEADER - FIXED_LEN || block < (size_t)addr_len)
		return -EINVAL;
	size_t total = FIXED_LEN + block;
	if (len < total)
		return 0;

	const uint8_t *a = buf + FIXED_LEN;
	if (addr_len == 0) {
		/* LOCAL, or PROXY with UNSPEC: the block carries nothing we know how to read. */
		if (src)
			fill_unspec(src);
		if (dst)
			fill_unspec(dst);
		return (int)total;
	}
	if (check_tlvs(a + addr_len, block - (size_t)addr_len) < 0)
		return -EINVAL;
	if (addr_len == INET_BLOCK) {
		if (src)
			fill_v4(src, a, a + 8);
		if (dst)
			fill_v4(dst, a + 4, a + 10);
	} else {
		if (src)
			fill_v6(src, a, a + 32);
		if (dst)
			fill_v6(dst, a + 16, a + 34);
	}
	return (int)total;
}

struct proxyv2_allow *proxyv2_allow_new(void)
{
	return calloc(1, sizeof(struct proxyv2_allow));
}

int proxyv2_allow_add(struct proxyv2_allow *allow, const char *cidr)
{
	struct netaddr_prefix p;
	if (netaddr_parse_prefix(cidr, &p) < 0)
		return -EINVAL;
	struct netaddr_prefix *grown =
		realloc(allow->prefixes, (allow->count + 1) * sizeof *grown);
	if (!grown)
		return -ENOMEM;
	grown[allow->count++] = p;
	allow->prefixes = grown;
	return 0;
}

bool proxyv2_allowed(const struct proxyv2_allow *allow, const struct sockaddr *peer)
{
	struct netaddr a;
	if (netaddr_from_sockaddr(peer, &a) < 0)
		return false;
	for (size_t i = 0; i < allow->count; i++)
		if (netaddr_prefix_match(&allow->prefixes[i], &a))
			return true;
	return false;
}

void proxyv2_allow_free(struct proxyv2_allow *allow)
{
	if (!allow)
		return;
	free(allow->prefixes);
	free(allow);
}
