/* test_hostport.c -- ADDRESS:PORT settings. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>

#include "hostport.h"

Test(hostport, ipv4_and_bracketed_ipv6)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char text[INET6_ADDRSTRLEN];

	cr_assert_eq(hostport_parse("127.0.0.1:53", &ss, &len), 0);
	const struct sockaddr_in *a4 = (const void *)&ss;
	cr_assert_eq(ss.ss_family, AF_INET);
	cr_assert_eq(len, sizeof *a4);
	cr_assert_eq(ntohs(a4->sin_port), 53);
	cr_assert_str_eq(inet_ntop(AF_INET, &a4->sin_addr, text, sizeof text), "127.0.0.1");

	cr_assert_eq(hostport_parse("[2001:db8::1]:65535", &ss, &len), 0);
	const struct sockaddr_in6 *a6 = (const void *)&ss;
	cr_assert_eq(ss.ss_family, AF_INET6);
	cr_assert_eq(len, sizeof *a6);
	cr_assert_eq(ntohs(a6->sin6_port), 65535);
	cr_assert_str_eq(inet_ntop(AF_INET6, &a6->sin6_addr, text, sizeof text), "2001:db8::1");
}

Test(hostport, refuses_what_is_not_address_colon_port)
{
	const char *bad[] = {
		"", ":53", "127.0.0.1", "127.0.0.1:", "127.0.0.1:0", "127.0.0.1:65536",
		"127.0.0.1:53x", "127.0.0.1:-1", "127.0.0.1:+53", "127.0.0.1: 53", "localhost:53",
		"2001:db8::1:53", "[2001:db8::1]", "[127.0.0.1]:53", "[::1:53", "[]:53",
		"127.0.0.1:99999999999999999999", "300.0.0.1:53",
	};
	struct sockaddr_storage ss;
	socklen_t len;
	char err[128];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(hostport_parse(bad[i], &ss, &len), -EINVAL, "'%s'", bad[i]);
		cr_assert_eq(hostport_check(bad[i], err, sizeof err), -1, "'%s'", bad[i]);
		cr_assert(strstr(err, "ADDRESS:PORT"), "%s", err);
	}
	cr_assert_eq(hostport_check("[::1]:8053", err, sizeof err), 0);
}
