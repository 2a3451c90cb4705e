//! config: the resolved configuration. Embedded defaults, overlaid by
//! distribution's `REGISTRY_*` environment variables, overlaid by flags.
//! `sanitized()` prints it without secrets for `check-config`.
//!
//! It must never open the data folder or start anything, and never return an
//! HTTP error: a configuration problem is a `ConfigError`.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

/// How the listeners speak TLS.
#[derive(Clone, Debug, PartialEq)]
pub enum TlsMode {
    /// Plain HTTP.
    Off,
    /// soute's own CA and server certificate, made on first start in `<data>/tls/`.
    Auto,
    /// The user's certificate chain and key (PEM), reloaded when they change.
    Files { cert: PathBuf, key: PathBuf },
}

#[derive(Clone, Debug)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: Vec<SocketAddr>,
    /// Names (DNS or IP) the server certificate must cover, besides the defaults.
    pub hostnames: Vec<String>,
    pub tls: TlsMode,
    pub delete_enabled: bool,
    /// error, warn, info or debug (distribution's levels).
    pub log_level: String,
    pub realm: String,
    /// A bcrypt htpasswd file to import users from at start.
    pub htpasswd: Option<PathBuf>,
    /// Allow reads without credentials even when users exist.
    pub anonymous_pull: bool,
    /// Basic challenges or the Docker token service (`--auth`).
    pub auth_mode: crate::api::AuthMode,
    /// The token URL named in Bearer challenges (`--token-realm`).
    pub token_realm: Option<String>,
    /// HTTP worker threads at most (also sizes the database pool).
    pub workers: usize,
    /// Every HTTP limit and timeout (the one definition: `http::Limits`).
    pub http: crate::http::Limits,
    /// Password verifier threads (each holds 7 MiB of argon2 memory; 19 MiB once it checked an older hash).
    pub auth_threads: usize,
    /// Online GC: how often it runs (`None`: never), and what it may remove.
    pub gc_interval: Option<Duration>,
    /// Delay before the first scheduled run (lets start-up traffic settle).
    pub gc_first_run: Duration,
    pub gc_policy: crate::registry::GcPolicy,
    /// Largest blob an upload may build (413 beyond); `--max-blob-size`.
    pub max_blob_size: u64,
    /// Free space uploads must leave on the data folder's filesystem (507
    /// before they would cross it); `--disk-reserve`.
    pub disk_reserve: crate::storage::space::DiskReserve,
    /// Open upload sessions in all / per client address (429 beyond);
    /// `--max-upload-sessions`, `--max-upload-sessions-per-client`.
    pub max_upload_sessions: u64,
    pub max_upload_sessions_per_client: u64,
    /// How many events and days the audit log keeps; `--audit-keep`, `--audit-days`.
    pub audit: crate::registry::AuditRetention,
    /// `REGISTRY_PROXY_*`: one `--mirror` upstream written at start.
    pub proxy: Option<crate::upstream::ProxyEnv>,
    /// `/metrics` and its listener (`--metrics`, `--metrics-listen`).
    pub metrics: MetricsConfig,
    /// Where blobs live (`--blob-store`, `--s3-*`).
    pub blob_store: BlobStoreConfig,
    /// `--s3-redirect`: blob GETs answer 307 to a presigned URL of the store.
    pub s3_redirect: bool,
}

/// Where blobs live: the data folder's `blobs/` (default) or an S3 bucket.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum BlobStoreConfig {
    #[default]
    Local,
    S3(crate::storage::s3::S3Config),
}

impl BlobStoreConfig {
    /// One line for `check-config` (never the secret).
    pub fn describe(&self) -> String {
        match self {
            BlobStoreConfig::Local => "local (the data folder's blobs/)".into(),
            BlobStoreConfig::S3(c) => c.describe(),
        }
    }
}

/// Metrics: whether requests are counted, and the unauthenticated listener
/// for `/metrics`, `/livez` and `/readyz` (distribution's debug address).
#[derive(Clone, Debug, Default)]
pub struct MetricsConfig {
    pub off: bool,
    pub listen: Vec<SocketAddr>,
}

pub const DEFAULT_PORT: u16 = 5000;
/// The data folder when neither `--data` nor the environment names one.
pub const DEFAULT_DATA_DIR: &str = "./soute-data";

/// A setting that cannot be used, said in words (no error code in front).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

type Result<T> = std::result::Result<T, ConfigError>;

