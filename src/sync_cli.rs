//! `soute upstream sync NAME/REPO:TAG [--platform P]...`: open the existing
//! data folder as the other operator commands do (beside a running `serve`),
//! warm the cache through `PullThrough::sync`, and show what it fetched: a
//! progress bar on a terminal, one line per blob otherwise.
//!
//! It must never decide what to fetch (`upstream::sync` does) nor print a
//! credential.

use crate::ops_cli;
use soute::oci::{Reference, RepoName};
use soute::upstream::sync::SyncEvent;
use soute::upstream::PullThrough;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

pub fn sync(data_dir: &Path, repo: &str, reference: &str, platforms: &[String]) -> Res<()> {
    let repo = RepoName::parse(repo)?;
    let reference = Reference::parse(reference)?;
    let registry = Arc::new(ops_cli::open_existing(data_dir, 4, false)?);
    let pull = PullThrough::new(registry.clone());
    let started = Instant::now();
    let mut bar = None;
    let report = pull.sync(&repo, &reference, platforms, &mut |e| match e {
        SyncEvent::Manifest { what, .. } => println!("manifest {what}"),
        SyncEvent::Blobs { count, bytes } => {
            println!("{count} blob(s), {}", ops_cli::human(bytes));
            bar = ops_cli::bar(bytes, "sync");
        }
        SyncEvent::Blob {
            digest,
            bytes,
            fetched,
        } => {
            let line = format!(
                "{} blob {digest} ({})",
                if fetched { "fetched" } else { "cached already" },
                ops_cli::human(bytes)
            );
            match &bar {
                Some(pb) => {
                    pb.println(&line);
                    pb.inc(bytes);
                }
                None => println!("{line}"),
            }
        }
    });
    if let Some(pb) = bar {
        pb.finish_and_clear();
    }
    let r = report?;
    if !r.skipped_platforms.is_empty() {
        println!(
            "not fetched (other platforms; --platform P or --platform all): {}",
            r.skipped_platforms.join(", ")
        );
    }
    let sep = if matches!(reference, Reference::Digest(_)) {
        '@'
    } else {
        ':'
    };
    println!(
        "synced {repo}{sep}{reference} in {:.1} s: {} manifest(s), {} blob(s) ({}), {} fetched now ({})",
        started.elapsed().as_secs_f64(),
        r.manifests.len(),
        r.blobs,
        ops_cli::human(r.bytes),
        r.fetched_blobs,
        ops_cli::human(r.fetched_bytes)
    );
    Ok(())
}
