//! app: wiring. Opens the data folder (and takes its lock), the registry, the
//! TLS material and the listeners, and starts the HTTP server. Used by `main`
//! and by the tests, which start soute in-process.
//!
//! It must never contain protocol or storage rules: it only connects the parts.

use crate::api::{Api, AuthSettings};
use crate::config::{Config, TlsMode};
use crate::error::{Error, Result};
use crate::http::{self, Server, ServerConfig};
use crate::registry::Registry;
use crate::storage::{self, layout, layout::Layout};
use crate::tls;
use std::fs::{self, File, OpenOptions};
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A running soute: its server, registry and the data folder's lock.
pub struct Running {
    server: Option<Server>,
    /// The `--metrics-listen` listener (`/metrics`, `/livez`, `/readyz`).
    debug: Option<Server>,
    registry: Arc<Registry>,
    addrs: Vec<SocketAddr>,
    secure: bool,
    gc: Option<Periodic>,
    store_switch: Option<Periodic>,
    webhooks: Option<crate::webhook::Delivery>,
    _lock: File,
}

/// A background job run every `interval` (first after `first`): a thread
/// that sleeps on a channel; `stop` (or dropping the sender) ends it.
struct Periodic {
    stop: Sender<()>,
    handle: JoinHandle<()>,
}

impl Periodic {
    fn start(
        name: &str,
        first: Duration,
        interval: Duration,
        job: impl Fn() + Send + 'static,
    ) -> Option<Periodic> {
        let (stop, rx) = mpsc::channel::<()>();
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut wait = first;
                loop {
                    match rx.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        _ => return,
                    }
                    job();
                    wait = interval.max(Duration::from_millis(100));
                }
            })
            .ok()?;
        Some(Periodic { stop, handle })
    }

    /// The scheduled GC (`--gc-interval`; none when it is 0).
    fn gc(registry: Arc<Registry>, cfg: &Config) -> Option<Periodic> {
        let interval = cfg.gc_interval?.max(Duration::from_secs(1));
        let policy = cfg.gc_policy.clone();
        Periodic::start("soute-gc", cfg.gc_first_run, interval, move || {
            if let Err(e) = registry.gc_recorded(&policy) {
                log::error!("scheduled gc failed: {e}");
            }
        })
    }

    /// Takes the live blob-store switches `soute blobs migrate` asks for.
    fn store_switch(registry: Arc<Registry>) -> Option<Periodic> {
        let tick = Duration::from_millis(500);
        Periodic::start("soute-store-switch", tick, tick, move || {
            registry.take_store_switch();
        })
    }

    fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.join();
    }
}

impl Running {
    /// The addresses actually bound (port 0 resolved).
    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// The addresses of the `--metrics-listen` listener (port 0 resolved).
    pub fn metrics_addrs(&self) -> Vec<SocketAddr> {
        self.debug
            .as_ref()
            .map(|d| d.local_addrs().to_vec())
            .unwrap_or_default()
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.secure {
            "https"
        } else {
            "http"
        }
    }

