/* test_netaddr.c -- CIDR parsing (strictness first), prefix matching, v4-mapped folding. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/un.h>

#include "netaddr.h"

static struct netaddr addr_of(const char *text)
{
	struct sockaddr_storage ss = { 0 };
	struct netaddr a;
	if (strchr(text, ':')) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		cr_assert_eq(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		cr_assert_eq(inet_pton(AF_INET, text, &sin->sin_addr), 1);
	}
	cr_assert_eq(netaddr_from_sockaddr((struct sockaddr *)&ss, &a), 0);
	return a;
}

static bool matches(const char *cidr, const char *addr)
{
	struct netaddr_prefix p;
	cr_assert_eq(netaddr_parse_prefix(cidr, &p), 0, "%s", cidr);
	struct netaddr a = addr_of(addr);
	return netaddr_prefix_match(&p, &a);
}

Test(netaddr, rejects_malformed_prefixes)
{
	static const char *bad[] = {
		"", "/24", "192.0.2.0/", "192.0.2.0/33", "2001:db8::/129", "192.0.2.0/+8",
		"192.0.2.0/ 8", "192.0.2.0/0x8", "192.0.2.0/-1", "192.0.2.0/0024", "192.0.2.0/24 ",
		" 192.0.2.0/24", "192.0.2.0/24/1", "192.0.2", "192.0.2.256", "010.0.0.0/8",
		"fe80::1%eth0", "fe80::/10%eth0", "example.org/24", "::ffff:192.0.2.0/1000",
		"1111:2222:3333:4444:5555:6666:7777:8888:9999/64",
	};
	struct netaddr_prefix p;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_expect_eq(netaddr_parse_prefix(bad[i], &p), -EINVAL, "accepted '%s'", bad[i]);
}

Test(netaddr, refuses_host_bits_past_the_length)
{
	struct netaddr_prefix p;
	cr_assert_eq(netaddr_parse_prefix("10.1.2.3/8", &p), -EINVAL);
	cr_assert_eq(netaddr_parse_prefix("192.0.2.1/31", &p), -EINVAL);
	cr_assert_eq(netaddr_parse_prefix("2001:db8::1/64", &p), -EINVAL);
	cr_assert_eq(netaddr_parse_prefix("2001:db8:0:1ff::/55", &p), -EINVAL);
	cr_assert_eq(netaddr_parse_prefix("192.0.2.2/31", &p), 0);
}

Test(netaddr, parses_v4_v6_and_bare_hosts)
{
	struct netaddr_prefix p;
	cr_assert_eq(netaddr_parse_prefix("192.0.2.0/24", &p), 0);
	cr_assert_eq(p.addr.family, AF_INET);
	cr_assert_eq(p.len, 24);
	cr_assert_eq(memcmp(p.addr.bytes, "\xc0\x00\x02\x00", 4), 0);

	cr_assert_eq(netaddr_parse_prefix("2001:db8::/32", &p), 0);
	cr_assert_eq(p.addr.family, AF_INET6);
	cr_assert_eq(p.len, 32);

	cr_assert_eq(netaddr_parse_prefix("198.51.100.7", &p), 0);
	cr_assert_eq(p.len, 32);
	cr_assert_eq(netaddr_parse_prefix("2001:db8::53", &p), 0);
	cr_assert_eq(p.len, 128);
	cr_assert_eq(netaddr_parse_prefix("0.0.0.0/0", &p), 0);
	cr_assert_eq(p.len, 0);
	cr_assert_eq(netaddr_parse_prefix("::/0", &p), 0);
	cr_assert_eq(p.addr.family, AF_INET6);
}

Test(netaddr, folds_v4_mapped_prefixes_to_v4)
{
	struct netaddr_prefix p;
	cr_assert_eq(netaddr_parse_prefix("::ffff:192.0.2.0/120", &p), 0);
	cr_assert_eq(p.addr.family, AF_INET);
	cr_assert_eq(p.len, 24);
	cr_assert_eq(memcmp(p.addr.bytes, "\xc0\x00\x02\x00", 4), 0);
	cr_assert_eq(netaddr_parse_prefix("::ffff:0:0/96", &p), 0);
	cr_assert_eq(p.addr.family, AF_INET);
	cr_assert_eq(p.len, 0);
	/* Shorter than /96 it also covers non-mapped space, so it stays IPv6. */
	cr_assert_eq(netaddr_parse_prefix("::ffff:0:0/95", &p), -EINVAL);
	cr_assert_eq(netaddr_parse_prefix("::fffe:0:0/95", &p), 0);
	cr_assert_eq(p.addr.family, AF_INET6);
}

Test(netaddr, matches_at_the_boundaries)
{
	cr_assert(matches("192.0.2.0/24", "192.0.2.0"));
	cr_assert(matches("192.0.2.0/24", "192.0.2.255"));
	cr_assert_not(matches("192.0.2.0/24", "192.0.3.0"));
	cr_assert_not(matches("192.0.2.0/24", "192.0.1.255"));
	cr_assert(matches("10.8.0.0/13", "10.15.255.255"));
	cr_assert_not(matches("10.8.0.0/13", "10.16.0.0"));
	cr_assert_not(matches("10.8.0.0/13", "10.7.255.255"));
	cr_assert(matches("198.51.100.7", "198.51.100.7"));
	cr_assert_not(matches("198.51.100.7", "198.51.100.6"));
	cr_assert(matches("0.0.0.0/0", "203.0.113.9"));
	cr_assert(matches("2001:db8:0:100::/57", "2001:db8:0:17f:ffff::1"));
	cr_assert_not(matches("2001:db8:0:100::/57", "2001:db8:0:180::"));
	cr_assert(matches("::/0", "2001:db8::1"));
	cr_assert(matches("2001:db8::53", "2001:db8::53"));
	cr_assert_not(matches("2001:db8::53", "2001:db8::54"));
}

Test(netaddr, families_never_cross)
{
	cr_assert_not(matches("::/0", "192.0.2.1"));
	cr_assert_not(matches("::/0", "::ffff:192.0.2.1"));
	cr_assert_not(matches("0.0.0.0/0", "2001:db8::1"));
	cr_assert(matches("192.0.2.0/24", "::ffff:192.0.2.1"));
	cr_assert(matches("::ffff:192.0.2.0/120", "192.0.2.1"));
}

Test(netaddr, reads_sockaddrs_and_folds_mapped)
{
	struct netaddr a = addr_of("::ffff:192.0.2.1");
	cr_assert_eq(a.family, AF_INET);
	cr_assert_eq(memcmp(a.bytes, "\xc0\x00\x02\x01\0\0\0\0\0\0\0\0\0\0\0\0", 16), 0);
	a = addr_of("2001:db8::1");
	cr_assert_eq(a.family, AF_INET6);
	a = addr_of("::192.0.2.1"); /* the deprecated IPv4-compatible form is just IPv6 */
	cr_assert_eq(a.family, AF_INET6);

	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	cr_assert_eq(netaddr_from_sockaddr((struct sockaddr *)&sun, &a), -EAFNOSUPPORT);
}
