-- soute schema: the space generation (issue J). Append-only: never edit a
-- released migration.

-- Bumped by every change to blobs and repository links, by any process
-- (uploads, mounts, GC, `soute gc` beside serve). With the content
-- generation (0014: tags, manifests, repositories) it says exactly when the
-- web UI's space figures (unique and shared bytes) may have changed, so they
-- are recomputed only then.
CREATE TABLE space_generation (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    n  INTEGER NOT NULL
) STRICT;
INSERT INTO space_generation (id, n) VALUES (1, 0);

CREATE TRIGGER space_repo_blob_ins AFTER INSERT ON repo_blob BEGIN UPDATE space_generation SET n = n + 1; END;
CREATE TRIGGER space_repo_blob_upd AFTER UPDATE ON repo_blob BEGIN UPDATE space_generation SET n = n + 1; END;
CREATE TRIGGER space_repo_blob_del AFTER DELETE ON repo_blob BEGIN UPDATE space_generation SET n = n + 1; END;
CREATE TRIGGER space_blob_ins AFTER INSERT ON blob BEGIN UPDATE space_generation SET n = n + 1; END;
CREATE TRIGGER space_blob_upd AFTER UPDATE ON blob BEGIN UPDATE space_generation SET n = n + 1; END;
CREATE TRIGGER space_blob_del AFTER DELETE ON blob BEGIN UPDATE space_generation SET n = n + 1; END;
