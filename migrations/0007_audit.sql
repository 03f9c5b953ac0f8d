-- 0007_audit: the append-only, hash-chained audit trail.
--
-- Every row carries prev_hash (row_hash of the row before it, 32 zero bytes for the first) and
-- row_hash = SHA-256(prev_hash || canonical_v1(row)). A BEFORE INSERT trigger assigns the id
-- (gap-free, in chain order), the time, and both hashes while holding the row lock of
-- audit_chain_head, so the chain is linear whatever the writers' isolation level (under
-- REPEATABLE READ or SERIALIZABLE a concurrent writer gets SQLSTATE 40001 and retries).
-- UPDATE, DELETE and TRUNCATE are refused by triggers; revoking those privileges from the
-- daemons' roles is the deployment's second wall.
--
-- canonical_v1(row): the fields below, in this order, each rendered as
--   '-' when NULL, else <octet length of the UTF-8 text>:<text>
-- joined with a line feed (0x0a):
--   hash_version, id, at as integer microseconds since the Unix epoch, actor_type, actor_id,
--   actor_name, actor_role, actor_ip (as text(inet) prints it: address/length, e.g.
--   127.0.0.1/32), request_id, action, tenant_id, target_type, target_id, before, after,
--   details (before/after/details as jsonb::text prints them).
-- None of these renderings depends on session settings. A verifier outside the database can
-- recompute the hash from "SELECT id, (extract(epoch FROM at) * 1000000)::bigint, ...,
-- actor_ip::text, ..., before::text, after::text, details::text, prev_hash, row_hash";
-- audit_log_verify() does the same inside.

CREATE TABLE audit_chain_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    last_id   bigint NOT NULL CHECK (last_id >= 0),
    last_hash bytea NOT NULL CHECK (octet_length(last_hash) = 32)
);
INSERT INTO audit_chain_head (singleton, last_id, last_hash)
VALUES (true, 0, decode(repeat('00', 32), 'hex'));

COMMENT ON TABLE audit_chain_head IS
    'Single row: id and row_hash of the last audit_log row. Written only by the audit_log trigger; its row lock serialises the chain.';

CREATE TABLE audit_log (
    id           bigint PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor_type   text NOT NULL CHECK (actor_type IN ('user', 'api_key', 'node', 'system', 'anonymous')),
    actor_id     uuid,
    actor_name   text CHECK (char_length(actor_name) <= 254),
    actor_role   text CHECK (char_length(actor_role) <= 63),
    actor_ip     inet,
    request_id   text CHECK (char_length(request_id) <= 128),
    action       text NOT NULL CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$' AND char_length(action) <= 100),
    tenant_id    uuid,
    target_type  text CHECK (target_type ~ '^[a-z][a-z0-9_]{0,62}$'),
    target_id    text CHECK (char_length(target_id) <= 300),
    before       jsonb,
    after        jsonb,
    details      jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    hash_version smallint NOT NULL DEFAULT 1 CHECK (hash_version = 1),
    prev_hash    bytea NOT NULL CHECK (octet_length(prev_hash) = 32),
    row_hash     bytea NOT NULL CHECK (octet_length(row_hash) = 32),
    CONSTRAINT audit_log_actor_identified CHECK (actor_type IN ('system', 'anonymous') OR actor_id IS NOT NULL)
);

CREATE INDEX audit_log_at_idx ON audit_log (at);
CREATE INDEX audit_log_tenant_at_idx ON audit_log (tenant_id, at);
CREATE INDEX audit_log_actor_at_idx ON audit_log (actor_id, at);
CREATE INDEX audit_log_target_idx ON audit_log (target_type, target_id);

COMMENT ON TABLE audit_log IS
    'Append-only, hash-chained audit trail. Written in the same transaction as the change it records. Insert without id, at, prev_hash, row_hash: the trigger sets them. No foreign keys on purpose: rows must outlive what they name, and a cascading SET NULL would be an UPDATE.';
COMMENT ON COLUMN audit_log.id IS 'Position in the chain: 1, 2, 3, ... without gaps (assigned by the trigger).';
COMMENT ON COLUMN audit_log.at IS 'Transaction time of the change (set by the trigger to now(); a writer cannot backdate).';
COMMENT ON COLUMN audit_log.actor_id IS 'users.id, api_keys.id or resolver_nodes.id according to actor_type; NULL for system and anonymous.';
COMMENT ON COLUMN audit_log.actor_name IS 'Human-readable actor at the time (email, key prefix, node name, daemon name), kept even if the actor is later removed.';
COMMENT ON COLUMN audit_log.actor_role IS 'Role under which the actor acted.';
COMMENT ON COLUMN audit_log.action IS 'Dotted verb, e.g. tenant.create, network.delete, list_entry.create, querylog.search, auth.login_failed.';
COMMENT ON COLUMN audit_log.tenant_id IS 'Tenant the action concerns, for scoping audit searches; NULL for national objects.';
COMMENT ON COLUMN audit_log.target_id IS 'Identifier of the object (uuid text, or e.g. "<list id>/<domain>" for a list entry).';
COMMENT ON COLUMN audit_log.before IS 'Object before the change (NULL for creations and reads).';
COMMENT ON COLUMN audit_log.after IS 'Object after the change (NULL for deletions and reads).';
COMMENT ON COLUMN audit_log.details IS 'Anything else, e.g. the filters of a query-log search (who looked at which client''s data).';
COMMENT ON COLUMN audit_log.hash_version IS 'Version of the canonical form hashed into row_hash (1 = canonical_v1, see migration 0007).';
COMMENT ON COLUMN audit_log.prev_hash IS 'row_hash of the previous row (32 zero bytes for id 1).';
COMMENT ON COLUMN audit_log.row_hash IS 'SHA-256(prev_hash || canonical_v1(row)).';

