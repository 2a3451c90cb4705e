-- soute schema 4: who may do what (issue H). Append-only: never edit a
-- released migration.

-- Administrators may do everything. Users that existed before this schema
-- become administrators, so an upgraded registry behaves as before.
ALTER TABLE user ADD COLUMN admin INTEGER NOT NULL DEFAULT 0 CHECK (admin IN (0, 1));
UPDATE user SET admin = 1;

CREATE TABLE user_group (
    name       TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE group_member (
    group_name TEXT NOT NULL REFERENCES user_group(name) ON DELETE CASCADE,
    user_name  TEXT NOT NULL REFERENCES user(name) ON DELETE CASCADE,
    PRIMARY KEY (group_name, user_name)
) STRICT, WITHOUT ROWID;
CREATE INDEX group_member_user ON group_member(user_name);

-- A rule: who ('user' NAME | 'group' NAME | 'anonymous' '' | 'authenticated'
-- ''), a glob over repository names, and a comma-separated set of actions
-- (pull, push, delete, admin; empty: none). One rule per (who, pattern).
CREATE TABLE access_rule (
    who_kind   TEXT NOT NULL CHECK (who_kind IN ('user', 'group', 'anonymous', 'authenticated')),
    who_name   TEXT NOT NULL,
    pattern    TEXT NOT NULL,
    actions    TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (who_kind, who_name, pattern)
) STRICT, WITHOUT ROWID;

-- API tokens: only the sha256 of the secret is stored. scopes: one
-- PATTERN:ACTIONS per line. A revoked token is deleted.
CREATE TABLE token (
    name         TEXT PRIMARY KEY,
    user_name    TEXT NOT NULL REFERENCES user(name) ON DELETE CASCADE,
    hash         TEXT NOT NULL UNIQUE,
    scopes       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER,
    last_used_at INTEGER
) STRICT, WITHOUT ROWID;

-- Bumped by every change to users, groups, members and rules (triggers, so
-- `soute` in another process invalidates a server's cached policy too).
CREATE TABLE access_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
) STRICT;
INSERT INTO access_generation (id, n) VALUES (1, 0);

CREATE TRIGGER user_ins AFTER INSERT ON user BEGIN UPDATE access_generation SET n = n + 1; END;
CREATE TRIGGER user_upd AFTER UPDATE ON user BEGIN UPDATE access_generation SET n = n + 1; END;
CREATE TRIGGER user_del AFTER DELETE ON user BEGIN UPDATE access_generation SET n = n + 1; END;
CREATE TRIGGER group_ins AFTER INSERT ON user_group BEGIN UPDATE access_generation SET n = n + 1; END;
CREATE TRIGGER group_del AFTER DELETE ON user_group BEGIN UPDATE access_generation SET n = n + 1; END;
CREATE TRIGGER member_ins AFTER INSERT ON group_member BEGIN UPDATE access_generation SET n = n + 1; END;
CREATE TRIGGER member_del AFTER DELETE ON group_member BEGIN UPDATE access_generation SET n = n + 1; END;
CREATE TRIGGER rule_ins AFTER INSERT ON access_rule BEGIN UPDATE access_generation SET n = n + 1; END;
CREATE TRIGGER rule_upd AFTER UPDATE ON access_rule BEGIN UPDATE access_generation SET n = n + 1; END;
CREATE TRIGGER rule_del AFTER DELETE ON access_rule BEGIN UPDATE access_generation SET n = n + 1; END;
