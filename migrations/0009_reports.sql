-- 0009_reports: hourly rollups of query_log for reports, kept longer than the raw logs.
--
-- aegis-logpipe fills them in the same transaction as the query_log rows, from the rows that
-- were really inserted, so a re-delivered record is counted once:
--   WITH ins AS (INSERT INTO query_log SELECT ... FROM staging ON CONFLICT DO NOTHING RETURNING *)
--   INSERT INTO query_rollup_hourly SELECT tenant_id, date_trunc('hour', ts AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', ...
--     FROM ins WHERE tenant_id IS NOT NULL GROUP BY ...
--   ON CONFLICT (tenant_id, hour, category, action) DO UPDATE SET count = query_rollup_hourly.count + EXCLUDED.count;
-- Hours are UTC hours. No foreign keys, for the same reasons as query_log. Queries from no
-- tenant's network are not rolled up (they are counted in the resolver's metrics).

CREATE TABLE query_rollup_hourly (
    tenant_id uuid NOT NULL,
    hour      timestamptz NOT NULL CHECK (extract(epoch FROM hour) % 3600 = 0),
    category  text NOT NULL DEFAULT '' CHECK (category = '' OR category ~ '^[a-z][a-z0-9_]{0,62}$'),
    action    text NOT NULL CHECK (action IN ('allow', 'block', 'monitor', 'refused', 'ratelimited')),
    count     bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (tenant_id, hour, category, action)
);

CREATE INDEX query_rollup_hourly_hour_idx ON query_rollup_hourly (hour);

COMMENT ON TABLE query_rollup_hourly IS
    'Queries per tenant, UTC hour, category and action. Total queries of an hour = sum over categories and actions.';
COMMENT ON COLUMN query_rollup_hourly.category IS 'categories.name of the match, or '''' for queries that matched no category (lists, unmatched).';

CREATE TABLE rollup_blocked_names (
    tenant_id uuid NOT NULL,
    hour      timestamptz NOT NULL CHECK (extract(epoch FROM hour) % 3600 = 0),
    qname     text COLLATE "C" NOT NULL,
    action    text NOT NULL CHECK (action IN ('block', 'monitor')),
    category  text NOT NULL DEFAULT '' CHECK (category = '' OR category ~ '^[a-z][a-z0-9_]{0,62}$'),
    count     bigint NOT NULL CHECK (count >= 0),
    PRIMARY KEY (tenant_id, hour, qname, action, category)
);

CREATE INDEX rollup_blocked_names_hour_idx ON rollup_blocked_names (hour);

COMMENT ON TABLE rollup_blocked_names IS
    'Blocked and monitored query names per tenant and UTC hour, for "top blocked names" reports.';
COMMENT ON COLUMN rollup_blocked_names.category IS 'Category of the match, or '''' for list matches.';

CREATE TABLE rollup_threat_clients (
    tenant_id        uuid NOT NULL,
    hour             timestamptz NOT NULL CHECK (extract(epoch FROM hour) % 3600 = 0),
    client_ip        inet,
    client_pseudonym text,
    category         text NOT NULL CHECK (category ~ '^[a-z][a-z0-9_]{0,62}$'),
    count            bigint NOT NULL CHECK (count >= 0),
    CONSTRAINT rollup_threat_clients_client_identified CHECK (num_nonnulls(client_ip, client_pseudonym) = 1),
    CONSTRAINT rollup_threat_clients_key UNIQUE NULLS NOT DISTINCT (tenant_id, hour, client_ip, client_pseudonym, category)
);

CREATE INDEX rollup_threat_clients_hour_idx ON rollup_threat_clients (hour);

COMMENT ON TABLE rollup_threat_clients IS
    'Threat-category hits (block or monitor) per tenant, UTC hour, client and category, for "top clients with threat hits". Upsert with ON CONFLICT (tenant_id, hour, client_ip, client_pseudonym, category).';
COMMENT ON COLUMN rollup_threat_clients.client_ip IS 'Client as logged (full address or truncated prefix); NULL when the tenant logs pseudonyms.';
COMMENT ON COLUMN rollup_threat_clients.client_pseudonym IS 'Client pseudonym as logged; NULL otherwise.';
