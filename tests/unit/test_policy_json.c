/* test_policy_json.c -- JSON policy description to snapshot: a good file, and every kind of
 * bad field refused with a message naming it (and nothing written). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy_json.h"
#include "snapshot.h"

static char dir[64];
static char json_path[128];
static char out_path[128];

static void setup(void)
{
	strcpy(dir, "/tmp/aegis-test-pjson-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(json_path, sizeof json_path, "%s/policy.json", dir);
	snprintf(out_path, sizeof out_path, "%s/policy.snap", dir);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(policy_json, .init = setup, .fini = teardown);

static void write_text(const char *name, const char *text)
{
	char p[160];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
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
	uint8_t w[300];
	snapshot_match_name(s, tenant, w, to_wire(text, w), m);
}

static const char *good =
	"{ \"categories\": [{\"name\": \"malware\", \"kind\": \"threat\"},\n"
	"                  {\"name\": \"adult\", \"kind\": \"content\"},\n"
	"                  {\"name\": \"phishing\", \"kind\": \"threat\"}],\n"
	"  \"tenants\": [\n"
	"    {\"id\": \"6f1c2a4e-0b7d-4c1e-9a53-2d8f0e6b7c11\", \"name\": \"School 1\",\n"
	"     \"networks\": [\"127.1.0.0/16\", \"fd00:1::/48\"], \"block_action\": \"sinkhole\",\n"
	"     \"sinkhole_v4\": \"192.0.2.1\", \"ede_text\": \"contact it@school.example\",\n"
	"     \"block\": [\"malware\"], \"monitor\": [\"adult\"], \"safe_search\": true,\n"
	"     \"privacy\": \"truncated\", \"trunc_v4\": 16, \"trunc_v6\": 32,\n"
	"     \"allow\": [\"good.example\", \"not a name\"], \"deny\": [\"bad.example\"]},\n"
	"    {\"id\": \"6F1C2A4E-0B7D-4C1E-9A53-2D8F0E6B7C12\", \"name\": \"Hospital\",\n"
	"     \"networks\": [\"127.2.0.0/16\", \"127.1.7.0/24\"]}\n"
	"  ],\n"
	"  \"national\": {\"block\": [\"evil.example\"], \"allow\": [\"gov.example\"]},\n"
	"  \"feeds\": [{\"category\": \"malware\", \"names\": [\"x.test\"],\n"
	"             \"file\": \"feeds/mal.txt\"},\n"
	"            {\"category\": \"adult\", \"names\": [\"adult.test\", \"bad..name\"]}]\n"
	"}\n";

Test(policy_json, good_file_round_trip)
{
	char feeds[100];
	snprintf(feeds, sizeof feeds, "%s/feeds", dir);
	cr_assert_eq(mkdir(feeds, 0755), 0);
	write_text("feeds/mal.txt", "# malware feed\n\nmal1.test\n  MAL2.test.  # a comment\n"
		   "*.mal3.test\r\nnot_ok!.test\n\t\n");
	write_text("policy.json", good);
	char err[256] = "";
	int rc = policy_json_compile(json_path, out_path, 77, err, sizeof err);
	/* "not a name", "bad..name", "not_ok!.test" */
	cr_assert_eq(rc, 3, "rc=%d err=%s", rc, err);

	struct snapshot *s = snapshot_open(out_path, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(snapshot_serial(s), 77);
	cr_assert_eq(snapshot_tenant_count(s), 2);
	cr_assert_eq(snapshot_category_count(s), 3);
	cr_assert_eq(snapshot_category_kind(s, 1), SNAPSHOT_CATEGORY_CONTENT);

	const struct snapshot_tenant *t = snapshot_tenant(s, 0);
	cr_assert_str_eq(snapshot_tenant_name(s, t, NULL), "School 1");
	cr_assert_str_eq(snapshot_tenant_ede_text(s, t, NULL), "contact it@school.example");
	cr_assert_eq(t->id[0], 0x6f);
	cr_assert_eq(t->id[15], 0x11);
	cr_assert_eq(t->block_action, SNAPSHOT_ACTION_SINKHOLE);
	cr_assert_eq(t->flags, SNAPSHOT_TENANT_SINKHOLE_V4);
	cr_assert_eq(memcmp(t->sinkhole_v4, (uint8_t[]){ 192, 0, 2, 1 }, 4), 0);
	cr_assert_eq(t->block_mask, 1u << 0);
	cr_assert_eq(t->monitor_mask, 1u << 1);
	cr_assert_eq(t->safe_search, 1);
	cr_assert_eq(t->privacy, SNAPSHOT_PRIVACY_TRUNCATED);
	cr_assert_eq(t->trunc_v4, 16);
	cr_assert_eq(t->trunc_v6, 32);

	/* Defaults: every threat category blocked, nxdomain, full logging, no safe search. */
	const struct snapshot_tenant *h = snapshot_tenant(s, 1);
	cr_assert_eq(h->id[15], 0x12);
	cr_assert_eq(h->block_mask, (1u << 0) | (1u << 2));
	cr_assert_eq(h->monitor_mask, 0);
	cr_assert_eq(h->block_action, SNAPSHOT_ACTION_NXDOMAIN);
	cr_assert_eq(h->privacy, SNAPSHOT_PRIVACY_FULL);
	cr_assert_eq(h->safe_search, 0);
	cr_assert_str_eq(snapshot_tenant_ede_text(s, h, NULL), "");

	struct in_addr a4;
	inet_pton(AF_INET, "127.1.0.5", &a4);
	cr_assert_eq(snapshot_tenant_for_address(s, AF_INET, &a4), 0);
	inet_pton(AF_INET, "127.1.7.9", &a4);
	cr_assert_eq(snapshot_tenant_for_address(s, AF_INET, &a4), 1);
	inet_pton(AF_INET, "127.2.0.9", &a4);
	cr_assert_eq(snapshot_tenant_for_address(s, AF_INET, &a4), 1);
	inet_pton(AF_INET, "127.9.9.9", &a4);
	cr_assert_eq(snapshot_tenant_for_address(s, AF_INET, &a4), -1);
	struct in6_addr a6;
	inet_pton(AF_INET6, "fd00:1::5", &a6);
	cr_assert_eq(snapshot_tenant_for_address(s, AF_INET6, &a6), 0);

	struct snapshot_match m;
	match(s, 0, "www.mal1.test", &m);
	cr_assert_eq(m.categories, 1u << 0);
	match(s, 0, "mal2.test", &m);
	cr_assert_eq(m.categories, 1u << 0);
	match(s, 0, "a.mal3.test", &m);
	cr_assert_eq(m.categories, 1u << 0);
	match(s, 0, "x.test", &m);
	cr_assert_eq(m.categories, 1u << 0);
	match(s, 0, "adult.test", &m);
	cr_assert_eq(m.categories, 1u << 1);
	match(s, 0, "good.example", &m);
	cr_assert(m.tenant_allow);
	match(s, 1, "good.example", &m);
	cr_assert_not(m.tenant_allow);
	match(s, 0, "bad.example", &m);
	cr_assert(m.tenant_deny);
	match(s, 0, "evil.example", &m);
	cr_assert(m.national_block);
	match(s, 0, "gov.example", &m);
	cr_assert(m.national_allow);
	/* 3 names from the file + x.test + adult.test + good + bad + evil + gov */
	cr_assert_eq(snapshot_name_count(s), 9);
	snapshot_close(s);
}

