/* test_snapshot.c -- the policy snapshot: build, write, open, look up; and every way a file
 * can be wrong, which the reader must refuse without crashing. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot.h"

/* Header offsets from docs/snapshot.md: the tests pin the documented layout. */
#define H_VERSION     8
#define H_HEADER_SIZE 12
#define H_SERIAL      16
#define H_CONTENT     40
#define H_SHA         48
#define H_NAME_COUNT  80
#define H_HOME_SLOTS  88
#define H_SECTIONS    96
#define H_BASE_SHA    208
#define HEADER_SIZE   240
enum { S_STRINGS, S_CATEGORIES, S_TENANTS, S_NET4, S_NET6, S_NAMES, S_RULES };

enum { CAT_MALWARE, CAT_PHISHING, CAT_ADULT };
enum { T_MUNI, T_SCHOOL, T_HOSPITAL, T_EDGE };

static char path[64];

static void make_path(void)
{
	strcpy(path, "/tmp/aegis-test-snap-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
}

static size_t to_wire(const char *text, uint8_t *out)
{
	size_t o = 0;
	const char *p = text;
	while (*p) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);
		out[o++] = (uint8_t)n;
		memcpy(out + o, p, n);
		o += n;
		p += n;
		if (*p == '.')
			p++;
	}
	out[o++] = 0;
	return o;
}

static void match(const struct snapshot *s, uint32_t tenant, const char *text,
		  struct snapshot_match *m)
{
	uint8_t w[600];
	size_t n = to_wire(text, w);
	snapshot_match_name(s, tenant, w, n, m);
}

static void add_tenant(struct snapshot_builder *b, const char *name, uint32_t block,
		       uint32_t monitor, int expect_index)
{
	struct snapshot_tenant_spec t = {
		.name = name, .ede_text = "contact soc@gov.example", .block_mask = block,
		.monitor_mask = monitor, .block_action = SNAPSHOT_ACTION_NXDOMAIN,
		.privacy = SNAPSHOT_PRIVACY_FULL, .trunc_v4 = 24, .trunc_v6 = 48,
	};
	t.id[0] = (uint8_t)expect_index;
	t.id[15] = 0xAA;
	cr_assert_eq(snapshot_builder_add_tenant(b, &t), expect_index);
}

static const char *long_name(void)
{
	/* 63 + 63 + 63 + 61 bytes of labels: 255 bytes in wire form, the most allowed. */
	static char buf[300];
	memset(buf, 'a', 63);
	buf[63] = '.';
	memset(buf + 64, 'b', 63);
	buf[127] = '.';
	memset(buf + 128, 'c', 63);
	buf[191] = '.';
	memset(buf + 192, 'd', 61);
	buf[253] = '\0';
	return buf;
}

static struct snapshot_builder *fixture_builder(void)
{
	struct snapshot_builder *b = snapshot_builder_new(42);
	cr_assert_not_null(b);
	cr_assert_eq(snapshot_builder_add_category(b, "malware", SNAPSHOT_CATEGORY_THREAT), 0);
	cr_assert_eq(snapshot_builder_add_category(b, "phishing", SNAPSHOT_CATEGORY_THREAT), 1);
	cr_assert_eq(snapshot_builder_add_category(b, "adult", SNAPSHOT_CATEGORY_CONTENT), 2);

	add_tenant(b, "Municipality", 1u << CAT_MALWARE, 1u << CAT_ADULT, T_MUNI);
	add_tenant(b, "School 1", (1u << CAT_MALWARE) | (1u << CAT_ADULT), 0, T_SCHOOL);
	struct snapshot_tenant_spec h = {
		.name = "Hospital", .ede_text = NULL, .block_mask = 3,
		.block_action = SNAPSHOT_ACTION_SINKHOLE, .safe_search = true,
		.privacy = SNAPSHOT_PRIVACY_TRUNCATED, .trunc_v4 = 24, .trunc_v6 = 56,
		.has_sinkhole_v4 = true, .sinkhole_v4 = { 192, 0, 2, 1 },
		.has_sinkhole_v6 = true, .sinkhole_v6 = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1 },
	};
	h.id[0] = 2;
	cr_assert_eq(snapshot_builder_add_tenant(b, &h), T_HOSPITAL);
	add_tenant(b, "Edges", 0, 0, T_EDGE);

	static const struct { uint32_t t; const char *cidr; } nets[] = {
		{ T_MUNI, "10.0.0.0/16" },     { T_SCHOOL, "10.0.5.0/28" },
		{ T_HOSPITAL, "192.168.1.0/24" }, { T_EDGE, "0.0.0.0/8" },
		{ T_EDGE, "255.255.255.0/24" }, { T_MUNI, "2001:db8::/32" },
		{ T_SCHOOL, "2001:db8:5::/48" }, { T_HOSPITAL, "fd00:1::/48" },
		{ T_EDGE, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ff00/120" },
		{ T_EDGE, "::/120" },
		{ T_MUNI, "10.0.0.0/16" },     /* the same prefix twice for one tenant: fine */
		{ T_SCHOOL, "127.1.0.5" },
	};
	for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
		cr_assert_eq(snapshot_builder_add_network(b, nets[i].t, nets[i].cidr), 0, "%s",
			     nets[i].cidr);

	cr_assert_eq(snapshot_builder_add_name(b, "evil.example", SNAPSHOT_NATIONAL_BLOCK, 0), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "gov.example.", SNAPSHOT_NATIONAL_ALLOW, 0), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "bad.example", SNAPSHOT_FEED, CAT_MALWARE), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "Phish.Bad.Example", SNAPSHOT_FEED, CAT_PHISHING),
		     0);
	cr_assert_eq(snapshot_builder_add_name(b, "*.adult.example", SNAPSHOT_FEED, CAT_ADULT), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "adult.example", SNAPSHOT_FEED, CAT_MALWARE), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "shared.example", SNAPSHOT_TENANT_ALLOW, T_MUNI),
		     0);
	cr_assert_eq(snapshot_builder_add_name(b, "shared.example", SNAPSHOT_TENANT_DENY, T_SCHOOL),
		     0);
	cr_assert_eq(snapshot_builder_add_name(b, "both.example", SNAPSHOT_TENANT_ALLOW,
					       T_HOSPITAL), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "both.example", SNAPSHOT_TENANT_DENY, T_HOSPITAL),
		     0);
	cr_assert_eq(snapshot_builder_add_name(b, "deny.shared.example", SNAPSHOT_TENANT_DENY,
					       T_MUNI), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "evil.example", SNAPSHOT_FEED, CAT_PHISHING), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "zip", SNAPSHOT_NATIONAL_BLOCK, 0), 0);
	cr_assert_eq(snapshot_builder_add_name(b, long_name(), SNAPSHOT_FEED, CAT_ADULT), 0);
	return b;
}

