//! What the web UI shows, read from the registry: repositories with their
//! space (du's exact unique/shared accounting), one page of a repository's
//! tags with each platform's own digest and size, and an image: per platform
//! its layers (size, media type, how many other manifests use each), its
//! config's run settings and history, annotations and referrers.
//!
//! It must never write, nor trust a stored manifest or config to be
//! well-formed (a field of the wrong type is shown as absent), nor read more
//! than [`MAX_CONFIG_BYTES`] of a config blob.

use super::Registry;
use crate::db::browse::{self, RepoRow};
use crate::db::{blobs, manifests, repos, tag_history};
use crate::error::{Code, Error, Result};
use crate::oci::{Digest, Reference, RepoName};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;

/// How long the repositories page reuses its space figures while the tables
/// they come from look unchanged ([`browse::space_key`]).
const SPACE_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(10);

/// The last [`browse::space_index`] and the key it was computed at.
pub(crate) struct SpaceCache {
    key: [i64; 5],
    at: std::time::Instant,
    index: Arc<browse::SpaceIndex>,
}

/// The most bytes of a config blob the image page reads.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// One repository of the repositories page.
#[derive(Debug, Clone)]
pub struct RepoSummary {
    pub row: RepoRow,
    pub logical_bytes: u64,
    pub unique_bytes: u64,
    pub shared_bytes: u64,
}

/// One platform of a tag (an index's child, or the image itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformSize {
    /// `os/arch[/variant]`, or `unknown`.
    pub platform: String,
    pub digest: String,
    /// Its manifest, config and layers, in bytes.
    pub size: u64,
}

/// One tag of a repository page.
#[derive(Debug, Clone)]
pub struct TagView {
    pub name: String,
    pub digest: String,
    pub media_type: String,
    /// Distinct bytes the tag reaches (manifests, configs, layers).
    pub size: u64,
    pub is_index: bool,
    pub platforms: Vec<PlatformSize>,
    pub updated_at: i64,
    pub pushed_by: Option<String>,
    /// `created` of the image's config (an index: its first platform's).
    pub created: Option<i64>,
    /// When a client last pulled it (the pull log: cached repositories only).
    pub last_pulled: Option<i64>,
    /// The config blob `created` was read from.
    config_digest: Option<String>,
}

/// One layer of an image.
#[derive(Debug, Clone)]
pub struct LayerView {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    /// Other manifests referencing the same blob, in repositories the
    /// viewer may pull (never counting the others).
    pub others: u64,
}

/// The run settings and history of an image's config.
#[derive(Debug, Clone, Default)]
pub struct ConfigView {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub env: Vec<String>,
    pub labels: Vec<(String, String)>,
    pub ports: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub history: Vec<String>,
}

/// One platform's image.
#[derive(Debug, Clone)]
pub struct PlatformImage {
    pub size: PlatformSize,
    pub media_type: String,
    pub config_digest: Option<String>,
    pub config_size: u64,
    pub layers: Vec<LayerView>,
    pub config: Option<ConfigView>,
    pub annotations: Vec<(String, String)>,
}

/// A manifest whose subject is the image.
#[derive(Debug, Clone)]
pub struct ReferrerView {
    pub artifact_type: String,
    pub digest: String,
    pub size: u64,
}

/// The image page.
#[derive(Debug, Clone)]
pub struct ImageView {
    pub digest: String,
    pub media_type: String,
    pub size: u64,
    pub created_at: Option<i64>,
    pub tags: Vec<String>,
    pub annotations: Vec<(String, String)>,
    pub platforms: Vec<PlatformImage>,
    pub referrers: Vec<ReferrerView>,
}

fn unknown_repo(repo: &RepoName) -> Error {
    Error::client(Code::NameUnknown, format!("repository {repo} is not known"))
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => Vec::new(),
    }
}

fn pairs(v: &Value) -> Vec<(String, String)> {
    let Some(map) = v.as_object() else {
        return Vec::new();
    };
    map.iter()
        .map(|(k, v)| {
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            (k.clone(), text)
        })
        .collect()
}

