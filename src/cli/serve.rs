//! `soute serve` and `soute check-config`: the server's configuration from
//! its flags over distribution's `REGISTRY_*` environment over the defaults.
//!
//! It must never open the data folder or start anything: it only builds a
//! `Config` (or a usage error naming the flag).

use super::spec::{usage, Args, UsageError};
use super::{blob_store, data_dir, secs, Env};
use crate::config::{
    parse_disk_reserve, parse_level, parse_listen, parse_max_blob_size, parse_tls, Config,
};
use std::time::Duration;

/// A configuration error found while reading `flag`'s value, naming the flag.
fn flag_error(flag: &str) -> impl Fn(crate::config::ConfigError) -> UsageError + '_ {
    move |e| usage(format!("{flag}: {e}"))
}

pub(super) fn server_config(args: &Args, env: Env) -> Result<Config, UsageError> {
    let mut cfg = Config::from_env(env).map_err(|e| usage(e.to_string()))?;
    cfg.data_dir = data_dir(args, env);
    let listen = args.values("--listen");
    if !listen.is_empty() {
        let mut addrs = Vec::new();
        for l in listen {
            addrs.extend(parse_listen(l).map_err(flag_error("--listen"))?);
        }
        cfg.listen = addrs;
    }
    cfg.hostnames
        .extend(args.values("--hostname").into_iter().map(str::to_string));
    if let Some(tls) = args.value("--tls") {
        cfg.tls = parse_tls(tls).map_err(flag_error("--tls"))?;
    }
    if args.has("--no-delete") {
        cfg.delete_enabled = false;
    }
    if args.has("--anonymous-pull") {
        cfg.anonymous_pull = true;
    }
    if let Some(mode) = args.value("--auth") {
        cfg.auth_mode = crate::api::AuthMode::parse(mode)
            .ok_or_else(|| usage(format!("--auth: {mode:?}: write auto, basic or token")))?;
    }
    if let Some(realm) = args.value("--token-realm") {
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(usage(format!(
                "--token-realm: {realm:?}: write the URL of the token endpoint, e.g. https://registry.example:5000/v2/token"
            )));
        }
        cfg.token_realm = Some(realm.to_string());
    }
    if let Some(level) = args.value("--log-level") {
        cfg.log_level = parse_level(level).map_err(flag_error("--log-level"))?;
    }
    if let Some(w) = args.parsed::<usize>("--workers", "a number")? {
        cfg.workers = w;
    }
    for flag in [
        "--max-connections",
        "--max-connections-per-ip",
        "--max-workers-per-ip",
        "--min-body-rate",
        "--min-send-rate",
        "--body-rate-grace",
        "--head-budget",
    ] {
        if let Some(v) = args.value(flag) {
            let n = crate::config::parse_count(flag, v).map_err(|e| usage(e.to_string()))?;
            let h = &mut cfg.http;
            match flag {
                "--max-connections" => h.max_connections = n,
                "--max-connections-per-ip" => h.max_connections_per_ip = n,
                "--max-workers-per-ip" => h.max_workers_per_ip = n,
                "--min-body-rate" => h.min_body_rate = n as u64,
                "--min-send-rate" => h.min_send_rate = n as u64,
                "--body-rate-grace" => h.body_rate_grace = Duration::from_secs(n as u64),
                _ => h.head_budget = n,
            }
        }
    }
    if let Some(v) = args.value("--auth-threads") {
        cfg.auth_threads = crate::config::parse_auth_threads("--auth-threads", v)
            .map_err(|e| usage(e.to_string()))?;
    }
    if let Some(i) = secs(args, "--gc-interval")? {
        cfg.gc_interval = (i > 0).then(|| std::time::Duration::from_secs(i as u64));
    }
    if let Some(g) = secs(args, "--gc-grace")? {
        cfg.gc_policy.grace_secs = g;
    }
    if args.has("--gc-delete-untagged") {
        cfg.gc_policy.delete_untagged = true;
    }
    if let Some(v) = args.value("--max-blob-size") {
        cfg.max_blob_size = parse_max_blob_size(v).map_err(flag_error("--max-blob-size"))?;
    }
    if let Some(v) = args.value("--disk-reserve") {
        cfg.disk_reserve = parse_disk_reserve(v).map_err(flag_error("--disk-reserve"))?;
    }
    if let Some(n) = args.parsed::<u64>("--max-upload-sessions", "a number")? {
        cfg.max_upload_sessions = n.max(1);
    }
    if let Some(n) = args.parsed::<u64>("--max-upload-sessions-per-client", "a number")? {
        cfg.max_upload_sessions_per_client = n.max(1);
    }
    if let Some(n) = args.parsed::<u64>("--audit-keep", "a number of events")? {
        cfg.audit.keep = n;
    }
    if let Some(n) = args.parsed::<u64>("--audit-days", "a number of days")? {
        cfg.audit.days = (n > 0).then_some(n);
    }
    if let Some(l) = args.value("--metrics-listen") {
        cfg.metrics.listen = parse_listen(l).map_err(flag_error("--metrics-listen"))?;
    }
    match args.value("--metrics") {
        None => {}
        Some("on") => cfg.metrics.off = false,
        Some("off") => cfg.metrics.off = true,
        Some(v) => return Err(usage(format!("--metrics: {v:?}: write on or off"))),
    }
    (cfg.blob_store, cfg.s3_redirect) = blob_store::parse(args, env)?;
    Ok(cfg)
}
