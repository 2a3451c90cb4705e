//! The operator commands of the binary (`gc`, `backup`, `verify`, `du`): open
//! the registry without the serve lock (they run beside `serve`), call it,
//! and print. Progress bars on a terminal, plain log lines otherwise.
//!
//! It must never contain registry rules: it only renders what the registry reports.

use indicatif::{ProgressBar, ProgressStyle};
use soute::registry::{BackupProgress, GcPolicy, GcReport, Registry, Usage, VerifyProgress};
use soute::storage::layout::Layout;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// `path` made absolute against the current folder (for messages: the
/// operator sees exactly which folder was looked at).
pub fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Open an existing registry folder; never create one (only `serve` does).
/// With `init_existing_folder` (`user add`), a folder the operator made but
/// nothing used yet gets its (empty) registry, so users can be added before
/// the first `serve`.
pub fn open_existing(
    data_dir: &Path,
    db_connections: u32,
    init_existing_folder: bool,
) -> Res<Registry> {
    let has_registry = Layout::new(data_dir).db().is_file();
    let may_init = init_existing_folder && data_dir.is_dir();
    if !has_registry && !may_init {
        let what = if data_dir.is_dir() {
            "holds no registry (no soute.db)"
        } else {
            "does not exist"
        };
        return Err(format!(
            "the data folder {} {what}; only `soute serve` creates one. Point at another \
             folder with --data DIR or REGISTRY_STORAGE_FILESYSTEM_ROOTDIRECTORY",
            absolute(data_dir).display()
        )
        .into());
    }
    let registry = Registry::open(data_dir, true, db_connections)?;
    // The blob store `serve` recorded: never the local blobs/ of an S3 registry.
    let Some(flags) = registry.recorded_s3_store()? else {
        return Ok(registry);
    };
    drop(registry);
    let env = |k: &str| std::env::var(k).ok();
    let config = soute::storage::s3::S3Config::resolve(&flags, &env)
        .map_err(|e| format!("this registry keeps its blobs in S3: {e}"))?;
    let choice = soute::config::BlobStoreConfig::S3(config);
    let store = soute::storage::s3::blobs::open_backend(data_dir, &choice)?;
    Ok(Registry::open_with(data_dir, true, db_connections, store)?)
}

fn open(data_dir: &Path) -> Res<Registry> {
    open_existing(data_dir, 4, false)
}

/// `1234567` as `1.2 MiB`.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// A byte progress bar on a terminal; `None` (log lines instead) otherwise.
pub fn bar(total: u64, what: &str) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        eprintln!("{what}: {} to process", human(total));
        return None;
    }
    let pb = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb.set_message(what.to_string());
    Some(pb)
}

/// Plain progress lines at most every 5 s when there is no terminal.
struct Ticker {
    done: u64,
    total: u64,
    last: Instant,
    what: &'static str,
}

impl Ticker {
    fn add(&mut self, n: u64) {
        self.done += n;
        if self.last.elapsed().as_secs() >= 5 {
            eprintln!("{}: {}/{}", self.what, human(self.done), human(self.total));
            self.last = Instant::now();
        }
    }
}

pub fn gc(data_dir: &Path, policy: &GcPolicy, json: bool) -> Res<()> {
    let mut registry = open(data_dir)?;
    // Retention's audit events are written here; the log's limits are the
    // server's (`--audit-keep`, `--audit-days`), which this process does not know.
    registry.set_audit_retention(soute::registry::AuditRetention {
        keep: u64::MAX,
        days: None,
    });
    let report = registry.gc_recorded(policy)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_gc(&report);
    }
    Ok(())
}

