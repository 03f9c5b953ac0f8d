-- 0002_tenants: tenants (institutions) in a hierarchy, its closure table, and their networks.

CREATE TABLE tenants (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    parent_id   uuid REFERENCES tenants (id) ON DELETE RESTRICT,
    kind        text NOT NULL
                CHECK (kind IN ('ministry', 'region', 'hospital', 'school', 'municipality', 'office', 'other')),
    name        text NOT NULL
                CHECK (char_length(name) BETWEEN 1 AND 200 AND name = btrim(name) AND name !~ '[[:cntrl:]]'),
    slug        text NOT NULL
                CONSTRAINT tenants_slug_key UNIQUE
                CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    contacts    jsonb NOT NULL DEFAULT '[]'
                CHECK (jsonb_typeof(contacts) = 'array'),
    notes       text NOT NULL DEFAULT '' CHECK (char_length(notes) <= 4000),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    revision    integer NOT NULL DEFAULT 1 CHECK (revision > 0),
    deleted_at  timestamptz,
    CONSTRAINT tenants_not_own_parent CHECK (parent_id <> id)
);

CREATE INDEX tenants_parent_id_idx ON tenants (parent_id);

COMMENT ON TABLE tenants IS
    'Institutions served by Aegis (ministry > region > institution). Soft-deleted by setting deleted_at.';
COMMENT ON COLUMN tenants.parent_id IS
    'Parent in the hierarchy; NULL for a root (a ministry). Cycles are refused by a trigger.';
COMMENT ON COLUMN tenants.kind IS
    'Descriptive kind; the hierarchy does not depend on it.';
COMMENT ON COLUMN tenants.slug IS
    'Stable, unique, URL-safe short name; never reused, not even after soft deletion.';
COMMENT ON COLUMN tenants.contacts IS
    'JSON array of contact objects, e.g. [{"name":"...","role":"IT","email":"...","phone":"..."}]; validated by the portal.';
COMMENT ON COLUMN tenants.revision IS
    'Incremented on every real change; the portal uses it as ETag.';
COMMENT ON COLUMN tenants.deleted_at IS
    'Soft deletion. A deleted tenant loses its networks (trigger), is skipped by the compiler and is invisible (404) in the portal.';

-- Closure table of the hierarchy: one row per (ancestor, descendant) pair, including the pair
-- (t, t) at depth 0. Maintained only by triggers on tenants; read it to scope queries:
--   ... JOIN tenant_closure c ON c.descendant_id = x.tenant_id AND c.ancestor_id = $granted_tenant
CREATE TABLE tenant_closure (
    ancestor_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    descendant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    depth         integer NOT NULL CHECK (depth >= 0),
    PRIMARY KEY (ancestor_id, descendant_id),
    CHECK ((depth = 0) = (ancestor_id = descendant_id))
);

CREATE INDEX tenant_closure_descendant_idx ON tenant_closure (descendant_id, ancestor_id);

COMMENT ON TABLE tenant_closure IS
    'Transitive closure of tenants.parent_id, maintained by triggers; (t, t, 0) for every tenant. Never write it directly.';

-- One row that every hierarchy change updates first. Its row lock serialises hierarchy changes:
-- under READ COMMITTED the second writer waits and then sees the first one's commit (each
-- statement of a trigger takes a new snapshot); under REPEATABLE READ / SERIALIZABLE it fails
-- with SQLSTATE 40001 and must retry. Either way no cycle and no stale closure row can result.
CREATE TABLE tenant_hierarchy_guard (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    changes   bigint NOT NULL DEFAULT 0
);
INSERT INTO tenant_hierarchy_guard (singleton) VALUES (true);

COMMENT ON TABLE tenant_hierarchy_guard IS
    'Single row whose lock serialises changes to the tenant hierarchy (insert, re-parent, soft delete).';

CREATE FUNCTION tenants_check_hierarchy() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND NEW.parent_id IS NOT DISTINCT FROM OLD.parent_id
       AND (NEW.deleted_at IS NULL) = (OLD.deleted_at IS NULL) THEN
        RETURN NEW;
    END IF;

    UPDATE tenant_hierarchy_guard SET changes = changes + 1 WHERE singleton;

    IF NEW.parent_id IS NOT NULL AND NEW.deleted_at IS NULL
       AND EXISTS (SELECT 1 FROM tenants WHERE id = NEW.parent_id AND deleted_at IS NOT NULL) THEN
        RAISE EXCEPTION 'tenant % cannot live under deleted tenant %', NEW.id, NEW.parent_id
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    IF TG_OP = 'UPDATE' AND NEW.parent_id IS DISTINCT FROM OLD.parent_id
       AND NEW.parent_id IS NOT NULL
       AND EXISTS (SELECT 1 FROM tenant_closure
                   WHERE ancestor_id = NEW.id AND descendant_id = NEW.parent_id) THEN
        RAISE EXCEPTION 'moving tenant % under % would make a cycle', NEW.id, NEW.parent_id
            USING ERRCODE = 'check_violation';
    END IF;

    IF NEW.deleted_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.deleted_at IS NULL)
       AND EXISTS (SELECT 1 FROM tenants WHERE parent_id = NEW.id AND deleted_at IS NULL) THEN
        RAISE EXCEPTION 'tenant % still has tenants below it', NEW.id
            USING ERRCODE = 'foreign_key_violation';
    END IF;

    RETURN NEW;