fn platform_of(p: &Value) -> String {
    let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
    let (os, arch, variant) = (field("os"), field("architecture"), field("variant"));
    match (os.is_empty() && arch.is_empty(), variant.is_empty()) {
        (true, _) => "unknown".to_string(),
        (false, true) => format!("{os}/{arch}"),
        (false, false) => format!("{os}/{arch}/{variant}"),
    }
}

/// (digest, size) of every descriptor under `key` of a manifest.
fn descriptors(m: &Value, key: &str) -> Vec<(String, String, u64)> {
    let list: Vec<&Value> = match m.get(key) {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => Vec::new(),
    };
    list.into_iter()
        .filter_map(|d| {
            let digest = d.get("digest")?.as_str()?.to_string();
            let media = d
                .get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            Some((
                digest,
                media,
                d.get("size").and_then(Value::as_u64).unwrap_or(0),
            ))
        })
        .collect()
}

/// A manifest's blobs (config and layers) and its own size.
struct Parsed {
    media_type: String,
    body_len: u64,
    json: Value,
}

fn load(c: &rusqlite::Connection, repo_id: i64, digest: &str) -> Result<Option<Parsed>> {
    Ok(manifests::manifest(c, repo_id, digest)?.map(|m| Parsed {
        body_len: m.body.len() as u64,
        json: serde_json::from_slice(&m.body).unwrap_or(Value::Null),
        media_type: m.media_type,
    }))
}

impl Parsed {
    fn is_index(&self) -> bool {
        self.json.get("manifests").is_some_and(Value::is_array)
    }

    /// Config and layer descriptors.
    fn blobs(&self) -> Vec<(String, String, u64)> {
        let mut all = descriptors(&self.json, "config");
        all.extend(descriptors(&self.json, "layers"));
        all
    }
}

impl Registry {
    /// Every repository with a manifest that `visible` accepts (by name),
    /// with du's space accounting (`db::browse::space_index`: the same
    /// figures, without the GC plan) computed over those repositories only:
    /// a blob is "unique" when no other visible repository holds it, so the
    /// figures say nothing about repositories the viewer cannot see.
    pub fn repo_summaries(&self, visible: &dyn Fn(&str) -> bool) -> Result<Vec<RepoSummary>> {
        let (rows, index) = self.db.read_consistent(|tx| {
            let key = browse::space_key(tx)?;
            let mut cache = self.space_cache.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = cache
                .as_ref()
                .is_some_and(|c| c.key == key && c.at.elapsed() < SPACE_CACHE_TTL);
            if !fresh {
                *cache = Some(SpaceCache {
                    key,
                    at: std::time::Instant::now(),
                    index: Arc::new(browse::space_index(tx)?),
                });
            }
            let index = cache.as_ref().map(|c| c.index.clone()).unwrap_or_default();
            Ok((browse::repo_rows(tx)?, index))
        })?;
        let shown: HashSet<&str> = rows
            .iter()
            .map(|r| r.name.as_str())
            .filter(|n| visible(n))
            .collect();
        let marks: Vec<bool> = index
            .repos
            .iter()
            .map(|n| shown.contains(n.as_str()))
            .collect();
        let space: HashMap<&str, browse::RepoSpace> = index
            .repos
            .iter()
            .map(String::as_str)
            .zip(index.space(&marks))
            .collect();
        Ok(rows
            .iter()
            .filter(|r| shown.contains(r.name.as_str()))
            .map(|row| {
                let s = space.get(row.name.as_str()).copied().unwrap_or_default();
                RepoSummary {
                    logical_bytes: s.logical_bytes,
                    unique_bytes: s.unique_bytes,
                    shared_bytes: s.shared_bytes,
                    row: row.clone(),
                }
            })
            .collect())
    }

