//! Read-only queries the web UI's pages are made of: one row per repository
//! (tag count, last push, cached from which upstream), one page of a
//! repository's tags with their digests, and how many manifests reference a
//! blob (the "shared with" of a layer).
//!
//! They must never write, nor read more rows than the page asks for (the tag
//! page is bounded by `limit`).

use crate::error::Result;
use rusqlite::{params, Connection};

/// One repository of the repositories page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRow {
    pub name: String,
    pub tags: u64,
    pub manifests: u64,
    /// When a manifest was last stored (seconds since the epoch).
    pub last_push: Option<i64>,
    /// The upstream it is cached from.
    pub upstream: Option<String>,
}

/// Every repository with at least one manifest, by name.
pub fn repo_rows(conn: &Connection) -> Result<Vec<RepoRow>> {
    super::collect(
        conn,
        "SELECT r.name, (SELECT count(*) FROM tag t WHERE t.repo_id = r.id), m.n, m.last,
                (SELECT upstream FROM cached_repo c WHERE c.repo_id = r.id)
         FROM repo r
         JOIN (SELECT repo_id, count(*) AS n, max(created_at) AS last FROM manifest GROUP BY repo_id) m
           ON m.repo_id = r.id
         ORDER BY r.name",
        |r| {
            Ok(RepoRow {
                name: r.get(0)?,
                tags: r.get::<_, i64>(1)? as u64,
                manifests: r.get::<_, i64>(2)? as u64,
                last_push: r.get(3)?,
                upstream: r.get(4)?,
            })
        },
    )
}

/// One tag of a repository page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagRow {
    pub name: String,
    pub digest: String,
    pub updated_at: i64,
}

