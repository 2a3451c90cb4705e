-- soute schema 5: the audit log (issue H). Append-only: never edit a
-- released migration.

-- Who pushed, deleted, signed in or was refused, when and from where. One
-- row per event; `at` in seconds since the epoch; actor is a user name,
-- `token:NAME` or `anonymous`; address the client's IP; repository and
-- detail may be empty. Rows are written by `Registry::audit` only, cut to
-- 256 bytes per text column, and pruned to the retention limits (oldest
-- first, by id: ids only grow).
CREATE TABLE audit (
    id         INTEGER PRIMARY KEY,
    at         INTEGER NOT NULL,
    actor      TEXT NOT NULL,
    address    TEXT NOT NULL,
    action     TEXT NOT NULL,
    repository TEXT NOT NULL,
    detail     TEXT NOT NULL,
    status     INTEGER NOT NULL
) STRICT;
CREATE INDEX audit_at ON audit(at);
-- The noise anyone can cause (failed logins, refusals) is pruned to a share
-- of the log first, on this index, so it cannot push the rest out.
CREATE INDEX audit_noisy ON audit(id) WHERE action IN ('login_failed', 'denied', 'suppressed');
