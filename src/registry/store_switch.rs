//! registry::store_switch: a live blob-store switch between `soute blobs
//! migrate` and the `serve` running on the same data folder.
//!
//! Once every blob is copied, the migration writes a request file
//! (`store-switch.json`, 0600, created anew: the target store and, for S3,
//! its credentials, since serve may have none). Serve's watcher
//! ([`Registry::take_store_switch`], twice a second) reads and deletes it,
//! opens and probes the target, switches (`storage::switch`: publishes go to
//! the target, reads fall back to the old store) and answers in the setting
//! `blob_store_switch`: `switching`, then `done` once no publish into the
//! old store is left, or `failed` with the reason. The migration then copies
//! what came in meanwhile and records the new store (`blobs_cli`).
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
use std::time::{Duration, Instant};

/// Where serve answers a switch request.
const STATE_SETTING: &str = "blob_store_switch";
/// How long the migration waits for serve to take the request.
const ANSWER_WAIT: Duration = Duration::from_secs(30);
/// How long serve waits for publishes into the old store to finish.
pub const DRAIN_WAIT: Duration = Duration::from_secs(3600);
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

fn request_json(id: &str, target: &BlobStoreConfig) -> Value {
    match target {
        BlobStoreConfig::Local => json!({"id": id, "to": "local"}),
        BlobStoreConfig::S3(c) => json!({
            "id": id,
            "to": "s3",
            "endpoint": c.endpoint,
            "bucket": c.bucket,
            "prefix": c.prefix,
            "region": c.region,
            "access_key_id": c.credentials.access_key_id,
            "secret_access_key": c.credentials.secret_access_key,
        }),
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

    fn set_switch_state(&self, id: &str, state: &str, detail: &str) {
        let v = json!({"id": id, "state": state, "detail": detail}).to_string();
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
        told: &dyn Fn(&str),
    ) -> Result<SwitchOutcome> {
        let path = Layout::new(&self.data_dir).store_switch_request();
        // A leftover belongs to a migration that died (one runs at a time).
        let _ = std::fs::remove_file(&path);
        let id = crate::oci::UploadId::random()?.as_str().to_string();
        let body = request_json(&id, target).to_string();
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
            match state["state"].as_str() {
                Some("done") => return Ok(SwitchOutcome::Switched),
                Some("failed") => return Ok(SwitchOutcome::Refused(detail)),
                _ if detail != last_detail => {
                    told(&detail);
                    last_detail = detail;
                }
                _ => {}
            }
        }
    }

    /// Serve's side, called by its watcher: take a switch request if there
    /// is one, switch, and answer (see the module). Returns whether it switched.
    pub fn take_store_switch(&self) -> bool {
        let path = Layout::new(&self.data_dir).store_switch_request();
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
            self.set_switch_state(&id, state, detail);
            return false;
        }
        let store = match crate::storage::s3::blobs::open_backend(&self.data_dir, &target) {
            Ok(s) => s,
            Err(e) => {
                log::error!("blob store switch refused: {e}");
                self.set_switch_state(&id, "failed", &format!("serve cannot use it: {e}"));
                return false;
            }
        };
        let from = self.store.describe();
        let to = store.describe();
        self.set_switch_state(&id, "switching", "waiting for publishes into the old store");
        let waiting = |n: usize| {
            self.set_switch_state(
                &id,
                "switching",
                &format!("waiting for {n} publish(es) into the old store"),
            )
        };
        match self.store.switch_to(store, DRAIN_WAIT, &waiting) {
            Ok(true) => {
                log::info!("blob store switched live from {from} to {to}; blobs not copied yet are read from the old store");
                self.set_switch_state(&id, "done", &to);
                true
            }
            Ok(false) => {
                log::error!("blob store switched to {to}, but publishes into {from} did not finish within an hour");
                self.set_switch_state(
                    &id,
                    "failed",
                    "publishes into the old store did not finish within an hour; serve reads both stores: rerun the migration",
                );
                true
            }
            Err(e) => {
                self.set_switch_state(&id, "failed", &e.to_string());
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
            let (id, back) = parse_request(&request_json("x1", &target)).expect("parse");
            assert_eq!((id.as_str(), &back), ("x1", &target));
        }
        let e = parse_request(&json!({"id": "x", "to": "s3", "bucket": "b"})).expect_err("refused");
        assert!(e.contains("endpoint"), "{e}");
        let e = parse_request(&json!({"id": "x", "to": "ftp"})).expect_err("refused");
        assert!(e.contains("ftp"), "{e}");
    }
}
