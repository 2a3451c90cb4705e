//! `s3` (issue L): the big blob pushed and pulled through soute on its local
//! folder, soute on a 3-node Garage cluster (replication factor 3, on
//! loopback) and CNCF distribution's S3 driver on the same cluster, in one
//! run; the memory each server's resident set grew by during the push.
//! The cluster is `tests/support/garage.rs` (the test suite's own); without
//! a garage binary the workload says so and adds no row.
//! Must NEVER contact a non-loopback address or leave a server running.

use crate::garage::{GarageCluster, BUCKET, REGION};
use crate::report::Target;
use crate::servers::{self, Mode2, Server};
use crate::work::Res;
use crate::workloads::{timed_pull, timed_push};
use crate::Ctx;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// distribution's config with the S3 driver on `endpoint` under `root`.
fn distribution_s3_config(dir: &Path, g: &GarageCluster, endpoint: &str, port: u16) -> PathBuf {
    let cfg = format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  s3:\n    accesskey: {}\n    secretkey: {}\n    region: {REGION}\n    regionendpoint: {endpoint}\n    bucket: {BUCKET}\n    rootdirectory: /bench-distribution\n    secure: false\n    v4auth: true\n  delete:\n    enabled: true\n  redirect:\n    disable: true\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: x\n",
        g.key_id, g.secret
    );
    let path = dir.join("config-s3.yml");
    std::fs::write(&path, cfg).expect("distribution s3 config");
    path
}

/// soute's `--blob-store s3` flags for the cluster (the keys in a 0600 file).
fn soute_s3_flags(dir: &Path, g: &GarageCluster, endpoint: &str) -> Vec<String> {
    let creds = dir.join("s3-credentials");
    std::fs::write(
        &creds,
        format!(
            "[default]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            g.key_id, g.secret
        ),
    )
    .expect("credentials file");
    std::fs::set_permissions(&creds, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    [
        "--blob-store",
        "s3",
        "--s3-endpoint",
        endpoint,
        "--s3-bucket",
        BUCKET,
        "--s3-prefix",
        "bench-soute",
        "--s3-region",
        REGION,
        "--s3-credentials-file",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([creds.display().to_string()])
    .collect()
}

/// Push then pull the big blob on `srv`: (push MB/s, pull MB/s, RSS growth
/// during the push in MiB).
fn push_pull(cx: &mut Ctx, srv: &Server, seed: u64) -> Res<(f64, f64, f64)> {
    let size = cx.sz.blob;
    let blob = cx.blob.as_mut().ok_or("no blob")?;
    let (rss0, _, _) = servers::mem_status(srv.pid());
    let (push, _, digest) = timed_push(srv, blob, seed, "bench/s3", None)?;
    let (_, hwm, _) = servers::mem_status(srv.pid());
    let (pull, _) = timed_pull(srv, "bench/s3", &digest, size)?;
    Ok((push, pull, hwm.saturating_sub(rss0) as f64 / 1024.0))
}

pub fn s3(cx: &mut Ctx, _: &[&Server]) -> Res<()> {
    let Some(bin) = crate::garage::find_garage() else {
        eprintln!("[s3] skipped: no garage binary (SOUTE_GARAGE, PATH or ~/.cache/soute-ci/garage/bin; `cargo install garage --locked`)");
        return Ok(());
    };
    let mib = cx.mib();
    eprintln!(
        "[s3] {mib} MiB blob: soute local, soute on Garage (3 nodes), distribution on Garage"
    );
    let garage = GarageCluster::start(bin);
    let endpoint = garage.endpoint(0);
    let dir = cx.root.join("s3");
    std::fs::create_dir_all(&dir)?;

    let local = servers::start_soute(&cx.bin, &dir.join("soute-local"), Mode2::Plain, 0);
    servers::wait_ready(&local.target, Duration::from_secs(10)).ok_or("soute did not start")?;
    let (local_push, local_pull, _) = push_pull(cx, &local, 41)?;
    local.stop();

    let flags = soute_s3_flags(&dir, &garage, &endpoint);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let soute = servers::start_soute_with(&cx.bin, &dir.join("soute-s3"), Mode2::Plain, 0, &flags);
    servers::wait_ready(&soute.target, Duration::from_secs(30)).ok_or("soute did not start")?;
    let s = push_pull(cx, &soute, 42)?;
    soute.stop();

    let port = servers::free_port();
    let config = distribution_s3_config(&dir, &garage, &endpoint, port);
    let dist = servers::spawn_distribution(&dir, &config, None, port);
    let d = push_pull(cx, &dist, 43)?;
    dist.stop();
    drop(garage);

    let rep = &mut cx.rep;
    rep.add(
        "s3_push_mb_s",
        &format!("push {mib} MiB to S3 (Garage, 3 nodes)"),
        "MB/s",
        Some(s.0),
        Some(d.0),
        Some(Target::RatioMin(1.5)),
    );
    rep.add(
        "s3_pull_mb_s",
        &format!("pull {mib} MiB from S3 (Garage, 3 nodes)"),
        "MB/s",
        Some(s.1),
        Some(d.1),
        Some(Target::RatioMin(1.0)),
    );
    rep.add(
        "s3_push_rss_growth_mb",
        &format!("RSS growth during the {mib} MiB S3 push"),
        "MB",
        Some(s.2),
        Some(d.2),
        None,
    );
    rep.add(
        "s3_vs_local_push",
        "soute S3 push / soute local push (same run)",
        "x",
        Some(s.0 / local_push),
        None,
        None,
    );
    rep.add(
        "s3_vs_local_pull",
        "soute S3 pull / soute local pull (same run)",
        "x",
        Some(s.1 / local_pull),
        None,
        None,
    );
    Ok(())
}
