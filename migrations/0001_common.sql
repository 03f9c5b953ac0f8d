-- 0001_common: helpers that later migrations share.
--
-- Every migration runs as one transaction, as the role that owns the database, with objects in
-- schema public. No extensions are needed: gen_random_uuid() and sha256() are core (PG13+/PG11+).

-- A normalised DNS name as stored in policy tables (list entries, feed entries): lowercase,
-- no trailing dot, no wildcard label, LDH labels plus '_' (seen in real names such as
-- _dmarc.example), 1..63 octets per label, at most 253 octets in all, and a last label that is
-- not all digits (so an IPv4 address is not taken for a name). IDNA names are stored as A-labels
-- (xn--...). A name matches itself and every name below it; the wildcard form "*.x" of feeds is
-- normalised to "x" by the ingester. Collation "C": byte order, which is also what the snapshot
-- compiler sorts by.
CREATE DOMAIN dns_name AS text COLLATE "C"
    CONSTRAINT dns_name_valid CHECK (
        octet_length(VALUE) BETWEEN 1 AND 253
        AND VALUE ~ '^[a-z0-9_-]+(\.[a-z0-9_-]+)*$'
        AND (octet_length(VALUE) < 64 OR VALUE !~ '[^.]{64}')  -- the costly test only when it can fail
        AND VALUE !~ '(^|\.)[0-9]+$'
    );

COMMENT ON DOMAIN dns_name IS
    'Normalised DNS name: lowercase A-labels, no trailing dot, no wildcard, labels 1..63 octets of [a-z0-9_-], at most 253 octets, last label not all digits.';

-- Maintains updated_at and revision on UPDATE of a mutable resource. An UPDATE that changes
-- nothing leaves both alone, so revision is a stable ETag: the portal answers If-Match with
-- "UPDATE ... WHERE id = $1 AND revision = $2" and 412 when no row matched.
CREATE FUNCTION aegis_touch_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NEW;
    END IF;
    NEW.updated_at := now();
    NEW.revision := OLD.revision + 1;
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION aegis_touch_revision() IS
    'BEFORE UPDATE row trigger: sets updated_at = now() and revision = old revision + 1 when the row really changes.';

-- Same, for tables that carry updated_at but no revision.
CREATE FUNCTION aegis_touch_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW IS NOT DISTINCT FROM OLD THEN
        RETURN NEW;
    END IF;
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

COMMENT ON FUNCTION aegis_touch_updated_at() IS
    'BEFORE UPDATE row trigger: sets updated_at = now() when the row really changes.';

-- Statement-level AFTER trigger on every table the policy compiler reads. The payload is the
-- table name. NOTIFY is delivered at commit only, and identical (channel, payload) pairs within
-- one transaction are delivered once, so a bulk change yields one notification per table.
CREATE FUNCTION aegis_notify_policy_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('aegis_policy_changed', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION aegis_notify_policy_changed() IS
    'Statement-level AFTER trigger: pg_notify(''aegis_policy_changed'', <table name>) so tenantd recompiles.';
