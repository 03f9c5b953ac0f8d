/* test_policy.c -- the numbered precedence of policy_decide(), rule by rule. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "policy.h"
#include "snapshot.h"

static struct snapshot *snap;
static int malware, adult, social;
static uint32_t school, hospital;

static void build(void)
{
	char path[] = "/tmp/aegis-test-policy-XXXXXX", err[256];
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	struct snapshot_builder *b = snapshot_builder_new(7);
	cr_assert_not_null(b);
	malware = snapshot_builder_add_category(b, "malware", SNAPSHOT_CATEGORY_THREAT);
	adult = snapshot_builder_add_category(b, "adult", SNAPSHOT_CATEGORY_CONTENT);
	social = snapshot_builder_add_category(b, "social", SNAPSHOT_CATEGORY_CONTENT);
	struct snapshot_tenant_spec s = { .id = { 1 }, .name = "school",
					  .block_mask = 1u << malware | 1u << adult,
					  .monitor_mask = 1u << social };
	struct snapshot_tenant_spec h = { .id = { 2 }, .name = "hospital",
					  .block_mask = 1u << malware };
	school = (uint32_t)snapshot_builder_add_tenant(b, &s);
	hospital = (uint32_t)snapshot_builder_add_tenant(b, &h);
	static const struct { const char *name; enum snapshot_list list; int who; } names[] = {
		{ "national.test", SNAPSHOT_NATIONAL_BLOCK, -1 },
		{ "gov.test", SNAPSHOT_NATIONAL_ALLOW, -1 },
		{ "allowed.national.test", SNAPSHOT_TENANT_ALLOW, 0 },
		{ "good.bad.test", SNAPSHOT_TENANT_ALLOW, 0 },
		{ "bad.test", SNAPSHOT_TENANT_DENY, 0 },
		{ "deny.gov.test", SNAPSHOT_TENANT_DENY, 0 },
	};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		cr_assert_eq(snapshot_builder_add_name(b, names[i].name, names[i].list,
						       names[i].who == 0 ? school : 0), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "malware.test", SNAPSHOT_FEED, (uint32_t)malware), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "gov.test", SNAPSHOT_FEED, (uint32_t)malware), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "good.bad.test", SNAPSHOT_FEED, (uint32_t)malware), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "both.test", SNAPSHOT_FEED, (uint32_t)adult), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "x.both.test", SNAPSHOT_FEED, (uint32_t)malware), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "adult.test", SNAPSHOT_FEED, (uint32_t)adult), 0);
	cr_assert_eq(snapshot_builder_add_name(b, "social.test", SNAPSHOT_FEED, (uint32_t)social), 0);
	cr_assert_eq(snapshot_builder_write(b, path, err, sizeof err), 0, "%s", err);
	snapshot_builder_free(b);
	snap = snapshot_open(path, err, sizeof err);
	unlink(path);
	cr_assert_not_null(snap, "%s", err);
}

static void teardown(void)
{
	snapshot_close(snap);
}

TestSuite(policy, .init = build, .fini = teardown);

static struct policy_decision decide(uint32_t tenant, const char *text)
{
	uint8_t wire[SNAPSHOT_MAX_NAME_WIRE];
	size_t len;
	struct policy_decision d;
	cr_assert_eq(snapshot_parse_name(text, wire, &len), 0);
	policy_decide(snap, tenant, snapshot_tenant(snap, tenant), wire, (uint8_t)len, &d);
	return d;
}

Test(policy, rule1_national_block_beats_a_tenant_allow)
{
	struct policy_decision d = decide(school, "allowed.national.test");
	cr_assert_eq(d.action, POLICY_BLOCK);
	cr_assert_eq(d.rule, POLICY_RULE_NATIONAL_BLOCK);
	cr_assert_eq(d.ede, POLICY_EDE_BLOCKED);
	cr_assert_eq(d.matched_at, 8, "the listed suffix national.test starts after 'allowed'");
}

Test(policy, rule2_tenant_allow_beats_its_deny_and_the_feeds)
{
	struct policy_decision d = decide(school, "www.good.bad.test");
	cr_assert_eq(d.action, POLICY_ALLOW);
	cr_assert_eq(d.rule, POLICY_RULE_TENANT_ALLOW);
}

Test(policy, rule3_tenant_deny_beats_the_national_allow)
{
	struct policy_decision d = decide(school, "deny.gov.test");
	cr_assert_eq(d.action, POLICY_BLOCK);
	cr_assert_eq(d.rule, POLICY_RULE_TENANT_DENY);
	cr_assert_eq(d.ede, POLICY_EDE_FILTERED);
	cr_assert_eq(decide(hospital, "deny.gov.test").rule, POLICY_RULE_NATIONAL_ALLOW,
		     "another tenant's deny list does not apply");
}

Test(policy, rule4_national_allow_beats_a_feed)
{
	struct policy_decision d = decide(hospital, "portal.gov.test");
	cr_assert_eq(d.action, POLICY_ALLOW);
	cr_assert_eq(d.rule, POLICY_RULE_NATIONAL_ALLOW);
}

Test(policy, rule5_categories_block_or_monitor_per_tenant)
{
	struct policy_decision d = decide(school, "www.adult.test");
	cr_assert_eq(d.action, POLICY_BLOCK);
	cr_assert_eq(d.category, adult);
	cr_assert_eq(d.ede, POLICY_EDE_FILTERED, "content categories are EDE 17");
	cr_assert_eq(decide(hospital, "www.adult.test").action, POLICY_ALLOW,
		     "the hospital does not block adult content");
	d = decide(hospital, "c2.malware.test");
	cr_assert_eq(d.action, POLICY_BLOCK);
	cr_assert_eq(d.ede, POLICY_EDE_BLOCKED, "threat categories are EDE 15");
	d = decide(school, "social.test");
	cr_assert_eq(d.action, POLICY_MONITOR);
	cr_assert_eq(d.category, social);
	cr_assert_eq(decide(hospital, "social.test").action, POLICY_ALLOW);
}

Test(policy, rule5_a_threat_is_reported_before_a_content_category)
{
	struct policy_decision d = decide(school, "x.both.test");
	cr_assert_eq(d.action, POLICY_BLOCK);
	cr_assert_eq(d.category, malware);
	cr_assert_eq(d.ede, POLICY_EDE_BLOCKED);
}

Test(policy, rule6_otherwise_resolve)
{
	struct policy_decision d = decide(school, "www.example.test");
	cr_assert_eq(d.action, POLICY_ALLOW);
	cr_assert_eq(d.rule, POLICY_RULE_NONE);
	cr_assert_eq(d.matched_at, SNAPSHOT_NO_MATCH);
}

Test(policy, a_listed_domain_covers_itself_and_below_but_not_its_parent_or_lookalikes)
{
	cr_assert_eq(decide(school, "malware.test").action, POLICY_BLOCK);
	cr_assert_eq(decide(school, "a.b.c.malware.test").action, POLICY_BLOCK);
	cr_assert_eq(decide(school, "test").action, POLICY_ALLOW);
	cr_assert_eq(decide(school, "notmalware.test").action, POLICY_ALLOW);
	cr_assert_eq(decide(school, "MALWARE.Test").action, POLICY_BLOCK);
}
