//! `soute blobs migrate --to local|s3`: open the registry on the store it
//! uses, copy every blob into the target (`Registry::migrate_blobs`); when a
//! `serve` holds the folder, ask it to switch live (`request_store_switch`)
//! and copy what it published meanwhile; then record the target as the
//! store so gc, verify, du and backup use it. Progress bars on a terminal.
//!
//! It must never decide what is copied or verified (the registry does), nor
//! record the new store while a `serve` may still be pushing into the old one.

use crate::ops_cli::{bar, human, open_existing};
use soute::config::BlobStoreConfig;
use soute::registry::{MigrateProgress, Registry, SwitchOutcome};
use soute::storage::layout::Layout;
use std::fs::{File, OpenOptions};
use std::path::Path;
use std::sync::Mutex;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The data folder's serve lock, if no `serve` holds it (then no push can
/// land in the old store until this process ends).
fn try_serve_lock(data_dir: &Path) -> Res<Option<File>> {
    let path = Layout::new(data_dir).lock();
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("opening {}: {e}", path.display()))?;
    Ok(file.try_lock().is_ok().then_some(file))
}

/// The flags `serve` needs to use `target`.
fn serve_flags(target: &BlobStoreConfig) -> String {
    match target {
        BlobStoreConfig::Local => "--blob-store local (the default)".into(),
        BlobStoreConfig::S3(c) => {
            let mut s = format!(
                "--blob-store s3 --s3-endpoint {} --s3-bucket {}",
                c.endpoint, c.bucket
            );
            if !c.prefix.is_empty() {
                s.push_str(&format!(" --s3-prefix {}", c.prefix));
            }
            s.push_str(&format!(" --s3-region {}", c.region));
            s
        }
    }
}

/// One migration at a time per folder: a lock on the folder's `uploads/`
/// (where the staging files are), held until this process ends.
fn migration_lock(data_dir: &Path) -> Res<File> {
    let dir = Layout::new(data_dir).uploads_dir();
    let file = File::open(&dir).map_err(|e| format!("opening {}: {e}", dir.display()))?;
    if file.try_lock().is_err() {
        return Err(format!(
            "another `soute blobs migrate` is running on {}; wait for it",
            data_dir.display()
        )
        .into());
    }
    Ok(file)
}

pub fn migrate(
    data_dir: &Path,
    target: &BlobStoreConfig,
    credentials_file: Option<&Path>,
    json: bool,
) -> Res<()> {
    let registry = open_existing(data_dir, 4, false)?;
    if registry.store_is(target) {
        // Idempotent: a scripted rerun after the switch succeeds.
        println!(
            "blobs migrate: the blobs are already in {}: nothing to do",
            registry.store_description()
        );
        return Ok(());
    }
    let _one_at_a_time = migration_lock(data_dir)?;
    let lock = try_serve_lock(data_dir)?;
    let store = soute::storage::s3::blobs::open_backend(data_dir, target)?;
    if !json {
        eprintln!(
            "blobs migrate: from {} to {}{}",
            registry.store_description(),
            store.describe(),
            if lock.is_none() {
                " (soute serve is running: it serves from the old store until every blob is copied, then switches live)"
            } else {
                ""
            }
        );
    }
    let pb = Mutex::new(None);
    let progress = |p: MigrateProgress| {
        let mut pb = pb.lock().unwrap_or_else(|e| e.into_inner());
        match p {
            MigrateProgress::Pass { pass, blobs, bytes } => {
                if let Some(old) = pb.take() {
                    indicatif::ProgressBar::finish_and_clear(&old);
                }
                if !json {
                    eprintln!("pass {pass}: {blobs} blob(s), {} to copy", human(bytes));
                }
                *pb = if json { None } else { bar(bytes, "copying") };
            }
            MigrateProgress::Bytes(n) => {
                if let Some(pb) = pb.as_ref() {
                    pb.inc(n);
                }
            }
        }
    };
    let mut report = registry.migrate_blobs(&*store, &progress)?;
    let mut switched = false;
    let mut not_switched = None;
    // While serve runs, pushes may outpace the passes: once a pass copied
    // without failing, serve switches (new pushes then go to the target)
    // and the catch-up passes below converge.
    if report.failed.is_empty() && lock.is_none() {
        if !json {
            eprintln!("blobs migrate: asking soute serve to switch to the target live");
        }
        let told = |detail: &str| {
            if !json {
                eprintln!("  serve: {detail}");
            }
        };
        match registry.request_store_switch(target, credentials_file, &told)? {
            SwitchOutcome::Switched => {
                switched = true;
                // What serve published into the old store before it switched.
                let late = registry.migrate_blobs(&*store, &progress)?;
                report.merge(late);
            }
            SwitchOutcome::Refused(why) => not_switched = Some(why),
            SwitchOutcome::NoAnswer => {
                not_switched = Some("no soute serve took the request within 30 s".into())
            }
        }
    }
    if let Some(pb) = pb.into_inner().unwrap_or_else(|e| e.into_inner()) {
        pb.finish_and_clear();
    }
    let recorded = report.complete && (lock.is_some() || switched);
    if recorded {
        let again = soute::storage::s3::blobs::open_backend(data_dir, target)?;
        let recorder = Registry::open_with(data_dir, true, 2, again)?;
        recorder.record_blob_store()?;
        recorder.clear_store_switch_state()?;
        // A process without the serve lock (`soute upstream sync`) may have
        // committed a blob into the old store after the last pass: one more
        // pass, now that new processes open the target, copies it.
        let late = registry.migrate_blobs(&*store, &|_| {})?;
        report.merge(late);
    }
    if json {
        let mut v = serde_json::to_value(&report)?;
        v["recorded"] = serde_json::Value::Bool(recorded);
        v["switched_live"] = serde_json::Value::Bool(switched);
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        println!(
            "blobs migrate: {} blob(s): {} copied ({}), {} already there, {} gone meanwhile, {} failed",
            report.blobs,
            report.copied,
            human(report.copied_bytes),
            report.already_there,
            report.vanished,
            report.failed.len()
        );
        for f in &report.failed {
            println!("  failed: {f}");
        }
        if recorded && switched {
            println!(
                "  done: soute serve switched live to {}; every blob is there; gc, verify, du and backup use it now.\n  its next start needs: soute serve {} (the old store was left as it was)",
                report.to,
                serve_flags(target)
            );
        } else if recorded {
            println!(
                "  done: every blob is in {}; gc, verify, du and backup use it now.\n  start the registry with: soute serve {} (the old store was left as it was)",
                report.to,
                serve_flags(target)
            );
        } else if switched {
            println!(
                "  soute serve switched live to {}, but not every blob could be copied: fix what failed and run this command again (a serve restarted meanwhile refuses to start until it finishes)",
                report.to
            );
        } else if report.complete {
            println!(
                "  every blob is copied, but soute serve did not switch ({}) and may push more into the old store:\n  stop it, run this command again (it copies only what came since), then start soute serve {}",
                not_switched.as_deref().unwrap_or("it is running"),
                serve_flags(target)
            );
        }
    }
    if switched && !recorded {
        Err("soute serve switched, but the store was not recorded; run the command again".into())
    } else if report.failed.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} blob(s) were not copied; run the command again once fixed",
            report.failed.len()
        )
        .into())
    }
}
