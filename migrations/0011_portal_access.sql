-- 0011_portal_access: what the portal API asks the database about its callers.
--
-- portal_scope(actor_type, actor_id, roles) is the set of live tenants a caller may act on
-- with any of the given roles: every portal query that touches a tenant's objects filters on
-- "tenant_id IN (SELECT portal_scope($1, $2, $3))", so another tenant's object is simply not
-- found (the API answers 404). Validity of the key or session is checked before, once per
-- request; the function only expands grants (global: all live tenants; tenant: the subtree).

CREATE FUNCTION portal_scope(p_actor_type text, p_actor_id uuid, p_roles text[])
RETURNS SETOF uuid
LANGUAGE sql STABLE AS $$
    SELECT a.tenant_id FROM user_tenant_access a
     WHERE p_actor_type = 'user' AND a.user_id = p_actor_id AND a.role = ANY (p_roles)
    UNION
    SELECT a.tenant_id FROM api_key_tenant_access a
     WHERE p_actor_type = 'api_key' AND a.api_key_id = p_actor_id AND a.role = ANY (p_roles)
$$;

COMMENT ON FUNCTION portal_scope(text, uuid, text[]) IS
    'Live tenants the portal caller (user or API key) reaches with any of the roles: global grants give all, tenant grants the subtree.';

-- Login failures, counted for users.failed_logins and locked_until, are also wanted per
-- address (a password-spraying client tries many accounts). One row per address and window.
CREATE TABLE portal_login_failures (
    client_ip    inet NOT NULL,
    window_start timestamptz NOT NULL,
    failures     integer NOT NULL DEFAULT 0 CHECK (failures >= 0),
    PRIMARY KEY (client_ip, window_start)
);

COMMENT ON TABLE portal_login_failures IS
    'Failed portal logins per client address per 15-minute window; the portal refuses logins from an address past its limit until the window ends. Old windows are deleted by the portal.';