/// `e` as found in the environment variable `name`.
fn in_env(name: &str) -> impl Fn(ConfigError) -> ConfigError + '_ {
    move |e| ConfigError(format!("{name}: {e}"))
}

impl Config {
    /// The embedded defaults, rooted at `data_dir`.
    pub fn for_data(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            listen: all_interfaces(DEFAULT_PORT),
            hostnames: Vec::new(),
            tls: TlsMode::Auto,
            delete_enabled: true,
            log_level: "info".into(),
            realm: "soute".into(),
            htpasswd: None,
            anonymous_pull: false,
            auth_mode: crate::api::AuthMode::Auto,
            token_realm: None,
            workers: crate::http::DEFAULT_WORKERS,
            http: crate::http::Limits::default(),
            auth_threads: crate::auth::default_threads(),
            gc_interval: Some(Duration::from_secs(3600)),
            gc_first_run: Duration::from_secs(600),
            gc_policy: crate::registry::GcPolicy::default(),
            max_blob_size: crate::storage::space::DEFAULT_MAX_BLOB_SIZE,
            max_upload_sessions: crate::registry::DEFAULT_MAX_UPLOAD_SESSIONS,
            max_upload_sessions_per_client: crate::registry::DEFAULT_MAX_UPLOAD_SESSIONS_PER_CLIENT,
            disk_reserve: crate::storage::space::DiskReserve::DEFAULT,
            audit: crate::registry::AuditRetention::default(),
            proxy: None,
            metrics: MetricsConfig::default(),
            blob_store: BlobStoreConfig::Local,
            s3_redirect: false,
        }
    }

    /// Defaults overlaid by distribution's environment variables (`env` looks one up).
    pub fn from_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
        let data = env("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY")
            .unwrap_or_else(|| DEFAULT_DATA_DIR.into());
        let mut cfg = Config::for_data(data);
        if let Some(addr) = env("REGISTRY_HTTP_ADDR") {
            cfg.listen = parse_listen(&addr).map_err(in_env("REGISTRY_HTTP_ADDR"))?;
        }
        if let Some(addr) = env("REGISTRY_HTTP_DEBUG_ADDR") {
            cfg.metrics.listen = parse_listen(&addr).map_err(in_env("REGISTRY_HTTP_DEBUG_ADDR"))?;
        }
        if let Some(v) = env("REGISTRY_STORAGE_DELETE_ENABLED") {
            cfg.delete_enabled = parse_bool("REGISTRY_STORAGE_DELETE_ENABLED", &v)?;
        }
        if let Some(level) = env("REGISTRY_LOG_LEVEL") {
            cfg.log_level = parse_level(&level).map_err(in_env("REGISTRY_LOG_LEVEL"))?;
        }
        match (
            env("REGISTRY_HTTP_TLS_CERTIFICATE"),
            env("REGISTRY_HTTP_TLS_KEY"),
        ) {
            (Some(cert), Some(key)) => {
                cfg.tls = TlsMode::Files {
                    cert: cert.into(),
                    key: key.into(),
                }
            }
            (None, None) => {}
            _ => {
                return Err(config_error(
                    "REGISTRY_HTTP_TLS_CERTIFICATE and REGISTRY_HTTP_TLS_KEY go together",
                ))
            }
        }
        cfg.proxy = crate::upstream::ProxyEnv::from_env(env).map_err(config_error)?;
        if let Some(v) = env("SOUTE_MAX_CONNECTIONS") {
            cfg.http.max_connections = parse_count("SOUTE_MAX_CONNECTIONS", &v)?;
        }
        if let Some(v) = env("SOUTE_MAX_CONNECTIONS_PER_IP") {
            cfg.http.max_connections_per_ip = parse_count("SOUTE_MAX_CONNECTIONS_PER_IP", &v)?;
        }
        if let Some(v) = env("SOUTE_MAX_WORKERS_PER_IP") {
            cfg.http.max_workers_per_ip = parse_count("SOUTE_MAX_WORKERS_PER_IP", &v)?;
        }
        if let Some(v) = env("SOUTE_MIN_BODY_RATE") {
            cfg.http.min_body_rate = parse_count("SOUTE_MIN_BODY_RATE", &v)? as u64;
        }
        if let Some(v) = env("SOUTE_MIN_SEND_RATE") {
            cfg.http.min_send_rate = parse_count("SOUTE_MIN_SEND_RATE", &v)? as u64;
        }
        if let Some(v) = env("SOUTE_BODY_RATE_GRACE") {
            let s = parse_count("SOUTE_BODY_RATE_GRACE", &v)?;
            cfg.http.body_rate_grace = std::time::Duration::from_secs(s as u64);
        }
        if let Some(v) = env("SOUTE_HEAD_BUDGET") {
            cfg.http.head_budget = parse_count("SOUTE_HEAD_BUDGET", &v)?;
        }
        if let Some(realm) = env("REGISTRY_AUTH_HTPASSWD_REALM") {
            cfg.realm = realm;
        }
        if let Some(path) = env("REGISTRY_AUTH_HTPASSWD_PATH") {
            cfg.htpasswd = Some(path.into());
        }
        if let Some(v) = env("SOUTE_MAX_BLOB_SIZE") {
            cfg.max_blob_size = parse_max_blob_size(&v).map_err(in_env("SOUTE_MAX_BLOB_SIZE"))?;
        }
        if let Some(v) = env("SOUTE_DISK_RESERVE") {
            cfg.disk_reserve = parse_disk_reserve(&v).map_err(in_env("SOUTE_DISK_RESERVE"))?;
        }
        if let Some(v) = env("SOUTE_AUTH_THREADS") {
            cfg.auth_threads = parse_auth_threads("SOUTE_AUTH_THREADS", &v)?;
        }
        Ok(cfg)
    }

    /// The configuration as `check-config` prints it (no secrets: soute's
    /// configuration holds none, only paths to them).
    pub fn sanitized(&self) -> String {
        let tls = match &self.tls {
            TlsMode::Off => "off".to_string(),
            TlsMode::Auto => format!(
                "auto (own CA in {})",
                crate::storage::layout::Layout::new(&self.data_dir)
                    .tls_dir()
                    .display()
            ),
            TlsMode::Files { cert, key } => format!(
                "files (certificate {}, key {})",
                cert.display(),
                key.display()
            ),
        };
        let listen: Vec<String> = self.listen.iter().map(|a| a.to_string()).collect();
        format!(
            "data folder:      {}\ngc:               {}\nlisten:           {}\ncertificate for:  {}\ntls:              {tls}\ndelete enabled:   {}\nlog level:        {}\nauth realm:       {}\nhtpasswd import:  {}\nanonymous pull:   {}\nauth:             {}\nworkers:          {}\n{}",
            self.data_dir.display(),
            match self.gc_interval {
                Some(i) => format!(
                    "every {}s (grace {}s, link grace {}s, uploads expire after {}s, delete untagged: {})",
                    i.as_secs(),
                    self.gc_policy.grace_secs,
                    self.gc_policy.link_grace_secs,
                    self.gc_policy.upload_ttl_secs,
                    self.gc_policy.delete_untagged
                ),
                None => "off".into(),
            },
            listen.join(", "),
            self.certificate_names(),
            self.delete_enabled,
            self.log_level,
            self.realm,
            self.htpasswd.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".into()),
            self.anonymous_pull,
            match (&self.auth_mode, &self.token_realm) {
                (crate::api::AuthMode::Basic, _) => "basic (Basic challenges only)".to_string(),
                (crate::api::AuthMode::Auto, _) => {
                    "auto (Basic; Bearer tokens from /v2/token while an anonymous rule exists)"
                        .to_string()
                }
                (crate::api::AuthMode::Token, None) => {
                    "token (Bearer; tokens at http(s)://HOST/v2/token)".to_string()
                }
                (crate::api::AuthMode::Token, Some(r)) => format!("token (Bearer; tokens at {r})"),
            },
            self.workers,
            self.http,
        ) + &format!(
            "auth threads:     {} (argon2 memory {} MiB, {} MiB for hashes older soutes wrote; \
             at most {} checks waiting)\n",
            self.auth_threads,
            self.auth_threads * crate::auth::password::HASH_BLOCK_BYTES / (1024 * 1024),
            self.auth_threads * crate::auth::password::BLOCK_BYTES / (1024 * 1024),
            self.auth_queue(),
        ) + &format!(
            // The reserve resolved on the data folder's filesystem (statvfs; nothing opened).
            "max blob size:    {} ({} bytes)\ndisk reserve:     {}\n\
             upload sessions:  at most {} open, {} per client address\n\
             audit log:        {}\n",
            crate::storage::space::format_size(self.max_blob_size),
            self.max_blob_size,
            self.disk_reserve.describe(
                crate::storage::space::filesystem_space(&self.data_dir)
                    .ok()
                    .map(|s| s.total)
            ),
            self.max_upload_sessions,
            self.max_upload_sessions_per_client,
            match (self.audit.keep, self.audit.days) {
                (0, _) => "off (--audit-keep 0)".to_string(),
                (keep, Some(days)) => format!("at most {keep} events, {days} days"),
                (keep, None) => format!("at most {keep} events, no age limit"),
            },
        ) + &format!(
            "blob store:       {}{}\nmetrics:          {}\n",
            self.blob_store.describe(),
            if self.s3_redirect { " (blob GETs: 307 to presigned URLs)" } else { "" },
            match (self.metrics.off, self.metrics.listen.as_slice()) {
                (true, _) => "off (--metrics off)".to_string(),
                (false, []) => "/metrics for admins and metrics tokens".to_string(),
                (false, l) => format!(
                    "/metrics for admins and metrics tokens; without auth on {}",
                    l.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
                ),
            }
        ) + &match &self.proxy {
            // REGISTRY_PROXY_*: never the password.
            Some(p) => format!(
                "proxy mirror:     {} = {} (user {}, tag ttl {}s)\n",
                p.name,
                p.url,
                p.username.as_deref().unwrap_or("none"),
                p.tag_ttl_secs
            ),
            None => String::new(),
        }
    }

    /// Password checks that may wait for a verifier thread: half the
    /// workers (at most 64), so the other half stays free for requests the
    /// login cache answers.
    pub fn auth_queue(&self) -> usize {
        (self.workers / 2).clamp(1, 64)
    }
}

