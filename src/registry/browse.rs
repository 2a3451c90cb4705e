//! What the web UI shows, read from the registry: repositories with their
//! space (du's exact unique/shared accounting), one page of a repository's
//! tags with each platform's own digest and size, and an image: per platform
//! its layers (size, media type, how many other manifests use each), its
//! config's run settings and history, annotations and referrers. The tags
//! page is `browse_tags`.
//!
//! It must never write, nor trust a stored manifest or config to be
//! well-formed (a field of the wrong type is shown as absent), nor read more
//! than [`MAX_CONFIG_BYTES`] of a config blob or more than `browse_limits`
//! allows one page, nor parse JSON while it holds a database connection.

use super::browse_limits::{
    capped, config_view, cut, distinct_children, PageBudget, MAX_LAYERS_SHOWN, MAX_PLATFORMS_SHOWN,
    MAX_TAGS_SHOWN,
};
use super::Registry;
use crate::db::browse::{self, RepoRow};
use crate::db::{blobs, manifests, repos};
use crate::error::{Code, Error, Result};
use crate::oci::{Digest, Reference, RepoName};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::sync::Arc;

/// The last [`browse::space_index`] and the key it was computed at: reused
/// until the key moves (a change to tags, manifests, repositories, blobs or
/// links, by any process), so the repositories page recomputes the figures
/// once per change, not once per view.
pub(crate) struct SpaceCache {
    key: [i64; 2],
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
    /// Distinct children not listed (over [`MAX_PLATFORMS_SHOWN`] or the
    /// page's child budget); `size` then counts only the listed ones.
    pub more_platforms: usize,
    pub updated_at: i64,
    pub pushed_by: Option<String>,
    /// `created` of the image's config (an index: its first platform's).
    pub created: Option<i64>,
    /// When a client last pulled it (the pull log: cached repositories only).
    pub last_pulled: Option<i64>,
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
    /// Layers not listed (over [`MAX_LAYERS_SHOWN`] or the page's rows).
    pub more_layers: usize,
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
    /// Tags on this digest beyond the [`MAX_TAGS_SHOWN`] listed.
    pub more_tags: usize,
    pub annotations: Vec<(String, String)>,
    pub platforms: Vec<PlatformImage>,
    /// Distinct children not shown (over [`MAX_PLATFORMS_SHOWN`] or the budget).
    pub more_platforms: usize,
    /// Entries of the index (duplicates included); 0 for an image.
    pub entries: usize,
    /// Some config or annotation text was cut (`MAX_TEXT_BYTES_PER_PAGE`).
    pub text_cut: bool,
    pub referrers: Vec<ReferrerView>,
}

/// One child as the image page read it.
enum Loaded {
    Image(Box<PlatformImage>),
    /// Not stored in this repository.
    Missing,
    /// Not read: the page's child budget is spent.
    Unread,
}

pub(super) fn unknown_repo(repo: &RepoName) -> Error {
    Error::client(Code::NameUnknown, format!("repository {repo} is not known"))
}

