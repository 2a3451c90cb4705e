//! Queries over tags: resolve, set, delete, and the sorted page walk.
//! Free functions taking a connection or transaction and typed arguments.
//! Every create, move and delete is recorded in `tag_history` in the same
//! transaction, with the actor that made it.
//!
//! They must never allocate per tag when listing (`visit_tags` streams rows).

use super::now;
use super::tag_history::{self, TagChange};
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

pub fn resolve_tag(conn: &Connection, repo_id: i64, tag: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT digest FROM tag WHERE repo_id = ?1 AND name = ?2")?
        .query_row(params![repo_id, tag], |r| r.get(0))
        .optional()?)
}

/// Point `tag` at `digest` (create or move), recorded in the tag's history
/// when it changed.
pub fn set_tag(
    conn: &Connection,
    repo_id: i64,
    tag: &str,
    digest: &str,
    actor: &str,
) -> Result<()> {
    let previous = resolve_tag(conn, repo_id, tag)?;
    if previous.as_deref() != Some(digest) {
        let change = TagChange {
            digest: Some(digest.to_string()),
            previous,
            actor: actor.to_string(),
            at: now(),
        };
        tag_history::record(conn, repo_id, tag, &change)?;
    }
    conn.prepare_cached(
        "INSERT INTO tag (repo_id, name, digest, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
    )?
    .execute(params![repo_id, tag, digest, now()])?;
    Ok(())
}

/// Delete `tag`, recorded in its history.
pub fn delete_tag(conn: &Connection, repo_id: i64, tag: &str, actor: &str) -> Result<bool> {
    if let Some(previous) = resolve_tag(conn, repo_id, tag)? {
        let change = TagChange {
            digest: None,
            previous: Some(previous),
            actor: actor.to_string(),
            at: now(),
        };
        tag_history::record(conn, repo_id, tag, &change)?;
    }
    let n = conn
        .prepare_cached("DELETE FROM tag WHERE repo_id = ?1 AND name = ?2")?
        .execute(params![repo_id, tag])?;
    Ok(n > 0)
}

/// Record the deletion of every tag pointing at `digest` (call before the
/// manifest's row goes: its tags are deleted with it by the foreign key).
pub fn record_tags_of_deleted(
    conn: &Connection,
    repo_id: i64,
    digest: &str,
    actor: &str,
) -> Result<()> {
    let names: Vec<String> = conn
        .prepare_cached("SELECT name FROM tag WHERE repo_id = ?1 AND digest = ?2")?
        .query_map(params![repo_id, digest], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for name in names {
        delete_tag(conn, repo_id, &name, actor)?;
    }
    Ok(())
}

/// Visit the tags of a repository, sorted bytewise, after `last`, at most
/// `limit`, without allocating per row. Returns how many were visited.
pub fn visit_tags(
    conn: &Connection,
    repo_id: i64,
    last: &str,
    limit: usize,
    mut visit: impl FnMut(&str),
) -> Result<usize> {
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM tag WHERE repo_id = ?1 AND name > ?2 ORDER BY name LIMIT ?3",
    )?;
    let mut rows = stmt.query(params![repo_id, last, limit as i64])?;
    let mut n = 0;
    while let Some(row) = rows.next()? {
        let name = row.get_ref(0)?.as_str().map_err(rusqlite::Error::from)?;
        visit(name);
        n += 1;
    }
    Ok(n)
}
