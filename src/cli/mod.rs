//! cli: argv to a `Command`. The flags of every sub-command are one table
//! (`spec::COMMANDS`) that both the parser and the help use; unknown flags are
//! rejected with the closest known one, a bad value names its flag.
//!
//! It must never do I/O beyond reading its arguments (and the environment
//! through the function it is given), and never return an HTTP error.

mod access;
mod args;
mod audit;
mod blob_store;
mod quota;
mod retention;
mod serve;
mod spec;
mod spec_server;
mod tag;
mod tag_history;
mod upstream;
mod webhook;

pub use access::{AccessAction, GroupAction, TokenAction};
pub use audit::{format_rfc3339, parse_rfc3339, AuditQuery, Since, DEFAULT_AUDIT_LIMIT};
pub use quota::QuotaAction;
pub use retention::RetentionAction;
pub use spec::{command_help, general_help, Flag, Spec, UsageError, COMMANDS};
pub use tag::TagAction;
pub use tag_history::TagHistoryAction;
pub use upstream::{UpstreamAction, DEFAULT_TAG_TTL_SECS};
pub use webhook::WebhookAction;

use crate::config::Config;
use crate::registry::GcPolicy;
use serve::server_config;
use spec::{usage, Args};
use std::ffi::OsString;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Command {
    Serve(Box<Config>),
    CheckConfig(Box<Config>),
    User {
        action: UserAction,
        data_dir: PathBuf,
        /// `user add --admin`.
        admin: bool,
    },
    Group {
        action: GroupAction,
        data_dir: PathBuf,
    },
    Access {
        action: AccessAction,
        data_dir: PathBuf,
        json: bool,
    },
    Token {
        action: TokenAction,
        data_dir: PathBuf,
        json: bool,
    },
    Audit {
        data_dir: PathBuf,
        query: AuditQuery,
        json: bool,
    },
    Upstream {
        action: UpstreamAction,
        data_dir: PathBuf,
        json: bool,
    },
    Webhook {
        action: WebhookAction,
        data_dir: PathBuf,
        json: bool,
    },
    /// `retention`, `tag` and `quota` (issue K's policies).
    TagHistory {
        action: TagHistoryAction,
        data_dir: PathBuf,
        json: bool,
    },
    Policy {
        action: PolicyAction,
        data_dir: PathBuf,
        json: bool,
    },
    Gc {
        data_dir: PathBuf,
        policy: GcPolicy,
        json: bool,
    },
    Backup {
        data_dir: PathBuf,
        dest: PathBuf,
        /// `--with-blobs`: also copy the objects of an S3 store.
        with_blobs: bool,
    },
    Verify {
        data_dir: PathBuf,
        repair: bool,
        /// `--deep`: also re-hash the objects of an S3 store.
        deep: bool,
        json: bool,
    },
    /// `blobs migrate --to local|s3`: copy every blob into another store.
    BlobsMigrate {
        data_dir: PathBuf,
        target: crate::config::BlobStoreConfig,
        /// `--s3-credentials-file`, absolute: what a live switch hands to
        /// serve instead of the keys themselves.
        credentials_file: Option<PathBuf>,
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
    /// The general help (`None`) or one command's.
    Help(Option<&'static Spec>),
}

impl Command {
    /// The help text a `Command::Help` prints.
    pub fn help_text(spec: Option<&Spec>) -> String {
        match spec {
            Some(s) => command_help(s),
            None => general_help(),
        }
    }
}

/// One of the policy commands' actions.
#[derive(Debug, PartialEq)]
pub enum PolicyAction {
    Retention(RetentionAction),
    Tag(TagAction),
    Quota(QuotaAction),
}

#[derive(Debug, PartialEq)]
pub enum UserAction {
    Add(String),
    Passwd(String),
    Del(String),
    List,
    /// Set (true) or clear a user's admin flag.
    Admin(String, bool),
    /// Open a registry whose users were all deleted to anyone.
    Open,
}

type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// Parse argv (without the program name) with `env` for the REGISTRY_* variables.
pub fn parse(args: Vec<OsString>, env: Env) -> Result<Command, UsageError> {
    let mut argv = Vec::with_capacity(args.len());
    for a in args {
        argv.push(
            a.into_string()
                .map_err(|a| usage(format!("argument {a:?} is not valid UTF-8")))?,
        );
    }
    let Some((first, rest)) = argv.split_first() else {
        return Ok(Command::Help(None));
    };
    match first.as_str() {
        "-h" | "--help" => return Ok(Command::Help(None)),
        "--version" | "-V" => return Ok(Command::Version),
        _ => {}
    }
    let Some(spec) = spec::spec(first) else {
        return Err(spec::unknown_command(first));
    };
    let args = Args::scan(spec, rest)?;
    if args.help {
        return Ok(Command::Help(Some(spec)));
    }
    let mut operands = args.positionals.clone().into_iter();
    let cmd = match spec.name {
        "help" => match operands.next() {
            None => Command::Help(None),
            Some(name) => Command::Help(Some(
                spec::spec(&name).ok_or_else(|| spec::unknown_command(&name))?,
            )),
        },
        "version" => Command::Version,
        "serve" => Command::Serve(Box::new(server_config(&args, env)?)),
        "check-config" => Command::CheckConfig(Box::new(server_config(&args, env)?)),
        "user" => {
            let data_dir = data_dir(&args, env);
            let action = operands.next();
            let mut name = || {
                operands
                    .next()
                    .ok_or_else(|| usage("a user name is required: soute user add|passwd|del NAME"))
            };
            let action = match action.as_deref() {
                Some("add") => UserAction::Add(name()?),
                Some("passwd") => UserAction::Passwd(name()?),
                Some("del") | Some("rm") => UserAction::Del(name()?),
                Some("list") | Some("ls") => UserAction::List,
                Some("admin") => {
                    let user = name()?;
                    match operands.next().as_deref() {
                        Some("yes") | Some("on") => UserAction::Admin(user, true),
                        Some("no") | Some("off") => UserAction::Admin(user, false),
                        _ => return Err(usage("usage: soute user admin NAME yes|no")),
                    }
                }
                Some("open") => UserAction::Open,
                Some(other) => {
                    return Err(usage(format!(
                        "unknown user action `{other}`: soute user add|passwd|del|list [NAME] | admin NAME yes|no | open"
                    )))
                }
                None => return Err(usage("usage: soute user add|passwd|del|list [NAME]")),
            };
            let admin = args.has("--admin");
            if admin && !matches!(action, UserAction::Add(_)) {
                return Err(usage("--admin goes with `soute user add NAME --admin`"));
            }
            Command::User {
                action,
                data_dir,
                admin,
            }
        }
        "group" => Command::Group {
            action: access::group_action(&mut operands)?,
            data_dir: data_dir(&args, env),
        },
        "access" => Command::Access {
            action: access::access_action(&args, &mut operands)?,
            data_dir: data_dir(&args, env),
            json: args.has("--json"),
        },
        "token" => Command::Token {
            action: access::token_action(&args, &mut operands)?,
            data_dir: data_dir(&args, env),
            json: args.has("--json"),
        },
        "audit" => Command::Audit {
            data_dir: data_dir(&args, env),
            query: audit::audit_query(&args)?,
            json: args.has("--json"),
        },
        "tag"
            if matches!(
                args.positionals.first().map(String::as_str),
                Some("history" | "rollback")
            ) =>
        {
            Command::TagHistory {
                action: tag_history::tag_history_action(&args, &mut operands)?,
                data_dir: data_dir(&args, env),
                json: args.has("--json"),
            }
        }
        "upstream" => Command::Upstream {
            action: upstream::upstream_action(&args, &mut operands)?,
            data_dir: data_dir(&args, env),
            json: args.has("--json"),
        },
        "webhook" => Command::Webhook {
            action: webhook::webhook_action(&args, &mut operands)?,
            data_dir: data_dir(&args, env),
            json: args.has("--json"),
        },
        "retention" | "tag" | "quota" => Command::Policy {
            action: match spec.name {
                "retention" => {
                    PolicyAction::Retention(retention::retention_action(&args, &mut operands)?)
                }
                "tag" => PolicyAction::Tag(tag::tag_action(&args, &mut operands)?),
                _ => PolicyAction::Quota(quota::quota_action(&args, &mut operands)?),
            },
            data_dir: data_dir(&args, env),
            json: args.has("--json"),
        },
        "gc" => {
            let mut policy = gc_policy(&args)?;
            if let Some(ttl) = secs(&args, "--upload-ttl")? {
                policy.upload_ttl_secs = ttl;
            }
            policy.dry_run = args.has("--dry-run");
            Command::Gc {
                data_dir: data_dir(&args, env),
                policy,
                json: args.has("--json"),
            }
        }
        "backup" => {
            let dest = operands
                .next()
                .ok_or_else(|| usage("usage: soute backup DEST [--data DIR]"))?;
            Command::Backup {
                data_dir: data_dir(&args, env),
                dest: PathBuf::from(dest),
                with_blobs: args.has("--with-blobs"),
            }
        }
        "verify" => Command::Verify {
            data_dir: data_dir(&args, env),
            repair: args.has("--repair"),
            deep: args.has("--deep"),
            json: args.has("--json"),
        },
        "blobs" => {
            match operands.next().as_deref() {
                Some("migrate") => {}
                Some(other) => {
                    return Err(usage(format!(
                        "soute blobs: {other:?}: the one action is migrate (soute blobs migrate --to local|s3)"
                    )))
                }
                None => return Err(usage("usage: soute blobs migrate --to local|s3 [--s3-* ...]")),
            }
            Command::BlobsMigrate {
                data_dir: data_dir(&args, env),
                target: blob_store::parse_target(&args, env)?,
                credentials_file: args
                    .value("--s3-credentials-file")
                    .map(|f| std::path::absolute(f).unwrap_or_else(|_| PathBuf::from(f))),
                json: args.has("--json"),
            }
        }
        "du" => {
            let tag = args.value("--tag").map(str::to_string);
            let repo = operands.next();
            if tag.is_some() && repo.is_none() {
                return Err(usage("--tag needs a repository: soute du REPO --tag TAG"));
            }
            if let Some(r) = &repo {
                crate::oci::RepoName::parse(r)
                    .map_err(|_| usage(format!("{r:?} is not a repository name")))?;
            }
            if let Some(t) = &tag {
                crate::oci::Tag::parse(t)
                    .map_err(|_| usage(format!("--tag: {t:?} is not a tag")))?;
            }
            Command::Du {
                data_dir: data_dir(&args, env),
                repo,
                tag,
                policy: gc_policy(&args)?,
                json: args.has("--json"),
            }
        }
        other => unreachable!("command {other} is in the table but not parsed"),
    };
    let extra: Vec<String> = operands.collect();
    if !extra.is_empty() {
        return Err(usage(format!(
            "unexpected argument(s) {extra:?} for `soute {}` (`soute help {}`)",
            spec.name, spec.name
        )));
    }
    Ok(cmd)
}

pub(super) fn data_dir(args: &Args, env: Env) -> PathBuf {
    args.value("--data")
        .map(PathBuf::from)
        .or_else(|| env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_DATA_DIR))
}

/// A number of seconds given with `flag`, if any.
pub(super) fn secs(args: &Args, flag: &str) -> Result<Option<i64>, UsageError> {
    let v: Option<u64> = args.parsed(flag, "a number of seconds")?;
    Ok(v.map(|s| s.min(i64::MAX as u64) as i64))
}

/// `--grace`, `--link-grace` and `--delete-untagged` over the defaults.
fn gc_policy(args: &Args) -> Result<GcPolicy, UsageError> {
    let mut p = GcPolicy::default();
    if let Some(g) = secs(args, "--grace")? {
        p.grace_secs = g;
    }
    if let Some(g) = secs(args, "--link-grace")? {
        p.link_grace_secs = g;
    }
    p.delete_untagged = args.has("--delete-untagged");
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, UsageError> {
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
        assert!(matches!(
            p(&["blobs", "migrate", "--to", "local", "--data", "/d"]),
            Ok(Command::BlobsMigrate {
                target: crate::config::BlobStoreConfig::Local,
                ..
            })
        ));
        for bad in [
            &["blobs"][..],
            &["blobs", "move", "--to", "local"],
            &["blobs", "migrate"],
            &["blobs", "migrate", "--to", "tape"],
            &["blobs", "migrate", "--to", "local", "--s3-bucket", "b"],
        ] {
            assert!(p(bad).is_err(), "{bad:?}");
        }
        assert!(p(&["user", "add"]).is_err());
        assert!(matches!(p(&[]), Ok(Command::Help(None))));
        assert!(matches!(p(&["help", "serve"]), Ok(Command::Help(Some(s))) if s.name == "serve"));
        assert!(matches!(p(&["gc", "-h"]), Ok(Command::Help(Some(s))) if s.name == "gc"));
        let e = p(&["serve", "--hostnme", "x"]).expect_err("typo");
        assert!(e.0.contains("did you mean `--hostname`?"), "{e}");
        let e = p(&["serve", "--workers", "abc"]).expect_err("bad value");
        assert!(e.0.starts_with("--workers:"), "{e}");
        let e = p(&["serve", "--listen", "nonsense:::"]).expect_err("bad listen");
        assert!(e.0.starts_with("--listen:"), "{e}");
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
        match p(&["serve", "--audit-keep", "50", "--audit-days", "0"]) {
            Ok(Command::Serve(cfg)) => assert_eq!((cfg.audit.keep, cfg.audit.days), (50, None)),
            other => panic!("{other:?}"),
        }
        match p(&["audit", "--since", "2h", "--limit", "5", "--json"]) {
            Ok(Command::Audit { query, json, .. }) => {
                assert_eq!(query.since, Since::Ago(7200));
                assert_eq!(query.limit, 5);
                assert!(json);
            }
            other => panic!("{other:?}"),
        }
        assert!(p(&["audit", "--limit", "0"]).is_err());
    }
}

#[cfg(test)]
mod auth_flags {
    use super::*;

    fn p(args: &[&str]) -> Result<Command, UsageError> {
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
        match p(&["serve", "--auth-threads", "3"]) {
            Ok(Command::Serve(cfg)) => assert_eq!(cfg.auth_threads, 3),
            other => panic!("{other:?}"),
        }
        for bad in ["0", "65", "many"] {
            let e = p(&["serve", "--auth-threads", bad]).expect_err(bad);
            assert!(e.to_string().contains("--auth-threads"), "{e}");
        }
        let env = |k: &str| (k == "SOUTE_AUTH_THREADS").then(|| "2".to_string());
        match parse(vec!["serve".into()], &env) {
            Ok(Command::Serve(cfg)) => assert_eq!(cfg.auth_threads, 2),
            other => panic!("{other:?}"),
        }
    }
}