pub(super) fn pairs(v: &Value) -> Vec<(String, String)> {
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

pub(super) fn platform_of(p: &Value) -> String {
    let field = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
    let (os, arch, variant) = (field("os"), field("architecture"), field("variant"));
    match (os.is_empty() && arch.is_empty(), variant.is_empty()) {
        (true, _) => "unknown".to_string(),
        (false, true) => format!("{os}/{arch}"),
        (false, false) => format!("{os}/{arch}/{variant}"),
    }
}

/// (digest, size) of every descriptor under `key` of a manifest.
pub(super) fn descriptors(m: &Value, key: &str) -> Vec<(String, String, u64)> {
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
pub(super) struct Parsed {
    pub(super) media_type: String,
    pub(super) body_len: u64,
    pub(super) json: Value,
}

/// A stored manifest's media type and body, copied out of the connection
/// (parsed after it is released: [`parse`]).
pub(super) fn fetch(
    c: &rusqlite::Connection,
    repo_id: i64,
    digest: &str,
) -> Result<Option<(String, Vec<u8>)>> {
    Ok(manifests::manifest(c, repo_id, digest)?.map(|m| (m.media_type, m.body)))
}

pub(super) fn parse((media_type, body): (String, Vec<u8>)) -> Parsed {
    Parsed {
        body_len: body.len() as u64,
        json: serde_json::from_slice(&body).unwrap_or(Value::Null),
        media_type,
    }
}

impl Parsed {
    pub(super) fn is_index(&self) -> bool {
        self.json.get("manifests").is_some_and(Value::is_array)
    }

    /// Config and layer descriptors.
    pub(super) fn blobs(&self) -> Vec<(String, String, u64)> {
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
            if cache.as_ref().is_none_or(|c| c.key != key) {
                *cache = Some(SpaceCache {
                    key,
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

    /// The image page of `repo` at `reference`, bounded like
    /// [`Registry::tag_views`] plus [`MAX_LAYERS_SHOWN`] layers per platform,
    /// `MAX_CONFIG_BYTES_PER_PAGE` of configs and
    /// `MAX_TEXT_BYTES_PER_PAGE` of rendered config and annotation text.
    /// A layer's "others" count only manifests of repositories `visible`
    /// accepts (by name).
    pub fn image_view(
        &self,
        repo: &RepoName,
        reference: &Reference,
        visible: &dyn Fn(&str) -> bool,
    ) -> Result<ImageView> {
        let unknown = || super::manifests::manifest_unknown(repo, reference);
        let (id, digest, top, referrers, created_at, mut tags) = self.db.read(|c| {
            let id = repos::repo_id(c, repo.as_str())?.ok_or_else(unknown)?;
            let digest = match reference {
                Reference::Digest(d) => d.to_string(),
                Reference::Tag(t) => {
                    crate::db::tags::resolve_tag(c, id, t.as_str())?.ok_or_else(unknown)?
                }
            };
            let top = fetch(c, id, &digest)?.ok_or_else(unknown)?;
            let referrers = manifests::referrers(c, id, &digest, None, 0, 200)?;
            let created = browse::manifest_created(c, id, &digest)?;
            let tags = browse::tags_of(c, id, &digest)?;
            Ok((id, digest, top, referrers, created, tags))
        })?;
        let top = parse(top);
        let mut budget = PageBudget::default();
        let more_tags = tags.len().saturating_sub(MAX_TAGS_SHOWN);
        tags.truncate(MAX_TAGS_SHOWN);
        let (mut children, entries) = if top.is_index() {
            distinct_children(&top.json)
        } else {
            (Vec::new(), 0)
        };
        let single = children.is_empty();
        if single {
            children.push((digest.clone(), String::new()));
        }
        let mut view = ImageView {
            media_type: top.media_type.clone(),
            size: top.body_len,
            created_at,
            tags,
            more_tags,
            annotations: budget.pairs(pairs(top.json.get("annotations").unwrap_or(&Value::Null))),
            platforms: Vec::new(),
            more_platforms: 0,
            entries,
            text_cut: false,
            referrers: referrers
                .into_iter()
                .map(|r| ReferrerView {
                    artifact_type: cut(r.artifact_type.unwrap_or(r.media_type)),
                    digest: r.digest,
                    size: r.size,
                })
                .collect(),
            digest,
        };
        drop(top);
        // Distinct bytes: a blob two platforms share counts once.
        let mut seen: HashSet<String> = HashSet::new();
        let mut total = if single { 0 } else { view.size };
        let mut configs = HashMap::new();
        for (i, (d, platform)) in children.into_iter().enumerate() {
            if i >= MAX_PLATFORMS_SHOWN {
                view.more_platforms += 1;
                continue;
            }
            let p = match self.platform_image(
                repo,
                id,
                &d,
                platform,
                visible,
                &mut budget,
                &mut configs,
            )? {
                Loaded::Image(p) => *p,
                Loaded::Missing => continue,
                Loaded::Unread => {
                    view.more_platforms += 1;
                    continue;
                }
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
        view.text_cut = budget.text_cut;
        Ok(view)
    }

    /// One image manifest with its layers and config; `platform` empty: from
    /// the config. `configs` keeps each config read once per page (uncut;
    /// each use is cut to what is left of the page's text).
    // Eight arguments: the page's state (budget, configs read) and the
    // viewer's filter travel together through one page build.
    #[allow(clippy::too_many_arguments)]
    fn platform_image(
        &self,
        repo: &RepoName,
        id: i64,
        digest: &str,
        platform: String,
        visible: &dyn Fn(&str) -> bool,
        budget: &mut PageBudget,
        configs: &mut HashMap<String, Option<(String, ConfigView)>>,
    ) -> Result<Loaded> {
        let Some(body) = self.db.read(|c| fetch(c, id, digest))? else {
            return Ok(Loaded::Missing);
        };
        if !budget.take_child(body.1.len() as u64) {
            return Ok(Loaded::Unread);
        }
        let m = parse(body);
        let all = descriptors(&m.json, "layers");
        let mut size = m.body_len + all.iter().map(|l| l.2).fold(0u64, u64::saturating_add);
        let shown = all.len().min(MAX_LAYERS_SHOWN).min(budget.layer_rows);
        budget.layer_rows -= shown;
        let more_layers = all.len() - shown;
        let layers = self.db.read(|c| {
            let mut layers = Vec::new();
            for (d, media, s) in all.into_iter().take(shown) {
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
                    media_type: cut(media),
                });
            }
            Ok(layers)
        })?;
        let config = descriptors(&m.json, "config").into_iter().next();
        if let Some((_, _, s)) = &config {
            size = size.saturating_add(*s);
        }
        let config_size = config.as_ref().map_or(0, |c| c.2);
        let config_digest = config.map(|c| c.0);
        let read = match &config_digest {
            Some(d) => configs
                .entry(d.clone())
                .or_insert_with(|| {
                    let json = self.config_json(repo, d, budget)?;
                    Some((platform_of(&json), config_view(&json)))
                })
                .clone(),
            None => None,
        };
        let platform = match (platform.is_empty(), &read) {
            (false, _) => platform,
            (true, Some((p, _))) => p.clone(),
            (true, None) => "unknown".into(),
        };
        Ok(Loaded::Image(Box::new(PlatformImage {
            size: PlatformSize {
                platform,
                digest: digest.to_string(),
                size,
            },
            media_type: m.media_type,
            config_digest,
            config_size,
            layers,
            more_layers,
            config: read.map(|(_, v)| capped(budget, v)),
            annotations: budget.pairs(pairs(m.json.get("annotations").unwrap_or(&Value::Null))),
        })))
    }

    /// The config blob as JSON, if stored, at most [`MAX_CONFIG_BYTES`] (and
    /// what is left of the page's config budget) and valid.
    pub(super) fn config_json(
        &self,
        repo: &RepoName,
        digest: &str,
        budget: &mut PageBudget,
    ) -> Option<Value> {
        let d = Digest::parse(digest).ok()?;
        let max = MAX_CONFIG_BYTES.min(budget.config_bytes);
        if max == 0 {
            return None;
        }
        let (file, _) = self.open_blob(repo, &d).ok()?;
        let mut bytes = Vec::new();
        let read = file.take(max).read_to_end(&mut bytes);
        budget.config_bytes -= (bytes.len() as u64).min(budget.config_bytes);
        read.ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}