END
$$;

CREATE TRIGGER tenants_check_hierarchy
    BEFORE INSERT OR UPDATE OF parent_id, deleted_at ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_check_hierarchy();

CREATE FUNCTION tenants_maintain_closure() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO tenant_closure (ancestor_id, descendant_id, depth)
        SELECT NEW.id, NEW.id, 0
        UNION ALL
        SELECT c.ancestor_id, NEW.id, c.depth + 1
          FROM tenant_closure c
         WHERE c.descendant_id = NEW.parent_id;
        RETURN NULL;
    END IF;

    IF NEW.parent_id IS NOT DISTINCT FROM OLD.parent_id THEN
        RETURN NULL;
    END IF;

    -- Detach the subtree of NEW.id from its old ancestors ...
    DELETE FROM tenant_closure
     WHERE descendant_id IN (SELECT descendant_id FROM tenant_closure WHERE ancestor_id = NEW.id)
       AND ancestor_id IN (SELECT ancestor_id FROM tenant_closure
                            WHERE descendant_id = NEW.id AND ancestor_id <> NEW.id);
    -- ... and attach it below the new parent's ancestors.
    INSERT INTO tenant_closure (ancestor_id, descendant_id, depth)
    SELECT a.ancestor_id, d.descendant_id, a.depth + d.depth + 1
      FROM tenant_closure a
      JOIN tenant_closure d ON d.ancestor_id = NEW.id
     WHERE a.descendant_id = NEW.parent_id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_maintain_closure
    AFTER INSERT OR UPDATE OF parent_id ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_maintain_closure();

CREATE TRIGGER tenants_touch
    BEFORE UPDATE ON tenants
    FOR EACH ROW EXECUTE FUNCTION aegis_touch_revision();

CREATE TRIGGER tenants_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON tenants
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_notify_policy_changed();


CREATE TABLE networks (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id   uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    prefix      cidr NOT NULL CONSTRAINT networks_prefix_key UNIQUE,
    description text NOT NULL DEFAULT ''
                CHECK (char_length(description) <= 500 AND description !~ '[[:cntrl:]]'),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    revision    integer NOT NULL DEFAULT 1 CHECK (revision > 0),
    CONSTRAINT networks_prefix_not_too_wide
        CHECK (masklen(prefix) >= CASE family(prefix) WHEN 4 THEN 8 ELSE 16 END),
    CONSTRAINT networks_prefix_not_v4_mapped
        CHECK (family(prefix) = 4 OR NOT prefix <<= '::ffff:0.0.0.0/96'::cidr)
);

CREATE INDEX networks_prefix_gist ON networks USING gist (prefix inet_ops);
CREATE INDEX networks_tenant_id_idx ON networks (tenant_id);

COMMENT ON TABLE networks IS
    'Source networks by which resolver nodes recognise a tenant (longest-prefix match; overlaps between tenants allowed, the most specific wins).';
COMMENT ON COLUMN networks.prefix IS
    'IPv4 or IPv6 prefix. Exact duplicates are refused across all tenants; overlap rules (only a strictly more specific prefix, only by a ministry admin) are enforced by the portal, which can use the GiST index (&&, >>=, <<=). IPv4 is stored as IPv4, never as ::ffff:a.b.c.d: the resolver must unmap v4-mapped source addresses before lookup.';

CREATE FUNCTION networks_check_tenant_live() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM tenants WHERE id = NEW.tenant_id AND deleted_at IS NOT NULL) THEN
        RAISE EXCEPTION 'tenant % is deleted', NEW.tenant_id USING ERRCODE = 'foreign_key_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER networks_check_tenant_live
    BEFORE INSERT OR UPDATE OF tenant_id ON networks
    FOR EACH ROW EXECUTE FUNCTION networks_check_tenant_live();

CREATE TRIGGER networks_touch
    BEFORE UPDATE ON networks
    FOR EACH ROW EXECUTE FUNCTION aegis_touch_revision();

CREATE TRIGGER networks_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON networks
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_notify_policy_changed();

-- Soft deletion frees the tenant's prefixes at once, so no resolver keeps mapping them to it
-- and another tenant may take them.
CREATE FUNCTION tenants_release_networks() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    DELETE FROM networks WHERE tenant_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_release_networks
    AFTER UPDATE OF deleted_at ON tenants
    FOR EACH ROW
    WHEN (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL)
    EXECUTE FUNCTION tenants_release_networks();