static struct snapshot *open_fixture(void)
{
	struct snapshot_builder *b = fixture_builder();
	char err[256] = "";
	make_path();
	cr_assert_eq(snapshot_builder_write(b, path, err, sizeof err), 0, "%s", err);
	snapshot_builder_free(b);
	struct snapshot *s = snapshot_open(path, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	return s;
}

static uint8_t *read_fixture(size_t *len)
{
	snapshot_close(open_fixture());
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	rewind(f);
	uint8_t *data = malloc(*len);
	cr_assert_eq(fread(data, 1, *len, f), *len);
	fclose(f);
	unlink(path);
	return data;
}

static int v4(const struct snapshot *s, const char *a)
{
	struct in_addr in;
	cr_assert_eq(inet_pton(AF_INET, a, &in), 1);
	return snapshot_tenant_for_address(s, AF_INET, &in);
}

static int v6(const struct snapshot *s, const char *a)
{
	struct in6_addr in;
	cr_assert_eq(inet_pton(AF_INET6, a, &in), 1);
	return snapshot_tenant_for_address(s, AF_INET6, &in);
}

/* ---- round trip ---- */

Test(snapshot, tenants_by_address_v4)
{
	struct snapshot *s = open_fixture();
	cr_assert_eq(v4(s, "10.0.0.0"), T_MUNI);
	cr_assert_eq(v4(s, "10.0.4.255"), T_MUNI);
	cr_assert_eq(v4(s, "10.0.5.0"), T_SCHOOL);
	cr_assert_eq(v4(s, "10.0.5.15"), T_SCHOOL);
	cr_assert_eq(v4(s, "10.0.5.16"), T_MUNI);
	cr_assert_eq(v4(s, "10.0.255.255"), T_MUNI);
	cr_assert_eq(v4(s, "10.1.0.0"), -1);
	cr_assert_eq(v4(s, "9.255.255.255"), -1);
	cr_assert_eq(v4(s, "192.168.1.77"), T_HOSPITAL);
	cr_assert_eq(v4(s, "192.168.2.0"), -1);
	cr_assert_eq(v4(s, "0.0.0.0"), T_EDGE);
	cr_assert_eq(v4(s, "0.255.255.255"), T_EDGE);
	cr_assert_eq(v4(s, "1.0.0.0"), -1);
	cr_assert_eq(v4(s, "255.255.255.255"), T_EDGE);
	cr_assert_eq(v4(s, "255.255.254.255"), -1);
	cr_assert_eq(v4(s, "127.1.0.5"), T_SCHOOL);
	cr_assert_eq(v4(s, "127.1.0.4"), -1);
	cr_assert_eq(v4(s, "127.1.0.6"), -1);
	/* 0/8, 10/16 split in three, 127.1.0.5, 192.168.1/24, 255.255.255/24 */
	cr_assert_eq(snapshot_interval_count(s, AF_INET), 7);
	snapshot_close(s);
	unlink(path);
}

Test(snapshot, tenants_by_address_v6)
{
	struct snapshot *s = open_fixture();
	cr_assert_eq(v6(s, "2001:db8::"), T_MUNI);
	cr_assert_eq(v6(s, "2001:db8:4:ffff:ffff:ffff:ffff:ffff"), T_MUNI);
	cr_assert_eq(v6(s, "2001:db8:5::"), T_SCHOOL);
	cr_assert_eq(v6(s, "2001:db8:5:ffff:ffff:ffff:ffff:ffff"), T_SCHOOL);
	cr_assert_eq(v6(s, "2001:db8:6::"), T_MUNI);
	cr_assert_eq(v6(s, "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff"), T_MUNI);
	cr_assert_eq(v6(s, "2001:db9::"), -1);
	cr_assert_eq(v6(s, "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff"), -1);
	cr_assert_eq(v6(s, "fd00:1::1"), T_HOSPITAL);
	cr_assert_eq(v6(s, "fd00:2::1"), -1);
	cr_assert_eq(v6(s, "::"), T_EDGE);
	cr_assert_eq(v6(s, "::ff"), T_EDGE);
	cr_assert_eq(v6(s, "::100"), -1);
	cr_assert_eq(v6(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), T_EDGE);
	cr_assert_eq(v6(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:feff"), -1);
	/* v4-mapped is an ordinary IPv6 address here: no tenant owns ::ffff:0:0/96. */
	cr_assert_eq(v6(s, "::ffff:10.0.5.1"), -1);
	cr_assert_eq(v6(s, "::ffff:127.1.0.5"), -1);
	cr_assert_eq(snapshot_tenant_for_address(s, AF_UNIX, "x"), -1);
	snapshot_close(s);
	unlink(path);
}

Test(snapshot, tenant_records_and_strings)
{
	struct snapshot *s = open_fixture();
	cr_assert_eq(snapshot_serial(s), 42);
	cr_assert_eq(snapshot_tenant_count(s), 4);
	cr_assert_null(snapshot_tenant(s, 4));
	cr_assert_null(snapshot_tenant(s, UINT32_MAX));

	const struct snapshot_tenant *t = snapshot_tenant(s, T_SCHOOL);
	size_t len;
	cr_assert_str_eq(snapshot_tenant_name(s, t, &len), "School 1");
	cr_assert_eq(len, 8);
	cr_assert_str_eq(snapshot_tenant_ede_text(s, t, NULL), "contact soc@gov.example");
	cr_assert_eq(t->id[0], T_SCHOOL);
	cr_assert_eq(t->id[15], 0xAA);
	cr_assert_eq(t->block_mask, (1u << CAT_MALWARE) | (1u << CAT_ADULT));
	cr_assert_eq(t->monitor_mask, 0);

	const struct snapshot_tenant *h = snapshot_tenant(s, T_HOSPITAL);
	cr_assert_str_eq(snapshot_tenant_ede_text(s, h, &len), "");
	cr_assert_eq(len, 0);
	cr_assert_eq(h->block_action, SNAPSHOT_ACTION_SINKHOLE);
	cr_assert_eq(h->safe_search, 1);
	cr_assert_eq(h->privacy, SNAPSHOT_PRIVACY_TRUNCATED);
	cr_assert_eq(h->trunc_v6, 56);
	cr_assert_eq(h->flags, SNAPSHOT_TENANT_SINKHOLE_V4 | SNAPSHOT_TENANT_SINKHOLE_V6);
	cr_assert_eq(memcmp(h->sinkhole_v4, (uint8_t[]){ 192, 0, 2, 1 }, 4), 0);
	cr_assert_eq(h->sinkhole_v6[0], 0x20);
	cr_assert_eq(h->sinkhole_v6[15], 1);

	cr_assert_eq(snapshot_category_count(s), 3);
	cr_assert_str_eq(snapshot_category_name(s, CAT_ADULT), "adult");
	cr_assert_eq(snapshot_category_kind(s, CAT_ADULT), SNAPSHOT_CATEGORY_CONTENT);
	cr_assert_eq(snapshot_category_kind(s, CAT_PHISHING), SNAPSHOT_CATEGORY_THREAT);
	cr_assert_null(snapshot_category_name(s, 3));
	cr_assert_eq(snapshot_category_find(s, "phishing"), CAT_PHISHING);
	cr_assert_eq(snapshot_category_find(s, "gambling"), -ENOENT);
	/* evil, gov, bad, phish.bad, adult, shared, both, deny.shared, zip, long */
	cr_assert_eq(snapshot_name_count(s), 10);
	snapshot_close(s);
	unlink(path);
}

Test(snapshot, names_self_below_not_parent)
{
	struct snapshot *s = open_fixture();
	struct snapshot_match m;
	match(s, T_MUNI, "bad.example", &m);
	cr_assert_eq(m.categories, 1u << CAT_MALWARE);
	cr_assert_eq(m.category_at[CAT_MALWARE], 0);
	match(s, T_MUNI, "a.b.c.bad.example", &m);
	cr_assert_eq(m.categories, 1u << CAT_MALWARE);
	cr_assert_eq(m.category_at[CAT_MALWARE], 6);   /* "\1a\1b\1c" precede it */
	match(s, T_MUNI, "example", &m);
	cr_assert_eq(m.categories, 0);
	match(s, T_MUNI, "notbad.example", &m);
	cr_assert_eq(m.categories, 0);
	match(s, T_MUNI, "bad.example.org", &m);
	cr_assert_eq(m.categories, 0);
	cr_assert_eq(m.category_at[CAT_MALWARE], SNAPSHOT_NO_MATCH);
	cr_assert_not(m.national_block || m.national_allow || m.tenant_allow || m.tenant_deny);
	snapshot_close(s);
	unlink(path);
}

Test(snapshot, names_case_insensitive_wire)
{
	struct snapshot *s = open_fixture();
	struct snapshot_match m;
	match(s, T_MUNI, "WWW.BaD.ExAmPlE", &m);
	cr_assert_eq(m.categories, 1u << CAT_MALWARE);
	match(s, T_MUNI, "PHISH.bad.EXAMPLE", &m);
	cr_assert_eq(m.categories, (1u << CAT_MALWARE) | (1u << CAT_PHISHING));
	match(s, T_MUNI, "foo.ZIP", &m);
	cr_assert(m.national_block);
	snapshot_close(s);
	unlink(path);
}

Test(snapshot, categories_or_across_suffixes)
{
	struct snapshot *s = open_fixture();
	struct snapshot_match m;
	match(s, T_MUNI, "x.phish.bad.example", &m);
	cr_assert_eq(m.categories, (1u << CAT_MALWARE) | (1u << CAT_PHISHING));
	cr_assert_eq(m.category_at[CAT_PHISHING], 2);
	cr_assert_eq(m.category_at[CAT_MALWARE], 8);
	cr_assert_eq(m.category_at[CAT_ADULT], SNAPSHOT_NO_MATCH);
	/* "*.adult.example" is the same as "adult.example"; the two feeds' masks merge. */
	match(s, T_MUNI, "adult.example", &m);
	cr_assert_eq(m.categories, (1u << CAT_MALWARE) | (1u << CAT_ADULT));
	cr_assert_eq(m.category_at[CAT_ADULT], 0);
	snapshot_close(s);
	unlink(path);
}

Test(snapshot, national_flags)
{
	struct snapshot *s = open_fixture();
	struct snapshot_match m;
	match(s, T_SCHOOL, "www.evil.example", &m);
	cr_assert(m.national_block);
	cr_assert_eq(m.national_block_at, 4);
	cr_assert_not(m.national_allow);
	cr_assert_eq(m.categories, 1u << CAT_PHISHING);
	match(s, UINT32_MAX, "portal.gov.example", &m);
	cr_assert(m.national_allow);
	cr_assert_eq(m.national_allow_at, 7);
	cr_assert_not(m.national_block);
	match(s, UINT32_MAX, "zip", &m);
	cr_assert(m.national_block);
	cr_assert_eq(m.national_block_at, 0);
	snapshot_close(s);
	unlink(path);
}

Test(snapshot, tenant_rules_per_tenant)
{
	struct snapshot *s = open_fixture();
	struct snapshot_match m;
	match(s, T_MUNI, "shared.example", &m);
	cr_assert(m.tenant_allow);
	cr_assert_not(m.tenant_deny);
	cr_assert_eq(m.tenant_allow_at, 0);
	match(s, T_SCHOOL, "www.shared.example", &m);
	cr_assert(m.tenant_deny);
	cr_assert_not(m.tenant_allow);
	cr_assert_eq(m.tenant_deny_at, 4);
	match(s, T_HOSPITAL, "shared.example", &m);
	cr_assert_not(m.tenant_allow || m.tenant_deny);
	match(s, UINT32_MAX, "shared.example", &m);
	cr_assert_not(m.tenant_allow || m.tenant_deny);
	match(s, 12345, "shared.example", &m);
	cr_assert_not(m.tenant_allow || m.tenant_deny);
	/* Both lists, the most specific suffix of each reported. */
	match(s, T_MUNI, "a.deny.shared.example", &m);
	cr_assert(m.tenant_allow && m.tenant_deny);
	cr_assert_eq(m.tenant_deny_at, 2);
	cr_assert_eq(m.tenant_allow_at, 7);
	match(s, T_HOSPITAL, "both.example", &m);
	cr_assert(m.tenant_allow && m.tenant_deny);
	snapshot_close(s);
	unlink(path);
}

Test(snapshot, root_empty_and_malformed_names)
{
	struct snapshot *s = open_fixture();
	struct snapshot_match m;
	snapshot_match_name(s, T_MUNI, (const uint8_t *)"\0", 1, &m);
	cr_assert_eq(m.categories, 0);
	snapshot_match_name(s, T_MUNI, (const uint8_t *)"", 0, &m);
	cr_assert_eq(m.categories, 0);
	/* label runs past the buffer, label over 63, no root label */
	snapshot_match_name(s, T_MUNI, (const uint8_t *)"\3bad\7example", 12, &m);
	cr_assert_eq(m.categories, 0);
	snapshot_match_name(s, T_MUNI, (const uint8_t *)"\x40" "bad\0", 5, &m);
	cr_assert_eq(m.categories, 0);
	snapshot_match_name(s, T_MUNI, (const uint8_t *)"\3bad\7example\0", 12, &m);
	cr_assert_eq(m.categories, 0);
	/* Bytes after the root label are not part of the name. */
	snapshot_match_name(s, T_MUNI, (const uint8_t *)"\3bad\7example\0\0\1\0\1", 18, &m);
	cr_assert_eq(m.categories, 1u << CAT_MALWARE);
	/* A pointer (compression) byte is not a label. */
	snapshot_match_name(s, T_MUNI, (const uint8_t *)"\3www\xc0\x0c", 6, &m);
	cr_assert_eq(m.categories, 0);
	snapshot_close(s);
	unlink(path);
}

Test(snapshot, max_length_names)
{
	struct snapshot *s = open_fixture();
	struct snapshot_match m;
	uint8_t w[300];
	size_t n = to_wire(long_name(), w);
	cr_assert_eq(n, 255);
	snapshot_match_name(s, T_MUNI, w, n, &m);
	cr_assert_eq(m.categories, 1u << CAT_ADULT);
	cr_assert_eq(m.category_at[CAT_ADULT], 0);
	/* One byte more in wire form is not a DNS name. */
	char longer[300];
	snprintf(longer, sizeof longer, "x.%s", long_name());
	n = to_wire(longer, w);
	cr_assert_eq(n, 257);
	snapshot_match_name(s, T_MUNI, w, n, &m);
	cr_assert_eq(m.categories, 0);
	/* 127 one-character labels: the most labels a name can have. */
	char many[300] = "";
	for (int i = 0; i < 127; i++)
		strcat(many, i ? ".a" : "a");
	n = to_wire(many, w);
	cr_assert_eq(n, 255);
	snapshot_match_name(s, T_MUNI, w, n, &m);
	cr_assert_eq(m.categories, 0);
	snapshot_close(s);
	unlink(path);
}

/* ---- builder ---- */

Test(snapshot, parse_name_normalises_and_refuses)
{
	uint8_t w[SNAPSHOT_MAX_NAME_WIRE];
	size_t n;
	cr_assert_eq(snapshot_parse_name("WWW.Example.COM.", w, &n), 0);
	cr_assert_eq(n, 17);
	cr_assert_eq(memcmp(w, "\3www\7example\3com", 17), 0);
	cr_assert_eq(snapshot_parse_name("*.example.com", w, &n), 0);
	cr_assert_eq(memcmp(w, "\7example\3com", 13), 0);
	cr_assert_eq(snapshot_parse_name("xn--bcher-kva.example", w, &n), 0);
	cr_assert_eq(snapshot_parse_name("_dmarc.a-b.example", w, &n), 0);
	cr_assert_eq(snapshot_parse_name(long_name(), w, &n), 0);
	cr_assert_eq(n, 255);

	char longer[300];
	snprintf(longer, sizeof longer, "x.%s", long_name());
	char label64[80];
	memset(label64, 'a', 64);
	strcpy(label64 + 64, ".example");
	const char *bad[] = { "", ".", "..", "a..b", ".a", "a b.example", "bücher.example",
			      "*.", "*", "**.x", "a.*.example", "exa$mple.com", "a.b..",
			      label64, longer, "a/b", "x.example\n" };
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		cr_assert_eq(snapshot_parse_name(bad[i], w, &n), -EINVAL, "'%s'", bad[i]);
	cr_assert_eq(snapshot_parse_name(NULL, w, &n), -EINVAL);
}

Test(snapshot, builder_refuses_bad_input)
{
	struct snapshot_builder *b = snapshot_builder_new(1);
	cr_assert_eq(snapshot_builder_add_category(b, "malware", SNAPSHOT_CATEGORY_THREAT), 0);
	cr_assert_eq(snapshot_builder_add_category(b, "malware", SNAPSHOT_CATEGORY_CONTENT),
		     -EEXIST);
	cr_assert_eq(snapshot_builder_add_category(b, "", SNAPSHOT_CATEGORY_CONTENT), -EINVAL);
	cr_assert_eq(snapshot_builder_add_category(b, "x", (enum snapshot_category_kind)7),
		     -EINVAL);
	for (int i = 1; i < SNAPSHOT_MAX_CATEGORIES; i++) {
		char name[16];
		snprintf(name, sizeof name, "c%d", i);
		cr_assert_eq(snapshot_builder_add_category(b, name, SNAPSHOT_CATEGORY_CONTENT), i);
	}
	cr_assert_eq(snapshot_builder_add_category(b, "one-too-many", SNAPSHOT_CATEGORY_THREAT),
		     -ENOSPC);

	struct snapshot_tenant_spec t = { .name = "T", .block_mask = 1, .monitor_mask = 1 };
	cr_assert_eq(snapshot_builder_add_tenant(b, &t), -EINVAL);          /* overlap */
	t.monitor_mask = 1u << 24;
	cr_assert_eq(snapshot_builder_add_tenant(b, &t), -EINVAL);          /* no such category */
	t.monitor_mask = 2;
	t.block_action = SNAPSHOT_ACTION_SINKHOLE;
	cr_assert_eq(snapshot_builder_add_tenant(b, &t), -EINVAL);          /* sinkhole nowhere */
	t.block_action = (enum snapshot_block_action)9;
	cr_assert_eq(snapshot_builder_add_tenant(b, &t), -EINVAL);
	t.block_action = SNAPSHOT_ACTION_REFUSED;
	t.trunc_v4 = 33;
	cr_assert_eq(snapshot_builder_add_tenant(b, &t), -EINVAL);
	t.trunc_v4 = 32;
	t.privacy = (enum snapshot_privacy)3;
	cr_assert_eq(snapshot_builder_add_tenant(b, &t), -EINVAL);
	t.privacy = SNAPSHOT_PRIVACY_PSEUDONYM;
	cr_assert_eq(snapshot_builder_add_tenant(b, &t), 0);

	const char *bad_cidrs[] = { "10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/-1",
				    "10.0.0.0/8x", "10.0.0/8", "2001:db8::1/32", "2001:db8::/129",
				    "", "/8", "example.com", "10.0.0.0/ 8", "10.0.0.0/0008" };
	for (size_t i = 0; i < sizeof bad_cidrs / sizeof bad_cidrs[0]; i++)
		cr_assert_eq(snapshot_builder_add_network(b, 0, bad_cidrs[i]), -EINVAL, "'%s'",
			     bad_cidrs[i]);
	cr_assert_eq(snapshot_builder_add_network(b, 1, "10.0.0.0/8"), -ERANGE);
	cr_assert_eq(snapshot_builder_add_network(b, 0, "0.0.0.0/0"), 0);
	cr_assert_eq(snapshot_builder_add_network(b, 0, "::/0"), 0);

	cr_assert_eq(snapshot_builder_add_name(b, "bad..name", SNAPSHOT_FEED, 0), -EINVAL);
	cr_assert_eq(snapshot_builder_add_name(b, "ok.name", SNAPSHOT_FEED, 24), -ERANGE);
	cr_assert_eq(snapshot_builder_add_name(b, "ok.name", SNAPSHOT_TENANT_DENY, 1), -ERANGE);
	cr_assert_eq(snapshot_builder_add_name(b, "ok.name", (enum snapshot_list)99, 0), -ERANGE);
	snapshot_builder_free(b);
}

Test(snapshot, same_prefix_two_tenants_fails)
{
	struct snapshot_builder *b = snapshot_builder_new(1);
	add_tenant(b, "School A", 0, 0, 0);
	add_tenant(b, "School B", 0, 0, 1);
	cr_assert_eq(snapshot_builder_add_network(b, 0, "10.9.0.0/24"), 0);
	cr_assert_eq(snapshot_builder_add_network(b, 1, "10.9.0.0/24"), 0);
	char err[256] = "";
	make_path();
	cr_assert_eq(snapshot_builder_write(b, path, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "10.9.0.0/24"), "%s", err);
	cr_assert(strstr(err, "School A") && strstr(err, "School B"), "%s", err);
	snapshot_builder_free(b);
	unlink(path);
}

Test(snapshot, duplicate_tenant_id_fails)
{
	struct snapshot_builder *b = snapshot_builder_new(1);
	add_tenant(b, "A", 0, 0, 0);
	struct snapshot_tenant_spec t = { .name = "B" };  /* id[0] = 0 as well: same id as A */
	t.id[15] = 0xAA;
	cr_assert_eq(snapshot_builder_add_tenant(b, &t), 1);
	char err[256] = "";
	make_path();
	cr_assert_eq(snapshot_builder_write(b, path, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "used by two tenants"), "%s", err);
	snapshot_builder_free(b);
	unlink(path);
}

Test(snapshot, whole_address_space_and_empty)
{
	struct snapshot_builder *b = snapshot_builder_new(7);
	add_tenant(b, "All", 0, 0, 0);
	add_tenant(b, "Inner", 0, 0, 1);
	cr_assert_eq(snapshot_builder_add_network(b, 0, "0.0.0.0/0"), 0);
	cr_assert_eq(snapshot_builder_add_network(b, 1, "255.255.255.255/32"), 0);
	cr_assert_eq(snapshot_builder_add_network(b, 0, "::/0"), 0);
	cr_assert_eq(snapshot_builder_add_network(b, 1, "::/128"), 0);
	char err[256] = "";
	make_path();
	cr_assert_eq(snapshot_builder_write(b, path, err, sizeof err), 0, "%s", err);
	snapshot_builder_free(b);
	struct snapshot *s = snapshot_open(path, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(v4(s, "0.0.0.0"), 0);
	cr_assert_eq(v4(s, "255.255.255.254"), 0);
	cr_assert_eq(v4(s, "255.255.255.255"), 1);
	cr_assert_eq(v6(s, "::"), 1);
	cr_assert_eq(v6(s, "::1"), 0);
	cr_assert_eq(v6(s, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 0);
	cr_assert_eq(snapshot_interval_count(s, AF_INET), 2);
	cr_assert_eq(snapshot_interval_count(s, AF_INET6), 2);
	snapshot_close(s);

	/* An empty policy is a valid snapshot that matches nothing. */
	b = snapshot_builder_new(8);
	cr_assert_eq(snapshot_builder_write(b, path, err, sizeof err), 0, "%s", err);
	snapshot_builder_free(b);
	s = snapshot_open(path, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	struct snapshot_match m;
	match(s, 0, "anything.example", &m);
	cr_assert_eq(m.categories, 0);
	cr_assert_eq(v4(s, "10.0.0.1"), -1);
	cr_assert_eq(v6(s, "::1"), -1);
	cr_assert_eq(snapshot_name_count(s), 0);
	snapshot_close(s);
	unlink(path);
}

Test(snapshot, write_replaces_atomically)
{
	char err[256] = "";
	char dir[] = "/tmp/aegis-test-snapdir-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char file[128];
	snprintf(file, sizeof file, "%s/policy.snap", dir);
	struct snapshot_builder *b = snapshot_builder_new(1);
	cr_assert_eq(snapshot_builder_write(b, file, err, sizeof err), 0, "%s", err);
	struct snapshot *old = snapshot_open(file, err, sizeof err);
	cr_assert_not_null(old);
	snapshot_builder_free(b);
	b = snapshot_builder_new(2);
	cr_assert_eq(snapshot_builder_write(b, file, err, sizeof err), 0, "%s", err);
	snapshot_builder_free(b);
	struct snapshot *cur = snapshot_open(file, err, sizeof err);
	cr_assert_eq(snapshot_serial(old), 1);
	cr_assert_eq(snapshot_serial(cur), 2);
	snapshot_close(old);
	snapshot_close(cur);
	struct stat st;
	cr_assert_eq(stat(file, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0644);
	/* Nothing but the file itself is left in the folder. */
	char cmd[200];
	snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", dir);
	cr_assert_eq(system(cmd), 0);
	unlink(file);
	rmdir(dir);

	b = snapshot_builder_new(3);
	cr_assert_lt(snapshot_builder_write(b, "/nonexistent-dir/x.snap", err, sizeof err), 0);
	cr_assert(strstr(err, "/nonexistent-dir/x.snap"), "%s", err);
	snapshot_builder_free(b);
	cr_assert_null(snapshot_open("/nonexistent-dir/x.snap", err, sizeof err));
	cr_assert_eq(errno, ENOENT);
}

/* ---- corruption ---- */

static void expect_refused(const uint8_t *data, size_t len, const char *why)
{
	char err[256] = "";
	struct snapshot *s = snapshot_open_buffer(data, len, err, sizeof err);
	cr_assert_null(s, "accepted: %s", why);
	if (s)
		snapshot_close(s);
	cr_assert_neq(err[0], '\0', "no reason given: %s", why);
}

static void expect_refused_with(const uint8_t *data, size_t len, const char *needle)
{
	char err[256] = "";
	struct snapshot *s = snapshot_open_buffer(data, len, err, sizeof err);
	cr_assert_null(s, "accepted: expected '%s'", needle);
	cr_assert(strstr(err, needle), "expected '%s', got '%s'", needle, err);
}

static uint64_t get64(const uint8_t *d, size_t at)
{
	uint64_t v;
	memcpy(&v, d + at, 8);
	return v;
}

static void put64(uint8_t *d, size_t at, uint64_t v)
{
	memcpy(d + at, &v, 8);
}

static void put32(uint8_t *d, size_t at, uint32_t v)
{
	memcpy(d + at, &v, 4);
}

static size_t sec_off(const uint8_t *d, int sec)
{
	return (size_t)get64(d, H_SECTIONS + 16 * (size_t)sec);
}

static size_t sec_size(const uint8_t *d, int sec)
{
	return (size_t)get64(d, H_SECTIONS + 16 * (size_t)sec + 8);
}

Test(snapshot, fixture_buffer_opens)
{
	size_t len;
	uint8_t *d = read_fixture(&len);
	char err[256];
	struct snapshot *s = snapshot_open_buffer(d, len, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(memcmp(snapshot_checksum(s), d + H_SHA, 32), 0);
	snapshot_close(s);
	cr_assert_eq(memcmp(d, "AEGISNAP", 8), 0);
	cr_assert_eq(get64(d, H_CONTENT), len - HEADER_SIZE);
	cr_assert_eq(sec_off(d, S_STRINGS), HEADER_SIZE);
	free(d);
}

Test(snapshot, any_flipped_byte_is_refused)
{
	size_t len;
	uint8_t *d = read_fixture(&len);
	for (size_t i = 0; i < len; i++) {
		d[i] ^= 0x20;
		expect_refused(d, len, "flipped byte");
		d[i] ^= 0x20;
	}
	free(d);
}

Test(snapshot, truncated_or_extended_is_refused)
{
	size_t len;
	uint8_t *d = read_fixture(&len);
	size_t cuts[] = { 0, 1, 8, 100, HEADER_SIZE - 1, HEADER_SIZE, HEADER_SIZE + 1, len / 2,
			  len - 8, len - 1 };
	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
		expect_refused(d, cuts[i], "truncated");
	expect_refused_with(d, len - 1, "truncated");
	uint8_t *more = calloc(1, len + 8);
	memcpy(more, d, len);
	expect_refused_with(more, len + 8, "trailing");

	/* The same through a file, cut short. */
	make_path();
	FILE *f = fopen(path, "wb");
	cr_assert_eq(fwrite(d, 1, len - 100, f), len - 100);
	fclose(f);
	char err[256];
	cr_assert_null(snapshot_open(path, err, sizeof err));
	cr_assert(strstr(err, "truncated"), "%s", err);
	unlink(path);
	free(more);
	free(d);
}

Test(snapshot, wrong_magic_version_checksum)
{
	size_t len;
	uint8_t *d = read_fixture(&len);
	d[0] = 'X';
	snapshot_seal_buffer(d, len);
	expect_refused_with(d, len, "magic");
	d[0] = 'A';
	put32(d, H_VERSION, 3);
	expect_refused_with(d, len, "version 3");
	put32(d, H_VERSION, 1);
	snapshot_seal_buffer(d, len);
	expect_refused_with(d, len, "format version 1 is not supported");
	put32(d, H_VERSION, 2);
	put32(d, H_HEADER_SIZE, 208);
	snapshot_seal_buffer(d, len);
	expect_refused_with(d, len, "header size");
	put32(d, H_HEADER_SIZE, HEADER_SIZE);
	snapshot_seal_buffer(d, len);
	d[len - 1] ^= 1;
	expect_refused_with(d, len, "checksum");
	d[len - 1] ^= 1;
	/* The header is covered too: a changed serial, seed or base reference is corruption. */
	put64(d, H_SERIAL, 43);
	expect_refused_with(d, len, "checksum");
	put64(d, H_SERIAL, 42);
	d[H_BASE_SHA + 5] = 1;
	expect_refused_with(d, len, "checksum");
	free(d);
}

/* Each case edits a fresh copy, reseals it so the checksum passes, and must be refused by the
 * structural checks with the expected words. */
static void tamper(void (*edit)(uint8_t *d, size_t len), const char *needle)
{
	size_t len;
	uint8_t *d = read_fixture(&len);
	edit(d, len);
	cr_assert_eq(snapshot_seal_buffer(d, len), 0);
	expect_refused_with(d, len, needle);
	free(d);
}

static void e_offset_range(uint8_t *d, size_t len)
{
	put64(d, H_SECTIONS + 16 * S_NAMES, ((len + 7) & ~(size_t)7) + 8);
}
static void e_offset_misaligned(uint8_t *d, size_t len)
{
	(void)len;
	put64(d, H_SECTIONS + 16 * S_TENANTS, sec_off(d, S_TENANTS) + 4);
}
static void e_size_huge(uint8_t *d, size_t len)
{
	(void)len;
	put64(d, H_SECTIONS + 16 * S_NET4 + 8, UINT64_MAX - 4);
}
static void e_size_overlap(uint8_t *d, size_t len)
{
	(void)len;
	put64(d, H_SECTIONS + 16 * S_TENANTS + 8, sec_size(d, S_TENANTS) + 64);
}
static void e_size_partial(uint8_t *d, size_t len)
{
	(void)len;
	put64(d, H_SECTIONS + 16 * S_NET6 + 8, sec_size(d, S_NET6) - 8);
}
static void e_net4_unsorted(uint8_t *d, size_t len)
{
	(void)len;
	uint8_t tmp[12];
	size_t o = sec_off(d, S_NET4);
	memcpy(tmp, d + o, 12);
	memcpy(d + o, d + o + 12, 12);
	memcpy(d + o + 12, tmp, 12);
}
static void e_net4_overlap(uint8_t *d, size_t len)
{
	(void)len;
	size_t o = sec_off(d, S_NET4);
	uint32_t next_start;
	memcpy(&next_start, d + o + 12, 4);
	put32(d, o + 4, next_start);  /* first end = second start */
}
static void e_net4_tenant(uint8_t *d, size_t len)
{
	(void)len;
	put32(d, sec_off(d, S_NET4) + 8, 4);
}
static void e_net6_tenant(uint8_t *d, size_t len)
{
	(void)len;
	put32(d, sec_off(d, S_NET6) + 32, 0xFFFFFFFFu);
}
static void e_net6_reversed(uint8_t *d, size_t len)
{
	(void)len;
	size_t o = sec_off(d, S_NET6);
	uint8_t tmp[16];
	memcpy(tmp, d + o, 16);
	memcpy(d + o, d + o + 16, 16);
	memcpy(d + o + 16, tmp, 16);
}
static void e_rule_tenant(uint8_t *d, size_t len)
{
	(void)len;
	put32(d, sec_off(d, S_RULES) + 4, 99);
}
static void e_rule_count(uint8_t *d, size_t len)
{
	(void)len;
	put32(d, sec_off(d, S_RULES), 1000000);
}
static void e_rule_kind(uint8_t *d, size_t len)
{
	(void)len;
	d[sec_off(d, S_RULES) + 8] = 4;
}
static void e_tenant_mask(uint8_t *d, size_t len)
{
	(void)len;
	put32(d, sec_off(d, S_TENANTS) + 64 + 24, 1u << 3);  /* school blocks category 3 */
}
static void e_tenant_overlap(uint8_t *d, size_t len)
{
	(void)len;
	put32(d, sec_off(d, S_TENANTS) + 28, 1u << CAT_MALWARE);  /* muni monitors what it blocks */
}
static void e_tenant_string(uint8_t *d, size_t len)
{
	(void)len;
	put32(d, sec_off(d, S_TENANTS) + 16, (uint32_t)sec_size(d, S_STRINGS) + 10);
}
static void e_tenant_string_mid(uint8_t *d, size_t len)
{
	(void)len;
	put32(d, sec_off(d, S_TENANTS) + 16, 4);  /* inside the first name, not at an entry */
}
static void e_tenant_action(uint8_t *d, size_t len)
{
	(void)len;
	d[sec_off(d, S_TENANTS) + 32] = 4;
}
static void e_string_unterminated(uint8_t *d, size_t len)
{
	(void)len;
	d[sec_off(d, S_STRINGS) + sec_size(d, S_STRINGS) - 1] = 'x';
}
static void e_category_kind(uint8_t *d, size_t len)
{
	(void)len;
	d[sec_off(d, S_CATEGORIES) + 4] = 2;
}
static void e_name_count(uint8_t *d, size_t len)
{
	(void)len;
	put64(d, H_NAME_COUNT, get64(d, H_NAME_COUNT) + 1);
}
static void e_home_slots_zero(uint8_t *d, size_t len)
{
	(void)len;
	put64(d, H_HOME_SLOTS, 0);
}
static void e_home_slots_big(uint8_t *d, size_t len)
{
	(void)len;
	put64(d, H_HOME_SLOTS, UINT64_MAX);
}
static size_t first_slot(const uint8_t *d, bool occupied)
{
	size_t o = sec_off(d, S_NAMES);
	for (size_t i = 0; i < sec_size(d, S_NAMES) / 24; i++)
		if (((get64(d, o + 24 * i) | get64(d, o + 24 * i + 8)) != 0) == occupied)
			return o + 24 * i;
	cr_assert_fail("no such slot");
	return 0;
}
static void e_slot_mask(uint8_t *d, size_t len)
{
	(void)len;
	put32(d, first_slot(d, true) + 16, 1u << 30);
}
static void e_slot_category(uint8_t *d, size_t len)
{
	(void)len;
	put32(d, first_slot(d, true) + 16, 1u << 5);
}
static void e_slot_rules(uint8_t *d, size_t len)
{
	(void)len;
	size_t s = first_slot(d, true);
	put32(d, s + 16, 1u << 26);
	put32(d, s + 20, 0x7FFFFFF0u);
}
static void e_slot_key_order(uint8_t *d, size_t len)
{
	(void)len;
	size_t s = first_slot(d, true);
	put64(d, s, UINT64_MAX);  /* its home is now past its position */
}
static void e_slot_empty_dirty(uint8_t *d, size_t len)
{
	(void)len;
	put32(d, first_slot(d, false) + 16, 1);
}
static void e_categories_many(uint8_t *d, size_t len)
{
	(void)len;
	/* 25 category records' worth: more than 24 categories. */
	put64(d, H_SECTIONS + 16 * S_CATEGORIES + 8, 25 * 8);
}
static void e_padding(uint8_t *d, size_t len)
{
	(void)len;
	size_t end = sec_off(d, S_NET4) + sec_size(d, S_NET4);
	cr_assert_lt(end, sec_off(d, S_NET6), "fixture needs padding after net4");
	d[end] = 1;
}

Test(snapshot, structural_validation_refuses)
{
	tamper(e_offset_range, "out of range");
	tamper(e_offset_misaligned, "misaligned");
	tamper(e_size_huge, "out of range");
	tamper(e_size_overlap, "overlap or gap");
	tamper(e_size_partial, "not a multiple");
	tamper(e_net4_unsorted, "IPv4 interval 1 is not sorted");
	tamper(e_net4_overlap, "not sorted and disjoint");
	tamper(e_net4_tenant, "tenant 4 out of range");
	tamper(e_net6_tenant, "out of range");
	tamper(e_net6_reversed, "not sorted and disjoint");
	tamper(e_rule_tenant, "tenant index 99");
	tamper(e_rule_count, "bad count");
	tamper(e_rule_kind, "bad kind");
	tamper(e_tenant_mask, "beyond the 3 categories");
	tamper(e_tenant_overlap, "both blocked and monitored");
	tamper(e_tenant_string, "bad string reference");
	tamper(e_tenant_string_mid, "bad string reference");
	tamper(e_tenant_action, "out of range");
	tamper(e_string_unterminated, "string");
	tamper(e_category_kind, "bad kind");
	tamper(e_name_count, "name count");
	tamper(e_home_slots_zero, "home slots");
	tamper(e_home_slots_big, "home slots");
	tamper(e_slot_mask, "bad mask");
	tamper(e_slot_category, "bad mask");
	tamper(e_slot_rules, "rules index");
	tamper(e_slot_key_order, "name slot");
	tamper(e_slot_empty_dirty, "empty but not zero");
	tamper(e_categories_many, "overlap or gap");
	tamper(e_padding, "padding");
}

/* A poor man's fuzzer that runs in every test run: random edits, resealed, must never crash;
 * what opens must answer lookups. */
Test(snapshot, random_edits_never_crash)
{
	size_t len;
	uint8_t *orig = read_fixture(&len);
	uint8_t *d = malloc(len);
	unsigned seed = 12345;
	uint8_t w[64];
	size_t wl = to_wire("a.phish.bad.example", w);
	for (int round = 0; round < 3000; round++) {
		memcpy(d, orig, len);
		int edits = 1 + rand_r(&seed) % 4;
		for (int e = 0; e < edits; e++) {
			size_t at = (size_t)rand_r(&seed) % len;
			d[at] = (uint8_t)rand_r(&seed);
		}
		snapshot_seal_buffer(d, len);
		char err[256];
		struct snapshot *s = snapshot_open_buffer(d, len, err, sizeof err);
		if (!s)
			continue;
		struct snapshot_match m;
		for (uint32_t t = 0; t < 5; t++)
			snapshot_match_name(s, t, w, wl, &m);
		uint8_t a6[16] = { 0x20, 0x01, 0x0d, 0xb8 };
		uint8_t a4[4] = { 10, 0, 5, 1 };
		int t = snapshot_tenant_for_address(s, AF_INET, a4);
		if (t >= 0)
			snapshot_tenant_name(s, snapshot_tenant(s, (uint32_t)t), NULL);
		snapshot_tenant_for_address(s, AF_INET6, a6);
		snapshot_close(s);
	}
	free(d);
	free(orig);
}

/* ---- scale ---- */

Test(snapshot, two_hundred_thousand_names, .timeout = 30)
{
	struct snapshot_builder *b = snapshot_builder_new(9);
	cr_assert_eq(snapshot_builder_add_category(b, "malware", SNAPSHOT_CATEGORY_THREAT), 0);
	cr_assert_eq(snapshot_builder_add_category(b, "ads", SNAPSHOT_CATEGORY_CONTENT), 1);
	add_tenant(b, "T0", 1, 2, 0);
	add_tenant(b, "T1", 3, 0, 1);
	char name[64];
	for (int i = 0; i < 200000; i++) {
		snprintf(name, sizeof name, "host%d.feed%d.example", i, i % 97);
		cr_assert_eq(snapshot_builder_add_name(b, name, SNAPSHOT_FEED, (uint32_t)(i % 2)),
			     0);
	}
	for (int i = 0; i < 1000; i++) {
		snprintf(name, sizeof name, "host%d.feed%d.example", i * 7, (i * 7) % 97);
		cr_assert_eq(snapshot_builder_add_name(b, name, SNAPSHOT_TENANT_ALLOW, 1), 0);
	}
	char err[256] = "";
	make_path();
	cr_assert_eq(snapshot_builder_write(b, path, err, sizeof err), 0, "%s", err);
	snapshot_builder_free(b);
	struct snapshot *s = snapshot_open(path, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(snapshot_name_count(s), 200000);
	uint8_t w[300];
	struct snapshot_match m;
	for (int i = 0; i < 200000; i += 997) {
		snprintf(name, sizeof name, "www.HOST%d.feed%d.example", i, i % 97);
		snapshot_match_name(s, 1, w, to_wire(name, w), &m);
		cr_assert_eq(m.categories, 1u << (i % 2), "%s", name);
		cr_assert_eq(m.category_at[i % 2], 4);
		cr_assert_eq(m.tenant_allow, i % 7 == 0 && i / 7 < 1000, "%s", name);
		snprintf(name, sizeof name, "host%d.feed%d.example", i, (i + 1) % 97);
		snapshot_match_name(s, 1, w, to_wire(name, w), &m);
		cr_assert_eq(m.categories, 0, "%s", name);
	}
	snapshot_close(s);
	unlink(path);
}

/* ---- feed base and overlay ---- */

enum split_part { PART_ALL, PART_BASE, PART_OVERLAY };

/* The same policy as one snapshot (PART_ALL) or split: feed names and their passthru
 * exceptions in the base, everything else in the overlay. */
static struct snapshot_builder *split_builder(enum split_part part, const struct snapshot *base)
{
	struct snapshot_builder *b = snapshot_builder_new(part == PART_BASE ? 7 : 8);
	cr_assert_not_null(b);
	if (base)
		cr_assert_eq(snapshot_builder_set_base(b, base), 0);
	cr_assert_eq(snapshot_builder_add_category(b, "malware", SNAPSHOT_CATEGORY_THREAT), 0);
	cr_assert_eq(snapshot_builder_add_category(b, "phishing", SNAPSHOT_CATEGORY_THREAT), 1);
	cr_assert_eq(snapshot_builder_add_category(b, "adult", SNAPSHOT_CATEGORY_CONTENT), 2);
	if (part != PART_OVERLAY) {
		cr_assert_eq(snapshot_builder_add_name(b, "bad.example", SNAPSHOT_FEED, CAT_MALWARE), 0);
		cr_assert_eq(snapshot_builder_add_name(b, "phish.bad.example", SNAPSHOT_FEED,
						       CAT_PHISHING), 0);
		cr_assert_eq(snapshot_builder_add_name(b, "adult.example", SNAPSHOT_FEED, CAT_ADULT), 0);
		cr_assert_eq(snapshot_builder_add_name(b, "ok.bad.example", SNAPSHOT_NATIONAL_ALLOW, 0),
			     0);
	}
	if (part != PART_BASE) {
		add_tenant(b, "Municipality", 1u << CAT_MALWARE, 1u << CAT_ADULT, T_MUNI);
		add_tenant(b, "School 1", 7, 0, T_SCHOOL);
		cr_assert_eq(snapshot_builder_add_network(b, T_MUNI, "10.0.0.0/16"), 0);
		cr_assert_eq(snapshot_builder_add_name(b, "evil.example", SNAPSHOT_NATIONAL_BLOCK, 0), 0);
		cr_assert_eq(snapshot_builder_add_name(b, "gov.example", SNAPSHOT_NATIONAL_ALLOW, 0), 0);
		cr_assert_eq(snapshot_builder_add_name(b, "x.adult.example", SNAPSHOT_FEED, CAT_MALWARE),
			     0);
		cr_assert_eq(snapshot_builder_add_name(b, "phish.bad.example", SNAPSHOT_TENANT_ALLOW,
						       T_MUNI), 0);
		cr_assert_eq(snapshot_builder_add_name(b, "deny.example", SNAPSHOT_TENANT_DENY,
						       T_SCHOOL), 0);
	}
	return b;
}

static struct snapshot *split_open(enum split_part part, const struct snapshot *base)
{
	char err[256] = "";
	make_path();
	struct snapshot_builder *b = split_builder(part, base);
	cr_assert_eq(snapshot_builder_write(b, path, err, sizeof err), 0, "%s", err);
	snapshot_builder_free(b);
	struct snapshot *s = snapshot_open(path, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	unlink(path);
	return s;
}

Test(snapshot, base_and_overlay_match_as_one_snapshot)
{
	char err[256] = "";
	struct snapshot *all = split_open(PART_ALL, NULL);
	struct snapshot *base = split_open(PART_BASE, NULL);
	struct snapshot *overlay = split_open(PART_OVERLAY, base);

	cr_assert_null(snapshot_base_checksum(all));
	cr_assert_null(snapshot_base_checksum(base));
	cr_assert_eq(memcmp(snapshot_base_checksum(overlay), snapshot_checksum(base), 32), 0);
	cr_assert(snapshot_is_complete(all));
	cr_assert_not(snapshot_is_complete(overlay));
	cr_assert_eq(snapshot_attach_base(overlay, base, err, sizeof err), 0, "%s", err);
	cr_assert(snapshot_is_complete(overlay));
	cr_assert_eq(snapshot_base(overlay), base);
	cr_assert_eq(snapshot_attach_base(overlay, base, err, sizeof err), -EINVAL);
	/* The overlay holds its own reference: the caller's may go first. */
	snapshot_close(base);

	const char *const names[] = {
		"bad.example", "www.Phish.BAD.example", "ok.bad.example", "a.ok.bad.example",
		"adult.example", "x.adult.example", "evil.example", "bad.evil.example",
		"gov.example", "bad.gov.example", "deny.example", "phish.bad.example",
		"nothing.example", "example", long_name(),
	};
	const uint32_t tenants[] = { T_MUNI, T_SCHOOL, UINT32_MAX };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		for (size_t t = 0; t < 3; t++) {
			struct snapshot_match one, two;
			match(all, tenants[t], names[i], &one);
			match(overlay, tenants[t], names[i], &two);
			cr_assert_eq(memcmp(&one, &two, sizeof one), 0, "%s for tenant %u", names[i],
				     tenants[t]);
		}
	/* And the merge really used both tables. */
	struct snapshot_match m;
	match(overlay, T_MUNI, "a.x.adult.example", &m);
	cr_assert_eq(m.categories, (1u << CAT_MALWARE) | (1u << CAT_ADULT));
	cr_assert_eq(m.category_at[CAT_MALWARE], 2);   /* x.adult.example */
	cr_assert_eq(m.category_at[CAT_ADULT], 4);     /* adult.example */
	match(overlay, T_MUNI, "ok.bad.example", &m);
	cr_assert(m.national_allow);
	cr_assert_eq(m.categories, 1u << CAT_MALWARE);
	snapshot_close(overlay);
	snapshot_close(all);
}

Test(snapshot, base_refused_when_it_does_not_fit)
{
	char err[256] = "";
	struct snapshot *base = split_open(PART_BASE, NULL);
	struct snapshot *other = split_open(PART_BASE, NULL);
	struct snapshot *all = split_open(PART_ALL, NULL);
	struct snapshot *overlay = split_open(PART_OVERLAY, base);

	cr_assert_eq(snapshot_attach_base(overlay, other, err, sizeof err), -ENOENT);
	cr_assert(strstr(err, "checksum"), "%s", err);
	cr_assert_eq(snapshot_attach_base(all, base, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "names no base"), "%s", err);
	cr_assert_not(snapshot_is_complete(overlay));

	/* A full snapshot is no base: it holds tenants and lists. */
	cr_assert_eq(snapshot_attach_base(all, all, err, sizeof err), -EINVAL);
	struct snapshot_builder *b = snapshot_builder_new(9);
	cr_assert_eq(snapshot_builder_set_base(b, all), 0);
	cr_assert_eq(snapshot_builder_add_category(b, "malware", SNAPSHOT_CATEGORY_THREAT), 0);
	cr_assert_eq(snapshot_builder_add_category(b, "phishing", SNAPSHOT_CATEGORY_THREAT), 1);
	cr_assert_eq(snapshot_builder_add_category(b, "adult", SNAPSHOT_CATEGORY_CONTENT), 2);
	make_path();
	cr_assert_eq(snapshot_builder_write(b, path, err, sizeof err), 0, "%s", err);
	snapshot_builder_free(b);
	struct snapshot *on_full = snapshot_open(path, err, sizeof err);
	cr_assert_not_null(on_full, "%s", err);
	unlink(path);
	cr_assert_eq(snapshot_attach_base(on_full, all, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "feed names only"), "%s", err);
	snapshot_close(on_full);

	/* An overlay cannot be a base, nor be set as one after names were added. */
	b = snapshot_builder_new(10);
	cr_assert_eq(snapshot_builder_set_base(b, overlay), -EINVAL);
	cr_assert_eq(snapshot_builder_add_category(b, "malware", SNAPSHOT_CATEGORY_THREAT), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "a.example", SNAPSHOT_FEED, 0), 0);
	cr_assert_eq(snapshot_builder_set_base(b, base), -EINVAL);
	snapshot_builder_free(b);

	/* Categories must be the base's, index for index. */
	b = snapshot_builder_new(11);
	cr_assert_eq(snapshot_builder_set_base(b, base), 0);
	cr_assert_eq(snapshot_builder_add_category(b, "phishing", SNAPSHOT_CATEGORY_THREAT), 0);
	cr_assert_eq(snapshot_builder_add_category(b, "malware", SNAPSHOT_CATEGORY_THREAT), 1);
	cr_assert_eq(snapshot_builder_add_category(b, "adult", SNAPSHOT_CATEGORY_CONTENT), 2);
	make_path();
	cr_assert_eq(snapshot_builder_write(b, path, err, sizeof err), -EINVAL);
	cr_assert(strstr(err, "categories differ"), "%s", err);
	snapshot_builder_free(b);
	unlink(path);

	snapshot_close(overlay);
	snapshot_close(all);
	snapshot_close(other);
	snapshot_close(base);
}
