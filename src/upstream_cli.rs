//! The `soute upstream` command: open the existing data folder, add, list or
//! delete upstreams (`--purge`: with their cache), sync an image into the
//! cache with a progress bar; the password comes from one line of stdin and
//! the CA from the `--ca` file. All of it works while `serve` runs on the
//! folder (it opens the registry as the other operator commands do).
//!
//! It must never print or log a password (`list` says only whether one is
//! set), nor talk to an upstream except through `PullThrough` (sync).

use crate::ops_cli;
use soute::cli::UpstreamAction;
use soute::db::upstreams::{CachePolicy, UpstreamRow};
use soute::registry::{GcPolicy, UpstreamUsage};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

pub fn upstream(action: UpstreamAction, data_dir: &Path, json: bool) -> Res<()> {
    match action {
        UpstreamAction::Add {
            name,
            url,
            username,
            password_stdin,
            ca,
            tag_ttl_secs,
            mirror,
            max_bytes,
            evict_after_secs,
            max_rate,
        } => {
            let password = if password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line)?;
                let pw = line.trim_end_matches(['\n', '\r']).to_string();
                if pw.is_empty() {
                    return Err("--password-stdin read an empty password".into());
                }
                Some(pw)
            } else {
                None
            };
            let ca_pem = match &ca {
                Some(path) => {
                    let pem = std::fs::read_to_string(path)
                        .map_err(|e| format!("reading --ca {}: {e}", path.display()))?;
                    if !pem.contains("-----BEGIN CERTIFICATE-----") {
                        return Err(
                            format!("--ca {}: no PEM certificate in it", path.display()).into()
                        );
                    }
                    Some(pem)
                }
                None => None,
            };
            let registry = ops_cli::open_existing(data_dir, 2, false)?;
            if mirror {
                if let Some(other) = registry.mirror_upstream()? {
                    return Err(format!(
                        "{0} is the mirror already; one upstream at most serves names this \
                         registry lacks (`soute upstream del {0}` first)",
                        other.name
                    )
                    .into());
                }
            }
            let row = UpstreamRow {
                username,
                password,
                ca_pem,
                tag_ttl_secs,
                mirror,
                max_rate,
                ..UpstreamRow::new(&name, &url)
            };
            if !registry.add_upstream(&row)? {
                return Err(format!(
                    "upstream {name} exists; `soute upstream del {name}` first to change it"
                )
                .into());
            }
            let policy = CachePolicy {
                max_bytes,
                evict_after_secs,
            };
            if policy != CachePolicy::default() {
                registry.set_cache_policy(&name, &policy)?;
            }
            println!("upstream {name} added: {url}; pull through HOST/{name}/REPO:TAG");
            if registry.is_cached_namespace(&name)? {
                println!("what {name} cached before it was deleted is its cache again");
            }
            if mirror {
                println!("and, as the mirror, names this registry lacks: HOST/REPO:TAG");
            }
        }
        UpstreamAction::Del(name) => {
            let registry = ops_cli::open_existing(data_dir, 2, false)?;
            if !registry.delete_upstream(&name)? {
                return Err(format!("no upstream {name}").into());
            }
            println!(
                "upstream {name} deleted: nothing more is fetched; what it cached stays, read-only, \
                 until gc evicts it ({} days after its last pull) or `soute upstream del {name} --purge`",
                soute::registry::ORPHAN_EVICT_AFTER_SECS / 86_400
            );
        }
        UpstreamAction::Purge(name) => {
            let registry = ops_cli::open_existing(data_dir, 2, false)?;
            let Some(report) = registry.purge_upstream(&name, &GcPolicy::default())? else {
                return Err(format!("no upstream {name}, and nothing cached from one").into());
            };
            let bytes: u64 = report.evicted.iter().map(|e| e.bytes).sum();
            println!(
                "upstream {name} deleted with its cache: {} image(s) evicted, {} freed",
                report.evicted.len(),
                ops_cli::human(report.freed_bytes.max(bytes))
            );
            for e in &report.evicted {
                println!("  evicted {}", e.what);
            }
        }
        UpstreamAction::Sync {
            repo,
            reference,
            platforms,
        } => crate::sync_cli::sync(data_dir, &repo, &reference, &platforms)?,
        UpstreamAction::List => {
            let registry = ops_cli::open_existing(data_dir, 2, false)?;
            let policies = registry.cache_policies()?;
            let usage = registry.cache_usage()?;
            list(&registry.upstreams()?, &policies, &usage, json)?;
        }
    }
    Ok(())
}

