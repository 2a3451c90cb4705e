//! The `soute upstream` command: open the existing data folder, add, list or
//! delete upstreams; the password comes from one line of stdin and the CA
//! from the `--ca` file.
//!
//! It must never print or log a password (`list` says only whether one is
//! set), nor talk to an upstream (the server does, when a client pulls).

use crate::ops_cli;
use soute::cli::UpstreamAction;
use soute::db::upstreams::UpstreamRow;
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
            println!("upstream {name} added: {url}; pull through HOST/{name}/REPO:TAG");
            if mirror {
                println!("and, as the mirror, names this registry lacks: HOST/REPO:TAG");
            }
        }
        UpstreamAction::Del(name) => {
            let registry = ops_cli::open_existing(data_dir, 2, false)?;
            if !registry.delete_upstream(&name)? {
                return Err(format!("no upstream {name}").into());
            }
            println!("upstream {name} deleted (what it cached stays, as local repositories)");
        }
        UpstreamAction::List => {
            let registry = ops_cli::open_existing(data_dir, 2, false)?;
            list(&registry.upstreams()?, json)?;
        }
    }
    Ok(())
}

fn list(rows: &[UpstreamRow], json: bool) -> Res<()> {
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
                    "last_error": u.last_error,
                    "last_error_at": u.last_error_at,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    let w = rows.iter().map(|u| u.name.len()).max().unwrap_or(4).max(4);
    println!(
        "{:<w$}  {:<30}  {:>10}  {:>7}  {:>7}  {:>12}  {:>12}  LAST ERROR",
        "NAME", "URL", "MAX RATE", "HITS", "MISSES", "SERVED", "FETCHED"
    );
    for u in rows {
        let error = match (&u.last_error, u.last_error_at) {
            (Some(e), Some(at)) => format!("{} ({e})", soute::clock::rfc3339(at)),
            (Some(e), None) => e.clone(),
            _ => "-".into(),
        };
        let rate = u.max_rate.map_or("-".into(), |r| format!("{r}/s"));
        println!(
            "{:<w$}  {:<30}  {rate:>10}  {:>7}  {:>7}  {:>12}  {:>12}  {error}",
            u.name, u.url, u.hits, u.misses, u.bytes_served, u.bytes_fetched
        );
    }
    Ok(())
}
