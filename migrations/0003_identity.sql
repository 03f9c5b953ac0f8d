-- 0003_identity: people and machines that use the portal API: roles, users, role grants scoped
-- to tenants, sessions, API keys.
--
-- Secrets are never stored: passwords as a memory-hard KDF string produced by the portal,
-- session tokens and API keys as SHA-256 of a random 256-bit value (a fast hash is right for
-- high-entropy random tokens; it is not right for passwords).

CREATE TABLE roles (
    name        text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{0,62}$'),
    description text NOT NULL
);

COMMENT ON TABLE roles IS
    'Roles known to the portal. What each role may do is code in the portal; which scopes it may be granted with is role_scopes.';

INSERT INTO roles (name, description) VALUES
    ('ministry_admin', 'Manages every tenant, network, policy, national list, feed, node and user.'),
    ('tenant_admin',   'Manages the policy, networks and lists of one tenant and the tenants below it.'),
    ('soc_analyst',    'Searches query logs and reads reports of the tenants granted (or of all tenants).'),
    ('auditor',        'Reads the audit trail (and verifies its chain); changes nothing.');

-- Which scopes a role may be granted with: 'global' (all tenants, tenant_id NULL) or 'tenant'
-- (one tenant and every tenant below it). A later migration may allow a new combination by
-- inserting a row here, without changing any constraint.
CREATE TABLE role_scopes (
    role  text NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    scope text NOT NULL CHECK (scope IN ('global', 'tenant')),
    PRIMARY KEY (role, scope)
);

COMMENT ON TABLE role_scopes IS
    'Allowed (role, scope) combinations for role_grants and api_keys; enforced by foreign keys.';

INSERT INTO role_scopes (role, scope) VALUES
    ('ministry_admin', 'global'),
    ('tenant_admin',   'tenant'),
    ('soc_analyst',    'global'),
    ('soc_analyst',    'tenant'),
    ('auditor',        'global'),
    ('auditor',        'tenant');

