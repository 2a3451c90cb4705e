-- soute schema 10: tag history and web UI sessions (issue J). Append-only:
-- never edit a released migration.

-- Every digest a tag has pointed to: one row per create, move or delete
-- (digest NULL), with who did it. Pruned to the newest rows per tag.
CREATE TABLE tag_history (
    id       INTEGER PRIMARY KEY,
    repo_id  INTEGER NOT NULL REFERENCES repo(id) ON DELETE CASCADE,
    tag      TEXT NOT NULL,
    digest   TEXT,
    previous TEXT,
    actor    TEXT NOT NULL,
    at       INTEGER NOT NULL
) STRICT;
CREATE INDEX tag_history_by_tag ON tag_history(repo_id, tag, id);

-- A signed-in browser: the sha256 of its cookie's secret (never the secret),
-- the user, the API token it signed in with (its sha256; NULL: a password),
-- the CSRF token of its forms and when it ends.
CREATE TABLE ui_session (
    hash       TEXT PRIMARY KEY,
    user       TEXT NOT NULL,
    token_hash TEXT,
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX ui_session_expiry ON ui_session(expires_at);

-- The repositories page's per-repository manifest count, last push and bytes,
-- read from the index instead of the rows (which hold the manifests' bodies).
CREATE INDEX manifest_browse ON manifest(repo_id, created_at, size);
