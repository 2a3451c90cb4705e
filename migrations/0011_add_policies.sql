-- soute schema: retention rules, protected (immutable) tags and quotas (issue K).
-- Append-only: never edit a released migration.

-- A retention rule: which tags of the repositories PATTERN matches GC keeps.
-- At least one of keep_last, keep_days, keep_tags is set (the CLI checks).
CREATE TABLE retention_rule (
    pattern    TEXT PRIMARY KEY,
    keep_last  INTEGER,
    keep_days  INTEGER,
    keep_tags  TEXT,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

-- Tags of the repositories PATTERN matches whose name TAG_GLOB matches may
-- not be moved to another digest nor deleted (only `soute tag unprotect`).
CREATE TABLE tag_protection (
    pattern    TEXT NOT NULL,
    tag_glob   TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (pattern, tag_glob)
) STRICT, WITHOUT ROWID;

-- A quota over the repositories PATTERN matches. used_bytes is kept in the
-- transactions that change it (manifest PUT adds, deletes and GC recompute).
CREATE TABLE quota (
    pattern     TEXT PRIMARY KEY,
    limit_bytes INTEGER NOT NULL,
    used_bytes  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
