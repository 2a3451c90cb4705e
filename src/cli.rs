//! cli: argv to a `Command`. Hand-written help; unknown flags are rejected.
//!
//! It must never do I/O beyond reading its arguments.

use crate::config::{parse_level, parse_listen, parse_tls, Config};
use pico_args::Arguments;
use std::ffi::OsString;
use std::path::PathBuf;

pub const HELP: &str = "\
soute: a private Docker/OCI registry in one binary and one data folder

USAGE:
    soute serve        [--data DIR] [--listen ADDR]... [--hostname NAME]... [--tls auto|off|CERT,KEY]
                       [--no-delete] [--anonymous-pull] [--log-level LEVEL]
    soute user add|passwd|del|list [NAME] [--data DIR]   (password from a prompt or stdin)
    soute check-config [same flags as serve]
    soute version
    soute help

The data folder defaults to ./soute-data (or REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY).
soute serve listens on port 5000 on every interface, with TLS from its own CA.
Environment (distribution's names): REGISTRY_HTTP_ADDR, REGISTRY_HTTP_TLS_CERTIFICATE,
REGISTRY_HTTP_TLS_KEY, REGISTRY_LOG_LEVEL, REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY,
REGISTRY_STORAGE_DELETE_ENABLED, REGISTRY_AUTH_HTPASSWD_REALM, REGISTRY_AUTH_HTPASSWD_PATH.
Flags override the environment.
";

#[derive(Debug)]
pub enum Command {
    Serve(Box<Config>),
    CheckConfig(Box<Config>),
    User {
        action: UserAction,
        data_dir: PathBuf,
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
                _ => return Err(err("usage: soute user add|passwd|del|list [NAME]")),
            };
            Command::User { action, data_dir }
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
    }
}
