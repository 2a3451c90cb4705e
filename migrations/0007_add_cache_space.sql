-- soute schema 7: the pull-through cache's space (issue I). Append-only:
-- never edit a released migration.

-- Per upstream: evict its cached images, least recently pulled first, while
-- they hold more than `max_bytes`; and those not pulled for
-- `evict_after_secs`. NULL: no such limit.
ALTER TABLE upstream ADD COLUMN max_bytes INTEGER CHECK (max_bytes IS NULL OR max_bytes >= 0);
ALTER TABLE upstream ADD COLUMN evict_after_secs INTEGER
    CHECK (evict_after_secs IS NULL OR evict_after_secs >= 0);

-- When a manifest of a cached repository was last pulled (seconds since the
-- epoch). Written in batches, at most once a minute (`registry::pull_log`),
-- so it may lag the truth by that much; a manifest without a row counts as
-- pulled when it was stored.
CREATE TABLE cached_pull (
    repo_id   INTEGER NOT NULL REFERENCES repo(id) ON DELETE CASCADE,
    digest    TEXT NOT NULL,
    pulled_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
) STRICT, WITHOUT ROWID;
