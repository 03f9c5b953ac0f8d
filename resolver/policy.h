/* policy.h -- the decision a node makes for every query of a known tenant: allow, block or
 * monitor, and why. Pure function of the snapshot, the tenant and the name; allocates
 * nothing. The precedence is written once, above policy_decide() in policy.c, and quoted in
 * docs/policy.md.
 */
#ifndef AEGIS_POLICY_H
#define AEGIS_POLICY_H

#include <stdint.h>

#include "snapshot.h"

enum policy_action { POLICY_ALLOW, POLICY_BLOCK, POLICY_MONITOR };

enum policy_rule {
	POLICY_RULE_NONE,
	POLICY_RULE_NATIONAL_BLOCK,
	POLICY_RULE_TENANT_ALLOW,
	POLICY_RULE_TENANT_DENY,
	POLICY_RULE_NATIONAL_ALLOW,
	POLICY_RULE_CATEGORY,
};

/* RFC 8914 INFO-CODEs a block carries. */
#define POLICY_EDE_BLOCKED  15
#define POLICY_EDE_FILTERED 17

struct policy_decision {
	enum policy_action action;
	enum policy_rule rule;
	int category;         /* index for POLICY_RULE_CATEGORY, else -1 */
	uint8_t matched_at;   /* offset in the query name of the listed domain that matched */
	uint16_t ede;         /* for POLICY_BLOCK: 15 or 17 */
};

void policy_decide(const struct snapshot *s, uint32_t tenant_index,
		   const struct snapshot_tenant *tenant, const uint8_t *qname, uint8_t qname_len,
		   struct policy_decision *d);

const char *policy_rule_name(enum policy_rule rule);
const char *policy_action_name(enum policy_action action);

#endif
