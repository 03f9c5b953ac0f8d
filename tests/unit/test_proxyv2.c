/* test_proxyv2.c -- PROXY v2 headers laid out byte by byte as haproxy's spec draws them, cut
 * short at every length, and broken one field at a time; the allowed-peer list. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <sys/un.h>

#include "proxyv2.h"

#define SIG "\x0D\x0A\x0D\x0A\x00\x0D\x0A\x51\x55\x49\x54\x0A"

/* 192.0.2.1:53000 -> 198.51.100.1:53 */
static const uint8_t v4_block[12] = { 192, 0, 2, 1, 198, 51, 100, 1, 0xcf, 0x08, 0x00, 0x35 };
/* [2001:db8::1]:53000 -> [2001:db8::53]:53 */
static const uint8_t v6_block[36] = {
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53,
	0xcf, 0x08, 0x00, 0x35,
};

struct hdr {
	uint8_t b[1024];
	size_t len;
};

/* Signature, ver_cmd, fam, the block's length as its bytes say, then the block itself. */
static struct hdr make(uint8_t ver_cmd, uint8_t fam, const void *block, size_t block_len)
{
	struct hdr h = { .len = 16 + block_len };
	memcpy(h.b, SIG, 12);
	h.b[12] = ver_cmd;
	h.b[13] = fam;
	h.b[14] = (uint8_t)(block_len >> 8);
	h.b[15] = (uint8_t)block_len;
	if (block_len)
		memcpy(h.b + 16, block, block_len);
	return h;
}

/* Appends a TLV and grows the length field to match. */
static void add_tlv(struct hdr *h, uint8_t type, const void *value, size_t len)
{
	h->b[h->len] = type;
	h->b[h->len + 1] = (uint8_t)(len >> 8);
	h->b[h->len + 2] = (uint8_t)len;
	if (len)
		memcpy(h->b + h->len + 3, value, len);
	h->len += 3 + len;
	h->b[14] = (uint8_t)((h->len - 16) >> 8);
	h->b[15] = (uint8_t)(h->len - 16);
}

static int parse(const struct hdr *h, struct sockaddr_storage *src, struct sockaddr_storage *dst)
{
	return proxyv2_parse(h->b, h->len, src, dst);
}

static void assert_v4(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	char text[INET_ADDRSTRLEN];
	cr_assert_eq(sin->sin_family, AF_INET);
	cr_assert_str_eq(inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text), ip);
	cr_assert_eq(ntohs(sin->sin_port), port);
}

static void assert_v6(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	char text[INET6_ADDRSTRLEN];
	cr_assert_eq(sin6->sin6_family, AF_INET6);
	cr_assert_str_eq(inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text), ip);
	cr_assert_eq(ntohs(sin6->sin6_port), port);
}

/* Every proper prefix of a valid header asks for more and leaves src/dst alone; the whole of
 * it parses to its own length. */
static void assert_prefixes_incomplete(const struct hdr *h)
{
	for (size_t n = 0; n < h->len; n++) {
		struct sockaddr_storage src, dst;
		memset(&src, 0xa5, sizeof src);
		memset(&dst, 0xa5, sizeof dst);
		cr_assert_eq(proxyv2_parse(h->b, n, &src, &dst), 0, "prefix of %zu bytes", n);
		cr_assert_eq(((uint8_t *)&src)[0], 0xa5);
		cr_assert_eq(((uint8_t *)&dst)[0], 0xa5);
	}
	cr_assert_eq(parse(h, NULL, NULL), (int)h->len);
}

Test(proxyv2, tcp4_and_udp4)
{
	struct sockaddr_storage src, dst;
	struct hdr h = make(0x21, 0x11, v4_block, sizeof v4_block);
	cr_assert_eq(parse(&h, &src, &dst), 28);
	assert_v4(&src, "192.0.2.1", 53000);
	assert_v4(&dst, "198.51.100.1", 53);

	/* UDP: the DNS message follows in the same datagram and is not part of the header. */
	h = make(0x21, 0x12, v4_block, sizeof v4_block);
	memcpy(h.b + h.len, "\x12\x34\x01\x00\x00\x01", 6);
	cr_assert_eq(proxyv2_parse(h.b, h.len + 6, &src, &dst), 28);
	assert_v4(&src, "192.0.2.1", 53000);
}