    /// Stop serving and release the data folder.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for job in [self.gc.take(), self.store_switch.take()]
            .into_iter()
            .flatten()
        {
            job.stop();
        }
        if let Some(webhooks) = self.webhooks.take() {
            webhooks.stop();
        }
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
        if let Some(debug) = self.debug.take() {
            debug.shutdown();
        }
        // The cache's pull times wait in memory (at most a minute's worth).
        if let Err(e) = self.registry.flush_pulls() {
            log::warn!("recording pull times at shutdown: {e}");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Take the data folder's lock (creating the folder, 0700, if needed): a
/// second `serve` on the same folder refuses to start.
pub fn lock_data_dir(cfg: &Config) -> Result<File> {
    let layout = Layout::new(&cfg.data_dir);
    storage::create_private_dir(layout.root()).map_err(|e| {
        Error::io(
            format!("creating the data folder {}", cfg.data_dir.display()),
            e,
        )
    })?;
    let path = layout.lock();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(layout::FILE_MODE)
        .open(&path)
        .map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(_) => Err(Error::internal(format!(
            "another soute is serving {}; stop it first (the folder's lock is held)",
            cfg.data_dir.display()
        ))),
    }
}

/// Start soute as configured. It binds the listeners first, so a port in use
/// leaves nothing behind (no data folder, no CA).
pub fn start(cfg: Config) -> Result<Running> {
    let listeners = bind_all(&cfg)?;
    let debug_listeners = bind_metrics(&cfg)?;
    let lock = lock_data_dir(&cfg)?;
    let absolute = std::path::absolute(&cfg.data_dir).unwrap_or_else(|_| cfg.data_dir.clone());
    for report in storage::tighten_modes(&Layout::new(absolute)) {
        log::warn!("{report}");
    }
    let db_connections = (cfg.workers as u32).clamp(4, 16);
    let store = crate::storage::s3::blobs::open_backend_redirecting(
        &cfg.data_dir,
        &cfg.blob_store,
        cfg.s3_redirect,
    )?;
    let mut registry = Registry::open_serving(
        &cfg.data_dir,
        cfg.delete_enabled,
        db_connections,
        store,
        &lock,
    )?;
    registry.check_no_unfinished_switch()?;
    registry.check_store_matches_record()?;
    registry.record_blob_store()?;
    registry.set_upload_limits(crate::registry::UploadLimits {
        max_blob_size: cfg.max_blob_size,
        disk_reserve: cfg.disk_reserve,
        max_sessions: cfg.max_upload_sessions,
        max_sessions_per_client: cfg.max_upload_sessions_per_client,
    });
    registry.set_audit_retention(cfg.audit);
    let registry = Arc::new(registry);
    registry.clean_upload_folder()?;
    let unlinked = registry.empty_trash()?;
    if unlinked > 0 {
        log::info!("finished an interrupted gc: unlinked {unlinked} blob file(s)");
    }
    if let Some(proxy) = &cfg.proxy {
        proxy.apply(&registry)?;
    }
    if let Some(path) = &cfg.htpasswd {
        let changed = registry.import_htpasswd(path)?;
        log::info!(
            "imported {changed} new or changed user(s) from {}",
            path.display()
        );
    }
    let (tls, ca_pem) = tls_setup(&cfg)?;
    let secure = tls.is_some();
    let server_cfg = ServerConfig {
        listeners,
        workers: cfg.workers.max(2),
        limits: cfg.http.clone(),
        tls,
    };
    let auth = AuthSettings {
        realm: cfg.realm.clone(),
        anonymous_pull: cfg.anonymous_pull,
        mode: cfg.auth_mode,
        token_realm: cfg.token_realm.clone(),
        public_host: {
            let host = cfg
                .hostnames
                .first()
                .map(String::as_str)
                .unwrap_or("localhost");
            match cfg.listen.first().map(|a| a.port()) {
                Some(0) | None => host.to_string(),
                Some(port) => format!("{host}:{port}"),
            }
        },
        limits: crate::auth::Limits {
            threads: cfg.auth_threads.max(1),
            queue: cfg.auth_queue(),
            ..crate::auth::Limits::default()
        },
    };
    crate::metrics::set_enabled(!cfg.metrics.off);
    let health = crate::api::HealthSettings {
        certificate: match &cfg.tls {
            TlsMode::Off => None,
            TlsMode::Auto => Some(Layout::new(&cfg.data_dir).tls_dir().join(layout::LEAF_CERT)),
            TlsMode::Files { cert, .. } => Some(cert.clone()),
        },
        metrics_off: cfg.metrics.off,
    };
    let api = Arc::new(
        Api::new(registry.clone(), ca_pem, auth)?
            .with_health(health)
            .with_gc_policy(cfg.gc_policy.clone())
            .with_workers(cfg.workers.max(2)),
    );
    let debug = match debug_listeners {
        None => None,
        Some(listeners) => {
            let mut debug_cfg = ServerConfig::new(listeners);
            debug_cfg.workers = 2;
            let handler = Arc::new(crate::api::DebugEndpoints(api.clone()));
            let started = Server::start(debug_cfg, handler)
                .map_err(|e| Error::io("starting the metrics listener", e))?;
            Some(started)
        }
    };
    let server =
        Server::start(server_cfg, api).map_err(|e| Error::io("starting the HTTP server", e))?;
    let addrs = server.local_addrs().to_vec();
    let gc = Periodic::gc(registry.clone(), &cfg);
    registry.discard_store_switch_request();
    let store_switch = Periodic::store_switch(registry.clone());
    registry.webhooks.set_source_addr(match addrs.first() {
        Some(a) => format!("{}:{}", public_host_name(&cfg), a.port()),
        None => public_host_name(&cfg),
    });
    let webhooks = crate::webhook::Delivery::start(registry.clone())
        .map_err(|e| Error::io("starting the webhook delivery thread", e))?;
    Ok(Running {
        server: Some(server),
        debug,
        registry,
        addrs,
        secure,
        gc,
        store_switch,
        webhooks: Some(webhooks),
        _lock: lock,
    })
}

/// The name events give as their source: the first `--hostname`, else the
/// machine's name.
fn public_host_name(cfg: &Config) -> String {
    crate::tls::default_names(&cfg.hostnames)
        .into_iter()
        .next()
        .unwrap_or_else(|| "localhost".to_string())
}

/// Bind every configured address (before anything touches the disk).
fn bind_all(cfg: &Config) -> Result<Vec<std::net::TcpListener>> {
    let mut listeners = Vec::new();
    for addr in &cfg.listen {
        match http::bind(*addr) {
            Ok(l) => listeners.push(l),
            // A host without IPv6 still serves IPv4 on the default `:5000`.
            Err(e)
                if addr.is_ipv6()
                    && addr.ip().is_unspecified()
                    && cfg.listen.len() > 1
                    && ipv6_missing(&e) =>
            {
                log::warn!("IPv6 is not available here ({e}); serving IPv4 only");
            }
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                return Err(Error::internal(format!(
                    "cannot listen on {addr}: the address is already in use (another server \
                     listens there); stop it or choose another address with --listen ADDR"
                )))
            }
            Err(e) => return Err(Error::io(format!("cannot listen on {addr}"), e)),
        }
    }
    Ok(listeners)
}

