//! The it_s3 binary's object store: one 3-node Garage cluster
//! (`support/garage.rs`), started on the first registry. Statics are never
//! dropped, so a watchdog (`sh`, reading a pipe only this process holds)
//! SIGKILLs the nodes and removes their folder when the test binary exits.
//! Each registry's blobs go under their own prefix, derived from its data
//! folder so a restart finds them again.
//! Must NEVER contact a non-loopback address or leave garage running.

use crate::garage::{garage_or_skip, GarageCluster, BUCKET, REGION};
use crate::support::Deadline;
use soute::config::{BlobStoreConfig, Config};
use soute::storage::s3::check::startup_check;
use soute::storage::s3::config::Credentials;
use soute::storage::s3::{S3Client, S3Config};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

static CLUSTER: Mutex<Option<GarageCluster>> = Mutex::new(None);
/// The watchdog, whose stdin the OS closes when this process exits.
static WATCHDOG: Mutex<Option<std::process::Child>> = Mutex::new(None);
/// (endpoint of node 0, key id, secret) once the cluster serves S3.
static ACCESS: OnceLock<(String, String, String)> = OnceLock::new();

/// The S3 configuration of the shared cluster with `prefix`.
pub fn config(prefix: &str) -> S3Config {
    let (endpoint, key, secret) = ACCESS.get_or_init(start);
    S3Config {
        endpoint: endpoint.clone(),
        bucket: BUCKET.to_string(),
        prefix: prefix.to_string(),
        region: REGION.to_string(),
        credentials: Credentials {
            access_key_id: key.clone(),
            secret_access_key: secret.clone(),
        },
    }
}

/// The harness's hook: blobs of this registry on the cluster, under a
/// prefix named after its data folder.
pub fn configure(cfg: &mut Config) {
    let name = cfg
        .data_dir
        .file_name()
        .map(|n| n.to_string_lossy().trim_start_matches('.').to_string())
        .unwrap_or_else(|| "registry".into());
    let prefix = format!("it-{}/{name}", std::process::id());
    cfg.blob_store = BlobStoreConfig::S3(config(&prefix));
}

/// A cluster of the caller's own (for tests that kill a node), ready to
/// serve S3, with the configuration of node 0 under `prefix`.
pub fn own_cluster(prefix: &str) -> (GarageCluster, S3Config) {
    let cluster = GarageCluster::start(garage_bin());
    let config = S3Config {
        endpoint: cluster.endpoint(0),
        bucket: BUCKET.to_string(),
        prefix: prefix.to_string(),
        region: REGION.to_string(),
        credentials: Credentials {
            access_key_id: cluster.key_id.clone(),
            secret_access_key: cluster.secret.clone(),
        },
    };
    wait_ready(&config);
    (cluster, config)
}

fn garage_bin() -> std::path::PathBuf {
    garage_or_skip("it_s3").unwrap_or_else(|| {
        panic!("it_s3 runs the it suite on Garage: install garage (see tests/support/garage.rs)")
    })
}

/// Waits (at most 90 s) until the start-up check passes on `config`.
fn wait_ready(config: &S3Config) {
    let probe = S3Client::new(config.clone()).expect("client");
    let d = Deadline::after(Duration::from_secs(90));
    loop {
        match startup_check(&probe) {
            Ok(()) => return,
            Err(e) if !d.left() => panic!("garage never became usable: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

fn start() -> (String, String, String) {
    let cluster = GarageCluster::start(garage_bin());
    let access = (
        cluster.endpoint(0),
        cluster.key_id.clone(),
        cluster.secret.clone(),
    );
    let (pids, dir) = cluster.pids_and_dir();
    *CLUSTER.lock().unwrap_or_else(|p| p.into_inner()) = Some(cluster);
    let watchdog = Command::new("sh")
        .arg("-c")
        .arg(r#"read _ignored; d="$1"; shift; kill -9 "$@"; sleep 1; rm -rf "$d""#)
        .arg("garage-watchdog")
        .arg(&dir)
        .args(pids.iter().map(u32::to_string))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the garage watchdog");
    *WATCHDOG.lock().unwrap_or_else(|p| p.into_inner()) = Some(watchdog);
    wait_ready(&S3Config {
        endpoint: access.0.clone(),
        bucket: BUCKET.to_string(),
        prefix: "it-probe".into(),
        region: REGION.to_string(),
        credentials: Credentials {
            access_key_id: access.1.clone(),
            secret_access_key: access.2.clone(),
        },
    });
    access
}