Test(proxyv2, tcp6_and_udp6)
{
	struct sockaddr_storage src, dst;
	struct hdr h = make(0x21, 0x21, v6_block, sizeof v6_block);
	cr_assert_eq(parse(&h, &src, &dst), 52);
	assert_v6(&src, "2001:db8::1", 53000);
	assert_v6(&dst, "2001:db8::53", 53);
	h = make(0x21, 0x22, v6_block, sizeof v6_block);
	cr_assert_eq(parse(&h, &src, NULL), 52);
	assert_v6(&src, "2001:db8::1", 53000);
}

Test(proxyv2, local_means_use_the_real_peer)
{
	struct sockaddr_storage src, dst;
	struct hdr h = make(0x20, 0x00, NULL, 0);
	cr_assert_eq(parse(&h, &src, &dst), 16);
	cr_assert_eq(src.ss_family, AF_UNSPEC);
	cr_assert_eq(dst.ss_family, AF_UNSPEC);
	/* LOCAL ignores family and block, whatever they hold. */
	h = make(0x20, 0x11, v4_block, sizeof v4_block);
	cr_assert_eq(parse(&h, &src, &dst), 28);
	cr_assert_eq(src.ss_family, AF_UNSPEC);
	h = make(0x20, 0x31, "\x01\x02\x03", 3);
	cr_assert_eq(parse(&h, &src, &dst), 19);
}

Test(proxyv2, proxy_unspec_means_use_the_real_peer)
{
	struct sockaddr_storage src;
	struct hdr h = make(0x21, 0x00, NULL, 0);
	cr_assert_eq(parse(&h, &src, NULL), 16);
	cr_assert_eq(src.ss_family, AF_UNSPEC);
}

Test(proxyv2, tlvs_are_skipped)
{
	struct sockaddr_storage src, dst;
	struct hdr h = make(0x21, 0x12, v4_block, sizeof v4_block);
	add_tlv(&h, 0x02, "resolver.example", 16); /* PP2_TYPE_AUTHORITY */
	add_tlv(&h, 0x04, NULL, 0);                /* PP2_TYPE_NOOP */
	add_tlv(&h, 0x03, "\x8a\x2b\x1c\x0d", 4);  /* PP2_TYPE_CRC32C */
	cr_assert_eq(parse(&h, &src, &dst), 16 + 12 + 19 + 3 + 7);
	assert_v4(&src, "192.0.2.1", 53000);
	assert_v4(&dst, "198.51.100.1", 53);

	h = make(0x21, 0x21, v6_block, sizeof v6_block);
	add_tlv(&h, 0xE0, "custom", 6);
	cr_assert_eq(parse(&h, &src, &dst), 52 + 9);
	assert_v6(&src, "2001:db8::1", 53000);
}

Test(proxyv2, tlvs_must_fit_the_block)
{
	struct hdr h = make(0x21, 0x11, v4_block, sizeof v4_block);
	add_tlv(&h, 0x02, "example", 7);
	h.b[28 + 2] = 8; /* value claims one byte more than the block holds */
	cr_assert_eq(parse(&h, NULL, NULL), -EINVAL);

	uint8_t block[14];
	memcpy(block, v4_block, 12);
	block[12] = 0x04;
	block[13] = 0x00; /* two stray bytes: too short for a TLV head */
	h = make(0x21, 0x11, block, 14);
	cr_assert_eq(parse(&h, NULL, NULL), -EINVAL);
	h = make(0x21, 0x11, block, 13);
	cr_assert_eq(parse(&h, NULL, NULL), -EINVAL);
}