    /// One page of `repo`'s tags (by name, `offset` in, at most `limit`)
    /// and how many tags it has.
    pub fn tag_views(
        &self,
        repo: &RepoName,
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<TagView>, u64)> {
        self.db
            .read(|c| {
                let id = repos::repo_id(c, repo.as_str())?.ok_or_else(|| unknown_repo(repo))?;
                let total = browse::tag_count(c, id)?;
                let mut out = Vec::new();
                for t in browse::tag_rows(c, id, offset, limit)? {
                    let Some(top) = load(c, id, &t.digest)? else {
                        continue;
                    };
                    let mut seen: HashSet<String> = HashSet::new();
                    let mut size = top.body_len;
                    let mut platforms = Vec::new();
                    let mut config_digest = None;
                    let is_index = top.is_index();
                    if is_index {
                        let list = top.json["manifests"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        for child in list {
                            let Some(d) = child.get("digest").and_then(Value::as_str) else {
                                continue;
                            };
                            let Some(m) = load(c, id, d)? else {
                                continue;
                            };
                            if config_digest.is_none() {
                                config_digest = descriptors(&m.json, "config").pop().map(|c| c.0);
                            }
                            size += m.body_len;
                            let mut own = m.body_len;
                            for (b, _, s) in m.blobs() {
                                own += s;
                                if seen.insert(b) {
                                    size += s;
                                }
                            }
                            platforms.push(PlatformSize {
                                platform: child
                                    .get("platform")
                                    .map_or("unknown".into(), platform_of),
                                digest: d.to_string(),
                                size: own,
                            });
                        }
                    } else {
                        config_digest = descriptors(&top.json, "config").pop().map(|c| c.0);
                        for (b, _, s) in top.blobs() {
                            if seen.insert(b) {
                                size += s;
                            }
                        }
                    }
                    let last_pulled = browse::last_pulled(c, id, &t.digest)?;
                    out.push(TagView {
                        pushed_by: tag_history::last_change(c, id, &t.name)?
                            .map(|(actor, _)| actor),
                        name: t.name,
                        digest: t.digest,
                        media_type: top.media_type,
                        size,
                        is_index,
                        platforms,
                        updated_at: t.updated_at,
                        created: None,
                        last_pulled,
                        config_digest,
                    });
                }
                Ok((out, total))
            })
            .map(|(mut out, total)| {
                for t in &mut out {
                    t.created = t
                        .config_digest
                        .as_deref()
                        .and_then(|d| self.config_json(repo, d))
                        .and_then(|cfg| {
                            cfg.get("created")
                                .and_then(Value::as_str)
                                .and_then(crate::cli::parse_rfc3339)
                        });
                }
                (out, total)
            })
    }

    /// The image page of `repo` at `reference`; a layer's "others" count
    /// only manifests of repositories `visible` accepts (by name).
    pub fn image_view(
        &self,
        repo: &RepoName,
        reference: &Reference,
        visible: &dyn Fn(&str) -> bool,
    ) -> Result<ImageView> {
        let unknown = || super::manifests::manifest_unknown(repo, reference);
        let (digest, mut view, children) = self.db.read(|c| {
            let id = repos::repo_id(c, repo.as_str())?.ok_or_else(unknown)?;
            let digest = match reference {
                Reference::Digest(d) => d.to_string(),
                Reference::Tag(t) => {
                    crate::db::tags::resolve_tag(c, id, t.as_str())?.ok_or_else(unknown)?
                }
            };
            let top = load(c, id, &digest)?.ok_or_else(unknown)?;
            let mut children = Vec::new();
            if top.is_index() {
                for child in top.json["manifests"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    if let Some(d) = child.get("digest").and_then(Value::as_str) {
                        let p = child.get("platform").map_or("unknown".into(), platform_of);
                        children.push((d.to_string(), p));
                    }
                }
            }
            let referrers = manifests::referrers(c, id, &digest, None, 0, 200)?
                .into_iter()
                .map(|r| ReferrerView {
                    artifact_type: r
                        .artifact_type
                        .clone()
                        .unwrap_or_else(|| r.media_type.clone()),
                    digest: r.digest,
                    size: r.size,
                })
                .collect();
            let view = ImageView {
                digest: digest.clone(),
                media_type: top.media_type.clone(),
                size: top.body_len,
                created_at: browse::manifest_created(c, id, &digest)?,
                tags: browse::tags_of(c, id, &digest)?,
                annotations: pairs(top.json.get("annotations").unwrap_or(&Value::Null)),
                platforms: Vec::new(),
                referrers,
            };
            if children.is_empty() {
                children.push((digest.clone(), String::new()));
            }
            Ok((digest, view, children))
        })?;
        // Distinct bytes: a blob two platforms share counts once.
        let mut seen: HashSet<String> = HashSet::new();
        let mut total = if children.len() == 1 && children[0].0 == digest {
            0
        } else {
            view.size
        };
        for (d, platform) in children {
            let Some(p) = self.platform_image(repo, &d, platform, visible)? else {
                continue;
            };
            let mut add = p.size.size;
            let config = p.config_digest.iter().map(|c| (c, p.config_size));
            for (b, s) in p.layers.iter().map(|l| (&l.digest, l.size)).chain(config) {
                if !seen.insert(b.clone()) {
                    add = add.saturating_sub(s);
                }
            }
            total += add;
            view.platforms.push(p);
        }
        view.size = total;
        Ok(view)
    }

    /// One image manifest with its layers and config; `platform` empty: from
    /// the config.
    fn platform_image(
        &self,
        repo: &RepoName,
        digest: &str,
        platform: String,
        visible: &dyn Fn(&str) -> bool,
    ) -> Result<Option<PlatformImage>> {
        let found = self.db.read(|c| {
            let Some(id) = repos::repo_id(c, repo.as_str())? else {
                return Ok(None);
            };
            let Some(m) = load(c, id, digest)? else {
                return Ok(None);
            };
            let mut layers = Vec::new();
            let mut size = m.body_len;
            for (d, media, s) in descriptors(&m.json, "layers") {
                size += s;
                let users: u64 = browse::blob_users(c, &d)?
                    .into_iter()
                    .filter(|(name, _)| name == repo.as_str() || visible(name))
                    .map(|(_, n)| n)
                    .sum();
                let stored = blobs::blob_size(c, &d)?;
                layers.push(LayerView {
                    others: users.saturating_sub(1),
                    size: stored.unwrap_or(s),
                    digest: d,
                    media_type: media,
                });
            }
            let config = descriptors(&m.json, "config").into_iter().next();
            if let Some((_, _, s)) = &config {
                size += s;
            }
            let config_size = config.as_ref().map_or(0, |c| c.2);
            Ok(Some((m, layers, size, config.map(|c| c.0), config_size)))
        })?;
        let Some((m, layers, size, config_digest, config_size)) = found else {
            return Ok(None);
        };
        let config_json = match &config_digest {
            Some(d) => self.config_json(repo, d),
            None => None,
        };
        let platform = if platform.is_empty() {
            config_json.as_ref().map_or("unknown".into(), platform_of)
        } else {
            platform
        };
        Ok(Some(PlatformImage {
            size: PlatformSize {
                platform,
                digest: digest.to_string(),
                size,
            },
            media_type: m.media_type,
            config_digest,
            config_size,
            layers,
            config: config_json.as_ref().map(config_view),
            annotations: pairs(m.json.get("annotations").unwrap_or(&Value::Null)),
        }))
    }

    /// The config blob as JSON, if stored, at most [`MAX_CONFIG_BYTES`] and valid.
    pub(super) fn config_json(&self, repo: &RepoName, digest: &str) -> Option<Value> {
        let d = Digest::parse(digest).ok()?;
        let (file, _) = self.open_blob(repo, &d).ok()?;
        let mut bytes = Vec::new();
        file.take(MAX_CONFIG_BYTES).read_to_end(&mut bytes).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

fn config_view(cfg: &Value) -> ConfigView {
    let run = cfg.get("config").unwrap_or(&Value::Null);
    let text = |k: &str| run.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    let history = match cfg.get("history") {
        Some(Value::Array(h)) => h
            .iter()
            .filter_map(|e| {
                e.get("created_by")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .collect(),
        _ => Vec::new(),
    };
    ConfigView {
        entrypoint: strings(run.get("Entrypoint").unwrap_or(&Value::Null)),
        cmd: strings(run.get("Cmd").unwrap_or(&Value::Null)),
        env: strings(run.get("Env").unwrap_or(&Value::Null)),
        labels: pairs(run.get("Labels").unwrap_or(&Value::Null)),
        ports: run
            .get("ExposedPorts")
            .and_then(Value::as_object)
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default(),
        user: text("User"),
        workdir: text("WorkingDir"),
        history,
    }
}