fn print_gc(r: &GcReport) {
    let verb = if r.dry_run { "would free" } else { "freed" };
    println!(
        "gc{}: {verb} {} ({} bytes): {} blob(s), {} manifest(s), {} link(s), {} expired upload(s)",
        if r.dry_run { " (dry run)" } else { "" },
        human(r.freed_bytes),
        r.freed_bytes,
        r.blobs_deleted.len(),
        r.manifests_deleted.len(),
        r.links_removed.len(),
        r.uploads_expired.len()
    );
    let gone = if r.dry_run { "would delete" } else { "deleted" };
    for item in r
        .manifests_deleted
        .iter()
        .chain(&r.blobs_deleted)
        .chain(&r.uploads_expired)
    {
        println!("  {gone} {} ({})", item.what, human(item.bytes));
    }
    for item in &r.links_removed {
        println!("  {gone} {}", item.what);
    }
    let evict = if r.dry_run { "would evict" } else { "evicted" };
    for e in &r.evicted {
        println!(
            "  {evict} cached {} ({}, last pulled {}): {}",
            e.what,
            human(e.bytes),
            soute::clock::rfc3339(e.last_pulled),
            e.reason
        );
    }
    for k in &r.kept {
        println!("  kept {}: {}", k.what, k.reason);
    }
    for v in &r.retention {
        println!(
            "  tag {}:{} (rule {}) {}",
            v.repository, v.tag, v.rule, v.reason
        );
    }
}

pub fn backup(data_dir: &Path, dest: &Path, with_blobs: bool) -> Res<()> {
    let registry = open(data_dir)?;
    // A relative DEST is relative to the current folder (as the help says).
    let dest = absolute(dest);
    let started = Instant::now();
    let mut pb: Option<ProgressBar> = None;
    let mut ticker = Ticker {
        done: 0,
        total: 0,
        last: Instant::now(),
        what: "backup",
    };
    let report = registry.backup(&dest, with_blobs, &mut |p| match p {
        BackupProgress::Blobs { count, bytes } => {
            eprintln!("backup: database snapshot taken; {count} blob(s) to copy or list");
            ticker.total = bytes;
            pb = bar(bytes, "backup");
        }
        BackupProgress::Blob { bytes } => match &pb {
            Some(pb) => pb.inc(bytes),
            None => ticker.add(bytes),
        },
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let ok = report.as_ref().is_ok_and(|r| r.problems.is_empty());
    registry.record_run(soute::registry::Job::Backup, ok);
    let report = report?;
    println!(
        "backup of {} written to {} in {:.1} s: {} blob(s), {} ({} hard-linked, {} copied), {} TLS file(s); check with `soute verify --data {}`",
        data_dir.display(),
        report.dest.display(),
        started.elapsed().as_secs_f64(),
        report.blobs,
        human(report.blob_bytes),
        report.linked,
        report.copied,
        report.tls_files,
        report.dest.display()
    );
    if report.listed > 0 {
        println!(
            "  {} object(s) of the S3 store listed in {}/OBJECTS, not copied (--with-blobs copies them); serve it with `soute serve --data {} --blob-store s3 ...` on the same bucket",
            report.listed,
            report.dest.display(),
            report.dest.display()
        );
    }
    if !report.problems.is_empty() {
        for p in &report.problems {
            eprintln!("problem: {p}");
        }
        return Err(format!("{} problem(s) in the source", report.problems.len()).into());
    }
    Ok(())
}

pub fn verify(data_dir: &Path, repair: bool, deep: bool, json: bool) -> Res<()> {
    let registry = open(data_dir)?;
    let mut pb: Option<ProgressBar> = None;
    let mut ticker = Ticker {
        done: 0,
        total: 0,
        last: Instant::now(),
        what: "verify",
    };
    let shallow = registry.store_is_remote() && !deep;
    let report = registry.verify(repair, deep, &mut |p| match p {
        VerifyProgress::Start { blobs, bytes } => {
            if shallow {
                eprintln!(
                    "verify: checking {blobs} object(s) by name and size (--deep re-hashes them)"
                );
            } else {
                eprintln!("verify: re-hashing {blobs} blob(s)");
            }
            ticker.total = bytes;
            pb = bar(bytes, "verify");
        }
        VerifyProgress::Bytes(n) => match &pb {
            Some(pb) => pb.inc(n),
            None => ticker.add(n),
        },
    });
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    let ok = report.as_ref().is_ok_and(|r| r.problems.is_empty());
    registry.record_run(soute::registry::Job::Verify, ok);
    let r = report?;
    if json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        println!(
            "verify: {} blob(s) checked, {} ({}) re-hashed, {} manifest(s) checked: {} problem(s), {} orphan file(s)",
            r.blobs_checked,
            r.blobs_hashed,
            human(r.bytes_hashed),
            r.manifests_checked,
            r.problems.len(),
            r.orphans.len()
        );
        if r.cached_refs_not_pulled > 0 {
            println!(
                "  {} reference(s) of cached images point at content no client pulled yet (fetched when asked)",
                r.cached_refs_not_pulled
            );
        }
        for p in &r.problems {
            println!("  problem: {p}");
        }
        for o in &r.orphans {
            println!("  orphan: {o}");
        }
        for f in &r.repaired {
            println!("  repaired: {f}");
        }
        for a in &r.advice {
            println!("  to do: {a}");
        }
        if !repair && !r.orphans.is_empty() {
            println!("  orphan files are harmless; `soute verify --repair` removes them");
        }
    }
    if r.problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{} problem(s) remain", r.problems.len()).into())
    }
}

