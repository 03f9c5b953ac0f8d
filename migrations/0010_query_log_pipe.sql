-- 0010_query_log_pipe: what aegis-logpipe needs beyond 0008/0009 -- the actions `local` and
-- `error` that the resolver emits, and the kind of rule that decided (a national block must be
-- told from a tenant deny). 0008's indexes already serve the SOC's three questions (plans in
-- docs/logpipe.md), so none is added.
--
-- Widening a CHECK on query_log follows 0008's header: drop it and add it back NOT VALID, so
-- months of logs are not scanned (every old row satisfies the wider rule anyway). The partitions'
-- copies are inherited (conislocal = false) and go and come with the parent's.

ALTER TABLE query_log DROP CONSTRAINT query_log_action_check;
ALTER TABLE query_log ADD CONSTRAINT query_log_action_check
    CHECK (action IN ('allow', 'block', 'monitor', 'refused', 'ratelimited', 'local', 'error')) NOT VALID;

COMMENT ON COLUMN query_log.action IS
    'allow, block, monitor (answered normally, match logged), refused (no tenant or policy), ratelimited, local (special-use name answered by the node, RFC 6761), error (the node could not answer, e.g. every upstream down).';

-- A nullable column without a default: a catalogue change only, no rewrite of any partition.
-- Partitions made later by query_log_ensure_partitions (LIKE query_log) get it too.
ALTER TABLE query_log ADD COLUMN rule_kind text
    CONSTRAINT query_log_rule_kind_check
    CHECK (rule_kind IN ('national_block', 'national_allow', 'tenant_allow', 'tenant_deny', 'category'));

COMMENT ON COLUMN query_log.rule_kind IS
    'Kind of the policy rule that decided (the record''s rule.kind): national_block, national_allow, tenant_allow, tenant_deny, category; NULL when no rule matched.';

-- The rollups count every action the log holds.
ALTER TABLE query_rollup_hourly DROP CONSTRAINT query_rollup_hourly_action_check;
ALTER TABLE query_rollup_hourly ADD CONSTRAINT query_rollup_hourly_action_check
    CHECK (action IN ('allow', 'block', 'monitor', 'refused', 'ratelimited', 'local', 'error'));