CREATE FUNCTION audit_log_field(v text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN v IS NULL THEN '-' ELSE octet_length(v)::text || ':' || v END
$$;

CREATE FUNCTION audit_log_canonical_v1(r audit_log) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT concat_ws(E'\n',
        audit_log_field(r.hash_version::text),
        audit_log_field(r.id::text),
        audit_log_field((extract(epoch FROM r.at) * 1000000)::bigint::text),
        audit_log_field(r.actor_type),
        audit_log_field(r.actor_id::text),
        audit_log_field(r.actor_name),
        audit_log_field(r.actor_role),
        audit_log_field(r.actor_ip::text),
        audit_log_field(r.request_id),
        audit_log_field(r.action),
        audit_log_field(r.tenant_id::text),
        audit_log_field(r.target_type),
        audit_log_field(r.target_id),
        audit_log_field(r.before::text),
        audit_log_field(r.after::text),
        audit_log_field(r.details::text))
$$;

COMMENT ON FUNCTION audit_log_canonical_v1(audit_log) IS
    'Canonical text of an audit row hashed into row_hash (hash_version 1). Independent of session settings (DateStyle, TimeZone).';

CREATE FUNCTION audit_log_row_hash(prev bytea, r audit_log) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT sha256(prev || convert_to(audit_log_canonical_v1(r), 'UTF8'))
$$;

CREATE FUNCTION audit_log_chain() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_last_id   bigint;
    v_last_hash bytea;
BEGIN
    SELECT last_id, last_hash INTO STRICT v_last_id, v_last_hash
      FROM audit_chain_head WHERE singleton FOR UPDATE;

    NEW.id := v_last_id + 1;
    NEW.at := now();
    NEW.hash_version := 1;
    NEW.prev_hash := v_last_hash;
    NEW.row_hash := audit_log_row_hash(v_last_hash, NEW);

    UPDATE audit_chain_head SET last_id = NEW.id, last_hash = NEW.row_hash WHERE singleton;
    RETURN NEW;
END
$$;

CREATE TRIGGER audit_log_chain
    BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_chain();

CREATE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER audit_log_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_chain_head_no_delete
    BEFORE DELETE ON audit_chain_head
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
CREATE TRIGGER audit_chain_head_no_truncate
    BEFORE TRUNCATE ON audit_chain_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_refuse_change();

-- Checks the chain over [from_id, to_id] (whole table by default) and returns one row per
-- problem found; no rows = intact. Starting in the middle trusts the prev_hash of the first row
-- checked. An anchor kept outside the database (the head hash, logged periodically) is what
-- detects a rewrite of the whole chain by someone who can disable triggers.
CREATE FUNCTION audit_log_verify(from_id bigint DEFAULT 1, to_id bigint DEFAULT NULL)
RETURNS TABLE (id bigint, problem text)
LANGUAGE sql STABLE AS $$
    WITH rows AS (
        SELECT a AS rec, a.id, a.prev_hash, a.row_hash,
               lag(a.id)       OVER (ORDER BY a.id) AS prior_id,
               lag(a.row_hash) OVER (ORDER BY a.id) AS prior_hash
          FROM audit_log a
         WHERE a.id >= from_id AND (to_id IS NULL OR a.id <= to_id)
    ), last_row AS (
        SELECT coalesce(max(a.id), 0) AS id,
               coalesce((SELECT b.row_hash FROM audit_log b ORDER BY b.id DESC LIMIT 1),
                        decode(repeat('00', 32), 'hex')) AS row_hash
          FROM audit_log a
    )
    SELECT r.id, 'row_hash does not match the row content' FROM rows r
     WHERE r.row_hash <> audit_log_row_hash(r.prev_hash, r.rec)
    UNION ALL
    SELECT r.id, 'prev_hash does not match the row_hash of row ' || r.prior_id FROM rows r
     WHERE r.prior_id IS NOT NULL AND r.prev_hash <> r.prior_hash
    UNION ALL
    SELECT r.id, 'gap in the chain after row ' || r.prior_id FROM rows r
     WHERE r.prior_id IS NOT NULL AND r.id <> r.prior_id + 1
    UNION ALL
    SELECT r.id, 'first row does not start from the zero hash' FROM rows r
     WHERE r.id = 1 AND r.prev_hash <> decode(repeat('00', 32), 'hex')
    UNION ALL
    SELECT r.id, 'chain does not start at id 1' FROM rows r
     WHERE from_id <= 1 AND r.prior_id IS NULL AND r.id <> 1
    UNION ALL
    SELECT h.last_id, 'chain head (' || h.last_id || ') does not match the last row (' || l.id || ')'
      FROM audit_chain_head h, last_row l
     WHERE h.singleton AND to_id IS NULL
       AND (h.last_id <> l.id OR h.last_hash <> l.row_hash)
    ORDER BY 1
$$;

COMMENT ON FUNCTION audit_log_verify(bigint, bigint) IS
    'Verifies the audit hash chain; returns (id, problem) rows, none when intact.';
