//! `soute upstream sync`: warm the cache ahead of time. The manifest asked
//! for is fetched as a client pull would (through `PullThrough::manifest`);
//! of an index, only the chosen platforms' manifests (by default this
//! machine's, as `docker pull` picks; `all` for every one); then every blob
//! those images reference (`PullThrough::blob`), so the same checks, digest
//! verification and single commit apply as for a pull.
//!
//! It must never fetch a platform that was not chosen, nor anything a
//! client pull of the same image would not fetch.

use super::PullThrough;
use crate::error::{Code, Error, Result};
use crate::oci::manifest::{Kind, Manifest};
use crate::oci::{Digest, Reference, RepoName};
use std::collections::HashSet;

/// What `sync` reports as it goes.
pub enum SyncEvent<'a> {
    /// A manifest is cached (fetched now or before).
    Manifest { what: &'a str, digest: &'a Digest },
    /// The blobs to make local: count and bytes.
    Blobs { count: u64, bytes: u64 },
    /// A blob is local; `fetched` false: it already was.
    Blob {
        digest: &'a Digest,
        bytes: u64,
        fetched: bool,
    },
}

#[derive(Debug, Default)]
pub struct SyncReport {
    /// `REPO@DIGEST (platform)` of each manifest now cached.
    pub manifests: Vec<String>,
    pub blobs: u64,
    pub bytes: u64,
    /// Blobs (and their bytes) that were fetched now, not already cached.
    pub fetched_blobs: u64,
    pub fetched_bytes: u64,
    /// Platforms of the index that were not chosen.
    pub skipped_platforms: Vec<String>,
}

/// The platform `docker pull` on this machine would pick: `linux/ARCH`.
pub fn host_platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    format!("linux/{arch}")
}

/// Whether an index entry's platform (`os/arch[/variant]`) is one of the
/// `wanted` (an entry without a variant in `wanted` matches every variant).
fn chosen(platform: &str, wanted: &[String]) -> bool {
    wanted.iter().any(|w| {
        w == "all"
            || w == platform
            || platform
                .strip_prefix(w.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}

/// `os/arch[/variant]` of each child of an index, by digest (`unknown/unknown`
/// when the index does not say).
fn platforms(body: &[u8]) -> Vec<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let mut out = Vec::new();
    for m in v["manifests"].as_array().into_iter().flatten() {
        let Some(d) = m["digest"].as_str() else {
            continue;
        };
        let p = &m["platform"];
        let mut s = format!(
            "{}/{}",
            p["os"].as_str().unwrap_or("unknown"),
            p["architecture"].as_str().unwrap_or("unknown")
        );
        if let Some(variant) = p["variant"].as_str() {
            s.push('/');
            s.push_str(variant);
        }
        out.push((d.to_string(), s));
    }
    out
}

impl PullThrough {
    /// Fetch `reference` of `repo` (a name in an upstream's namespace) and
    /// what it needs into the cache; `platforms` empty: this machine's.
    pub fn sync(
        &self,
        repo: &RepoName,
        reference: &Reference,
        platforms_wanted: &[String],
        progress: &mut dyn FnMut(SyncEvent<'_>),
    ) -> Result<SyncReport> {
        let wanted = if platforms_wanted.is_empty() {
            vec![host_platform()]
        } else {
            platforms_wanted.to_vec()
        };
        let mut report = SyncReport::default();
        let local = self.manifest(repo, reference, None)?.ok_or_else(|| {
            Error::client(
                Code::NameUnknown,
                format!(
                    "{repo} is in no upstream's namespace: sync NAME/REPO:TAG, where NAME is \
                     an upstream of `soute upstream list`"
                ),
            )
        })?;
        let (digest, media_type, body) = self.registry.get_manifest(&local, reference)?;
        let top = Manifest::parse(&body, Some(&media_type))?;
        let what = format!("{local}@{digest}");
        progress(SyncEvent::Manifest {
            what: &what,
            digest: &digest,
        });
        report.manifests.push(what);
        let mut images = Vec::new();
        match top.kind {
            Kind::Image => images.push(top),
            Kind::Index => {
                for (child, platform) in platforms(&body) {
                    if !chosen(&platform, &wanted) {
                        report.skipped_platforms.push(platform);
                        continue;
                    }
                    let child = Digest::parse(&child)?;
                    let by_digest = Reference::Digest(child.clone());
                    self.manifest(repo, &by_digest, None)?;
                    let (_, media_type, body) = self.registry.get_manifest(&local, &by_digest)?;
                    let what = format!("{local}@{child} ({platform})");
                    progress(SyncEvent::Manifest {
                        what: &what,
                        digest: &child,
                    });
                    report.manifests.push(what);
                    let m = Manifest::parse(&body, Some(&media_type))?;
                    if m.kind == Kind::Image {
                        images.push(m);
                    }
                }
                if images.is_empty() {
                    return Err(Error::client(
                        Code::ManifestUnknown,
                        format!(
                            "{local}@{digest} has no manifest for {}; it has {}",
                            wanted.join(", "),
                            report.skipped_platforms.join(", ")
                        ),
                    ));
                }
            }
        }
        let mut seen = HashSet::new();
        let blobs: Vec<(Digest, u64)> = images
            .iter()
            .flat_map(|m| m.config.iter().chain(m.layers.iter()))
            .filter(|d| !d.foreign && seen.insert(d.digest.clone()))
            .map(|d| (d.digest.clone(), d.size))
            .collect();
        progress(SyncEvent::Blobs {
            count: blobs.len() as u64,
            bytes: blobs.iter().map(|b| b.1).sum(),
        });
        for (digest, size) in &blobs {
            let cached = self.registry.blob_size(&local, digest).is_ok();
            if !cached {
                self.blob(repo, digest, None, false)?;
                report.fetched_blobs += 1;
                report.fetched_bytes += size;
            }
            report.blobs += 1;
            report.bytes += size;
            progress(SyncEvent::Blob {
                digest,
                bytes: *size,
                fetched: !cached,
            });
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn platform_choice() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let table = [
            ("linux/arm64/v8", &["linux/arm64"][..], true),
            ("linux/arm64", &["linux/arm64"][..], true),
            ("linux/arm/v7", &["linux/arm/v6"][..], false),
            ("linux/arm/v7", &["linux/arm"][..], true),
            ("linux/amd64", &["linux/arm64", "linux/amd64"][..], true),
            ("linux/amd64", &["linux/amd"][..], false),
            ("unknown/unknown", &["linux/amd64"][..], false),
            ("unknown/unknown", &["all"][..], true),
        ];
        for (platform, wanted, want) in table {
            assert_eq!(chosen(platform, &w(wanted)), want, "{platform} {wanted:?}");
        }
        assert!(host_platform().starts_with("linux/"));
    }
}