fn list(
    rows: &[UpstreamRow],
    policies: &HashMap<String, CachePolicy>,
    usage: &[UpstreamUsage],
    json: bool,
) -> Res<()> {
    let cached = |name: &str| {
        usage
            .iter()
            .find(|u| u.name == name)
            .map_or(0, |u| u.cached_bytes)
    };
    let policy = |name: &str| policies.get(name).copied().unwrap_or_default();
    // Caches whose upstream was deleted (read-only until evicted).
    let orphans: Vec<&UpstreamUsage> = usage.iter().filter(|u| !u.configured).collect();
    if json {
        let rows: Vec<serde_json::Value> = rows
            .iter()
            .map(|u| {
                serde_json::json!({
                    "name": u.name,
                    "url": u.url,
                    "username": u.username,
                    "password_set": u.password.is_some(),
                    "ca": u.ca_pem.is_some(),
                    "tag_ttl_secs": u.tag_ttl_secs,
                    "mirror": u.mirror,
                    "max_rate": u.max_rate,
                    "hits": u.hits,
                    "misses": u.misses,
                    "bytes_served": u.bytes_served,
                    "bytes_fetched": u.bytes_fetched,
                    // served that did not come from the upstream just then
                    "bytes_served_from_cache": u.bytes_served.saturating_sub(u.bytes_fetched),
                    "cached_bytes": cached(&u.name),
                    "max_bytes": policy(&u.name).max_bytes,
                    "evict_after_secs": policy(&u.name).evict_after_secs,
                    "last_error": u.last_error,
                    "last_error_at": u.last_error_at,
                })
            })
            .chain(orphans.iter().map(|u| {
                serde_json::json!({
                    "name": u.name,
                    "deleted": true,
                    "cached_bytes": u.cached_bytes,
                })
            }))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let w = rows.iter().map(|u| u.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<w$}  {:<30}  {:>7}  {:>7}  {:>10}  {:>10}  {:>10}  {:>21}  {:>8}  {:>10}  LAST ERROR",
        "NAME",
        "URL",
        "HITS",
        "MISSES",
        "SERVED",
        "FROM CACHE",
        "FETCHED",
        "CACHED/MAX",
        "EVICT",
        "MAX RATE"
    );
    for u in rows {
        let error = match (&u.last_error, u.last_error_at) {
            (Some(e), Some(at)) => format!("{} ({e})", soute::clock::rfc3339(at)),
            (Some(e), None) => e.clone(),
            _ => "-".into(),
        };
        let p = policy(&u.name);
        let space = format!(
            "{}/{}",
            ops_cli::human(cached(&u.name)),
            p.max_bytes.map_or("-".into(), ops_cli::human)
        );
        let evict = p.evict_after_secs.map_or("-".into(), |s| format!("{s}s"));
        let rate = u.max_rate.map_or("-".into(), |r| format!("{r}/s"));
        println!(
            "{:<w$}  {:<30}  {:>7}  {:>7}  {:>10}  {:>10}  {:>10}  {space:>21}  {evict:>8}  {rate:>10}  {error}",
            u.name,
            u.url,
            u.hits,
            u.misses,
            ops_cli::human(u.bytes_served),
            ops_cli::human(u.bytes_served.saturating_sub(u.bytes_fetched)),
            ops_cli::human(u.bytes_fetched)
        );
    }
    for o in orphans {
        println!(
            "{}: deleted upstream; {} cached, read-only until gc evicts it or `soute upstream del {} --purge`",
            o.name,
            ops_cli::human(o.cached_bytes),
            o.name
        );
    }
    Ok(())
}
