-- soute schema 12: coordination of an S3 blob store's publishes and GC's deletes
-- (issue L). Network I/O never runs under the write lock, so a publish and a
-- delete of the same digest are ordered through these rows instead.
-- Append-only: never edit a released migration.

-- A blob being uploaded to the object store, from before the upload starts
-- until its row is written (one row per publishing upload). GC leaves a
-- digest with a fresh intent alone.
CREATE TABLE blob_publishing (
    token     TEXT PRIMARY KEY,
    digest    TEXT NOT NULL,
    since     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX blob_publishing_digest ON blob_publishing(digest);

-- Objects GC took from blob_trash and is deleting (outside the write lock).
-- No publish of such a digest starts until GC removed its row.
CREATE TABLE blob_deleting (
    digest    TEXT PRIMARY KEY,
    since     INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