Test(proxyv2, every_truncation_asks_for_more)
{
	struct hdr h = make(0x21, 0x11, v4_block, sizeof v4_block);
	assert_prefixes_incomplete(&h);
	h = make(0x21, 0x22, v6_block, sizeof v6_block);
	assert_prefixes_incomplete(&h);
	h = make(0x20, 0x00, NULL, 0);
	assert_prefixes_incomplete(&h);
	h = make(0x21, 0x12, v4_block, sizeof v4_block);
	add_tlv(&h, 0x02, "resolver.example", 16);
	add_tlv(&h, 0x04, NULL, 0);
	assert_prefixes_incomplete(&h);
}

Test(proxyv2, bad_signature_is_refused_at_once)
{
	struct hdr good = make(0x21, 0x11, v4_block, sizeof v4_block);
	for (size_t i = 0; i < 12; i++) {
		struct hdr h = good;
		h.b[i] ^= 0x20;
		cr_assert_eq(proxyv2_parse(h.b, i + 1, NULL, NULL), -EINVAL, "byte %zu", i);
		cr_assert_eq(parse(&h, NULL, NULL), -EINVAL, "byte %zu", i);
	}
	/* A plain DNS query is not a header either. */
	static const uint8_t dns[] = { 0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0 };
	cr_assert_eq(proxyv2_parse(dns, sizeof dns, NULL, NULL), -EINVAL);
}

Test(proxyv2, v1_text_header_is_refused)
{
	static const char v1[] = "PROXY TCP4 192.0.2.1 198.51.100.1 53000 53\r\n";
	cr_assert_eq(proxyv2_parse((const uint8_t *)v1, strlen(v1), NULL, NULL), -EINVAL);
	cr_assert_eq(proxyv2_parse((const uint8_t *)v1, 1, NULL, NULL), -EINVAL);
	static const char unknown[] = "PROXY UNKNOWN\r\n";
	cr_assert_eq(proxyv2_parse((const uint8_t *)unknown, strlen(unknown), NULL, NULL), -EINVAL);
}

Test(proxyv2, version_and_command_nibbles)
{
	static const uint8_t refused[] = { 0x11, 0x31, 0x01, 0x00, 0xF1, 0x22, 0x2F };
	for (size_t i = 0; i < sizeof refused; i++) {
		struct hdr h = make(refused[i], 0x11, v4_block, sizeof v4_block);
		cr_assert_eq(parse(&h, NULL, NULL), -EINVAL, "ver_cmd 0x%02x", refused[i]);
		cr_assert_eq(proxyv2_parse(h.b, 13, NULL, NULL), -EINVAL, "ver_cmd 0x%02x",
			     refused[i]);
	}
}

Test(proxyv2, families_dns_cannot_use_are_refused)
{
	static const uint8_t refused[] = { 0x31, 0x32, 0x10, 0x13, 0x01, 0x02, 0x20, 0x23, 0x41 };
	for (size_t i = 0; i < sizeof refused; i++) {
		struct hdr h = make(0x21, refused[i], v6_block, sizeof v6_block);
		cr_assert_eq(parse(&h, NULL, NULL), -EINVAL, "fam 0x%02x", refused[i]);
		cr_assert_eq(proxyv2_parse(h.b, 14, NULL, NULL), -EINVAL, "fam 0x%02x",
			     refused[i]);
	}
}

Test(proxyv2, block_shorter_than_the_family_needs)
{
	struct hdr h = make(0x21, 0x11, v4_block, 11);
	cr_assert_eq(parse(&h, NULL, NULL), -EINVAL);
	cr_assert_eq(proxyv2_parse(h.b, 16, NULL, NULL), -EINVAL);
	h = make(0x21, 0x21, v4_block, sizeof v4_block); /* IPv6 family, IPv4-sized block */
	cr_assert_eq(parse(&h, NULL, NULL), -EINVAL);
	h = make(0x21, 0x22, v6_block, 35);
	cr_assert_eq(parse(&h, NULL, NULL), -EINVAL);
	h = make(0x21, 0x11, NULL, 0);
	cr_assert_eq(parse(&h, NULL, NULL), -EINVAL);
}

