//! cli::blob_store: `serve`'s `--blob-store local|s3` and `--s3-*` flags,
//! resolved with the environment (`REGISTRY_STORAGE_S3_*`, `AWS_*`) by
//! `S3Config::resolve`.
//!
//! It must never open a connection nor print a secret: it only builds the
//! `BlobStoreConfig`.

use super::args::Args;
use super::spec::{usage, UsageError};
use crate::config::BlobStoreConfig;
use crate::storage::s3::{S3Config, S3Flags};
use std::path::PathBuf;

/// The `--s3-*` flags (each needs `--blob-store s3`).
const S3_FLAGS: [&str; 5] = [
    "--s3-endpoint",
    "--s3-bucket",
    "--s3-prefix",
    "--s3-region",
    "--s3-credentials-file",
];

/// `--blob-store` and the `--s3-*` flags; `REGISTRY_STORAGE=s3` (distribution's
/// driver name) chooses S3 when the flag is absent.
pub(super) fn parse(
    args: &Args,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(BlobStoreConfig, bool), UsageError> {
    let chosen = match args.value("--blob-store") {
        Some(v) => v.to_string(),
        None => env("REGISTRY_STORAGE")
            .filter(|v| v == "s3")
            .unwrap_or_else(|| "local".into()),
    };
    let redirect = args.has("--s3-redirect");
    let store = resolve("--blob-store", &chosen, args, env)?;
    if redirect && store == BlobStoreConfig::Local {
        return Err(usage("--s3-redirect goes with --blob-store s3"));
    }
    Ok((store, redirect))
}

/// `soute blobs migrate --to local|s3` and the `--s3-*` flags of the target.
pub(super) fn parse_target(
    args: &Args,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BlobStoreConfig, UsageError> {
    let chosen = args
        .value("--to")
        .ok_or_else(|| usage("soute blobs migrate needs --to local or --to s3"))?;
    resolve("--to", chosen, args, env)
}

/// The store `chosen` (`local` or `s3`) names; `flag` is the flag that chose it.
fn resolve(
    flag: &str,
    chosen: &str,
    args: &Args,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<BlobStoreConfig, UsageError> {
    match chosen {
        "local" => {
            if let Some(f) = S3_FLAGS.iter().find(|f| args.value(f).is_some()) {
                return Err(usage(format!("{f} goes with {flag} s3")));
            }
            Ok(BlobStoreConfig::Local)
        }
        "s3" => {
            let flags = S3Flags {
                endpoint: args.value("--s3-endpoint").map(str::to_string),
                bucket: args.value("--s3-bucket").map(str::to_string),
                prefix: args.value("--s3-prefix").map(str::to_string),
                region: args.value("--s3-region").map(str::to_string),
                credentials_file: args.value("--s3-credentials-file").map(PathBuf::from),
            };
            let config = S3Config::resolve(&flags, env)
                .map_err(|e| usage(e.replace("--blob-store s3", &format!("{flag} s3"))))?;
            Ok(BlobStoreConfig::S3(config))
        }
        other => Err(usage(format!("{flag}: {other:?}: write local or s3"))),
    }
}