/// A number of verifier threads: 1 to 64.
pub fn parse_auth_threads(name: &str, v: &str) -> Result<usize> {
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=64).contains(&n) => Ok(n),
        _ => Err(config_error(format!(
            "{name}: expected a number of threads from 1 to 64, got {v:?}"
        ))),
    }
}

/// `--max-blob-size`: a size (`64GiB`, `500MB`), at least 1 byte.
pub fn parse_max_blob_size(v: &str) -> Result<u64> {
    match crate::storage::space::parse_size(v).map_err(ConfigError)? {
        0 => Err(config_error("the largest blob cannot be 0 bytes")),
        n => Ok(n),
    }
}

/// `--disk-reserve`: a size (`1GiB`, `0` for none), a percentage (`5%`) or both (`1GiB,5%`).
pub fn parse_disk_reserve(v: &str) -> Result<crate::storage::space::DiskReserve> {
    crate::storage::space::parse_reserve(v).map_err(ConfigError)
}

fn config_error(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

impl Config {
    /// The names the server certificate covers: with soute's own CA, what it
    /// would issue for (the `--hostname`s, then the machine's names and addresses).
    fn certificate_names(&self) -> String {
        match &self.tls {
            TlsMode::Auto => crate::tls::default_names(&self.hostnames).join(", "),
            TlsMode::Files { cert, .. } => format!("whatever {} covers", cert.display()),
            TlsMode::Off => "none (plain HTTP)".into(),
        }
    }
}

fn all_interfaces(port: u16) -> Vec<SocketAddr> {
    vec![
        SocketAddr::from(([0, 0, 0, 0], port)),
        SocketAddr::from(([0u16; 8], port)),
    ]
}

/// `:5000` (every interface, IPv4 and IPv6), `[::1]:5000`, `127.0.0.1:0`, `host:port`.
pub fn parse_listen(s: &str) -> Result<Vec<SocketAddr>> {
    let s = s.trim();
    if let Some(port) = s.strip_prefix(':') {
        let port = port
            .parse::<u16>()
            .map_err(|_| config_error(format!("invalid port in {s:?}")))?;
        return Ok(all_interfaces(port));
    }
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(vec![addr]);
    }
    let addrs: Vec<SocketAddr> = s
        .to_socket_addrs()
        .map_err(|e| config_error(format!("cannot listen on {s:?}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(config_error(format!("{s:?} resolves to no address")));
    }
    Ok(addrs)
}

/// A positive count (`name` says which setting, for the error).
pub fn parse_count(name: &str, v: &str) -> Result<usize> {
    match v.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(config_error(format!(
            "{name}: expected a positive whole number, got {v:?}"
        ))),
    }
}

pub fn parse_bool(name: &str, v: &str) -> Result<bool> {
    match v.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(config_error(format!(
            "{name}: expected true or false, got {v:?}"
        ))),
    }
}