pub fn du(
    data_dir: &Path,
    repo: Option<&str>,
    tag: Option<&str>,
    policy: &GcPolicy,
    json: bool,
) -> Res<()> {
    let registry = open(data_dir)?;
    let repo = repo.map(soute::oci::RepoName::parse).transpose()?;
    let tag = tag.map(soute::oci::Tag::parse).transpose()?;
    let usage = registry.du(repo.as_ref(), tag.as_ref(), policy)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&usage)?);
    } else {
        print_du(
            &usage,
            repo.as_ref().map(|r| r.as_str()),
            tag.as_ref().map(|t| t.as_str()),
        );
    }
    Ok(())
}

fn print_du(u: &Usage, repo: Option<&str>, tag: Option<&str>) {
    println!(
        "{:<40} {:>11} {:>11} {:>11} {:>11}  CACHED FROM",
        "REPOSITORY", "LOGICAL", "UNIQUE", "SHARED", "RECLAIMABLE"
    );
    for r in &u.repositories {
        println!(
            "{:<40} {:>11} {:>11} {:>11} {:>11}  {}",
            r.name,
            human(r.logical_bytes),
            human(r.unique_bytes),
            human(r.shared_bytes),
            human(r.reclaimable_bytes),
            r.cached_from.as_deref().unwrap_or("-")
        );
    }
    let t = &u.total;
    println!(
        "total stored: {} in {} blob(s), {} in {} manifest(s), {} in upload sessions",
        human(t.blob_bytes),
        t.blobs,
        human(t.manifest_bytes),
        t.manifests,
        human(t.upload_bytes)
    );
    println!(
        "private: {} ({} bytes); cached from upstreams: {} ({} bytes); unreferenced: {} ({} bytes)",
        human(t.private_bytes),
        t.private_bytes,
        human(t.cached_bytes),
        t.cached_bytes,
        human(t.unreferenced_bytes),
        t.unreferenced_bytes
    );
    println!(
        "partial pull-through downloads (upstream-partial/): {} ({} bytes) in {} file(s)",
        human(t.partial_download_bytes),
        t.partial_download_bytes,
        t.partial_downloads
    );
    for up in &u.upstreams {
        let limit = up.max_bytes.map_or("no --max-bytes".into(), |m| {
            format!("--max-bytes {}", human(m))
        });
        let age = up
            .evict_after_secs
            .map_or(String::new(), |s| format!(", --evict-after {s} s"));
        let state = if up.configured {
            ""
        } else {
            " (upstream deleted: read-only)"
        };
        println!(
            "  upstream {}: {} cached, {limit}{age}{state}",
            up.name,
            human(up.cached_bytes)
        );
    }
    println!(
        "reclaimable by `soute gc` now: {} ({} bytes)",
        human(t.reclaimable_bytes),
        t.reclaimable_bytes
    );
    for v in &u.retention_removes {
        println!(
            "  includes {}:{} ({}): retention rule {}, {}",
            v.repository, v.tag, v.digest, v.rule, v.reason
        );
    }
    if let (Some(repo), Some(n)) = (repo, u.repository_delete_frees_bytes) {
        println!("deleting {repo} would free {} after gc", human(n));
    }
    if let (Some(repo), Some(tag), Some(n)) = (repo, tag, u.tag_delete_frees_bytes) {
        println!(
            "deleting {repo}:{tag} would free {} after `gc --delete-untagged`",
            human(n)
        );
    }
}
