-- 0012_feed_revision: one counter that moves whenever the feed names a compile reads may have
-- changed (feed entries, a feed's category or enabled flag, the set of categories). tenantd's
-- compiler keeps the 2 million-odd feed names in memory between compiles and reads them again
-- only when the counter it reads in its transaction differs from the one it cached them under.
-- The counter is a row updated in the writer's own transaction, so a compile that sees the new
-- value also sees the new entries (a sequence would not be: nextval is not transactional).
-- A statement that changes nothing still moves it: that costs one needless re-read, never a
-- stale name.

CREATE TABLE feed_revision (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    revision bigint NOT NULL DEFAULT 0
);
INSERT INTO feed_revision DEFAULT VALUES;

COMMENT ON TABLE feed_revision IS
    'Moves (in the writer''s transaction) whenever the compiled feed names may have changed; tenantd re-reads feed_entries only when it differs from the value its cache was built under.';

CREATE FUNCTION aegis_bump_feed_revision() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE feed_revision SET revision = revision + 1;
    RETURN NULL;
END
$$;

COMMENT ON FUNCTION aegis_bump_feed_revision() IS
    'Statement-level AFTER trigger: moves feed_revision.revision so tenantd reads the feed names again.';

CREATE TRIGGER feed_entries_revision
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON feed_entries
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_bump_feed_revision();
CREATE TRIGGER feeds_revision
    AFTER INSERT OR DELETE OR TRUNCATE ON feeds
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_bump_feed_revision();
CREATE TRIGGER feeds_revision_update
    AFTER UPDATE OF category, enabled ON feeds
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_bump_feed_revision();
CREATE TRIGGER categories_revision
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON categories
    FOR EACH STATEMENT EXECUTE FUNCTION aegis_bump_feed_revision();
