//! cli: argv to a `Command`. Hand-written help; unknown flags are rejected.
//!
//! It must never do I/O beyond reading its arguments.

use crate::config::{parse_level, parse_listen, parse_tls, Config};
use crate::registry::GcPolicy;
use pico_args::Arguments;
use std::ffi::OsString;
use std::path::PathBuf;

pub const HELP: &str = "\
soute: a private Docker/OCI registry in one binary and one data folder

USAGE:
    soute serve        [--data DIR] [--listen ADDR]... [--hostname NAME]... [--tls auto|off|CERT,KEY]
                       [--no-delete] [--anonymous-pull] [--log-level LEVEL]
                       [--gc-interval SECS] [--gc-grace SECS] [--gc-delete-untagged]
                       [--auth-threads N]
    soute user add|passwd|del|list [NAME] [--data DIR]   (password from a prompt or stdin)
    soute user open    [--data DIR]   (let anyone in again after the last user was deleted)
    soute gc           [--dry-run] [--delete-untagged] [--grace SECS] [--link-grace SECS]
                       [--upload-ttl SECS] [--json] [--data DIR]
    soute backup DEST  [--data DIR]
    soute verify       [--repair] [--json] [--data DIR]
    soute du           [REPO] [--tag TAG] [--grace SECS] [--delete-untagged] [--json] [--data DIR]
    soute check-config [same flags as serve]
    soute version
    soute help

gc, backup, verify and du work while `soute serve` runs on the same folder.
gc removes what nothing needs: blobs no manifest references and no repository
links, older than --grace (default 3600 s); links to blobs nothing in their
repository references, older than --link-grace (default 3600 s: a blob just
uploaded waits that long for its manifest); upload sessions idle for
--upload-ttl (default 86400 s); with --delete-untagged, manifests no tag reaches.
--dry-run lists what would go and why the rest stays. `serve` runs it every
--gc-interval seconds (default 3600, 0: never), first 600 s after start.
backup writes DEST (absolute, outside the data folder, absent or empty): a
database snapshot, the blobs it references (hard links on the same filesystem)
and SHA256SUMS; `soute serve --data DEST` serves it.
verify re-hashes every blob and checks every reference; --repair removes only
orphan files. du shows logical, unique, shared and reclaimable bytes, and with
REPO what deleting it (or --tag TAG) would free.

