-- soute schema: the content generation (issue M). Append-only: never edit a
-- released migration.

-- Bumped by every change to tags, manifests and repositories (triggers, so
-- every writer counts: this server's pushes, deletes, GC, retention and
-- upstream revalidation, and `soute tag rollback` or `soute gc` in another
-- process). The manifest read cache serves an entry only while this is the
-- value it was filled at.
CREATE TABLE content_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
) STRICT;
INSERT INTO content_generation (id, n) VALUES (1, 0);

CREATE TRIGGER content_tag_ins AFTER INSERT ON tag BEGIN UPDATE content_generation SET n = n + 1; END;
CREATE TRIGGER content_tag_upd AFTER UPDATE ON tag BEGIN UPDATE content_generation SET n = n + 1; END;
CREATE TRIGGER content_tag_del AFTER DELETE ON tag BEGIN UPDATE content_generation SET n = n + 1; END;
CREATE TRIGGER content_manifest_ins AFTER INSERT ON manifest BEGIN UPDATE content_generation SET n = n + 1; END;
CREATE TRIGGER content_manifest_upd AFTER UPDATE ON manifest BEGIN UPDATE content_generation SET n = n + 1; END;
CREATE TRIGGER content_manifest_del AFTER DELETE ON manifest BEGIN UPDATE content_generation SET n = n + 1; END;
CREATE TRIGGER content_repo_del AFTER DELETE ON repo BEGIN UPDATE content_generation SET n = n + 1; END;
CREATE TRIGGER content_repo_upd AFTER UPDATE ON repo BEGIN UPDATE content_generation SET n = n + 1; END;
