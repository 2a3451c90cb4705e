-- soute schema: the pull-through cache's download rate cap (issue I).
-- Append-only: never edit a released migration.

-- `soute upstream add --max-rate BYTES_PER_S`: downloads from that upstream,
-- all of them together, go no faster than this (NULL: no cap).
ALTER TABLE upstream ADD COLUMN max_rate INTEGER CHECK (max_rate IS NULL OR max_rate > 0);
