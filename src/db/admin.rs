//! Queries for operating the registry: the reference graph that GC and `du`
//! walk, GC's deletions and its trash of files to unlink, backup pins and
//! heartbeats, integrity checks, and the clean-up of a backup's snapshot.
//!
//! It must never touch blob files or format HTTP: it returns rows, and the
//! registry decides what they mean.

use super::now;
use crate::error::{Error, Result};
use rusqlite::{params, Connection};
use std::collections::HashSet;
use std::path::Path;

#[derive(Clone)]
pub struct ManifestNode {
    pub repo_id: i64,
    pub digest: String,
    pub size: u64,
    pub created_at: i64,
    pub subject: Option<String>,
}

#[derive(Clone)]
pub struct TagRow {
    pub repo_id: i64,
    pub name: String,
    pub digest: String,
}

/// One `manifest_ref` row: `digest` (a manifest of `repo_id`) references `child`.
#[derive(Clone)]
pub struct RefRow {
    pub repo_id: i64,
    pub digest: String,
    pub child: String,
    pub is_blob: bool,
}

#[derive(Clone)]
pub struct LinkRow {
    pub repo_id: i64,
    pub digest: String,
    pub created_at: i64,
}

#[derive(Clone)]
pub struct BlobRow {
    pub digest: String,
    pub size: u64,
    pub created_at: i64,
}

#[derive(Clone)]
pub struct UploadInfo {
    pub id: String,
    pub repo_id: i64,
    pub length: u64,
    pub updated_at: i64,
}

/// Everything that decides what is garbage, read in one transaction.
#[derive(Clone, Default)]
pub struct Graph {
    pub repos: Vec<(i64, String)>,
    pub manifests: Vec<ManifestNode>,
    pub tags: Vec<TagRow>,
    pub refs: Vec<RefRow>,
    pub links: Vec<LinkRow>,
    pub blobs: Vec<BlobRow>,
    pub uploads: Vec<UploadInfo>,
    /// Digests pinned by a backup whose heartbeat is at or after `live_since`.
    pub pinned: HashSet<String>,
}

fn collect<T>(
    conn: &Connection,
    sql: &str,
    f: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], f)?;
    Ok(rows.collect::<rusqlite::Result<Vec<T>>>()?)
}

