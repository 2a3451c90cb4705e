//! Queries over the pull-through cache's tables (migration 0006): `upstream`
//! (configured registries, their counters and last error), `cached_repo`
//! (which local repositories were filled from an upstream) and `cached_tag`
//! (when a cached tag was last checked upstream); and, from migration 0007,
//! each upstream's space limits (`CachePolicy`) and `manifest_pull` (when a
//! cached manifest was last pulled, written in batches).
//!
//! They must never return a password to anything but the upstream client
//! (`UpstreamRow::password` is read only by `upstream`), nor touch blob files.

use super::now;
use crate::error::Result;
use rusqlite::{params, Connection, OptionalExtension};

/// One configured upstream, as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpstreamRow {
    pub name: String,
    pub url: String,
    pub username: Option<String>,
    /// Never printed: `list` shows only whether one is set.
    pub password: Option<String>,
    pub ca_pem: Option<String>,
    pub tag_ttl_secs: u64,
    pub mirror: bool,
    pub hits: u64,
    pub misses: u64,
    pub bytes_served: u64,
    pub bytes_fetched: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<i64>,
    /// `--max-rate`: bytes per second from this upstream, all downloads together.
    pub max_rate: Option<u64>,
}

impl UpstreamRow {
    /// A new upstream: no credentials, no CA, the default tag TTL, no
    /// counters yet.
    pub fn new(name: &str, url: &str) -> UpstreamRow {
        UpstreamRow {
            name: name.to_string(),
            url: url.to_string(),
            username: None,
            password: None,
            ca_pem: None,
            tag_ttl_secs: crate::cli::DEFAULT_TAG_TTL_SECS,
            mirror: false,
            hits: 0,
            misses: 0,
            bytes_served: 0,
            bytes_fetched: 0,
            last_error: None,
            last_error_at: None,
            max_rate: None,
        }
    }
}

const COLUMNS: &str = "name, url, username, password, ca_pem, tag_ttl_secs, mirror, hits, misses, \
                       bytes_served, bytes_fetched, last_error, last_error_at, max_rate";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<UpstreamRow> {
    Ok(UpstreamRow {
        name: r.get(0)?,
        url: r.get(1)?,
        username: r.get(2)?,
        password: r.get(3)?,
        ca_pem: r.get(4)?,
        tag_ttl_secs: r.get::<_, i64>(5)?.max(0) as u64,
        mirror: r.get::<_, i64>(6)? != 0,
        hits: r.get::<_, i64>(7)?.max(0) as u64,
        misses: r.get::<_, i64>(8)?.max(0) as u64,
        bytes_served: r.get::<_, i64>(9)?.max(0) as u64,
        bytes_fetched: r.get::<_, i64>(10)?.max(0) as u64,
        last_error: r.get(11)?,
        last_error_at: r.get(12)?,
        max_rate: r.get::<_, Option<i64>>(13)?.map(|n| n.max(1) as u64),
    })
}

/// Insert a new upstream; false when the name is taken.
/// A repository named `name` or under `name/` that is not content cached
/// from an upstream (a private one), if any.
pub fn local_repo_under(conn: &Connection, name: &str) -> Result<Option<String>> {
    Ok(conn
        .prepare_cached(
            "SELECT r.name FROM repo r
             WHERE (r.name = ?1 OR substr(r.name, 1, length(?1) + 1) = ?1 || '/')
               AND NOT EXISTS (SELECT 1 FROM cached_repo c WHERE c.repo_id = r.id)
             ORDER BY r.name LIMIT 1",
        )?
        .query_row([name], |r| r.get(0))
        .optional()?)
}

pub fn add_upstream(conn: &Connection, u: &UpstreamRow) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO upstream (name, url, username, password, ca_pem, tag_ttl_secs, mirror, created_at, max_rate)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            u.name,
            u.url,
            u.username,
            u.password,
            u.ca_pem,
            u.tag_ttl_secs.min(i64::MAX as u64) as i64,
            i64::from(u.mirror),
            now(),
            u.max_rate.map(|n| n.min(i64::MAX as u64) as i64)
        ])?;
    Ok(n > 0)
}

/// Insert or update the upstream the environment configures as the mirror
/// (its counters and last error are kept); every other one stops being it.
pub fn set_env_mirror(conn: &Connection, u: &UpstreamRow) -> Result<()> {
    conn.prepare_cached("UPDATE upstream SET mirror = 0 WHERE name <> ?1")?
        .execute([&u.name])?;
    conn.prepare_cached(
        "INSERT INTO upstream (name, url, username, password, ca_pem, tag_ttl_secs, mirror, created_at)
         VALUES (?1, ?2, ?3, ?4, NULL, ?5, 1, ?6)
         ON CONFLICT (name) DO UPDATE SET url = excluded.url, username = excluded.username,
             password = excluded.password, tag_ttl_secs = excluded.tag_ttl_secs, mirror = 1",
    )?
    .execute(params![
        u.name,
        u.url,
        u.username,
        u.password,
        u.tag_ttl_secs.min(i64::MAX as u64) as i64,
        now()
    ])?;
    Ok(())
}

