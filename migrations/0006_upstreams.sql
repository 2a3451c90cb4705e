-- soute schema 6: the pull-through cache (issue I). Append-only: never edit a
-- released migration.

-- An upstream registry. `name` is the namespace (the first path segment of
-- the repositories it serves: docker.io, ghcr.io). The password is stored as
-- given (the database is 0600) and is never logged nor listed.
CREATE TABLE upstream (
    name          TEXT PRIMARY KEY,
    url           TEXT NOT NULL,
    username      TEXT,
    password      TEXT,
    ca_pem        TEXT,
    tag_ttl_secs  INTEGER NOT NULL DEFAULT 300 CHECK (tag_ttl_secs >= 0),
    mirror        INTEGER NOT NULL DEFAULT 0 CHECK (mirror IN (0, 1)),
    hits          INTEGER NOT NULL DEFAULT 0,
    misses        INTEGER NOT NULL DEFAULT 0,
    bytes_served  INTEGER NOT NULL DEFAULT 0,
    bytes_fetched INTEGER NOT NULL DEFAULT 0,
    last_error    TEXT,
    last_error_at INTEGER,
    created_at    INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- A local repository whose content was fetched from an upstream.
CREATE TABLE cached_repo (
    repo_id  INTEGER PRIMARY KEY REFERENCES repo(id) ON DELETE CASCADE,
    upstream TEXT NOT NULL
) STRICT;

-- When a cached tag was last checked against its upstream (the tag itself is
-- a normal `tag` row).
CREATE TABLE cached_tag (
    repo_id    INTEGER NOT NULL REFERENCES repo(id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    checked_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, name)
) STRICT, WITHOUT ROWID;
