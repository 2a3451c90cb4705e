//! cli::upstream: argv of `soute upstream add|list|del` to an
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
        /// `--max-rate`: bytes per second downloaded from it at most.
        max_rate: Option<u64>,
    },
    List,
    Del(String),
}

const USAGE: &str = "soute upstream add NAME URL [--username U --password-stdin] [--ca FILE] [--tag-ttl SECS] [--mirror] [--max-rate BYTES_PER_S] | list [--json] | del NAME";

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
        "--max-rate",
    ];
    if action.as_deref() != Some("add") {
        if let Some(f) = add_only.iter().find(|f| args.has(f)) {
            return Err(usage(format!("{f} goes with `soute upstream add`")));
        }
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
                max_rate: match args.parsed::<u64>("--max-rate", "a number of bytes per second")? {
                    Some(0) => return Err(usage("--max-rate must be at least 1 byte per second")),
                    n => n,
                },
            }
        }
        Some("list") | Some("ls") => UpstreamAction::List,
        Some("del") | Some("rm") => UpstreamAction::Del(name()?),
        Some(other) => return Err(usage(format!("unknown upstream action `{other}`: {USAGE}"))),
        None => return Err(usage(format!("usage: {USAGE}"))),
    })
}
