-- soute schema: pull times for every repository (issue J). Append-only:
-- never edit a released migration.

-- `cached_pull` held when each manifest of a cached repository was last
-- pulled; private repositories' pulls are recorded too from now on (the web
-- UI's "last pulled"), so the table is renamed for what it holds. Written in
-- batches at most once a minute (`registry::pull_log`); eviction still reads
-- only the rows of cached repositories.
ALTER TABLE cached_pull RENAME TO manifest_pull;