/// Read the whole reference graph. Pins of backups whose heartbeat is older
/// than `live_since` are ignored (that backup died).
pub fn load_graph(conn: &Connection, live_since: i64) -> Result<Graph> {
    let repos = collect(conn, "SELECT id, name FROM repo ORDER BY name", |r| {
        Ok((r.get(0)?, r.get(1)?))
    })?;
    let manifests = collect(
        conn,
        "SELECT repo_id, digest, size, created_at, subject FROM manifest ORDER BY repo_id, digest",
        |r| {
            Ok(ManifestNode {
                repo_id: r.get(0)?,
                digest: r.get(1)?,
                size: r.get::<_, i64>(2)? as u64,
                created_at: r.get(3)?,
                subject: r.get(4)?,
            })
        },
    )?;
    let tags = collect(
        conn,
        "SELECT repo_id, name, digest FROM tag ORDER BY repo_id, name",
        |r| {
            Ok(TagRow {
                repo_id: r.get(0)?,
                name: r.get(1)?,
                digest: r.get(2)?,
            })
        },
    )?;
    let refs = collect(
        conn,
        "SELECT repo_id, digest, child, kind FROM manifest_ref",
        |r| {
            Ok(RefRow {
                repo_id: r.get(0)?,
                digest: r.get(1)?,
                child: r.get(2)?,
                is_blob: r.get::<_, String>(3)? == "blob",
            })
        },
    )?;
    let links = collect(
        conn,
        "SELECT repo_id, digest, created_at FROM repo_blob",
        |r| {
            Ok(LinkRow {
                repo_id: r.get(0)?,
                digest: r.get(1)?,
                created_at: r.get(2)?,
            })
        },
    )?;
    let blobs = blobs(conn)?;
    let uploads = collect(
        conn,
        "SELECT id, repo_id, length, updated_at FROM upload ORDER BY id",
        |r| {
            Ok(UploadInfo {
                id: r.get(0)?,
                repo_id: r.get(1)?,
                length: r.get::<_, i64>(2)? as u64,
                updated_at: r.get(3)?,
            })
        },
    )?;
    let mut stmt = conn.prepare(
        "SELECT DISTINCT p.digest FROM backup_pin p JOIN backup b ON b.id = p.backup_id
         WHERE b.heartbeat_at >= ?1",
    )?;
    let pinned = stmt
        .query_map([live_since], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<HashSet<String>>>()?;
    Ok(Graph {
        repos,
        manifests,
        tags,
        refs,
        links,
        blobs,
        uploads,
        pinned,
    })
}

/// Every blob row, sorted by digest.
pub fn blobs(conn: &Connection) -> Result<Vec<BlobRow>> {
    collect(
        conn,
        "SELECT digest, size, created_at FROM blob ORDER BY digest",
        |r| {
            Ok(BlobRow {
                digest: r.get(0)?,
                size: r.get::<_, i64>(1)? as u64,
                created_at: r.get(2)?,
            })
        },
    )
}

/// Delete a blob's row and queue its file for unlinking (see `blob_trash`).
pub fn trash_blob(conn: &Connection, digest: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM blob WHERE digest = ?1")?
        .execute([digest])?;
    conn.prepare_cached(
        "INSERT INTO blob_trash (digest, queued_at) VALUES (?1, ?2)
         ON CONFLICT (digest) DO NOTHING",
    )?
    .execute(params![digest, now()])?;
    Ok(())
}

/// Digests queued for unlinking.
pub fn trash(conn: &Connection) -> Result<Vec<String>> {
    collect(conn, "SELECT digest FROM blob_trash ORDER BY digest", |r| {
        r.get(0)
    })
}

pub fn untrash(conn: &Connection, digest: &str) -> Result<()> {
    conn.prepare_cached("DELETE FROM blob_trash WHERE digest = ?1")?
        .execute([digest])?;
    Ok(())
}

/// Forget backups whose heartbeat is older than `before` (their pins go too).
pub fn delete_stale_backups(conn: &Connection, before: i64) -> Result<usize> {
    Ok(conn
        .prepare_cached("DELETE FROM backup WHERE heartbeat_at < ?1")?
        .execute([before])?)
}

/// Register a backup and pin every blob that exists now.
pub fn start_backup(conn: &Connection, id: &str) -> Result<()> {
    let t = now();
    conn.execute(
        "INSERT INTO backup (id, started_at, heartbeat_at) VALUES (?1, ?2, ?2)",
        params![id, t],
    )?;
    conn.execute(
        "INSERT INTO backup_pin (backup_id, digest) SELECT ?1, digest FROM blob",
        [id],
    )?;
    Ok(())
}

pub fn heartbeat_backup(conn: &Connection, id: &str) -> Result<()> {
    conn.execute(
        "UPDATE backup SET heartbeat_at = ?2 WHERE id = ?1",
        params![id, now()],
    )?;
    Ok(())
}

pub fn end_backup(conn: &Connection, id: &str) -> Result<()> {
    conn.execute("DELETE FROM backup WHERE id = ?1", [id])?;
    Ok(())
}

/// `PRAGMA integrity_check` lines other than `ok`.
pub fn integrity_problems(conn: &Connection) -> Result<Vec<String>> {
    let lines: Vec<String> = collect(conn, "PRAGMA integrity_check", |r| r.get(0))?;
    Ok(lines.into_iter().filter(|l| l != "ok").collect())
}

/// `PRAGMA foreign_key_check`, one line per violation.
pub fn foreign_key_problems(conn: &Connection) -> Result<Vec<String>> {
    collect(conn, "PRAGMA foreign_key_check", |r| {
        let table: String = r.get(0)?;
        let rowid: Option<i64> = r.get(1)?;
        let parent: String = r.get(2)?;
        Ok(format!(
            "row {} of {table} references a missing {parent} row",
            rowid.map(|i| i.to_string()).unwrap_or_else(|| "?".into())
        ))
    })
}

/// A manifest body with its identity, for re-hashing.
pub struct ManifestBody {
    pub repo: String,
    pub digest: String,
    pub body: Vec<u8>,
}

pub fn manifest_bodies(conn: &Connection) -> Result<Vec<ManifestBody>> {
    collect(
        conn,
        "SELECT r.name, m.digest, m.body FROM manifest m JOIN repo r ON r.id = m.repo_id
         ORDER BY r.name, m.digest",
        |r| {
            Ok(ManifestBody {
                repo: r.get(0)?,
                digest: r.get(1)?,
                body: r.get(2)?,
            })
        },
    )
}

/// References whose target is missing: (repo, manifest, child, kind, why).
pub fn dangling_refs(conn: &Connection) -> Result<Vec<(String, String, String, String)>> {
    collect(
        conn,
        "SELECT r.name, mr.digest, mr.child, mr.kind FROM manifest_ref mr JOIN repo r ON r.id = mr.repo_id
         WHERE (mr.kind = 'blob' AND NOT EXISTS (
                    SELECT 1 FROM repo_blob rb JOIN blob b ON b.digest = rb.digest
                    WHERE rb.repo_id = mr.repo_id AND rb.digest = mr.child))
            OR (mr.kind = 'manifest' AND NOT EXISTS (
                    SELECT 1 FROM manifest m WHERE m.repo_id = mr.repo_id AND m.digest = mr.child))
         ORDER BY r.name, mr.digest, mr.child",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
    )
}

/// Tags whose manifest row is missing: (repo, tag, digest).
pub fn dangling_tags(conn: &Connection) -> Result<Vec<(String, String, String)>> {
    collect(
        conn,
        "SELECT r.name, t.name, t.digest FROM tag t JOIN repo r ON r.id = t.repo_id
         WHERE NOT EXISTS (SELECT 1 FROM manifest m WHERE m.repo_id = t.repo_id AND m.digest = t.digest)",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )
}

/// Where a blob is used: `repo@manifest` (and its tags), for advice on repairs.
pub fn blob_users(conn: &Connection, digest: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.name, mr.digest,
                (SELECT group_concat(t.name, ',') FROM tag t WHERE t.repo_id = mr.repo_id AND t.digest = mr.digest)
         FROM manifest_ref mr JOIN repo r ON r.id = mr.repo_id
         WHERE mr.child = ?1 AND mr.kind = 'blob' ORDER BY r.name, mr.digest",
    )?;
    let rows = stmt.query_map([digest], |r| {
        let (repo, manifest, tags): (String, String, Option<String>) =
            (r.get(0)?, r.get(1)?, r.get(2)?);
        Ok(match tags {
            Some(t) => format!("{repo}@{manifest} (tags {t})"),
            None => format!("{repo}@{manifest}"),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Turn a fresh `VACUUM INTO` copy at `path` into a registry of its own: no
/// upload sessions (their bytes are not copied), no backups, no trash. Returns
/// its blobs (digest, size), the files the copy needs.
pub fn prepare_snapshot(path: &Path) -> Result<Vec<(String, u64)>> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.execute_batch("PRAGMA foreign_keys=ON; PRAGMA synchronous=FULL;")?;
    let tx = conn.transaction()?;
    tx.execute_batch(
        "DELETE FROM upload; DELETE FROM backup_pin; DELETE FROM backup; DELETE FROM blob_trash;",
    )?;
    tx.commit()?;
    let blobs = collect(
        &conn,
        "SELECT digest, size FROM blob ORDER BY digest",
        |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)),
    )?;
    let mode: String = conn.query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        return Err(Error::internal(format!(
            "the snapshot kept journal mode {mode}"
        )));
    }
    conn.close().map_err(|(_, e)| Error::from(e))?;
    Ok(blobs)
}