The data folder defaults to ./soute-data (or REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY).
soute serve listens on port 5000 on every interface, with TLS from its own CA.
Environment (distribution's names): REGISTRY_HTTP_ADDR, REGISTRY_HTTP_TLS_CERTIFICATE,
REGISTRY_HTTP_TLS_KEY, REGISTRY_LOG_LEVEL, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY,
REGISTRY_STORAGE_DELETE_ENABLED, REGISTRY_AUTH_HTPASSWD_REALM, REGISTRY_AUTH_HTPASSWD_PATH;
SOUTE_AUTH_THREADS (as --auth-threads). Flags override the environment.
A registry that has had users stays closed after its last user is deleted
until `soute user open`. --auth-threads (default: one per CPU) sets the
password verifier threads; each holds 19 MiB.
";

#[derive(Debug)]
pub enum Command {
    Serve(Box<Config>),
    CheckConfig(Box<Config>),
    User {
        action: UserAction,
        data_dir: PathBuf,
    },
    Gc {
        data_dir: PathBuf,
        policy: GcPolicy,
        json: bool,
    },
    Backup {
        data_dir: PathBuf,
        dest: PathBuf,
    },
    Verify {
        data_dir: PathBuf,
        repair: bool,
        json: bool,
    },
    Du {
        data_dir: PathBuf,
        repo: Option<String>,
        tag: Option<String>,
        policy: GcPolicy,
        json: bool,
    },
    Version,
    Help,
}

#[derive(Debug, PartialEq)]
pub enum UserAction {
    Add(String),
    Passwd(String),
    Del(String),
    List,
    /// Open a registry whose users were all deleted to anyone.
    Open,
}

fn err(msg: impl Into<String>) -> String {
    msg.into()
}

/// Parse argv (without the program name) with `env` for the REGISTRY_* variables.
pub fn parse(args: Vec<OsString>, env: &dyn Fn(&str) -> Option<String>) -> Result<Command, String> {
    let mut args = Arguments::from_vec(args);
    if args.contains(["-h", "--help"]) {
        return Ok(Command::Help);
    }
    let sub = args.subcommand().map_err(|e| err(e.to_string()))?;
    let cmd = match sub.as_deref() {
        None | Some("help") => Command::Help,
        Some("version") | Some("--version") => Command::Version,
        Some("serve") => Command::Serve(Box::new(server_config(&mut args, env)?)),
        Some("check-config") => Command::CheckConfig(Box::new(server_config(&mut args, env)?)),
        Some("user") => {
            let action = args.subcommand().map_err(|e| err(e.to_string()))?;
            let data_dir = data_dir(&mut args, env)?;
            let mut name = || -> Result<String, String> {
                args.free_from_str::<String>()
                    .map_err(|_| err("a user name is required"))
            };
            let action = match action.as_deref() {
                Some("add") => UserAction::Add(name()?),
                Some("passwd") => UserAction::Passwd(name()?),
                Some("del") | Some("rm") => UserAction::Del(name()?),
                Some("list") | Some("ls") => UserAction::List,
                Some("open") => UserAction::Open,
                _ => {
                    return Err(err(
                        "usage: soute user add|passwd|del|list [NAME] | soute user open",
                    ))
                }
            };
            Command::User { action, data_dir }
        }
        Some("gc") => {
            let data_dir = data_dir(&mut args, env)?;
            let mut policy = gc_policy(&mut args)?;
            if let Some(ttl) = secs(&mut args, "--upload-ttl")? {
                policy.upload_ttl_secs = ttl;
            }
            policy.dry_run = args.contains("--dry-run");
            let json = args.contains("--json");
            Command::Gc {
                data_dir,
                policy,
                json,
            }
        }
        Some("backup") => {
            let data_dir = data_dir(&mut args, env)?;
            let dest = args
                .free_from_str::<PathBuf>()
                .map_err(|_| err("usage: soute backup DEST [--data DIR]"))?;
            Command::Backup { data_dir, dest }
        }
        Some("verify") => Command::Verify {
            data_dir: data_dir(&mut args, env)?,
            repair: args.contains("--repair"),
            json: args.contains("--json"),
        },
        Some("du") => {
            let data_dir = data_dir(&mut args, env)?;
            let policy = gc_policy(&mut args)?;
            let json = args.contains("--json");
            let tag: Option<String> = args
                .opt_value_from_str("--tag")
                .map_err(|e| err(e.to_string()))?;
            let repo: Option<String> = args.opt_free_from_str().map_err(|e| err(e.to_string()))?;
            if tag.is_some() && repo.is_none() {
                return Err(err("--tag needs a repository: soute du REPO --tag TAG"));
            }
            Command::Du {
                data_dir,
                repo,
                tag,
                policy,
                json,
            }
        }
        Some(other) => return Err(err(format!("unknown command {other:?}; try `soute help`"))),
    };
    let rest = args.finish();
    if !rest.is_empty() {
        return Err(err(format!("unexpected arguments: {rest:?}")));
    }
    Ok(cmd)
}

fn data_dir(args: &mut Arguments, env: &dyn Fn(&str) -> Option<String>) -> Result<PathBuf, String> {
    let flag: Option<PathBuf> = args
        .opt_value_from_str("--data")
        .map_err(|e| err(e.to_string()))?;
    Ok(flag
        .or_else(|| env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("./soute-data")))
}

/// A number of seconds given with `flag`, if any.
fn secs(args: &mut Arguments, flag: &'static str) -> Result<Option<i64>, String> {
    let v: Option<u64> = args
        .opt_value_from_str(flag)
        .map_err(|e| err(format!("{flag}: {e}")))?;
    Ok(v.map(|s| s.min(i64::MAX as u64) as i64))
}

/// `--grace`, `--link-grace` and `--delete-untagged` over the defaults.
fn gc_policy(args: &mut Arguments) -> Result<GcPolicy, String> {
    let mut p = GcPolicy::default();
    if let Some(g) = secs(args, "--grace")? {
        p.grace_secs = g;
    }
    if let Some(g) = secs(args, "--link-grace")? {
        p.link_grace_secs = g;
    }
    p.delete_untagged = args.contains("--delete-untagged");
    Ok(p)
}

fn server_config(
    args: &mut Arguments,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, String> {
    let mut cfg = Config::from_env(env).map_err(|e| e.to_string())?;
    cfg.data_dir = data_dir(args, env)?;
    let listen: Vec<String> = args
        .values_from_str("--listen")
        .map_err(|e| err(e.to_string()))?;
    if !listen.is_empty() {
        let mut addrs = Vec::new();
        for l in listen {
            addrs.extend(parse_listen(&l).map_err(|e| e.to_string())?);
        }
        cfg.listen = addrs;
    }
    let hostnames: Vec<String> = args
        .values_from_str("--hostname")
        .map_err(|e| err(e.to_string()))?;
    cfg.hostnames.extend(hostnames);
    if let Some(tls) = args
        .opt_value_from_str::<_, String>("--tls")
        .map_err(|e| err(e.to_string()))?
    {
        cfg.tls = parse_tls(&tls).map_err(|e| e.to_string())?;
    }
    if args.contains("--no-delete") {
        cfg.delete_enabled = false;
    }
    if args.contains("--anonymous-pull") {
        cfg.anonymous_pull = true;
    }
    if let Some(level) = args
        .opt_value_from_str::<_, String>("--log-level")
        .map_err(|e| err(e.to_string()))?
    {
        cfg.log_level = parse_level(&level).map_err(|e| e.to_string())?;
    }
    if let Some(w) = args
        .opt_value_from_str::<_, usize>("--workers")
        .map_err(|e| err(e.to_string()))?
    {
        cfg.workers = w;
    }
    if let Some(v) = args
        .opt_value_from_str::<_, String>("--auth-threads")
        .map_err(|e| err(e.to_string()))?
    {
        cfg.auth_threads =
            crate::config::parse_auth_threads("--auth-threads", &v).map_err(|e| e.to_string())?;
    }
    if let Some(i) = secs(args, "--gc-interval")? {
        cfg.gc_interval = (i > 0).then(|| std::time::Duration::from_secs(i as u64));
    }
    if let Some(g) = secs(args, "--gc-grace")? {
        cfg.gc_policy.grace_secs = g;
    }
    if args.contains("--gc-delete-untagged") {
        cfg.gc_policy.delete_untagged = true;
    }
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from).collect(), &|_| None)
    }

    #[test]
    fn commands() {
        match p(&[
            "serve",
            "--data",
            "/d",
            "--listen",
            "[::1]:0",
            "--tls",
            "off",
            "--hostname",
            "r.test",
        ]) {
            Ok(Command::Serve(cfg)) => {
                assert_eq!(cfg.data_dir, PathBuf::from("/d"));
                assert_eq!(cfg.listen.len(), 1);
                assert_eq!(cfg.hostnames, vec!["r.test".to_string()]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            p(&["user", "add", "bob", "--data", "/d"]),
            Ok(Command::User {
                action: UserAction::Add(_),
                ..
            })
        ));
        assert!(matches!(
            p(&["user", "list"]),
            Ok(Command::User {
                action: UserAction::List,
                ..
            })
        ));
        assert!(p(&["serve", "--bogus"]).is_err());
        assert!(p(&["frobnicate"]).is_err());
        assert!(p(&["user", "add"]).is_err());
        assert!(matches!(p(&[]), Ok(Command::Help)));
        match p(&["gc", "--dry-run", "--grace", "0", "--data", "/d"]) {
            Ok(Command::Gc { policy, .. }) => {
                assert!(policy.dry_run);
                assert_eq!(policy.grace_secs, 0);
                assert_eq!(policy.link_grace_secs, 3600);
                assert!(!policy.delete_untagged);
            }
            other => panic!("{other:?}"),
        }
        assert!(p(&["gc", "--grace", "-1"]).is_err());
        assert!(p(&["gc", "--bogus"]).is_err());
        assert!(matches!(
            p(&["backup", "/b", "--data", "/d"]),
            Ok(Command::Backup { .. })
        ));
        assert!(p(&["backup"]).is_err());
        assert!(matches!(
            p(&["verify", "--repair"]),
            Ok(Command::Verify { repair: true, .. })
        ));
        match p(&["du", "lab/app", "--tag", "v1"]) {
            Ok(Command::Du { repo, tag, .. }) => {
                assert_eq!(repo.as_deref(), Some("lab/app"));
                assert_eq!(tag.as_deref(), Some("v1"));
            }
            other => panic!("{other:?}"),
        }
        assert!(p(&["du", "--tag", "v1"]).is_err());
        assert!(p(&["du", "a", "b"]).is_err());
    }
}

#[cfg(test)]
mod auth_flags {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, String> {
        parse(args.iter().map(OsString::from).collect(), &|_| None)
    }

    #[test]
    fn user_open_and_auth_threads() {
        assert!(matches!(
            p(&["user", "open", "--data", "/d"]),
            Ok(Command::User {
                action: UserAction::Open,
                ..
            })
        ));
        assert!(p(&["user", "open", "extra"]).is_err());
        match p(&["serve", "--auth-threads", "3"]) {
            Ok(Command::Serve(cfg)) => assert_eq!(cfg.auth_threads, 3),
            other => panic!("{other:?}"),
        }
        for bad in ["0", "65", "many"] {
            let e = p(&["serve", "--auth-threads", bad]).expect_err(bad);
            assert!(e.contains("--auth-threads"), "{e}");
        }
        let env = |k: &str| (k == "SOUTE_AUTH_THREADS").then(|| "2".to_string());
        match parse(vec!["serve".into()], &env) {
            Ok(Command::Serve(cfg)) => assert_eq!(cfg.auth_threads, 2),
            other => panic!("{other:?}"),
        }
    }
}
