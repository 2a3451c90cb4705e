//! registry::store_switch: a live blob-store switch between `soute blobs
//! migrate` and the `serve` running on the same data folder.
//!
//! Once every blob is copied, the migration writes a request file
//! (`store-switch.json`, 0600, created anew: the target store and, for S3,
//! the path of its `--s3-credentials-file`, or the keys themselves when it
//! had them from the environment, since serve may have none). Serve's watcher
//! ([`Registry::take_store_switch`], twice a second) reads and deletes it,
//! opens and probes the target, switches (`storage::switch`: publishes go to
//! the target, reads fall back to the old store) and answers in the setting
//! `blob_store_switch`: `switching`, then `done` once no publish into the
//! old store is left (`stuck` if some still run after an hour), or `failed`
//! with the reason. The migration then copies what came in meanwhile,
//! records the new store and clears the setting (`blobs_cli`); a serve that
//! starts while it still says a switch happened refuses, as neither store
//! alone then holds every blob. Serve also removes a request at start, and
//! ignores one older than the migration waits for.
//!
//! It must never copy blobs nor record the store, and the credentials must
//! never be written anywhere but the request file, which lives only until
//! serve reads it (or the migration gives up waiting).

use super::Registry;
use crate::config::BlobStoreConfig;
use crate::db::settings;
use crate::error::{Error, Result};
use crate::storage::backend::BlobBackend as _;
use crate::storage::layout::{Layout, FILE_MODE};
use crate::storage::s3::config::Credentials;
use crate::storage::s3::S3Config;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Where serve answers a switch request.
const STATE_SETTING: &str = "blob_store_switch";
/// How long the migration waits for serve to take the request.
const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// How long serve waits for publishes into the old store to finish.
pub const DRAIN_WAIT: Duration = Duration::from_secs(3600);
/// While switching, serve rewrites its answer every
/// [`crate::storage::switch::TELL_EVERY`]; a migration that hears nothing
/// for this long (seconds) gives up waiting.
const SILENCE_SECS: i64 = 30;
/// A request file larger than this is not one the migration wrote.
const MAX_REQUEST: u64 = 64 * 1024;

/// How a live switch request ended.
#[derive(Debug, PartialEq)]
pub enum SwitchOutcome {
    /// Serve uses the target; nothing publishes into the old store any more.
    Switched,
    /// Serve could not use the target (the reason).
    Refused(String),
    /// No serve took the request (an older soute, or serve is stuck).
    NoAnswer,
}

/// The request: the target and where serve finds its credentials (the
/// migration's `--s3-credentials-file` when it had one, else the keys).
fn request_json(id: &str, target: &BlobStoreConfig, credentials_file: Option<&Path>) -> Value {
    match target {
        BlobStoreConfig::Local => json!({"id": id, "to": "local"}),
        BlobStoreConfig::S3(c) => {
            let mut v = json!({
                "id": id,
                "to": "s3",
                "endpoint": c.endpoint,
                "bucket": c.bucket,
                "prefix": c.prefix,
                "region": c.region,
            });
            match credentials_file {
                Some(f) => v["credentials_file"] = json!(f.to_string_lossy()),
                None => {
                    v["access_key_id"] = json!(c.credentials.access_key_id);
                    v["secret_access_key"] = json!(c.credentials.secret_access_key);
                }
            }
            v
        }
    }
}

fn parse_request(v: &Value) -> std::result::Result<(String, BlobStoreConfig), String> {
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("the switch request lacks {k}"))
    };
    let id = text("id")?;
    let target = match text("to")?.as_str() {
        "local" => BlobStoreConfig::Local,
        "s3" if v.get("credentials_file").is_some() => {
            let flags = crate::storage::s3::S3Flags {
                endpoint: Some(text("endpoint")?),
                bucket: Some(text("bucket")?),
                prefix: Some(text("prefix")?),
                region: Some(text("region")?),
                credentials_file: Some(text("credentials_file")?.into()),
            };
            BlobStoreConfig::S3(S3Config::resolve(&flags, &|_| None)?)
        }
        "s3" => BlobStoreConfig::S3(S3Config {
            endpoint: text("endpoint")?,
            bucket: text("bucket")?,
            prefix: text("prefix")?,
            region: text("region")?,
            credentials: Credentials {
                access_key_id: text("access_key_id")?,
                secret_access_key: text("secret_access_key")?,
            },
        }),
        other => return Err(format!("the switch request names store {other:?}")),
    };
    Ok((id, target))
}