Test(policy_json, large_feed_file_is_streamed)
{
	char p[160];
	snprintf(p, sizeof p, "%s/big.txt", dir);
	FILE *f = fopen(p, "w");
	for (int i = 0; i < 50000; i++)
		fprintf(f, "%s%d.big.test\n", i % 10 == 9 ? "bad name " : "n", i);
	/* A line longer than any name, and no newline at the end. */
	for (int i = 0; i < 5000; i++)
		fputc('a', f);
	fputs("\nlast.test", f);
	fclose(f);
	write_text("policy.json",
		   "{\"categories\": [{\"name\": \"malware\", \"kind\": \"threat\"}],"
		   " \"feeds\": [{\"category\": \"malware\", \"file\": \"big.txt\"}]}");
	char err[256] = "";
	int rc = policy_json_compile(json_path, out_path, 1, err, sizeof err);
	cr_assert_eq(rc, 5001, "rc=%d err=%s", rc, err);
	struct snapshot *s = snapshot_open(out_path, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(snapshot_name_count(s), 45001);
	struct snapshot_match m;
	match(s, UINT32_MAX, "n12345.big.test", &m);
	cr_assert_eq(m.categories, 1);
	match(s, UINT32_MAX, "last.test", &m);
	cr_assert_eq(m.categories, 1);
	snapshot_close(s);
}

/* Replaces the first occurrence of from in the good policy with to and expects refusal with
 * the given words in err, and no snapshot written. */
static void expect_bad(const char *from, const char *to, const char *needle)
{
	const char *at = strstr(good, from);
	cr_assert_not_null(at, "fixture lacks '%s'", from);
	char text[4096];
	snprintf(text, sizeof text, "%.*s%s%s", (int)(at - good), good, to, at + strlen(from));
	write_text("policy.json", text);
	char feeds[100];
	snprintf(feeds, sizeof feeds, "%s/feeds", dir);
	mkdir(feeds, 0755);
	write_text("feeds/mal.txt", "mal1.test\n");
	char err[256] = "";
	int rc = policy_json_compile(json_path, out_path, 1, err, sizeof err);
	cr_assert_lt(rc, 0, "accepted '%s'", to);
	cr_assert(strstr(err, needle), "for '%s' expected '%s' in: %s", to, needle, err);
	cr_assert_neq(access(out_path, F_OK), 0, "a snapshot was written for '%s'", to);
}

Test(policy_json, bad_categories)
{
	expect_bad("\"kind\": \"content\"", "\"kind\": \"porn\"",
		   "categories[1]: kind: unknown value 'porn'");
	expect_bad("{\"name\": \"adult\", \"kind\": \"content\"}", "{\"kind\": \"content\"}",
		   "categories[1]: 'name' is required");
	expect_bad("\"name\": \"phishing\"", "\"name\": \"malware\"", "listed twice");
	write_text("policy.json", "{\"categories\": 5}");
	char err[256] = "";
	cr_assert_lt(policy_json_compile(json_path, out_path, 1, err, sizeof err), 0);
	cr_assert(strstr(err, "policy: 'categories' must be an array"), "%s", err);
}

Test(policy_json, bad_tenant_fields)
{
	expect_bad("\"block\": [\"malware\"]", "\"block\": [\"gambling\"]",
		   "tenants[0] ('School 1'): block: unknown category 'gambling'");
	expect_bad("\"monitor\": [\"adult\"]", "\"monitor\": [\"adult\", \"ads\"]",
		   "('School 1'): monitor: unknown category 'ads'");
	expect_bad("\"monitor\": [\"adult\"]", "\"monitor\": [\"malware\"]",
		   "both block and monitor");
	expect_bad("127.1.0.0/16", "127.1.0.1/16",
		   "networks[0]: '127.1.0.1/16' is not a valid CIDR");
	expect_bad("fd00:1::/48", "fd00:1::/129", "('School 1'): networks[1]: 'fd00:1::/129'");
	expect_bad("127.1.7.0/24", "127.1.7.0/", "('Hospital'): networks[1]");
	expect_bad("\"networks\": [\"127.2.0.0/16\"", "\"networks\": [7",
		   "networks[0] must be a string");
	expect_bad("6f1c2a4e-0b7d-4c1e-9a53-2d8f0e6b7c11", "6f1c2a4e-0b7d-4c1e-9a53-2d8f0e6b7c1g",
		   "('School 1'): id: '6f1c2a4e-0b7d-4c1e-9a53-2d8f0e6b7c1g' is not a UUID");
	expect_bad("6f1c2a4e-0b7d-4c1e-9a53-2d8f0e6b7c11", "6f1c2a4e0b7d4c1e9a532d8f0e6b7c11",
		   "is not a UUID");
	expect_bad("\"id\": \"6F1C2A4E-0B7D-4C1E-9A53-2D8F0E6B7C12\", ", "",
		   "tenants[1] ('Hospital'): 'id' is required");
	expect_bad("6F1C2A4E-0B7D-4C1E-9A53-2D8F0E6B7C12", "6f1c2a4e-0b7d-4c1e-9a53-2d8f0e6b7c11",
		   "used by two tenants");
	expect_bad("\"name\": \"Hospital\",", "", "tenants[1]: 'name' is required");
	expect_bad("\"block_action\": \"sinkhole\"", "\"block_action\": \"drop\"",
		   "('School 1'): block_action: unknown value 'drop'");
	expect_bad("\"sinkhole_v4\": \"192.0.2.1\"", "\"sinkhole_v4\": \"192.0.2\"",
		   "sinkhole_v4: '192.0.2' is not an IPv4 address");
	expect_bad("\"sinkhole_v4\": \"192.0.2.1\"", "\"sinkhole_v6\": \"192.0.2.1\"",
		   "sinkhole_v6: '192.0.2.1' is not an IPv6 address");
	expect_bad("\"sinkhole_v4\": \"192.0.2.1\",", "",
		   "sinkhole needs sinkhole_v4 or sinkhole_v6");
	expect_bad("\"privacy\": \"truncated\"", "\"privacy\": \"none\"",
		   "privacy: unknown value 'none'");
	expect_bad("\"safe_search\": true", "\"safe_search\": \"yes\"",
		   "safe_search must be true or false");
	expect_bad("\"trunc_v4\": 16", "\"trunc_v4\": 33", "trunc_v4 must be an integer 0..32");
	expect_bad("\"trunc_v6\": 32", "\"trunc_v6\": -1", "trunc_v6 must be an integer 0..128");
	expect_bad("\"networks\": [\"127.1.0.0/16\"", "\"netwroks\": [\"127.1.0.0/16\"",
		   "tenants[0]: unknown key 'netwroks'");
	expect_bad("\"ede_text\": \"contact it@school.example\"", "\"ede_text\": 5",
		   "'ede_text' must be a string");
	expect_bad("\"allow\": [\"good.example\"", "\"allow\": [1", "allow[0]: must be a string");
	expect_bad("\"deny\": [\"bad.example\"]", "\"deny\": \"bad.example\"",
		   "'deny' must be an array");
	/* The same prefix for two tenants: the database forbids it, so does the compiler. */
	expect_bad("127.1.7.0/24", "127.1.0.0/16",
		   "network 127.1.0.0/16 is assigned to two tenants: 'School 1'");
}

Test(policy_json, bad_national_feeds_and_syntax)
{
	expect_bad("\"category\": \"malware\"", "\"category\": \"ransomware\"",
		   "feeds[0]: unknown category 'ransomware'");
	expect_bad("\"category\": \"malware\", ", "", "feeds[0]: 'category' is required");
	expect_bad("feeds/mal.txt", "feeds/missing.txt", "feeds[0]: file: cannot open");
	expect_bad("\"national\": {\"block\"", "\"national\": {\"blocks\"",
		   "national: unknown key 'blocks'");
	expect_bad("\"allow\": [\"gov.example\"]", "\"allow\": {}", "'allow' must be an array");
	expect_bad("\"feeds\"", "\"feed\"", "policy: unknown key 'feed'");
	expect_bad("\"national\"", "\"tenants\": [], \"national\"", "duplicate");
	expect_bad("}\n", "", "policy.json:");
	expect_bad("{ \"categories\"", "[ \"categories\"", "policy.json:");
	write_text("policy.json", "[]");
	char err[256] = "";
	cr_assert_lt(policy_json_compile(json_path, out_path, 1, err, sizeof err), 0);
	cr_assert(strstr(err, "policy: expected an object"), "%s", err);
	char missing[160];
	snprintf(missing, sizeof missing, "%s/nope.json", dir);
	cr_assert_lt(policy_json_compile(missing, out_path, 1, err, sizeof err), 0);
	cr_assert(strstr(err, "nope.json"), "%s", err);
}

Test(policy_json, empty_policy_is_valid)
{
	write_text("policy.json", "{}");
	char err[256] = "";
	cr_assert_eq(policy_json_compile(json_path, out_path, 5, err, sizeof err), 0, "%s", err);
	struct snapshot *s = snapshot_open(out_path, err, sizeof err);
	cr_assert_not_null(s, "%s", err);
	cr_assert_eq(snapshot_tenant_count(s), 0);
	snapshot_close(s);
}

/* --split writes what a node keeps from tenantd: an overlay, and its base beside it under the
 * name its checksum gives; joined, they match as the one-file compile does. */
Test(policy_json, split_compile_matches_the_one_file_compile)
{
	char feeds[100], one_path[160], base_path[300], err[256] = "";
	snprintf(feeds, sizeof feeds, "%s/feeds", dir);
	cr_assert_eq(mkdir(feeds, 0755), 0);
	write_text("feeds/mal.txt", "mal1.test\nMAL2.test.\n*.mal3.test\n");
	write_text("policy.json", good);
	snprintf(one_path, sizeof one_path, "%s/one.snap", dir);
	cr_assert_geq(policy_json_compile(json_path, one_path, 3, err, sizeof err), 0, "%s", err);
	cr_assert_geq(policy_json_compile_split(json_path, out_path, 3, err, sizeof err), 0, "%s",
		      err);

	struct snapshot *one = snapshot_open(one_path, err, sizeof err);
	struct snapshot *overlay = snapshot_open(out_path, err, sizeof err);
	cr_assert(one && overlay, "%s", err);
	cr_assert_not_null(snapshot_base_checksum(overlay));
	snapshot_base_path(out_path, snapshot_base_checksum(overlay), base_path, sizeof base_path);
	struct snapshot *base = snapshot_open(base_path, err, sizeof err);
	cr_assert_not_null(base, "%s", err);
	cr_assert_eq(snapshot_tenant_count(base), 0);
	cr_assert_eq(snapshot_attach_base(overlay, base, err, sizeof err), 0, "%s", err);
	snapshot_close(base);
	char tmp[200];
	snprintf(tmp, sizeof tmp, "%s.base.tmp", out_path);
	cr_assert_neq(access(tmp, F_OK), 0, "no temporary file left");

	const char *const names[] = { "mal1.test", "www.mal2.test", "a.mal3.test", "x.test",
				      "adult.test", "bad.example", "good.example", "evil.example",
				      "gov.example", "other.test" };
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		for (uint32_t t = 0; t < 3; t++) {
			struct snapshot_match a, b;
			match(one, t == 2 ? UINT32_MAX : t, names[i], &a);
			match(overlay, t == 2 ? UINT32_MAX : t, names[i], &b);
			cr_assert_eq(memcmp(&a, &b, sizeof a), 0, "%s", names[i]);
		}
	struct snapshot_match m;
	match(overlay, 0, "www.mal2.test", &m);
	cr_assert_eq(m.categories, 1u << 0, "feed names come from the base");
	snapshot_close(overlay);
	snapshot_close(one);
}
