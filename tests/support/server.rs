//! soute started in-process on an ephemeral loopback port (127.0.0.1:0)
//! with its own temporary data folder, restartable on the same folder, and
//! stopped on drop.
//! Must NEVER listen on a non-loopback address or share a data folder
//! between two [`Soute`]s.

use soute::config::{Config, TlsMode};
use soute::registry::Registry;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Tweak = Box<dyn Fn(&mut Config) + Send>;

/// The configuration every test starts from: loopback, plain HTTP, deletes
/// on, no GC thread, 8 workers (the machine is shared).
pub fn base_config(dir: &Path) -> Config {
    let mut cfg = Config::for_data(dir);
    cfg.listen = vec!["127.0.0.1:0".parse().expect("addr")];
    cfg.tls = TlsMode::Off;
    cfg.hostnames = vec!["localhost".into()];
    cfg.delete_enabled = true;
    cfg.gc_interval = None;
    cfg.workers = 8;
    cfg
}

/// soute running in-process on its own temporary data folder. Stopped on drop.
pub struct Soute {
    dir: PathBuf,
    /// The temporary folder [`Soute::start`] made (removed on drop).
    _temp: Option<tempfile::TempDir>,
    tweak: Tweak,
    running: Option<soute::app::Running>,
}

impl Soute {
    /// [`base_config`] changed by `tweak` (kept for [`Soute::restart`]).
    pub fn start(tweak: impl Fn(&mut Config) + Send + 'static) -> Soute {
        let temp = tempfile::tempdir().expect("tempdir");
        let mut soute = Soute::start_at(temp.path(), tweak);
        soute._temp = Some(temp);
        soute
    }

    /// Like [`Soute::start`] on a data folder the caller owns (a tmpfs, a
    /// restored backup); the folder is left in place.
    pub fn start_at(dir: &Path, tweak: impl Fn(&mut Config) + Send + 'static) -> Soute {
        let tweak: Tweak = Box::new(tweak);
        let mut cfg = base_config(dir);
        tweak(&mut cfg);
        let running = soute::app::start(cfg).expect("soute::app::start");
        Soute {
            dir: dir.to_path_buf(),
            _temp: None,
            tweak,
            running: Some(running),
        }
    }

    /// [`base_config`] as is.
    pub fn plain() -> Soute {
        Soute::start(|_| {})
    }

    fn running(&self) -> &soute::app::Running {
        self.running.as_ref().expect("soute is running")
    }

    /// The data folder.
    pub fn data(&self) -> &Path {
        &self.dir
    }

    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.running().addrs().to_vec()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs()[0]
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    pub fn registry(&self) -> &Arc<Registry> {
        self.running().registry()
    }

    /// Stop and start again on the same folder (the ports change).
    pub fn restart(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
        let mut cfg = base_config(&self.dir);
        (self.tweak)(&mut cfg);
        self.running = Some(soute::app::start(cfg).expect("soute::app::start (restart)"));
    }

    /// `http://127.0.0.1:PORT` of the first listener.
    pub fn http_base(&self) -> String {
        format!("http://{}", self.addr())
    }

    /// `http://127.0.0.1:PORT{path}`.
    pub fn url(&self, path: &str) -> String {
        assert!(path.starts_with('/'), "paths start with /: {path}");
        format!("{}{path}", self.http_base())
    }

    /// `https://localhost:PORT` of the first listener.
    pub fn https_base(&self) -> String {
        format!("https://localhost:{}", self.port())
    }

    pub fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}

impl Drop for Soute {
    fn drop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown();
        }
    }
}
