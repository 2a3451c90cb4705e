//! Queries over manifests (exact bytes), their references and their referrers.
//! Free functions taking a connection or transaction and typed arguments.
//!
//! They must never parse a manifest (the registry passes the references in) nor
//! touch blob files.

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

pub struct StoredManifest {
    pub media_type: String,
    pub body: Vec<u8>,
}

pub fn manifest(conn: &Connection, repo_id: i64, digest: &str) -> Result<Option<StoredManifest>> {
    Ok(conn
        .prepare_cached("SELECT media_type, body FROM manifest WHERE repo_id = ?1 AND digest = ?2")?
        .query_row(params![repo_id, digest], |r| {
            Ok(StoredManifest {
                media_type: r.get(0)?,
                body: r.get(1)?,
            })
        })
        .optional()?)
}

/// Media type and size only (for HEAD).
pub fn manifest_head(
    conn: &Connection,
    repo_id: i64,
    digest: &str,
) -> Result<Option<(String, u64)>> {
    Ok(conn
        .prepare_cached("SELECT media_type, size FROM manifest WHERE repo_id = ?1 AND digest = ?2")?
        .query_row(params![repo_id, digest], |r| {
            Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
        })
        .optional()?)
}

pub struct NewManifest<'a> {
    pub repo_id: i64,
    pub digest: &'a str,
    pub media_type: &'a str,
    pub artifact_type: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub annotations: Option<String>,
    pub body: &'a [u8],
    /// (child digest, "blob" | "manifest")
    pub refs: Vec<(String, &'static str)>,
}

/// Store a manifest and its references. Storing the same digest again is a no-op.
pub fn put_manifest(conn: &Connection, m: &NewManifest<'_>) -> Result<()> {
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO manifest (repo_id, digest, media_type, artifact_type, subject, annotations, size, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            m.repo_id,
            m.digest,
            m.media_type,
            m.artifact_type,
            m.subject,
            m.annotations,
            m.body.len() as i64,
            m.body,
            now()
        ])?;
    if inserted > 0 {
        let mut stmt =
            conn.prepare_cached("INSERT OR IGNORE INTO manifest_ref (repo_id, digest, child, kind) VALUES (?1, ?2, ?3, ?4)")?;
        for (child, kind) in &m.refs {
            stmt.execute(params![m.repo_id, m.digest, child, kind])?;
        }
    }
    Ok(())
}

pub fn delete_manifest(conn: &Connection, repo_id: i64, digest: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM manifest WHERE repo_id = ?1 AND digest = ?2")?
        .execute(params![repo_id, digest])?;
    Ok(n > 0)
}

pub struct Referrer {
    /// The manifest row's rowid: the referrers index's page cursor.
    pub cursor: i64,
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    /// The length of the stored annotations (fetched apart with
    /// [`referrer_annotations`], one at a time), 0 when there are none.
    pub annotations_len: usize,
}

/// Up to `limit` manifests of `repo_id` whose subject is `subject` (of
/// `artifact_type` when given), in push order, after the row `after`; without
/// their annotations, so a page of rows costs a few hundred bytes each.
pub fn referrers(
    conn: &Connection,
    repo_id: i64,
    subject: &str,
    artifact_type: Option<&str>,
    after: i64,
    limit: usize,
) -> Result<Vec<Referrer>> {
    let mut stmt = conn.prepare_cached(
        "SELECT rowid, digest, media_type, size, artifact_type, coalesce(length(annotations), 0)
         FROM manifest
         WHERE repo_id = ?1 AND subject = ?2 AND rowid > ?3
           AND (?4 IS NULL OR artifact_type = ?4)
         ORDER BY rowid LIMIT ?5",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(
        params![repo_id, subject, after, artifact_type, limit],
        |r| {
            Ok(Referrer {
                cursor: r.get(0)?,
                digest: r.get(1)?,
                media_type: r.get(2)?,
                size: r.get::<_, i64>(3)? as u64,
                artifact_type: r.get(4)?,
                annotations_len: r.get::<_, i64>(5)?.max(0) as usize,
            })
        },
    )?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The stored annotations (soute's serialization of a JSON object) of the
/// manifest row `cursor`, if any.
pub fn referrer_annotations(conn: &Connection, cursor: i64) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT annotations FROM manifest WHERE rowid = ?1")?
        .query_row([cursor], |r| r.get(0))
        .optional()?
        .flatten())
}