impl Registry {
    fn switch_state(&self) -> Result<Option<Value>> {
        let v = self.db.read(|c| settings::setting(c, STATE_SETTING))?;
        Ok(v.and_then(|v| serde_json::from_str(&v).ok()))
    }

    /// Answer request `id`; `to` describes its target (no secret).
    fn set_switch_state(&self, id: &str, state: &str, detail: &str, to: &str) {
        let at = crate::db::now();
        let v =
            json!({"id": id, "state": state, "detail": detail, "store": to, "at": at}).to_string();
        if let Err(e) = self
            .db
            .write(|tx| settings::set_setting(tx, STATE_SETTING, &v))
        {
            log::error!("could not record the blob store switch's state {state}: {e}");
        }
    }

    /// The migration's side: ask the `serve` holding this folder to switch
    /// to `target` and wait for its answer; `told` hears serve's progress.
    pub fn request_store_switch(
        &self,
        target: &BlobStoreConfig,
        credentials_file: Option<&Path>,
        told: &dyn Fn(&str),
    ) -> Result<SwitchOutcome> {
        let path = Layout::new(&self.data_dir).store_switch_request();
        // A leftover belongs to a migration that died (one runs at a time).
        let _ = std::fs::remove_file(&path);
        let id = crate::oci::UploadId::random()?.as_str().to_string();
        let body = request_json(&id, target, credentials_file).to_string();
        let write = || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(FILE_MODE)
                .open(&path)?;
            f.write_all(body.as_bytes())?;
            f.sync_all()
        };
        write().map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        let asked = Instant::now();
        let mut last_detail = String::new();
        loop {
            std::thread::sleep(Duration::from_millis(100));
            let state = self.switch_state()?.filter(|s| s["id"] == id.as_str());
            let Some(state) = state else {
                if asked.elapsed() >= ANSWER_WAIT {
                    match std::fs::remove_file(&path) {
                        // Still there: no serve took it.
                        Ok(()) => return Ok(SwitchOutcome::NoAnswer),
                        // Taken just now: its answer follows.
                        Err(_) => continue,
                    }
                }
                continue;
            };
            let detail = state["detail"].as_str().unwrap_or_default().to_string();
            // While it waits for publishes, serve rewrites its answer every
            // few seconds: silence means it stopped in the middle.
            let age = crate::db::now() - state["at"].as_i64().unwrap_or(0);
            if state["state"] == "switching" && age > SILENCE_SECS {
                return Err(Error::internal(format!(
                    "soute serve stopped answering during the switch (last heard {age} s ago); run this command again once serve runs, or with serve stopped"
                )));
            }
            match state["state"].as_str() {
                Some("done") => return Ok(SwitchOutcome::Switched),
                Some("failed") => return Ok(SwitchOutcome::Refused(detail)),
                Some("stuck") => return Err(Error::internal(detail)),
                _ if detail != last_detail => {
                    told(&detail);
                    last_detail = detail;
                }
                _ => {}
            }
        }
    }

    /// The migration's end: the target is recorded, the switch is over.
    pub fn clear_store_switch_state(&self) -> Result<()> {
        self.db
            .write(|tx| settings::delete_setting(tx, STATE_SETTING))
    }

    /// Serve's start: refuse when a live switch happened but its migration
    /// did not record the new store (it stopped after the switch): blobs
    /// pushed since are only in the new store, so neither store alone is
    /// complete until the migration is run again.
    pub fn check_no_unfinished_switch(&self) -> Result<()> {
        let Some(state) = self.switch_state()? else {
            return Ok(());
        };
        match state["state"].as_str() {
            Some("switching" | "done" | "stuck") => Err(Error::internal(format!(
                "a live switch of the blob store to {} did not finish (its `soute blobs migrate` stopped before recording it); run that `soute blobs migrate --to ...` again with serve stopped to finish it",
                state["store"].as_str().unwrap_or("another store")
            ))),
            _ => Ok(()),
        }
    }

    /// Serve's start: a request left by a migration that is no longer
    /// waiting for its answer is removed, never acted on (its catch-up and
    /// record would not follow).
    pub fn discard_store_switch_request(&self) {
        let path = Layout::new(&self.data_dir).store_switch_request();
        if std::fs::remove_file(&path).is_ok() {
            log::warn!(
                "removed a stale blob store switch request ({})",
                path.display()
            );
        }
    }

    /// Serve's side, called by its watcher: take a switch request if there
    /// is one, switch, and answer (see the module). Returns whether it switched.
    pub fn take_store_switch(&self) -> bool {
        let path = Layout::new(&self.data_dir).store_switch_request();
        let stale = std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t.elapsed().is_ok_and(|age| age > ANSWER_WAIT));
        if stale {
            // Its migration stopped waiting: never switch without it.
            self.discard_store_switch_request();
            return false;
        }
        let mut text = String::new();
        let read =
            std::fs::File::open(&path).and_then(|f| f.take(MAX_REQUEST).read_to_string(&mut text));
        match read {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return false,
            Err(e) => {
                log::warn!("reading {}: {e}", path.display());
                let _ = std::fs::remove_file(&path);
                return false;
            }
        }
        // Taken: the credentials do not stay on disk.
        let _ = std::fs::remove_file(&path);
        let parsed = serde_json::from_str::<Value>(&text)
            .map_err(|e| format!("the switch request is not JSON: {e}"))
            .and_then(|v| parse_request(&v));
        let (id, target) = match parsed {
            Ok(p) => p,
            Err(e) => {
                log::warn!("ignored {}: {e}", path.display());
                return false;
            }
        };
        if self.store_is(&target) {
            // A rerun after a switch whose wait for old publishes timed out.
            let (state, detail) = if self.store.switched() {
                ("done", "serve already uses that store")
            } else {
                ("failed", "serve already uses that store")
            };
            self.set_switch_state(&id, state, detail, &self.store.describe());
            return false;
        }
        let store = match crate::storage::s3::blobs::open_backend(&self.data_dir, &target) {
            Ok(s) => s,
            Err(e) => {
                log::error!("blob store switch refused: {e}");
                self.set_switch_state(&id, "failed", &format!("serve cannot use it: {e}"), "");
                return false;
            }
        };
        let from = self.store.describe();
        let to = store.describe();
        self.set_switch_state(
            &id,
            "switching",
            "waiting for publishes into the old store",
            &to,
        );
        let waiting = |n: usize| {
            self.set_switch_state(
                &id,
                "switching",
                &format!("waiting for {n} publish(es) into the old store"),
                &to,
            )
        };
        match self.store.switch_to(store, DRAIN_WAIT, &waiting) {
            Ok(true) => {
                log::info!("blob store switched live from {from} to {to}; blobs not copied yet are read from the old store");
                self.set_switch_state(&id, "done", &to, &to);
                true
            }
            Ok(false) => {
                log::error!("blob store switched to {to}, but publishes into {from} did not finish within an hour");
                self.set_switch_state(
                    &id,
                    "stuck",
                    "serve switched, but publishes into the old store did not finish within an hour; serve reads both stores: rerun this command later to finish",
                    &to,
                );
                true
            }
            Err(e) => {
                self.set_switch_state(&id, "failed", &e.to_string(), "");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_with_its_credentials_and_bad_ones_are_named() {
        let s3 = BlobStoreConfig::S3(S3Config {
            endpoint: "http://127.0.0.1:3900".into(),
            bucket: "b".into(),
            prefix: "p".into(),
            region: "garage".into(),
            credentials: Credentials {
                access_key_id: "GK1".into(),
                secret_access_key: "s3cret".into(),
            },
        });
        for target in [BlobStoreConfig::Local, s3] {
            let (id, back) = parse_request(&request_json("x1", &target, None)).expect("parse");
            assert_eq!((id.as_str(), &back), ("x1", &target));
        }
        // With a credentials file, the request names it and holds no key.
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("creds");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = GK2\naws_secret_access_key = filed\n",
        )
        .expect("write");
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let s3 = BlobStoreConfig::S3(S3Config {
            endpoint: "http://127.0.0.1:3900".into(),
            bucket: "bucket-b".into(),
            prefix: "p".into(),
            region: "garage".into(),
            credentials: Credentials {
                access_key_id: "GK2".into(),
                secret_access_key: "filed".into(),
            },
        });
        let v = request_json("x2", &s3, Some(&file));
        assert!(!v.to_string().contains("filed"), "no secret: {v}");
        assert_eq!(parse_request(&v).expect("parse").1, s3);
        let e = parse_request(&json!({"id": "x", "to": "s3", "bucket": "b"})).expect_err("refused");
        assert!(e.contains("endpoint"), "{e}");
        let e = parse_request(&json!({"id": "x", "to": "ftp"})).expect_err("refused");
        assert!(e.contains("ftp"), "{e}");
    }
}
