//! Queries over `tag_history`: every digest a tag pointed to (a create, a
//! move, a delete), who did it and when, newest first; pruned per tag to
//! [`KEEP_PER_TAG`] rows. Rows are written by `db::tags` in the transaction
//! that changes the tag, never on their own.
//!
//! It must never change a tag itself, nor keep more than [`KEEP_PER_TAG`]
//! rows of one tag after a write.

use crate::error::Result;
use rusqlite::{params, Connection};
use serde::Serialize;

/// The most history rows kept per tag (older ones are pruned on write).
pub const KEEP_PER_TAG: i64 = 100;

/// One change of a tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TagChange {
    /// The digest the tag pointed to after the change (`None`: deleted).
    pub digest: Option<String>,
    /// The digest it pointed to before (`None`: it did not exist).
    pub previous: Option<String>,
    /// Who changed it: a user, `token:NAME`, `anonymous`, `local:$USER`,
    /// `upstream:NAME`.
    pub actor: String,
    /// Seconds since the epoch.
    pub at: i64,
}

/// Record one change of `tag` and prune the tag's oldest rows.
pub fn record(conn: &Connection, repo_id: i64, tag: &str, change: &TagChange) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO tag_history (repo_id, tag, digest, previous, actor, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        repo_id,
        tag,
        change.digest,
        change.previous,
        change.actor,
        change.at
    ])?;
    conn.prepare_cached(
        "DELETE FROM tag_history WHERE repo_id = ?1 AND tag = ?2 AND id <= (
             SELECT id FROM tag_history WHERE repo_id = ?1 AND tag = ?2
             ORDER BY id DESC LIMIT 1 OFFSET ?3)",
    )?
    .execute(params![repo_id, tag, KEEP_PER_TAG])?;
    Ok(())
}

/// The changes of `tag`, newest first, at most `limit`.
pub fn history(conn: &Connection, repo_id: i64, tag: &str, limit: i64) -> Result<Vec<TagChange>> {
    let mut stmt = conn.prepare_cached(
        "SELECT digest, previous, actor, at FROM tag_history
         WHERE repo_id = ?1 AND tag = ?2 ORDER BY id DESC LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![repo_id, tag, limit], |r| {
        Ok(TagChange {
            digest: r.get(0)?,
            previous: r.get(1)?,
            actor: r.get(2)?,
            at: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The last change of `tag` (the "pushed by" of a repository page): (actor,
/// at). One indexed read.
pub fn last_change(conn: &Connection, repo_id: i64, tag: &str) -> Result<Option<(String, i64)>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached(
            "SELECT actor, at FROM tag_history WHERE repo_id = ?1 AND tag = ?2
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![repo_id, tag], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::{repos, Db};

    #[test]
    fn records_newest_first_and_prunes_per_tag() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("soute.db"), 2).expect("open");
        db.write(|tx| {
            let id = repos::ensure_repo(tx, "lab/app")?;
            for i in 0..(KEEP_PER_TAG + 5) {
                let change = TagChange {
                    digest: Some(format!("d{i}")),
                    previous: (i > 0).then(|| format!("d{}", i - 1)),
                    actor: "ann".into(),
                    at: i,
                };
                record(tx, id, "v1", &change)?;
            }
            record(
                tx,
                id,
                "v2",
                &TagChange {
                    digest: None,
                    previous: Some("x".into()),
                    actor: "bob".into(),
                    at: 7,
                },
            )?;
            let v1 = history(tx, id, "v1", 1000)?;
            assert_eq!(v1.len() as i64, KEEP_PER_TAG, "pruned to the limit");
            assert_eq!(v1[0].digest.as_deref(), Some("d104"), "newest first");
            assert_eq!(
                v1.last().and_then(|c| c.digest.clone()).as_deref(),
                Some("d5")
            );
            assert_eq!(history(tx, id, "v2", 10)?.len(), 1, "other tags untouched");
            assert_eq!(last_change(tx, id, "v2")?, Some(("bob".to_string(), 7)));
            assert_eq!(last_change(tx, id, "v3")?, None);
            Ok(())
        })
        .expect("write");
    }
}