CREATE TABLE users (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email               text NOT NULL CONSTRAINT users_email_key UNIQUE
                        CHECK (char_length(email) <= 254 AND email = lower(email)
                               AND email ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$'),
    display_name        text NOT NULL DEFAULT ''
                        CHECK (char_length(display_name) <= 200 AND display_name !~ '[[:cntrl:]]'),
    password_hash       text CHECK (password_hash ~ '^\$[a-z0-9-]+\$' AND char_length(password_hash) <= 512),
    password_changed_at timestamptz,
    totp_secret_enc     bytea CHECK (octet_length(totp_secret_enc) BETWEEN 16 AND 512),
    totp_enabled_at     timestamptz,
    totp_last_step      bigint,
    failed_logins       integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until        timestamptz,
    disabled            boolean NOT NULL DEFAULT false,
    last_login_at       timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    revision            integer NOT NULL DEFAULT 1 CHECK (revision > 0),
    CONSTRAINT users_totp_needs_secret CHECK (totp_enabled_at IS NULL OR totp_secret_enc IS NOT NULL)
);

COMMENT ON TABLE users IS 'People who log in to the portal. Disabled rather than deleted, so the audit trail keeps meaning.';
COMMENT ON COLUMN users.email IS 'Login name; stored lowercase.';
COMMENT ON COLUMN users.password_hash IS
    'PHC-style string from a memory-hard KDF computed by the portal (OpenSSL 3.0: scrypt, e.g. $scrypt$ln=17,r=8,p=1$<salt>$<hash>). NULL: no password login.';
COMMENT ON COLUMN users.totp_secret_enc IS
    'TOTP secret encrypted by the portal with a key from its configuration (AEAD; the portal defines the byte layout, including a key id for rotation). Never stored in clear.';
COMMENT ON COLUMN users.totp_enabled_at IS 'Set when the user confirmed enrolment with a valid code; NULL while enrolment is pending or TOTP is off.';
COMMENT ON COLUMN users.totp_last_step IS 'Last accepted TOTP time step, so a code cannot be replayed.';
COMMENT ON COLUMN users.failed_logins IS 'Consecutive failed logins; reset on success. The portal sets locked_until past a threshold.';

CREATE TRIGGER users_touch
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION aegis_touch_revision();

CREATE TABLE role_grants (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role               text NOT NULL REFERENCES roles (name),
    tenant_id          uuid REFERENCES tenants (id) ON DELETE CASCADE,
    scope              text NOT NULL
                       GENERATED ALWAYS AS (CASE WHEN tenant_id IS NULL THEN 'global' ELSE 'tenant' END) STORED,
    created_at         timestamptz NOT NULL DEFAULT now(),
    created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    CONSTRAINT role_grants_scope_allowed FOREIGN KEY (role, scope) REFERENCES role_scopes (role, scope),
    CONSTRAINT role_grants_unique UNIQUE NULLS NOT DISTINCT (user_id, role, tenant_id)
);

CREATE INDEX role_grants_tenant_id_idx ON role_grants (tenant_id);

COMMENT ON TABLE role_grants IS
    'A user holds a role globally (tenant_id NULL) or for one tenant and every tenant below it (tenant_closure).';
COMMENT ON COLUMN role_grants.scope IS 'Derived from tenant_id; checked against role_scopes.';

CREATE TABLE sessions (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    token_hash   bytea NOT NULL CONSTRAINT sessions_token_hash_key UNIQUE
                 CHECK (octet_length(token_hash) = 32),
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    client_ip    inet,
    user_agent   text CHECK (char_length(user_agent) <= 512),
    revoked_at   timestamptz,
    CONSTRAINT sessions_expiry_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

COMMENT ON TABLE sessions IS 'Portal login sessions. Valid while revoked_at IS NULL AND expires_at > now() and the user is not disabled.';
COMMENT ON COLUMN sessions.token_hash IS 'SHA-256 of the random session token sent by the client; the token itself is never stored.';
COMMENT ON COLUMN sessions.id IS 'Public handle, so a user can list and revoke sessions without the token or its hash leaving the server.';

CREATE TABLE api_keys (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name               text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200 AND name !~ '[[:cntrl:]]'),
    prefix             text NOT NULL CONSTRAINT api_keys_prefix_key UNIQUE
                       CHECK (prefix ~ '^[A-Za-z0-9_-]{6,32}$'),
    key_hash           bytea NOT NULL CHECK (octet_length(key_hash) = 32),
    role               text NOT NULL REFERENCES roles (name),
    tenant_id          uuid REFERENCES tenants (id) ON DELETE CASCADE,
    scope              text NOT NULL
                       GENERATED ALWAYS AS (CASE WHEN tenant_id IS NULL THEN 'global' ELSE 'tenant' END) STORED,
    created_at         timestamptz NOT NULL DEFAULT now(),
    created_by_user_id uuid REFERENCES users (id) ON DELETE SET NULL,
    expires_at         timestamptz,
    revoked_at         timestamptz,
    last_used_at       timestamptz,
    last_used_ip       inet,
    CONSTRAINT api_keys_scope_allowed FOREIGN KEY (role, scope) REFERENCES role_scopes (role, scope),
    CONSTRAINT api_keys_expiry_after_creation CHECK (expires_at > created_at)
);

CREATE INDEX api_keys_tenant_id_idx ON api_keys (tenant_id);

COMMENT ON TABLE api_keys IS
    'Bearer keys for machines. A key is its own principal: one role, global or for one tenant subtree. Valid while revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now()).';
COMMENT ON COLUMN api_keys.prefix IS
    'Public, unique part of the key (shown in listings, used to find the row); the rest is secret.';
COMMENT ON COLUMN api_keys.key_hash IS
    'SHA-256 of the whole presented key (>= 256 random bits); compare in constant time after lookup by prefix.';
COMMENT ON COLUMN api_keys.created_by_user_id IS 'NULL for keys created by the system (e.g. the bootstrap key from ansible).';
COMMENT ON COLUMN api_keys.expires_at IS 'NULL: no expiry. The portal should always set one for keys it issues.';

-- The tenants a user may act on, per role: global grants expand to every live tenant, tenant
-- grants to the tenant and all live tenants below it. Every scoped portal query joins this (or
-- tenant_closure directly) so that another tenant's object is simply not found.
CREATE VIEW user_tenant_access AS
SELECT g.user_id, g.role, t.id AS tenant_id
  FROM role_grants g
  JOIN tenants t ON g.tenant_id IS NULL AND t.deleted_at IS NULL
UNION
SELECT g.user_id, g.role, c.descendant_id AS tenant_id
  FROM role_grants g
  JOIN tenant_closure c ON c.ancestor_id = g.tenant_id
  JOIN tenants t ON t.id = c.descendant_id AND t.deleted_at IS NULL;

COMMENT ON VIEW user_tenant_access IS
    'Live tenants each user may act on, per role (global grants: all; tenant grants: the subtree). Does not check users.disabled.';

CREATE VIEW api_key_tenant_access AS
SELECT k.id AS api_key_id, k.role, t.id AS tenant_id
  FROM api_keys k
  JOIN tenants t ON k.tenant_id IS NULL AND t.deleted_at IS NULL
UNION ALL
SELECT k.id AS api_key_id, k.role, c.descendant_id AS tenant_id
  FROM api_keys k
  JOIN tenant_closure c ON c.ancestor_id = k.tenant_id
  JOIN tenants t ON t.id = c.descendant_id AND t.deleted_at IS NULL;

COMMENT ON VIEW api_key_tenant_access IS
    'Live tenants each API key may act on. Does not check revoked_at or expires_at.';
