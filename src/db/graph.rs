//! The reference graph GC and `du` walk: every repository, manifest, tag,
//! reference, link, blob, upload session and backup pin, read in one go.
//!
//! It must never decide what is garbage (the registry's pure plan does) nor
//! touch blob files.

use super::collect;
use crate::error::Result;
use rusqlite::Connection;
use std::collections::HashSet;

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
