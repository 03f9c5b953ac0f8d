-- 0004_policy: what the compiler turns into a policy snapshot: per-tenant policy settings,
-- filtering categories and their per-tenant mode, and allow/deny/block lists with entries.

CREATE TABLE categories (
    name            text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    kind            text NOT NULL CHECK (kind IN ('threat', 'content')),
    default_enabled boolean NOT NULL,
    description     text NOT NULL DEFAULT ''
);

COMMENT ON TABLE categories IS
    'Filtering categories of feeds. Threat categories answer blocks with EDE 15 (Blocked), content categories with EDE 17 (Filtered).';
COMMENT ON COLUMN categories.default_enabled IS
    'Mode a tenant gets (block if true, off if false) when its policy has no policy_categories row for the category; see policy_categories_effective.';

INSERT INTO categories (name, kind, default_enabled, description) VALUES
    ('malware',          'threat',  true,  'Malware distribution and payload hosts'),
    ('phishing',         'threat',  true,  'Phishing and credential theft'),
    ('c2',               'threat',  true,  'Command-and-control servers'),
    ('botnet',           'threat',  true,  'Botnet infrastructure'),
    ('newly_registered', 'threat',  true,  'Newly registered or newly observed domains'),
    ('adult',            'content', false, 'Adult content'),
    ('gambling',         'content', false, 'Gambling'),
    ('ads',              'content', false, 'Advertising and tracking'),
    ('social',           'content', false, 'Social media');

CREATE TRIGGER categories_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON categories
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_notify_policy_changed();


CREATE TABLE policies (
    tenant_id        uuid PRIMARY KEY REFERENCES tenants (id) ON DELETE CASCADE,
    block_action     text NOT NULL DEFAULT 'nxdomain'
                     CHECK (block_action IN ('nxdomain', 'nodata', 'refused', 'sinkhole')),
    sinkhole_v4      inet CHECK (family(sinkhole_v4) = 4 AND masklen(sinkhole_v4) = 32),
    sinkhole_v6      inet CHECK (family(sinkhole_v6) = 6 AND masklen(sinkhole_v6) = 128),
    ede_contact      text NOT NULL DEFAULT ''
                     CHECK (char_length(ede_contact) <= 200 AND ede_contact !~ '[[:cntrl:]]'),
    safe_search      boolean NOT NULL DEFAULT false,
    log_privacy      text NOT NULL DEFAULT 'full'
                     CHECK (log_privacy IN ('full', 'pseudonym', 'truncated')),
    log_truncate_v4  smallint NOT NULL DEFAULT 24 CHECK (log_truncate_v4 BETWEEN 0 AND 32),
    log_truncate_v6  smallint NOT NULL DEFAULT 48 CHECK (log_truncate_v6 BETWEEN 0 AND 128),
    retention_days   integer NOT NULL DEFAULT 90 CHECK (retention_days BETWEEN 1 AND 3650),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    revision         integer NOT NULL DEFAULT 1 CHECK (revision > 0),
    CONSTRAINT policies_sinkhole_needs_address
        CHECK (block_action <> 'sinkhole' OR sinkhole_v4 IS NOT NULL OR sinkhole_v6 IS NOT NULL)
);

COMMENT ON TABLE policies IS
    'Exactly one policy per tenant, created with the tenant (trigger) with defaults. Behaviour towards clients from no tenant''s network is resolver node configuration, not here.';
COMMENT ON COLUMN policies.block_action IS
    'How a blocked name is answered: NXDOMAIN with synthesised SOA (default), NODATA, REFUSED, or sinkhole A/AAAA.';
COMMENT ON COLUMN policies.sinkhole_v4 IS
    'Block-page address for A queries when block_action = sinkhole. With only one family set, queries for the other type get NODATA.';
COMMENT ON COLUMN policies.sinkhole_v6 IS
    'Block-page address for AAAA queries when block_action = sinkhole.';
COMMENT ON COLUMN policies.ede_contact IS
    'Contact/reference text appended to the EDE EXTRA-TEXT of block answers (e.g. "IT helpdesk 0123 456, ticket ref"). Empty: none.';
COMMENT ON COLUMN policies.safe_search IS
    'Answer the major search engines and video sites with their published safe-search names.';
COMMENT ON COLUMN policies.log_privacy IS
    'Client address in query logs: full IP (default), a keyed daily-rotating pseudonym (HMAC-SHA256), or the address truncated to log_truncate_v4/v6 bits.';
COMMENT ON COLUMN policies.log_truncate_v4 IS 'Prefix length kept of IPv4 client addresses when log_privacy = truncated.';
COMMENT ON COLUMN policies.log_truncate_v6 IS 'Prefix length kept of IPv6 client addresses when log_privacy = truncated.';
COMMENT ON COLUMN policies.retention_days IS
    'Days of raw query logs kept for this tenant (query_log_apply_retention). Rollups are kept longer.';

CREATE FUNCTION tenants_create_policy() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    INSERT INTO policies (tenant_id) VALUES (NEW.id);
    RETURN NULL;
END
$$;

CREATE TRIGGER tenants_create_policy
    AFTER INSERT ON tenants
    FOR EACH ROW EXECUTE FUNCTION tenants_create_policy();

-- Tenants created before this migration (none on a fresh database) get their policy too.
INSERT INTO policies (tenant_id) SELECT id FROM tenants;

