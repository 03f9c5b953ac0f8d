-- 0008_query_log: every DNS query answered by a resolver node, as aegis-logpipe writes it from
-- Kafka; partitioned by UTC day, kept per tenant retention.
--
-- No foreign keys (to tenants, nodes, lists, feeds): the log must accept a record whatever has
-- been deleted since, a failed FK check would stall the pipe, and FKs cost ingest time.
-- Enumerations are checked because the record decoder validates them anyway; to widen one later,
-- drop the constraint and add the new one NOT VALID (a partitioned table allows that, and it
-- needs no scan of months of logs).

-- Suffix search. "Every client that asked for evil.example or any name below it" becomes a
-- prefix search on the reversed name: the key of a name is reverse(name) || '.', so that
--   key('www.evil.example') = 'elpmaxe.live.www.'  starts with  key('evil.example') = 'elpmaxe.live.'
-- while key('notevil.example') = 'elpmaxe.liveton.' does not. All names at or below an apex
-- form one range of keys: [reverse(apex) || '.', reverse(apex) || '/') in byte order ('/' is the
-- byte after '.'). The key is an index expression, not a stored column: reverse() is a fast
-- built-in, and the table stays as narrow as the record. Both helpers below are inlined by the
-- planner, so a query written with them uses the index.

CREATE FUNCTION dns_suffix_key(name text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (reverse(name) || '.') COLLATE "C"
$$;

COMMENT ON FUNCTION dns_suffix_key(text) IS
    'reverse(name) || ''.'' in byte order: names at or below an apex share the prefix dns_suffix_key(apex).';

CREATE FUNCTION dns_name_in_subtree(name text, apex text) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (reverse(name) || '.') COLLATE "C" >= (reverse(apex) || '.') COLLATE "C"
       AND (reverse(name) || '.') COLLATE "C" <  (reverse(apex) || '/') COLLATE "C"
$$;

COMMENT ON FUNCTION dns_name_in_subtree(text, text) IS
    'True if name equals apex or lies below it (both normalised: lowercase, no trailing dot). Inlined into an index range scan on query_log.';

CREATE TABLE query_log (
    ts                  timestamptz NOT NULL,
    event_id            uuid NOT NULL,
    node                text NOT NULL,
    tenant_id           uuid,
    client_ip           inet,
    client_pseudonym    text CHECK (char_length(client_pseudonym) <= 128),
    client_port         integer CHECK (client_port BETWEEN 0 AND 65535),
    transport           text NOT NULL CHECK (transport IN ('udp', 'tcp', 'dot', 'doh', 'doq')),
    qname               text COLLATE "C" NOT NULL CHECK (octet_length(qname) <= 1024),
    qtype               integer NOT NULL CHECK (qtype BETWEEN 0 AND 65535),
    rcode               integer CHECK (rcode BETWEEN 0 AND 4095),
    action              text NOT NULL
                        CHECK (action IN ('allow', 'block', 'monitor', 'refused', 'ratelimited')),
    matched_list_id     uuid,
    matched_feed_id     uuid,
    matched_name        text COLLATE "C",
    category            text,
    mode                text CHECK (mode IN ('block', 'monitor')),
    ede                 integer CHECK (ede BETWEEN 0 AND 65535),
    cache_hit           boolean NOT NULL DEFAULT false,
    upstream            text,
    upstream_latency_us integer CHECK (upstream_latency_us >= 0),
    snapshot_version    bigint,
    CONSTRAINT query_log_client_identified CHECK (num_nonnulls(client_ip, client_pseudonym) = 1),
    CONSTRAINT query_log_one_match CHECK (num_nonnulls(matched_list_id, matched_feed_id) <= 1),
    PRIMARY KEY (ts, event_id)
) PARTITION BY RANGE (ts);

COMMENT ON TABLE query_log IS
    'One row per DNS query (the query-log record of the resolver, via Kafka and aegis-logpipe). Daily partitions query_log_YYYYMMDD over UTC days; no default partition.';
COMMENT ON COLUMN query_log.ts IS 'Time the query was received by the node (microseconds, UTC). Partition key.';
COMMENT ON COLUMN query_log.event_id IS 'Unique id the resolver gave the event; (ts, event_id) makes re-delivery idempotent (INSERT ... ON CONFLICT DO NOTHING).';
COMMENT ON COLUMN query_log.node IS 'resolver_nodes.name of the node that answered.';
COMMENT ON COLUMN query_log.tenant_id IS 'Tenant recognised from the source address; NULL when no tenant network matched.';
COMMENT ON COLUMN query_log.client_ip IS
    'Client address (after PROXY protocol), or the truncated prefix (e.g. 10.1.2.0/24) under log_privacy truncated; NULL under pseudonym.';
COMMENT ON COLUMN query_log.client_pseudonym IS 'Keyed daily pseudonym of the client address under log_privacy pseudonym (as encoded in the record); else NULL.';
COMMENT ON COLUMN query_log.qname IS 'Query name, lowercase, without trailing dot (the root is "."). Not validated: odd names are logged as asked.';
COMMENT ON COLUMN query_log.rcode IS 'Response code sent (extended RCODE included); NULL when no answer was sent (rate-limit drop).';
COMMENT ON COLUMN query_log.action IS 'allow, block, monitor (answered normally, match logged), refused (no tenant or policy), ratelimited.';
COMMENT ON COLUMN query_log.matched_list_id IS 'lists.id of the list whose entry decided the answer (national or tenant, allow/deny/block).';
COMMENT ON COLUMN query_log.matched_feed_id IS 'feeds.id of a feed containing the matched name (one of them if several).';
COMMENT ON COLUMN query_log.matched_name IS 'The list or feed entry that matched (the qname itself or an ancestor of it).';
COMMENT ON COLUMN query_log.category IS 'categories.name of the matched feed entry; NULL for list matches and unmatched queries.';
COMMENT ON COLUMN query_log.mode IS 'Mode of the matched category for the tenant: block or monitor.';
COMMENT ON COLUMN query_log.ede IS 'Extended DNS Error INFO-CODE sent (RFC 8914), e.g. 15 Blocked, 17 Filtered.';
COMMENT ON COLUMN query_log.upstream IS 'Upstream recursor that answered a cache miss (address:port); NULL for cache hits and local answers.';
COMMENT ON COLUMN query_log.snapshot_version IS 'snapshots.version of the policy the node applied.';

-- The three questions of the SOC:
--   every query of a client IP (or a CIDR: client_ip <<= $1) in a time range;
CREATE INDEX query_log_client_ip_ts_idx ON query_log (client_ip, ts);
--   every client of a tenant that asked for a name or any name below it in a time range
--   (WHERE tenant_id = $1 AND dns_name_in_subtree(qname, $2) AND ts >= $3 AND ts < $4);
CREATE INDEX query_log_tenant_qname_ts_idx ON query_log (tenant_id, ((reverse(qname) || '.') COLLATE "C"), ts);
--   all threat hits (blocks and monitor matches) of a tenant in a time range.
CREATE INDEX query_log_tenant_hits_ts_idx ON query_log (tenant_id, ts) WHERE action IN ('block', 'monitor');
-- and, for tenants logging pseudonyms, every query of one pseudonymous client.
CREATE INDEX query_log_pseudonym_ts_idx ON query_log (client_pseudonym, ts) WHERE client_pseudonym IS NOT NULL;

-- Creates the missing daily partitions for [from_day, from_day + days). A partition is created
-- as a plain table and then attached: ATTACH PARTITION takes only a SHARE UPDATE EXCLUSIVE lock
-- on query_log, so inserts and long SOC searches go on (CREATE TABLE ... PARTITION OF would take
-- ACCESS EXCLUSIVE). Safe to call concurrently and repeatedly. SECURITY DEFINER: the caller
-- (aegis-logpipe) needs no CREATE privilege; partitions belong to the schema owner.
CREATE FUNCTION query_log_ensure_partitions(from_day date, days integer) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    d       date;
    part    text;
    created integer := 0;
BEGIN
    IF from_day IS NULL OR days IS NULL OR days < 1 OR days > 366 THEN
        RAISE EXCEPTION 'query_log_ensure_partitions: days must be 1..366, got %', days
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Serialise creators; key = ASCII "AEGISQLP".
    PERFORM pg_advisory_xact_lock(4703243766114372688);

    FOR i IN 0 .. days - 1 LOOP
        d := from_day + i;
        part := 'query_log_' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN EXISTS (SELECT 1 FROM pg_class c
                               WHERE c.relname = part
                                 AND c.relnamespace = 'public'::regnamespace);
        EXECUTE format('CREATE TABLE %I (LIKE query_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format('ALTER TABLE query_log ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                       part,
                       to_char(d, 'YYYY-MM-DD') || ' 00:00:00+00',
                       to_char(d + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

COMMENT ON FUNCTION query_log_ensure_partitions(date, integer) IS
    'Creates missing daily partitions query_log_YYYYMMDD (UTC days) for [from_day, from_day + days); returns how many it created.';

-- Drops the daily partitions of days before `day` (UTC). DROP takes an ACCESS EXCLUSIVE lock on
-- query_log for a moment; lock_timeout keeps a long search from making inserts queue behind it
-- (the call then fails and is retried later).
CREATE FUNCTION query_log_drop_partitions_before(day date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp SET lock_timeout = '5s' AS $$
DECLARE
    part    text;
    dropped integer := 0;
BEGIN
    IF day IS NULL THEN
        RAISE EXCEPTION 'query_log_drop_partitions_before: day is NULL'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(4703243766114372688);

    FOR part IN
        SELECT c.relname
          FROM pg_inherits i
          JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'query_log'::regclass
           AND c.relname ~ '^query_log_[0-9]{8}$'
           AND to_date(substr(c.relname, 11), 'YYYYMMDD') < day
         ORDER BY c.relname
    LOOP
        EXECUTE format('DROP TABLE %I', part);
        dropped := dropped + 1;
    END LOOP;
    RETURN dropped;
END
$$;

COMMENT ON FUNCTION query_log_drop_partitions_before(date) IS
    'Drops daily partitions of query_log for days before the given UTC day; returns how many.';

-- Applies retention: a tenant keeps the rows of the last policies.retention_days whole UTC days
-- (rows with ts >= today - retention_days); rows without a tenant keep default_days. Partitions
-- older than the longest retention are dropped; rows of tenants with a shorter retention are
-- deleted from the partitions still kept. Rows of hard-deleted tenants go with the partitions.
CREATE FUNCTION query_log_apply_retention(
    today date DEFAULT (now() AT TIME ZONE 'UTC')::date,
    default_days integer DEFAULT 90)
RETURNS TABLE (dropped_partitions integer, deleted_rows bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    keep_days integer;
    t         record;
    n         bigint;
BEGIN
    IF today IS NULL OR default_days IS NULL OR default_days < 1 THEN
        RAISE EXCEPTION 'query_log_apply_retention: bad arguments'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT greatest(default_days, coalesce(max(p.retention_days), 0)) INTO keep_days FROM policies p;

    dropped_partitions := query_log_drop_partitions_before(today - keep_days);
    deleted_rows := 0;

    FOR t IN SELECT p.tenant_id, p.retention_days FROM policies p
              WHERE p.retention_days < keep_days LOOP
        DELETE FROM query_log q
         WHERE q.tenant_id = t.tenant_id
           AND q.ts < ((today - t.retention_days)::timestamp AT TIME ZONE 'UTC');
        GET DIAGNOSTICS n = ROW_COUNT;
        deleted_rows := deleted_rows + n;
    END LOOP;

    IF default_days < keep_days THEN
        DELETE FROM query_log q
         WHERE q.tenant_id IS NULL
           AND q.ts < ((today - default_days)::timestamp AT TIME ZONE 'UTC');
        GET DIAGNOSTICS n = ROW_COUNT;
        deleted_rows := deleted_rows + n;
    END IF;
    RETURN NEXT;
END
$$;

COMMENT ON FUNCTION query_log_apply_retention(date, integer) IS
    'Drops partitions past the longest tenant retention and deletes older rows of tenants with a shorter one; returns (dropped_partitions, deleted_rows).';

-- The maintenance functions run with the owner's rights: only roles granted EXECUTE (the
-- deployment grants it to aegis-logpipe's role) may call them.
REVOKE EXECUTE ON FUNCTION query_log_ensure_partitions(date, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION query_log_drop_partitions_before(date) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION query_log_apply_retention(date, integer) FROM PUBLIC;

-- A fresh database is usable at once: yesterday to a week ahead. aegis-logpipe keeps calling
-- query_log_ensure_partitions (e.g. daily, for today - 1 .. today + 7, and for the day of any
-- record that finds no partition: SQLSTATE 23514 "no partition of relation found for row").
DO $$
BEGIN
    PERFORM query_log_ensure_partitions(((now() AT TIME ZONE 'UTC')::date) - 1, 9);
END
$$;