/// Bind the `--metrics-listen` addresses, if any.
fn bind_metrics(cfg: &Config) -> Result<Option<Vec<std::net::TcpListener>>> {
    if cfg.metrics.listen.is_empty() {
        return Ok(None);
    }
    let mut listeners = Vec::new();
    for addr in &cfg.metrics.listen {
        let l = http::bind(*addr)
            .map_err(|e| Error::io(format!("cannot listen on {addr} (--metrics-listen)"), e))?;
        listeners.push(l);
    }
    Ok(Some(listeners))
}

type TlsConfig = Arc<rustls::ServerConfig>;

/// The rustls configuration for the configured TLS mode, and the CA
/// certificate to serve at `/ca.crt` when soute runs its own CA.
fn tls_setup(cfg: &Config) -> Result<(Option<TlsConfig>, Option<Vec<u8>>)> {
    let tls_err = |e: tls::TlsError| Error::internal_from("TLS", e);
    match &cfg.tls {
        TlsMode::Off => Ok((None, None)),
        TlsMode::Auto => {
            let names = tls::default_names(&cfg.hostnames);
            let tls_dir = Layout::new(&cfg.data_dir).tls_dir();
            let files = tls::ensure_ca_and_leaf(&tls_dir, &names).map_err(tls_err)?;
            if files.ca_created {
                log::info!("created soute's own CA in {}", files.dir.display());
            }
            if files.leaf_issued {
                log::info!("issued a server certificate for {}", names.join(", "));
            }
            let resolver =
                Arc::new(tls::ReloadingResolver::new(&files.cert, &files.key).map_err(tls_err)?);
            let ca_pem = fs::read(&files.ca_cert).map_err(|e| Error::io("reading ca.crt", e))?;
            Ok((
                Some(tls::server_config(resolver).map_err(tls_err)?),
                Some(ca_pem),
            ))
        }
        TlsMode::Files { cert, key } => {
            let resolver = Arc::new(tls::ReloadingResolver::new(cert, key).map_err(tls_err)?);
            Ok((Some(tls::server_config(resolver).map_err(tls_err)?), None))
        }
    }
}

fn ipv6_missing(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EAFNOSUPPORT) | Some(libc::EADDRNOTAVAIL) | Some(libc::EPROTONOSUPPORT)
    )
}