/// distribution's levels: error, warn, info, debug (panic and fatal count as error).
pub fn parse_level(v: &str) -> Result<String> {
    match v.trim().to_ascii_lowercase().as_str() {
        "panic" | "fatal" | "error" => Ok("error".into()),
        "warn" | "warning" => Ok("warn".into()),
        "info" => Ok("info".into()),
        "debug" => Ok("debug".into()),
        "trace" => Ok("trace".into()),
        other => Err(config_error(format!(
            "unknown log level {other:?} (error, warn, info, debug)"
        ))),
    }
}

/// Parse `--tls`: `auto`, `off`, or `CERT,KEY`.
pub fn parse_tls(v: &str) -> Result<TlsMode> {
    match v {
        "auto" | "on" => Ok(TlsMode::Auto),
        "off" => Ok(TlsMode::Off),
        other => match other.split_once(',') {
            Some((c, k)) if !c.is_empty() && !k.is_empty() => Ok(TlsMode::Files {
                cert: c.into(),
                key: k.into(),
            }),
            _ => Err(config_error(format!(
                "expected auto, off or CERT,KEY, got {other:?}"
            ))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn env_overlay() {
        let vars: HashMap<&str, &str> = [
            ("REGISTRY_HTTP_ADDR", "[::1]:5150"),
            ("REGISTRY_STORAGE_DELETE_ENABLED", "false"),
            ("REGISTRY_LOG_LEVEL", "debug"),
            ("REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY", "/srv/reg"),
            ("REGISTRY_AUTH_HTPASSWD_REALM", "home"),
            ("SOUTE_MAX_BLOB_SIZE", "2GiB"),
            ("SOUTE_DISK_RESERVE", "3%"),
        ]
        .into_iter()
        .collect();
        let cfg = Config::from_env(&|k| vars.get(k).map(|v| v.to_string())).expect("config");
        assert_eq!(
            cfg.listen,
            vec!["[::1]:5150".parse::<SocketAddr>().expect("addr")]
        );
        assert!(!cfg.delete_enabled);
        assert_eq!(cfg.log_level, "debug");
        assert_eq!(cfg.data_dir, PathBuf::from("/srv/reg"));
        assert_eq!(cfg.realm, "home");
        assert_eq!(cfg.max_blob_size, 2 << 30);
        assert_eq!(cfg.disk_reserve.basis_points, Some(300));
        let bad = Config::from_env(&|k| (k == "SOUTE_MAX_BLOB_SIZE").then(|| "lots".into()));
        assert!(bad.is_err_and(|e| e.0.starts_with("SOUTE_MAX_BLOB_SIZE:")));
        assert!(parse_max_blob_size("0").is_err());
        let defaults = Config::from_env(&|_| None).expect("defaults");
        assert_eq!(defaults.listen.len(), 2);
        assert_eq!(defaults.listen[0].port(), 5000);
        assert_eq!(defaults.tls, TlsMode::Auto);
        assert_eq!(defaults.http, crate::http::Limits::default());
        let caps: HashMap<&str, &str> = [
            ("SOUTE_MAX_CONNECTIONS", "100"),
            ("SOUTE_MAX_CONNECTIONS_PER_IP", "7"),
        ]
        .into_iter()
        .collect();
        let cfg = Config::from_env(&|k| caps.get(k).map(|v| v.to_string())).expect("caps");
        assert_eq!(cfg.http.max_connections, 100);
        assert_eq!(cfg.http.max_connections_per_ip, 7);
        assert!(Config::from_env(&|k| (k == "SOUTE_MAX_CONNECTIONS").then(|| "0".into())).is_err());
        let printed = cfg.sanitized();
        assert!(
            printed.contains("100 in total, 7 per client address"),
            "{printed}"
        );
        assert!(printed.contains("keep-alive 30s"), "{printed}");
    }

    #[test]
    fn parsers() {
        assert_eq!(parse_listen(":6000").expect("port").len(), 2);
        assert!(parse_listen("nonsense:::").is_err());
        assert!(parse_level("verbose").is_err());
        assert_eq!(parse_level("WARNING").expect("warn"), "warn");
        assert!(matches!(
            parse_tls("a.pem,b.pem"),
            Ok(TlsMode::Files { .. })
        ));
        assert!(parse_tls("a.pem").is_err());
        assert!(parse_bool("x", "maybe").is_err());
    }
}
