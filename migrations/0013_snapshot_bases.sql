-- 0013_snapshot_bases: a compiled policy in two parts (snapshot format 2). The feed base holds
-- the feed names (millions at national scale) and changes only when feed_revision moves; each
-- policy change compiles a small overlay that names its base by SHA-256. tenantd stores each
-- base once, so the other tenantd instances can serve it, instead of once per version.

ALTER TABLE snapshots ADD COLUMN base_sha256 bytea CHECK (octet_length(base_sha256) = 32);

COMMENT ON COLUMN snapshots.base_sha256 IS
    'SHA-256 of the feed base this version is an overlay of (snapshot_bases.sha256); NULL for a self-contained snapshot.';

CREATE TABLE snapshot_bases (
    sha256      bytea PRIMARY KEY CHECK (octet_length(sha256) = 32),
    version     bigint NOT NULL CHECK (version > 0),
    created_at  timestamptz NOT NULL DEFAULT now(),
    size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
    content     bytea NOT NULL,
    CONSTRAINT snapshot_bases_content_size CHECK (octet_length(content) = size_bytes)
);

ALTER TABLE snapshot_bases ALTER COLUMN content SET STORAGE EXTERNAL;

COMMENT ON TABLE snapshot_bases IS
    'Feed bases of snapshot format 2, one row per distinct base. tenantd keeps the bases the stored overlay images (snapshots.content) refer to and deletes the rest.';
COMMENT ON COLUMN snapshot_bases.version IS 'The snapshot version whose compile built this base (its serial).';
COMMENT ON COLUMN snapshot_bases.content IS 'The base snapshot bytes, uncompressed, out of line.';