pub fn delete_upstream(conn: &Connection, name: &str) -> Result<bool> {
    let n = conn
        .prepare_cached("DELETE FROM upstream WHERE name = ?1")?
        .execute([name])?;
    Ok(n > 0)
}

pub fn upstream(conn: &Connection, name: &str) -> Result<Option<UpstreamRow>> {
    Ok(conn
        .prepare_cached(&format!("SELECT {COLUMNS} FROM upstream WHERE name = ?1"))?
        .query_row([name], row)
        .optional()?)
}

/// The upstream added with `--mirror`, if any (the first by name).
pub fn mirror_upstream(conn: &Connection) -> Result<Option<UpstreamRow>> {
    Ok(conn
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM upstream WHERE mirror = 1 ORDER BY name LIMIT 1"
        ))?
        .query_row([], row)
        .optional()?)
}

pub fn upstreams(conn: &Connection) -> Result<Vec<UpstreamRow>> {
    super::collect(
        conn,
        &format!("SELECT {COLUMNS} FROM upstream ORDER BY name"),
        row,
    )
}

/// Add to an upstream's counters.
pub fn count(
    conn: &Connection,
    name: &str,
    hits: u64,
    misses: u64,
    served: u64,
    fetched: u64,
) -> Result<()> {
    let clamp = |n: u64| n.min(i64::MAX as u64) as i64;
    conn.prepare_cached(
        "UPDATE upstream SET hits = hits + ?2, misses = misses + ?3,
                bytes_served = bytes_served + ?4, bytes_fetched = bytes_fetched + ?5
         WHERE name = ?1",
    )?
    .execute(params![
        name,
        clamp(hits),
        clamp(misses),
        clamp(served),
        clamp(fetched)
    ])?;
    Ok(())
}

/// Remember an upstream's last failure (shown by `soute upstream list`).
pub fn set_last_error(conn: &Connection, name: &str, error: &str) -> Result<()> {
    conn.prepare_cached("UPDATE upstream SET last_error = ?2, last_error_at = ?3 WHERE name = ?1")?
        .execute(params![name, error, now()])?;
    Ok(())
}

/// Mark a local repository as filled from `upstream`.
pub fn mark_cached_repo(conn: &Connection, repo_id: i64, upstream: &str) -> Result<()> {
    conn.prepare_cached("INSERT OR IGNORE INTO cached_repo (repo_id, upstream) VALUES (?1, ?2)")?
        .execute(params![repo_id, upstream])?;
    Ok(())
}

/// Whether a local repository was filled from an upstream.
pub fn is_cached_repo(conn: &Connection, repo_id: i64) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM cached_repo WHERE repo_id = ?1")?
        .query_row([repo_id], |_| Ok(()))
        .optional()?
        .is_some())
}

/// When a cached tag was last checked upstream (seconds since the epoch).
pub fn tag_checked_at(conn: &Connection, repo_id: i64, tag: &str) -> Result<Option<i64>> {
    Ok(conn
        .prepare_cached("SELECT checked_at FROM cached_tag WHERE repo_id = ?1 AND name = ?2")?
        .query_row(params![repo_id, tag], |r| r.get(0))
        .optional()?)
}

pub fn set_tag_checked(conn: &Connection, repo_id: i64, tag: &str, at: i64) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO cached_tag (repo_id, name, checked_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (repo_id, name) DO UPDATE SET checked_at = excluded.checked_at",
    )?
    .execute(params![repo_id, tag, at])?;
    Ok(())
}

/// An upstream's space limits (migration 0007); `None`: no such limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CachePolicy {
    /// Evict least recently pulled first while its cache holds more.
    pub max_bytes: Option<u64>,
    /// Evict what was not pulled for this long.
    pub evict_after_secs: Option<u64>,
}

fn clamp(n: u64) -> i64 {
    n.min(i64::MAX as u64) as i64
}

pub fn set_cache_policy(conn: &Connection, name: &str, p: &CachePolicy) -> Result<()> {
    conn.prepare_cached(
        "UPDATE upstream SET max_bytes = ?2, evict_after_secs = ?3 WHERE name = ?1",
    )?
    .execute(params![
        name,
        p.max_bytes.map(clamp),
        p.evict_after_secs.map(clamp)
    ])?;
    Ok(())
}

/// Every upstream's space limits, by name.
pub fn cache_policies(conn: &Connection) -> Result<std::collections::HashMap<String, CachePolicy>> {
    let rows: Vec<(String, CachePolicy)> = super::collect(
        conn,
        "SELECT name, max_bytes, evict_after_secs FROM upstream",
        |r| {
            let n = |v: Option<i64>| v.map(|v| v.max(0) as u64);
            Ok((
                r.get(0)?,
                CachePolicy {
                    max_bytes: n(r.get(1)?),
                    evict_after_secs: n(r.get(2)?),
                },
            ))
        },
    )?;
    Ok(rows.into_iter().collect())
}

