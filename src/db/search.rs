//! Queries over the `docker search` index: repository titles and descriptions.
//! Free functions taking a connection or transaction and typed arguments.
//!
//! They must never return repositories without content, nor pass the term to
//! LIKE unescaped.

use crate::error::Result;
use rusqlite::{params, Connection};

/// Record the title/description annotations of a repository's latest manifest.
pub fn set_repo_search_text(
    conn: &Connection,
    repo_id: i64,
    title: Option<&str>,
    description: Option<&str>,
) -> Result<()> {
    conn.prepare_cached(
        "UPDATE repo SET title = coalesce(?2, title), description = coalesce(?3, description) WHERE id = ?1",
    )?
    .execute(params![repo_id, title, description])?;
    Ok(())
}

pub struct SearchHit {
    pub name: String,
    pub description: String,
}

/// Repositories with content whose name, title or description contains `term`.
/// Only the first 256 characters of a title and 1,024 of a description are
/// searched (rows written before the cap may hold longer text).
pub fn search(conn: &Connection, term: &str, limit: usize) -> Result<Vec<SearchHit>> {
    let pattern = format!(
        "%{}%",
        term.replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_")
    );
    let mut stmt = conn.prepare_cached(
        "SELECT name, substr(coalesce(description, title, ''), 1, 1024) FROM repo r
         WHERE (name LIKE ?1 ESCAPE '\\'
                OR substr(title, 1, 256) LIKE ?1 ESCAPE '\\'
                OR substr(description, 1, 1024) LIKE ?1 ESCAPE '\\')
           AND EXISTS (SELECT 1 FROM manifest m WHERE m.repo_id = r.id)
         ORDER BY name LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![pattern, limit as i64], |r| {
        Ok(SearchHit {
            name: r.get(0)?,
            description: r.get(1)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}
