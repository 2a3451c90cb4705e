-- soute schema 2: what `docker search` matches besides the repository name:
-- the title and description annotations of the repository's latest manifest.
ALTER TABLE repo ADD COLUMN title TEXT;
ALTER TABLE repo ADD COLUMN description TEXT;
