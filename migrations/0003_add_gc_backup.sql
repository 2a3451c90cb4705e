-- soute schema 3: what garbage collection and backups need.
-- Append-only: never edit a released migration.

-- A running `soute backup`. Its pins keep blob files GC would otherwise
-- remove; a backup whose heartbeat is stale (it died) pins nothing.
CREATE TABLE backup (
    id           TEXT PRIMARY KEY,
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE backup_pin (
    backup_id TEXT NOT NULL REFERENCES backup(id) ON DELETE CASCADE,
    digest    TEXT NOT NULL,
    PRIMARY KEY (backup_id, digest)
) STRICT, WITHOUT ROWID;
CREATE INDEX backup_pin_digest ON backup_pin(digest);

-- Blob files whose rows GC deleted and which are still to be unlinked. A file
-- is unlinked only under the write lock and only while no blob row exists for
-- its digest, so a crash between the two steps leaves work, never damage.
CREATE TABLE blob_trash (
    digest    TEXT PRIMARY KEY,
    queued_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
