-- soute schema 1: repositories, blobs, manifests (exact bytes), tags, upload
-- sessions, users and settings. Append-only: never edit a released migration.

CREATE TABLE repo (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
) STRICT;

-- A row means the file blobs/<alg>/<2 hex>/<hex> exists and was verified.
CREATE TABLE blob (
    digest     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Which repositories may serve a blob (upload, mount or manifest push).
CREATE TABLE repo_blob (
    repo_id    INTEGER NOT NULL REFERENCES repo(id) ON DELETE CASCADE,
    digest     TEXT NOT NULL REFERENCES blob(digest),
    created_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
) STRICT, WITHOUT ROWID;
CREATE INDEX repo_blob_digest ON repo_blob(digest);

CREATE TABLE manifest (
    repo_id       INTEGER NOT NULL REFERENCES repo(id) ON DELETE CASCADE,
    digest        TEXT NOT NULL,
    media_type    TEXT NOT NULL,
    artifact_type TEXT,
    subject       TEXT,
    annotations   TEXT,
    size          INTEGER NOT NULL,
    body          BLOB NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (repo_id, digest)
) STRICT;
CREATE INDEX manifest_subject ON manifest(repo_id, subject) WHERE subject IS NOT NULL;

-- What a manifest references: blobs (config, layers) and child manifests.
CREATE TABLE manifest_ref (
    repo_id  INTEGER NOT NULL,
    digest   TEXT NOT NULL,
    child    TEXT NOT NULL,
    kind     TEXT NOT NULL CHECK (kind IN ('blob', 'manifest')),
    PRIMARY KEY (repo_id, digest, child, kind),
    FOREIGN KEY (repo_id, digest) REFERENCES manifest(repo_id, digest) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX manifest_ref_child ON manifest_ref(child);

CREATE TABLE tag (
    repo_id    INTEGER NOT NULL,
    name       TEXT NOT NULL,
    digest     TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (repo_id, name),
    FOREIGN KEY (repo_id, digest) REFERENCES manifest(repo_id, digest) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;
CREATE INDEX tag_digest ON tag(repo_id, digest);

-- Upload sessions; bytes live in uploads/<id>. "length" is the acknowledged size.
CREATE TABLE upload (
    id         TEXT PRIMARY KEY,
    repo_id    INTEGER NOT NULL REFERENCES repo(id) ON DELETE CASCADE,
    length     INTEGER NOT NULL DEFAULT 0,
    algorithm  TEXT NOT NULL DEFAULT 'sha256',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE user (
    name       TEXT PRIMARY KEY,
    hash       TEXT NOT NULL,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE setting (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT, WITHOUT ROWID;