CREATE TRIGGER policies_touch
    BEFORE UPDATE ON policies
    FOR EACH ROW EXECUTE FUNCTION aegis_touch_revision();

CREATE TRIGGER policies_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policies
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_notify_policy_changed();


CREATE TABLE policy_categories (
    tenant_id  uuid NOT NULL REFERENCES policies (tenant_id) ON DELETE CASCADE,
    category   text NOT NULL REFERENCES categories (name) ON DELETE CASCADE ON UPDATE CASCADE,
    mode       text NOT NULL CHECK (mode IN ('block', 'monitor', 'off')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    revision   integer NOT NULL DEFAULT 1 CHECK (revision > 0),
    PRIMARY KEY (tenant_id, category)
);

CREATE INDEX policy_categories_category_idx ON policy_categories (category);

COMMENT ON TABLE policy_categories IS
    'Explicit per-tenant category settings. No row = the category default (categories.default_enabled: block, else off). Read policy_categories_effective, not this table, to get the mode in force.';
COMMENT ON COLUMN policy_categories.mode IS
    'block: answer with the tenant''s block action; monitor: answer normally and log the match; off: ignore the category (needed to turn off a category that is on by default).';

CREATE TRIGGER policy_categories_touch
    BEFORE UPDATE ON policy_categories
    FOR EACH ROW EXECUTE FUNCTION aegis_touch_revision();

CREATE TRIGGER policy_categories_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON policy_categories
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_notify_policy_changed();

-- The one place where "threat categories are on by default" is written down: the compiler and
-- the portal both read this view rather than re-implementing the rule.
CREATE VIEW policy_categories_effective AS
SELECT p.tenant_id,
       c.name AS category,
       c.kind,
       COALESCE(pc.mode, CASE WHEN c.default_enabled THEN 'block' ELSE 'off' END) AS mode,
       pc.tenant_id IS NOT NULL AS explicit
  FROM policies p
 CROSS JOIN categories c
  LEFT JOIN policy_categories pc ON pc.tenant_id = p.tenant_id AND pc.category = c.name;

COMMENT ON VIEW policy_categories_effective IS
    'Mode in force for every (tenant, category): the explicit policy_categories row, else block if categories.default_enabled, else off.';


CREATE TABLE lists (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    scope       text NOT NULL CHECK (scope IN ('national', 'tenant')),
    tenant_id   uuid REFERENCES tenants (id) ON DELETE CASCADE,
    kind        text NOT NULL CHECK (kind IN ('allow', 'deny', 'block')),
    name        text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100 AND name = btrim(name) AND name !~ '[[:cntrl:]]'),
    description text NOT NULL DEFAULT '' CHECK (char_length(description) <= 1000),
    enabled     boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    revision    integer NOT NULL DEFAULT 1 CHECK (revision > 0),
    CONSTRAINT lists_scope_kind CHECK (
        (scope = 'national' AND tenant_id IS NULL AND kind IN ('block', 'allow'))
        OR (scope = 'tenant' AND tenant_id IS NOT NULL AND kind IN ('allow', 'deny'))),
    CONSTRAINT lists_name_unique UNIQUE NULLS NOT DISTINCT (tenant_id, name)
);

CREATE INDEX lists_tenant_id_idx ON lists (tenant_id);

COMMENT ON TABLE lists IS
    'Domain lists. national/block: mandatory block list (precedence 1, no tenant can override); tenant/allow (2); tenant/deny (3); national/allow: critical public services (4). A tenant may have several lists of a kind; the compiler unites enabled lists.';
COMMENT ON COLUMN lists.name IS 'Unique per tenant (and among national lists); appears in the EDE EXTRA-TEXT of blocks it causes.';

CREATE TRIGGER lists_touch
    BEFORE UPDATE ON lists
    FOR EACH ROW EXECUTE FUNCTION aegis_touch_revision();

CREATE TRIGGER lists_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON lists
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_notify_policy_changed();

CREATE TABLE list_entries (
    list_id               uuid NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    domain                dns_name NOT NULL,
    comment               text NOT NULL DEFAULT '' CHECK (char_length(comment) <= 500 AND comment !~ '[[:cntrl:]]'),
    created_by_user_id    uuid REFERENCES users (id) ON DELETE SET NULL,
    created_by_api_key_id uuid REFERENCES api_keys (id) ON DELETE SET NULL,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (list_id, domain),
    CONSTRAINT list_entries_one_creator CHECK (num_nonnulls(created_by_user_id, created_by_api_key_id) <= 1)
);

CREATE INDEX list_entries_domain_idx ON list_entries (domain);

COMMENT ON TABLE list_entries IS
    'Names on a list. An entry matches the name itself and every name below it. Addressed in the API as (list, domain).';
COMMENT ON COLUMN list_entries.domain IS 'Normalised name (see domain dns_name): lowercase A-labels, no trailing dot.';
COMMENT ON COLUMN list_entries.created_by_user_id IS 'Who added the entry (user); NULL with created_by_api_key_id NULL means the system (e.g. an import job).';
COMMENT ON COLUMN list_entries.created_by_api_key_id IS 'Who added the entry (API key).';

CREATE TRIGGER list_entries_touch
    BEFORE UPDATE ON list_entries
    FOR EACH ROW EXECUTE FUNCTION aegis_touch_updated_at();

CREATE TRIGGER list_entries_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON list_entries
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_notify_policy_changed();
