-- 0006_nodes: resolver nodes that fetch policy snapshots from tenantd, and the snapshots tenantd
-- compiled.

CREATE TABLE resolver_nodes (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name               text NOT NULL CONSTRAINT resolver_nodes_name_key UNIQUE
                       CHECK (name ~ '^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$'),
    description        text NOT NULL DEFAULT '' CHECK (char_length(description) <= 500),
    token_hash         bytea NOT NULL CONSTRAINT resolver_nodes_token_hash_key UNIQUE
                       CHECK (octet_length(token_hash) = 32),
    created_at         timestamptz NOT NULL DEFAULT now(),
    token_rotated_at   timestamptz,
    revoked_at         timestamptz,
    last_seen_at       timestamptz,
    last_seen_ip       inet,
    software_version   text CHECK (char_length(software_version) <= 100),
    snapshot_version   bigint CHECK (snapshot_version > 0),
    snapshot_loaded_at timestamptz,
    last_error         text CHECK (char_length(last_error) <= 2000),
    last_error_at      timestamptz
);

COMMENT ON TABLE resolver_nodes IS
    'Resolver nodes allowed to fetch snapshots. Written by tenantd on each poll (no touch or notify trigger: these columns change constantly).';
COMMENT ON COLUMN resolver_nodes.name IS 'Node name as it appears in query logs (query_log.node).';
COMMENT ON COLUMN resolver_nodes.token_hash IS
    'SHA-256 of the node''s bearer token (>= 256 random bits); the token itself is never stored. Rotating = replacing the hash.';
COMMENT ON COLUMN resolver_nodes.revoked_at IS 'Set to refuse the node; it keeps answering from its last snapshot but gets no new one.';
COMMENT ON COLUMN resolver_nodes.snapshot_version IS 'Snapshot version the node reported running at its last poll.';
COMMENT ON COLUMN resolver_nodes.last_error IS 'Last error the node reported (e.g. a refused snapshot) or tenantd recorded for it.';

CREATE TABLE snapshots (
    version          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    status           text NOT NULL DEFAULT 'building' CHECK (status IN ('building', 'ok', 'failed')),
    started_at       timestamptz NOT NULL DEFAULT now(),
    compiled_at      timestamptz,
    compiled_by      text NOT NULL DEFAULT '' CHECK (char_length(compiled_by) <= 200),
    format_version   integer CHECK (format_version > 0),
    sha256           bytea CHECK (octet_length(sha256) = 32),
    size_bytes       bigint CHECK (size_bytes >= 0),
    tenant_count     integer CHECK (tenant_count >= 0),
    network_count    integer CHECK (network_count >= 0),
    list_entry_count integer CHECK (list_entry_count >= 0),
    feed_name_count  integer CHECK (feed_name_count >= 0),
    compile_ms       integer CHECK (compile_ms >= 0),
    error            text NOT NULL DEFAULT '' CHECK (char_length(error) <= 4000),
    content          bytea,
    CONSTRAINT snapshots_ok_complete CHECK (
        status <> 'ok' OR (compiled_at IS NOT NULL AND sha256 IS NOT NULL AND size_bytes IS NOT NULL
                           AND format_version IS NOT NULL)),
    CONSTRAINT snapshots_failed_has_error CHECK (status <> 'failed' OR error <> ''),
    CONSTRAINT snapshots_content_size CHECK (content IS NULL OR octet_length(content) = size_bytes)
);

ALTER TABLE snapshots ALTER COLUMN content SET STORAGE EXTERNAL;

CREATE INDEX snapshots_ok_idx ON snapshots (version DESC) WHERE status = 'ok';

COMMENT ON TABLE snapshots IS
    'Compile attempts of tenantd. The version is taken when a compile starts (insert, status building), so it can be written into the snapshot header; failed attempts keep their version, so versions have gaps but only increase. The current snapshot is the ok row with the highest version.';
COMMENT ON COLUMN snapshots.compiled_by IS 'Identity of the tenantd instance (host/pid) that compiled it.';
COMMENT ON COLUMN snapshots.format_version IS 'Version of the snapshot file format (common/ snapshot module).';
COMMENT ON COLUMN snapshots.sha256 IS 'SHA-256 of the snapshot content as served (the ETag).';
COMMENT ON COLUMN snapshots.content IS
    'The snapshot bytes, so that every tenantd instance serves the leader''s snapshot. Keep it only for the latest few ok versions (set older ones to NULL). Stored uncompressed out of line.';