Test(proxyv2, length_is_bounded)
{
	/* 16 + 520 = 536 bytes is the most accepted: addresses plus one TLV filling the rest. */
	static uint8_t filler[506];
	struct hdr h = make(0x21, 0x11, v4_block, sizeof v4_block);
	add_tlv(&h, 0x04, filler, 505);
	cr_assert_eq(h.len, PROXYV2_MAX_HEADER);
	cr_assert_eq(parse(&h, NULL, NULL), PROXYV2_MAX_HEADER);

	h = make(0x21, 0x11, v4_block, sizeof v4_block);
	add_tlv(&h, 0x04, filler, 506); /* 537 bytes */
	cr_assert_eq(h.len, PROXYV2_MAX_HEADER + 1);
	cr_assert_eq(parse(&h, NULL, NULL), -EINVAL);

	/* An absurd length is refused from the fixed 16 bytes alone, not waited for. */
	h = make(0x21, 0x11, v4_block, sizeof v4_block);
	h.b[14] = 0xff;
	h.b[15] = 0xff;
	cr_assert_eq(proxyv2_parse(h.b, 16, NULL, NULL), -EINVAL);
	h.b[14] = 0x02;
	h.b[15] = 0x09; /* 521 */
	cr_assert_eq(proxyv2_parse(h.b, 16, NULL, NULL), -EINVAL);
	h.b[15] = 0x08; /* 520: a valid prefix so far */
	cr_assert_eq(proxyv2_parse(h.b, 16, NULL, NULL), 0);
}

static struct sockaddr_storage peer(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof ss);
	if (strchr(text, ':')) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		cr_assert_eq(inet_pton(AF_INET6, text, &sin6->sin6_addr), 1);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		cr_assert_eq(inet_pton(AF_INET, text, &sin->sin_addr), 1);
	}
	return ss;
}

static bool allowed(const struct proxyv2_allow *allow, const char *text)
{
	struct sockaddr_storage ss = peer(text);
	return proxyv2_allowed(allow, (struct sockaddr *)&ss);
}

Test(proxyv2, empty_allow_list_allows_nobody)
{
	struct proxyv2_allow *allow = proxyv2_allow_new();
	cr_assert_not_null(allow);
	cr_assert_not(allowed(allow, "127.0.0.1"));
	cr_assert_not(allowed(allow, "::1"));
	proxyv2_allow_free(allow);
	proxyv2_allow_free(NULL);
}

Test(proxyv2, allow_list_matches_prefixes)
{
	struct proxyv2_allow *allow = proxyv2_allow_new();
	cr_assert_not_null(allow);
	cr_assert_eq(proxyv2_allow_add(allow, "192.0.2.10"), 0);
	cr_assert_eq(proxyv2_allow_add(allow, "10.20.0.0/16"), 0);
	cr_assert_eq(proxyv2_allow_add(allow, "2001:db8:aa::/48"), 0);
	cr_assert_eq(proxyv2_allow_add(allow, "10.20.0.1/16"), -EINVAL);
	cr_assert_eq(proxyv2_allow_add(allow, "lb.example/32"), -EINVAL);

	cr_assert(allowed(allow, "192.0.2.10"));
	cr_assert_not(allowed(allow, "192.0.2.11"));
	cr_assert(allowed(allow, "10.20.255.1"));
	cr_assert_not(allowed(allow, "10.21.0.1"));
	cr_assert(allowed(allow, "::ffff:10.20.0.7"));
	cr_assert(allowed(allow, "2001:db8:aa:ffff::1"));
	cr_assert_not(allowed(allow, "2001:db8:ab::1"));

	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	cr_assert_not(proxyv2_allowed(allow, (struct sockaddr *)&sun));
	proxyv2_allow_free(allow);
}
