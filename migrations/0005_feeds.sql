-- 0005_feeds: threat and content feeds, the names tenantd ingested from them, and the history of
-- refreshes.
--
-- tenantd (the leader, under its advisory lock) fetches and parses each feed and stores the
-- result in feed_entries; the compiler reads names from the database, never from the fetched
-- files. So any tenantd instance can compile the same snapshot, a feed that fails keeps its last
-- good content (its rows are simply not replaced), and added/removed counts fall out of the
-- set difference.

CREATE TABLE feeds (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    name             text NOT NULL CONSTRAINT feeds_name_key UNIQUE
                     CHECK (name ~ '^[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?$'),
    category         text NOT NULL REFERENCES categories (name) ON UPDATE CASCADE,
    format           text NOT NULL CHECK (format IN ('rpz', 'hosts', 'plain', 'misp')),
    source           text NOT NULL
                     CHECK (char_length(source) <= 2048 AND source ~ '^(/|https?://)' AND source !~ '[[:space:][:cntrl:]]'),
    options          jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(options) = 'object'),
    refresh_interval interval NOT NULL DEFAULT '1 hour'
                     CHECK (refresh_interval >= '1 minute' AND refresh_interval <= '7 days'),
    enabled          boolean NOT NULL DEFAULT true,
    status           text NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'ok', 'stale', 'error')),
    status_reason    text NOT NULL DEFAULT '' CHECK (char_length(status_reason) <= 2000),
    last_attempt_at  timestamptz,
    fetched_at       timestamptz,
    etag             text CHECK (char_length(etag) <= 1024),
    last_modified    text CHECK (char_length(last_modified) <= 128),
    content_sha256   bytea CHECK (octet_length(content_sha256) = 32),
    entry_count      integer NOT NULL DEFAULT 0 CHECK (entry_count >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    revision         integer NOT NULL DEFAULT 1 CHECK (revision > 0),
    CONSTRAINT feeds_ok_has_fetch CHECK (status NOT IN ('ok', 'stale') OR fetched_at IS NOT NULL)
);

CREATE INDEX feeds_category_idx ON feeds (category);

COMMENT ON TABLE feeds IS 'Threat/content feeds (ministry administrators only). Their names belong to one category.';
COMMENT ON COLUMN feeds.source IS 'Absolute file path on the tenantd host, or an http(s) URL.';
COMMENT ON COLUMN feeds.options IS
    'Format-specific options, e.g. {"misp":{"to_ids_only":true}} or {"credential":"misp-national"} naming a credential in tenantd''s configuration. Never put a secret here.';
COMMENT ON COLUMN feeds.status IS
    'pending: never fetched; ok: last refresh succeeded; stale: last refresh failed, the last good content is still in use; error: failed and no good content was ever loaded.';
COMMENT ON COLUMN feeds.status_reason IS 'Why the feed is stale or in error (empty when ok).';
COMMENT ON COLUMN feeds.last_attempt_at IS 'Start of the last refresh attempt, successful or not; the next is due at last_attempt_at + refresh_interval.';
COMMENT ON COLUMN feeds.fetched_at IS 'When the content in feed_entries was last fetched successfully (including a 304 Not Modified).';
COMMENT ON COLUMN feeds.etag IS 'HTTP ETag of the last good fetch, sent back as If-None-Match.';
COMMENT ON COLUMN feeds.last_modified IS 'HTTP Last-Modified of the last good fetch, sent back verbatim as If-Modified-Since.';
COMMENT ON COLUMN feeds.content_sha256 IS 'SHA-256 of the last good raw content, to skip parsing when unchanged (files, servers without validators).';
COMMENT ON COLUMN feeds.entry_count IS 'Rows in feed_entries for this feed after the last good refresh.';

CREATE TRIGGER feeds_touch
    BEFORE UPDATE ON feeds
    FOR EACH ROW EXECUTE FUNCTION aegis_touch_revision();

-- Only what changes the compiled policy notifies: refresh bookkeeping (status, fetched_at, ...)
-- does not. A statement-level UPDATE OF trigger fires when one of the columns is in the SET list.
CREATE TRIGGER feeds_notify
    AFTER INSERT OR DELETE OR TRUNCATE ON feeds
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_notify_policy_changed();
CREATE TRIGGER feeds_notify_update
    AFTER UPDATE OF name, category, enabled ON feeds
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_notify_policy_changed();

CREATE TABLE feed_entries (
    feed_id       uuid NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    name          dns_name NOT NULL,
    action        text NOT NULL DEFAULT 'block' CHECK (action IN ('block', 'passthru')),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (feed_id, name)
);

COMMENT ON TABLE feed_entries IS
    'Normalised names of the last good content of each feed. A name matches itself and every name below it. The compiler unites the entries of enabled feeds per category (deduplicating across feeds).';
COMMENT ON COLUMN feed_entries.action IS
    'block: the name is in the feed''s category; passthru: an exception inside the feed (RPZ "CNAME rpz-passthru."), taking the name out of this feed''s category. RPZ NODATA and local-data records map to block: the tenant''s block action decides the answer.';
COMMENT ON COLUMN feed_entries.first_seen_at IS 'When the name first appeared in this feed (kept across refreshes while it stays).';

CREATE TRIGGER feed_entries_notify
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON feed_entries
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_notify_policy_changed();

CREATE TABLE feed_refreshes (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    feed_id         uuid NOT NULL REFERENCES feeds (id) ON DELETE CASCADE,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    duration        interval GENERATED ALWAYS AS (finished_at - started_at) STORED,
    outcome         text NOT NULL CHECK (outcome IN ('updated', 'unchanged', 'failed')),
    error           text NOT NULL DEFAULT '' CHECK (char_length(error) <= 2000),
    http_status     smallint CHECK (http_status BETWEEN 100 AND 599),
    bytes_fetched   bigint NOT NULL DEFAULT 0 CHECK (bytes_fetched >= 0),
    entries_total   integer NOT NULL DEFAULT 0 CHECK (entries_total >= 0),
    entries_added   integer NOT NULL DEFAULT 0 CHECK (entries_added >= 0),
    entries_removed integer NOT NULL DEFAULT 0 CHECK (entries_removed >= 0),
    lines_invalid   integer NOT NULL DEFAULT 0 CHECK (lines_invalid >= 0),
    details         jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(details) = 'object'),
    CONSTRAINT feed_refreshes_order CHECK (finished_at >= started_at),
    CONSTRAINT feed_refreshes_failed_has_error CHECK (outcome <> 'failed' OR error <> '')
);

CREATE INDEX feed_refreshes_feed_started_idx ON feed_refreshes (feed_id, started_at DESC);

COMMENT ON TABLE feed_refreshes IS 'One row per refresh attempt of a feed, for reports and staleness diagnosis.';
COMMENT ON COLUMN feed_refreshes.outcome IS
    'updated: new content stored; unchanged: 304 or same content hash; failed: fetch or parse failed, previous content kept (see error).';
COMMENT ON COLUMN feed_refreshes.entries_total IS 'Entries of the feed after this refresh.';
COMMENT ON COLUMN feed_refreshes.lines_invalid IS 'Lines/records skipped as invalid (a sample goes to the log and may go to details).';
