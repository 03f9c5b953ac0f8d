/* policy.c -- the precedence of a tenant's policy over the lists and feeds. */
#include "policy.h"

#include <stdbool.h>
#include <stddef.h>

/* The lowest-numbered category of mask, preferring threat categories: a name that is both
 * malware and adult is reported (and EDE-coded) as the threat it is. */
static int pick_category(const struct snapshot *s, uint32_t mask)
{
	int content = -1;
	for (int i = 0; mask; i++, mask >>= 1) {
		if (!(mask & 1))
			continue;
		if (snapshot_category_kind(s, (uint32_t)i) == SNAPSHOT_CATEGORY_THREAT)
			return i;
		if (content < 0)
			content = i;
	}
	return content;
}

static void set(struct policy_decision *d, enum policy_action action, enum policy_rule rule,
		uint8_t at, uint16_t ede)
{
	d->action = action;
	d->rule = rule;
	d->matched_at = at;
	d->ede = ede;
}

/*
 * Policy precedence. A listed domain matches itself and every name below it, compared
 * case-insensitively. The first rule that matches decides:
 *
 *   1. National mandatory block list (ministry administrators): block, EDE 15 Blocked.
 *      No tenant can override it.
 *   2. The tenant's allow list: answer normally.
 *   3. The tenant's deny list: block, EDE 17 Filtered.
 *   4. National allow list (critical public services): answer normally.
 *   5. Feed categories the tenant enabled:
 *        - any matching category in block mode: block, EDE 15 for threat categories,
 *          17 for content categories (a threat category is reported before a content one);
 *        - else any matching category in monitor mode: answer normally, log the match.
 *   6. Otherwise: resolve.
 */
void policy_decide(const struct snapshot *s, uint32_t tenant_index,
		   const struct snapshot_tenant *tenant, const uint8_t *qname, uint8_t qname_len,
		   struct policy_decision *d)
{
	struct snapshot_match m;

	snapshot_match_name(s, tenant_index, qname, qname_len, &m);
	d->category = -1;
	uint32_t blocked = m.categories & tenant->block_mask;
	uint32_t monitored = m.categories & tenant->monitor_mask;

	if (m.national_block) {
		set(d, POLICY_BLOCK, POLICY_RULE_NATIONAL_BLOCK, m.national_block_at,
		    POLICY_EDE_BLOCKED);
	} else if (m.tenant_allow) {
		set(d, POLICY_ALLOW, POLICY_RULE_TENANT_ALLOW, m.tenant_allow_at, 0);
	} else if (m.tenant_deny) {
		set(d, POLICY_BLOCK, POLICY_RULE_TENANT_DENY, m.tenant_deny_at, POLICY_EDE_FILTERED);
	} else if (m.national_allow) {
		set(d, POLICY_ALLOW, POLICY_RULE_NATIONAL_ALLOW, m.national_allow_at, 0);
	} else if (blocked) {
		int c = pick_category(s, blocked);
		bool threat = snapshot_category_kind(s, (uint32_t)c) == SNAPSHOT_CATEGORY_THREAT;
		d->category = c;
		set(d, POLICY_BLOCK, POLICY_RULE_CATEGORY, m.category_at[c],
		    threat ? POLICY_EDE_BLOCKED : POLICY_EDE_FILTERED);
	} else if (monitored) {
		int c = pick_category(s, monitored);
		d->category = c;
		set(d, POLICY_MONITOR, POLICY_RULE_CATEGORY, m.category_at[c], 0);
	} else {
		set(d, POLICY_ALLOW, POLICY_RULE_NONE, SNAPSHOT_NO_MATCH, 0);
	}
}

const char *policy_rule_name(enum policy_rule rule)
{
	static const char *const names[] = {
		[POLICY_RULE_NONE] = "none",
		[POLICY_RULE_NATIONAL_BLOCK] = "national_block",
		[POLICY_RULE_TENANT_ALLOW] = "tenant_allow",
		[POLICY_RULE_TENANT_DENY] = "tenant_deny",
		[POLICY_RULE_NATIONAL_ALLOW] = "national_allow",
		[POLICY_RULE_CATEGORY] = "category",
	};
	return names[rule];
}

const char *policy_action_name(enum policy_action action)
{
	static const char *const names[] = {
		[POLICY_ALLOW] = "allow",
		[POLICY_BLOCK] = "block",
		[POLICY_MONITOR] = "monitor",
	};
	return names[action];
}
