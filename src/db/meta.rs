//! Queries over repositories, blobs, manifests, tags and upload sessions.
//! Free functions taking a connection or transaction and typed arguments.

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

pub fn repo_id(conn: &Connection, name: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT id FROM repo WHERE name = ?1")?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

pub fn ensure_repo(conn: &Connection, name: &str) -> Result<i64> {
    if let Some(id) = repo_id(conn, name)? {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO repo (name, created_at) VALUES (?1, ?2)")?
        .execute(params![name, now()])?;
    Ok(conn.last_insert_rowid())
}

/// Repository names that hold at least one manifest, sorted, after `last`.
pub fn catalog(conn: &Connection, last: &str, limit: usize) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name FROM repo r WHERE name > ?1 AND EXISTS (SELECT 1 FROM manifest m WHERE m.repo_id = r.id)
         ORDER BY name LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![last, limit as i64], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}

/// The size of a blob that exists in the store (in any repository).
pub fn blob_size(conn: &Connection, digest: &str) -> Result<Option<u64>> {
    Ok(conn
        .prepare_cached("SELECT size FROM blob WHERE digest = ?1")?
        .query_row([digest], |r| r.get::<_, i64>(0))
        .optional()?
        .map(|s| s as u64))
}

/// The size of a blob that `repo_id` may serve.
pub fn repo_blob_size(conn: &Connection, repo_id: i64, digest: &str) -> Result<Option<u64>> {
    Ok(conn
        .prepare_cached(
            "SELECT b.size FROM repo_blob rb JOIN blob b ON b.digest = rb.digest
             WHERE rb.repo_id = ?1 AND rb.digest = ?2",
        )?
        .query_row(params![repo_id, digest], |r| r.get::<_, i64>(0))
        .optional()?
        .map(|s| s as u64))
}

pub fn insert_blob(conn: &Connection, digest: &str, size: u64) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR IGNORE INTO blob (digest, size, created_at) VALUES (?1, ?2, ?3)",
    )?
    .execute(params![digest, size as i64, now()])?;
    Ok(())
}

/// Link a blob into a repository; linking again refreshes the link's time, so
/// a blob uploaded or mounted again waits the full link grace period for its
/// manifest before GC may drop the link.
pub fn link_blob(conn: &Connection, repo_id: i64, digest: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO repo_blob (repo_id, digest, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (repo_id, digest) DO UPDATE SET created_at = excluded.created_at",
    )?
    .execute(params![repo_id, digest, now()])?;
    Ok(())
}

pub fn unlink_blob(conn: &Connection, repo_id: i64, digest: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM repo_blob WHERE repo_id = ?1 AND digest = ?2")?
        .execute(params![repo_id, digest])?;
    Ok(n > 0)
}

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
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

pub fn referrers(conn: &Connection, repo_id: i64, subject: &str) -> Result<Vec<Referrer>> {
    let mut stmt = conn.prepare_cached(
        "SELECT digest, media_type, size, artifact_type, annotations FROM manifest
         WHERE repo_id = ?1 AND subject = ?2 ORDER BY created_at, digest",
    )?;
    let rows = stmt.query_map(params![repo_id, subject], |r| {
        Ok(Referrer {
            digest: r.get(0)?,
            media_type: r.get(1)?,
            size: r.get::<_, i64>(2)? as u64,
            artifact_type: r.get(3)?,
            annotations: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn resolve_tag(conn: &Connection, repo_id: i64, tag: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached("SELECT digest FROM tag WHERE repo_id = ?1 AND name = ?2")?
        .query_row(params![repo_id, tag], |r| r.get(0))
        .optional()?)
}

pub fn set_tag(conn: &Connection, repo_id: i64, tag: &str, digest: &str) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO tag (repo_id, name, digest, updated_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (repo_id, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
    )?
    .execute(params![repo_id, tag, digest, now()])?;
    Ok(())
}

pub fn delete_tag(conn: &Connection, repo_id: i64, tag: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM tag WHERE repo_id = ?1 AND name = ?2")?
        .execute(params![repo_id, tag])?;
    Ok(n > 0)
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

pub struct UploadRow {
    pub repo_id: i64,
    pub repo: String,
    pub length: u64,
    pub algorithm: String,
}

pub fn create_upload(conn: &Connection, id: &str, repo_id: i64, algorithm: &str) -> Result<()> {
    let t = now();
    conn.prepare_cached(
        "INSERT INTO upload (id, repo_id, length, algorithm, created_at, updated_at) VALUES (?1, ?2, 0, ?3, ?4, ?4)",
    )?
    .execute(params![id, repo_id, algorithm, t])?;
    Ok(())
}

pub fn upload(conn: &Connection, id: &str) -> Result<Option<UploadRow>> {
    Ok(conn
        .prepare_cached(
            "SELECT u.repo_id, r.name, u.length, u.algorithm FROM upload u JOIN repo r ON r.id = u.repo_id WHERE u.id = ?1",
        )?
        .query_row([id], |r| {
            Ok(UploadRow { repo_id: r.get(0)?, repo: r.get(1)?, length: r.get::<_, i64>(2)? as u64, algorithm: r.get(3)? })
        })
        .optional()?)
}

pub fn set_upload_length(conn: &Connection, id: &str, length: u64) -> Result<()> {
    conn.prepare_cached("UPDATE upload SET length = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![id, length as i64, now()])?;
    Ok(())
}

pub fn delete_upload(conn: &Connection, id: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM upload WHERE id = ?1")?
        .execute([id])?;
    Ok(n > 0)
}

/// Ids of every upload session (for start-up cleanup of orphan files).
pub fn upload_ids(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT id FROM upload")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<String>>>()?)
}
