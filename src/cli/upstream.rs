//! cli::upstream: argv of `soute upstream add|list|del|sync` to an
//! `UpstreamAction`; the name and URL are checked here (`upstream::names`),
//! so a bad one is a usage error saying what is wrong.
//!
//! It must never do I/O (the password is read from stdin and the CA file by
//! the binary) nor open a registry.

use super::spec::{usage, Args, UsageError};
use crate::upstream::names::{parse_name, parse_url};
use std::path::PathBuf;

/// The default `--tag-ttl`: a cached tag is checked upstream after 5 minutes.
pub const DEFAULT_TAG_TTL_SECS: u64 = 300;

#[derive(Debug, PartialEq)]
pub enum UpstreamAction {
    Add {
        name: String,
        url: String,
        username: Option<String>,
        /// `--password-stdin`: read one line of stdin as the password.
        password_stdin: bool,
        ca: Option<PathBuf>,
        tag_ttl_secs: u64,
        mirror: bool,
        /// `--max-bytes`: evict least recently pulled first beyond this.
        max_bytes: Option<u64>,
        /// `--evict-after`: evict what was not pulled for this long.
        evict_after_secs: Option<u64>,
        /// `--max-rate`: bytes per second downloaded from it at most.
        max_rate: Option<u64>,
    },
    List,
    Del(String),
    /// `del NAME --purge`: also evict everything it cached, now.
    Purge(String),
    /// `sync NAME/REPO:TAG`: fetch it into the cache now.
    Sync {
        /// The repository as clients name it (`docker.io/library/busybox`).
        repo: String,
        /// A tag or a digest.
        reference: String,
        /// `--platform OS/ARCH[/VARIANT]`, or `all`; empty: this machine's.
        platforms: Vec<String>,
    },
}

const USAGE: &str = "soute upstream add NAME URL [--username U --password-stdin] [--ca FILE] [--tag-ttl SECS] [--mirror] [--max-bytes SIZE] [--evict-after SECS|7d] [--max-rate BYTES_PER_S] | list [--json] | del NAME [--purge] | sync NAME/REPO:TAG [--platform OS/ARCH]...";

/// `--evict-after`: seconds, or a number with s, m, h or d.
pub fn parse_age(s: &str) -> Result<u64, String> {
    let (number, unit) = match s.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => (&s[..i], &s[i..]),
        None => (s, ""),
    };
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "{s:?}: expected seconds, or a number with s, m, h or d (7d)"
            ))
        }
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("{s:?}: expected seconds, or a number with s, m, h or d (7d)"))
}

pub fn upstream_action(
    args: &Args,
    ops: &mut impl Iterator<Item = String>,
) -> Result<UpstreamAction, UsageError> {
    let action = ops.next();
    let add_only = [
        "--username",
        "--password-stdin",
        "--ca",
        "--tag-ttl",
        "--mirror",
        "--max-bytes",
        "--evict-after",
        "--max-rate",
    ];
    if action.as_deref() != Some("add") {
        if let Some(f) = add_only.iter().find(|f| args.has(f)) {
            return Err(usage(format!("{f} goes with `soute upstream add`")));
        }
    }
    if action.as_deref() != Some("sync") && args.has("--platform") {
        return Err(usage("--platform goes with `soute upstream sync`"));
    }
    if !matches!(action.as_deref(), Some("del" | "rm")) && args.has("--purge") {
        return Err(usage("--purge goes with `soute upstream del`"));
    }
    let mut name = || -> Result<String, UsageError> {
        let n = ops
            .next()
            .ok_or_else(|| usage(format!("an upstream name is required: {USAGE}")))?;
        parse_name(&n).map_err(usage)
    };
    Ok(match action.as_deref() {
        Some("add") => {
            let name = name()?;
            let url = ops
                .next()
                .ok_or_else(|| usage(format!("the upstream's URL is required: {USAGE}")))?;
            let url = parse_url(&url).map_err(usage)?;
            let username = args.value("--username").map(str::to_string);
            let password_stdin = args.has("--password-stdin");
            if username.is_some() != password_stdin {
                return Err(usage(
                    "--username and --password-stdin go together: echo \"$PASSWORD\" | soute upstream add NAME URL --username U --password-stdin",
                ));
            }
            UpstreamAction::Add {
                name,
                url,
                username,
                password_stdin,
                ca: args.value("--ca").map(PathBuf::from),
                tag_ttl_secs: args
                    .parsed("--tag-ttl", "a number of seconds")?
                    .unwrap_or(DEFAULT_TAG_TTL_SECS),
                mirror: args.has("--mirror"),
                max_bytes: args
                    .value("--max-bytes")
                    .map(|v| {
                        crate::storage::space::parse_size(v)
                            .map_err(|e| usage(format!("--max-bytes: {e}")))
                    })
                    .transpose()?,
                evict_after_secs: args
                    .value("--evict-after")
                    .map(|v| parse_age(v).map_err(|e| usage(format!("--evict-after: {e}"))))
                    .transpose()?,
                max_rate: match args.parsed::<u64>("--max-rate", "a number of bytes per second")? {
                    Some(0) => return Err(usage("--max-rate must be at least 1 byte per second")),
                    n => n,
                },
            }
        }
        Some("list") | Some("ls") => UpstreamAction::List,
        Some("del") | Some("rm") if args.has("--purge") => UpstreamAction::Purge(name()?),
        Some("del") | Some("rm") => UpstreamAction::Del(name()?),
        Some("sync") => sync_action(args, ops)?,
        Some(other) => return Err(usage(format!("unknown upstream action `{other}`: {USAGE}"))),
        None => return Err(usage(format!("usage: {USAGE}"))),
    })
}

/// `sync NAME/REPO:TAG` (or `@DIGEST`) `[--platform P]...`.
fn sync_action(
    args: &Args,
    ops: &mut impl Iterator<Item = String>,
) -> Result<UpstreamAction, UsageError> {
    let what = ops
        .next()
        .ok_or_else(|| usage(format!("what to sync is required: {USAGE}")))?;
    let (repo, reference) = match what.split_once('@') {
        Some((repo, digest)) => (repo, digest),
        None => match what.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, tag),
            _ => (what.as_str(), "latest"),
        },
    };
    crate::oci::RepoName::parse(repo).map_err(|e| usage(format!("{what}: {e}")))?;
    crate::oci::Reference::parse(reference).map_err(|e| usage(format!("{what}: {e}")))?;
    let platforms: Vec<String> = args
        .values("--platform")
        .iter()
        .map(|p| p.to_string())
        .collect();
    for p in &platforms {
        let parts = p.split('/').count();
        if (p != "all" && !(2..=3).contains(&parts)) || p.split('/').any(str::is_empty) {
            return Err(usage(format!(
                "--platform {p:?}: expected OS/ARCH or OS/ARCH/VARIANT (linux/arm64, linux/arm/v7) or all"
            )));
        }
    }
    Ok(UpstreamAction::Sync {
        repo: repo.to_string(),
        reference: reference.to_string(),
        platforms,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_age;

    #[test]
    fn ages() {
        for (s, want) in [
            ("0", Some(0)),
            ("90", Some(90)),
            ("90s", Some(90)),
            ("15m", Some(900)),
            ("2h", Some(7200)),
            ("7d", Some(604_800)),
            ("", None),
            ("d", None),
            ("7w", None),
            ("-1", None),
            ("1.5d", None),
            ("99999999999999999999d", None),
        ] {
            assert_eq!(parse_age(s).ok(), want, "{s:?}");
        }
    }
}