/// Tags of a repository by name, `offset` rows in, at most `limit`.
pub fn tag_rows(conn: &Connection, repo_id: i64, offset: u64, limit: u64) -> Result<Vec<TagRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT name, digest, updated_at FROM tag WHERE repo_id = ?1
         ORDER BY name LIMIT ?2 OFFSET ?3",
    )?;
    let rows = stmt.query_map(params![repo_id, limit as i64, offset as i64], |r| {
        Ok(TagRow {
            name: r.get(0)?,
            digest: r.get(1)?,
            updated_at: r.get(2)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many tags a repository has.
pub fn tag_count(conn: &Connection, repo_id: i64) -> Result<u64> {
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM tag WHERE repo_id = ?1")?
        .query_row([repo_id], |r| r.get(0))?;
    Ok(n as u64)
}

/// The tags pointing at `digest` in a repository.
pub fn tags_of(conn: &Connection, repo_id: i64, digest: &str) -> Result<Vec<String>> {
    let mut stmt = conn
        .prepare_cached("SELECT name FROM tag WHERE repo_id = ?1 AND digest = ?2 ORDER BY name")?;
    let rows = stmt.query_map(params![repo_id, digest], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// How many manifests of each repository reference blob `digest`, by
/// repository name (the caller counts only those its viewer may pull).
pub fn blob_users(conn: &Connection, digest: &str) -> Result<Vec<(String, u64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.name, count(*) FROM manifest_ref m JOIN repo r ON r.id = m.repo_id
         WHERE m.child = ?1 AND m.kind = 'blob' GROUP BY m.repo_id",
    )?;
    let rows = stmt.query_map([digest], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// When a client last pulled `digest` of the repository (the pull log's
/// `manifest_pull`); `None` when not recorded.
pub fn last_pulled(conn: &Connection, repo_id: i64, digest: &str) -> Result<Option<i64>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT pulled_at FROM manifest_pull WHERE repo_id = ?1 AND digest = ?2")?
        .query_row(params![repo_id, digest], |r| r.get(0))
        .optional()?)
}

/// When a manifest was stored.
pub fn manifest_created(conn: &Connection, repo_id: i64, digest: &str) -> Result<Option<i64>> {
    use rusqlite::OptionalExtension;
    Ok(conn
        .prepare_cached("SELECT created_at FROM manifest WHERE repo_id = ?1 AND digest = ?2")?
        .query_row(params![repo_id, digest], |r| r.get(0))
        .optional()?)
}

/// Space of one repository, as `soute du` counts it (`registry::gc_plan::usage`):
/// its blobs are those it links or its manifests reference; a blob is unique
/// when no other repository has it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepoSpace {
    pub logical_bytes: u64,
    pub unique_bytes: u64,
    pub shared_bytes: u64,
}

/// A value that changes whenever the figures of [`space_index`] may have:
/// the content generation (tags, manifests, repositories; migration 0014)
/// and the space generation (blobs and repository links; 0016), both bumped
/// by triggers in the writing transaction, by any process. Two point reads.
pub fn space_key(conn: &Connection) -> Result<[i64; 2]> {
    Ok(conn
        .prepare_cached(
            "SELECT (SELECT n FROM content_generation WHERE id = 1),
                    (SELECT n FROM space_generation WHERE id = 1)",
        )?
        .query_row([], |r| Ok([r.get(0)?, r.get(1)?]))?)
}

/// Which repositories hold which blobs, as `soute du` counts them: a
/// repository holds the blobs it links or its manifests reference. From it,
/// [`SpaceIndex::space`] computes [`RepoSpace`] over any set of repositories
/// (a viewer's), so "unique" never counts repositories the viewer cannot see.
#[derive(Debug, Clone, Default)]
pub struct SpaceIndex {
    /// Repository names; the indexes below point into it.
    pub repos: Vec<String>,
    /// Bytes of each repository's manifests.
    manifest_bytes: Vec<u64>,
    /// Each stored blob a repository holds: its size and its holders.
    blobs: Vec<(u64, Vec<u32>)>,
}

impl SpaceIndex {
    /// [`RepoSpace`] of every repository `visible` marks (by index into
    /// `repos`), counting only those as "other repositories".
    pub fn space(&self, visible: &[bool]) -> Vec<RepoSpace> {
        let mut out = vec![RepoSpace::default(); self.repos.len()];
        for (i, bytes) in self.manifest_bytes.iter().enumerate() {
            out[i].logical_bytes = *bytes;
            out[i].unique_bytes = *bytes;
        }
        let seen = |i: &u32| visible.get(*i as usize).copied().unwrap_or(false);
        for (size, holders) in &self.blobs {
            let n = holders.iter().filter(|i| seen(i)).count();
            for i in holders.iter().filter(|i| seen(i)) {
                let s = &mut out[*i as usize];
                s.logical_bytes += size;
                if n == 1 {
                    s.unique_bytes += size;
                } else {
                    s.shared_bytes += size;
                }
            }
        }
        out
    }
}

/// The [`SpaceIndex`] of every repository, in two queries (the repositories
/// page cannot afford du's whole GC plan).
pub fn space_index(conn: &Connection) -> Result<SpaceIndex> {
    let mut index = SpaceIndex::default();
    let mut ids: std::collections::HashMap<i64, u32> = std::collections::HashMap::new();
    let manifests = super::collect(
        conn,
        "SELECT r.id, r.name, coalesce(sum(m.size), 0) FROM repo r
         LEFT JOIN manifest m ON m.repo_id = r.id GROUP BY r.id",
        |r| {
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)? as u64,
            ))
        },
    )?;
    for (id, name, bytes) in manifests {
        ids.insert(id, index.repos.len() as u32);
        index.repos.push(name);
        index.manifest_bytes.push(bytes);
    }
    let held = super::collect(
        conn,
        "WITH rb AS (
             SELECT repo_id, digest FROM repo_blob
             UNION
             SELECT repo_id, child FROM manifest_ref WHERE kind = 'blob'
         )
         SELECT rb.digest, b.size, rb.repo_id FROM rb JOIN blob b ON b.digest = rb.digest
         ORDER BY rb.digest",
        |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, i64>(2)?,
            ))
        },
    )?;
    let mut last: Option<String> = None;
    for (digest, size, repo_id) in held {
        let Some(&i) = ids.get(&repo_id) else {
            continue;
        };
        if last.as_deref() != Some(digest.as_str()) {
            index.blobs.push((size, Vec::new()));
            last = Some(digest);
        }
        if let Some((_, holders)) = index.blobs.last_mut() {
            holders.push(i);
        }
    }
    Ok(index)
}