/// Which repositories are cached and from which upstream (a name that may
/// no longer be configured), with when each cached manifest was last pulled.
#[derive(Clone, Debug, Default)]
pub struct CacheState {
    /// repo id -> upstream name.
    pub repos: std::collections::HashMap<i64, String>,
    /// (repo id, manifest digest) -> last pulled (seconds since the epoch).
    pub pulled: std::collections::HashMap<(i64, String), i64>,
    /// The configured upstreams' limits; a cached repository whose upstream
    /// is missing here belongs to a deleted upstream.
    pub policies: std::collections::HashMap<String, CachePolicy>,
}

/// Read the cache's state (in the transaction that reads the GC graph).
pub fn cache_state(conn: &Connection) -> Result<CacheState> {
    let repos: Vec<(i64, String)> =
        super::collect(conn, "SELECT repo_id, upstream FROM cached_repo", |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
    let pulled: Vec<((i64, String), i64)> = super::collect(
        conn,
        "SELECT repo_id, digest, pulled_at FROM manifest_pull
         WHERE repo_id IN (SELECT repo_id FROM cached_repo)",
        |r| Ok(((r.get(0)?, r.get(1)?), r.get(2)?)),
    )?;
    Ok(CacheState {
        repos: repos.into_iter().collect(),
        pulled: pulled.into_iter().collect(),
        policies: cache_policies(conn)?,
    })
}

/// Record that `reference` (a tag, resolved here, or a digest) of the
/// repository `repo` was pulled at `at`; a name or tag that is gone is
/// skipped. Only later times replace earlier ones.
pub fn record_pull(conn: &Connection, repo: &str, reference: &str, at: i64) -> Result<()> {
    let Some(repo_id) = super::repos::repo_id(conn, repo)? else {
        return Ok(());
    };
    let digest = if reference.contains(':') {
        Some(reference.to_string())
    } else {
        super::tags::resolve_tag(conn, repo_id, reference)?
    };
    let Some(digest) = digest else {
        return Ok(());
    };
    conn.prepare_cached(
        "INSERT INTO manifest_pull (repo_id, digest, pulled_at) VALUES (?1, ?2, ?3)
         ON CONFLICT (repo_id, digest) DO UPDATE SET pulled_at = max(pulled_at, excluded.pulled_at)",
    )?
    .execute(params![repo_id, digest, at])?;
    Ok(())
}

/// Forget pull times of manifests that are gone and check times of tags
/// that are gone (GC deleted or evicted them).
pub fn delete_stale_cache_rows(conn: &Connection) -> Result<usize> {
    let pulls = conn
        .prepare_cached(
            "DELETE FROM manifest_pull WHERE NOT EXISTS (SELECT 1 FROM manifest m
                 WHERE m.repo_id = manifest_pull.repo_id AND m.digest = manifest_pull.digest)",
        )?
        .execute([])?;
    let tags = conn
        .prepare_cached(
            "DELETE FROM cached_tag WHERE NOT EXISTS (SELECT 1 FROM tag t
                 WHERE t.repo_id = cached_tag.repo_id AND t.name = cached_tag.name)",
        )?
        .execute([])?;
    Ok(pulls + tags)
}

/// Whether any cached repository lives under the namespace `name` (its
/// upstream may have been deleted: that content stays read-only).
pub fn is_cached_namespace(conn: &Connection, name: &str) -> Result<bool> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM cached_repo WHERE upstream = ?1 LIMIT 1")?
        .query_row([name], |_| Ok(()))
        .optional()?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::Db;

    #[test]
    fn add_list_count_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = Db::open(&dir.path().join("soute.db"), 2).expect("open");
        let mut u = UpstreamRow {
            username: Some("me".into()),
            password: Some("secret".into()),
            ..UpstreamRow::new("docker.io", "https://registry-1.docker.io")
        };
        assert!(db.write(|tx| add_upstream(tx, &u)).expect("add"));
        assert!(
            !db.write(|tx| add_upstream(tx, &u)).expect("again"),
            "the name is taken"
        );
        db.write(|tx| count(tx, "docker.io", 1, 2, 30, 40))
            .expect("count");
        db.write(|tx| set_last_error(tx, "docker.io", "refused"))
            .expect("error");
        let listed = db.read(upstreams).expect("list");
        u.hits = 1;
        u.misses = 2;
        u.bytes_served = 30;
        u.bytes_fetched = 40;
        u.last_error = Some("refused".into());
        u.last_error_at = listed[0].last_error_at;
        assert!(u.last_error_at.is_some());
        assert_eq!(listed, vec![u]);
        assert!(db
            .write(|tx| delete_upstream(tx, "docker.io"))
            .expect("del"));
        assert!(db
            .read(|c| upstream(c, "docker.io"))
            .expect("get")
            .is_none());
    }
}
