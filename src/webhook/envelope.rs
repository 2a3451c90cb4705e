//! The wire format: one event as distribution's notifications write it
//! (`notifications/event.go`: `id`, `timestamp`, `action`, `target`
//! {`mediaType`, `size`, `digest`, `length`, `repository`, `url`, `tag`},
//! `request` {`id`, `addr`, `host`, `method`, `useragent`}, `actor`
//! {`name`}, `source` {`addr`, `instanceID`}; empty fields left out as Go's
//! `omitempty` does, `request.id`, `method` and `useragent` always present),
//! the envelope `{"events":[...]}` of the media type [`MEDIA_TYPE`], stable
//! event ids, and the HMAC-SHA256 signature header.
//!
//! It must never parse an event back (the outbox stores each event's JSON,
//! and an envelope is those bytes joined), nor put a secret in anything but
//! the signature.

use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

/// The envelope's media type (distribution's `EventsMediaType`).
pub const MEDIA_TYPE: &str = "application/vnd.docker.distribution.events.v2+json";
/// The header that carries the signature: `sha256=` and the HMAC-SHA256 of
/// the body under the webhook's secret, in lowercase hex (GitHub's form).
pub const SIGNATURE_HEADER: &str = "X-Soute-Signature-256";

/// What an event is about (distribution's `Target`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Target {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    #[serde(skip_serializing_if = "is_zero")]
    pub size: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub digest: String,
    /// The same as `size` (distribution keeps it for older receivers).
    #[serde(skip_serializing_if = "is_zero")]
    pub length: u64,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub repository: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub url: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub tag: String,
}

impl Target {
    /// A manifest (`tag` empty when it was not named by one).
    pub fn manifest(
        repository: &str,
        digest: &str,
        media_type: &str,
        size: u64,
        tag: &str,
    ) -> Target {
        Target {
            media_type: media_type.to_string(),
            size,
            digest: digest.to_string(),
            length: size,
            repository: repository.to_string(),
            url: String::new(),
            tag: tag.to_string(),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The request that caused an event (distribution's `RequestRecord`).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RequestRecord {
    pub id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub host: String,
    pub method: String,
    pub useragent: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ActorRecord {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub name: String,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SourceRecord {
    #[serde(skip_serializing_if = "String::is_empty")]
    pub addr: String,
    #[serde(rename = "instanceID", skip_serializing_if = "String::is_empty")]
    pub instance_id: String,
}

/// One event.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    pub id: String,
    pub timestamp: String,
    pub action: &'static str,
    pub target: Target,
    pub request: RequestRecord,
    pub actor: ActorRecord,
    pub source: SourceRecord,
}

impl Event {
    /// The JSON stored in the outbox and sent as is.
    pub fn to_json(&self) -> String {
        // Serializing plain strings and numbers cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A new random id in the UUID v4 form distribution uses.
pub fn new_id() -> String {
    let mut b = [0u8; 16];
    if getrandom::fill(&mut b).is_err() {
        // No entropy source: the time and a counter still make ids unique.
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        b[..8].copy_from_slice(&(t as u64).to_be_bytes());
        b[8..].copy_from_slice(&n.to_be_bytes());
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex(&b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Now, as RFC 3339 in UTC with the fraction of a second Go prints
/// (trailing zeros cut): `2026-12-02T03:04:05.123456Z`.
pub fn timestamp_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    timestamp(d.as_secs() as i64, d.subsec_nanos())
}

fn timestamp(secs: i64, nanos: u32) -> String {
    let whole = crate::clock::rfc3339(secs);
    if nanos == 0 {
        return whole;
    }
    let fraction = format!("{nanos:09}");
    let fraction = fraction.trim_end_matches('0');
    format!("{}.{fraction}Z", whole.trim_end_matches('Z'))
}

/// The envelope holding these events' JSON, in order.
pub fn envelope<'a>(events: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut body = Vec::with_capacity(1024);
    body.extend_from_slice(b"{\"events\":[");
    for (i, e) in events.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(e.as_bytes());
    }
    body.extend_from_slice(b"]}");
    body
}

/// The value of [`SIGNATURE_HEADER`] for `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", hex(&mac.finalize().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_have_distributions_fields() {
        let e = Event {
            id: "id-1".into(),
            timestamp: timestamp(0, 5_000_000),
            action: "push",
            target: Target {
                media_type: "application/vnd.oci.image.manifest.v1+json".into(),
                size: 12,
                digest: "sha256:ab".into(),
                length: 12,
                repository: "lab/app".into(),
                url: String::new(),
                tag: "v1".into(),
            },
            request: RequestRecord::default(),
            actor: ActorRecord::default(),
            source: SourceRecord {
                addr: "pi:5000".into(),
                instance_id: "i".into(),
            },
        };
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).expect("json");
        assert_eq!(v["timestamp"], "1970-01-01T00:00:00.005Z");
        assert_eq!(
            v["target"]["mediaType"],
            "application/vnd.oci.image.manifest.v1+json"
        );
        assert_eq!(v["target"]["length"], 12);
        assert!(v["target"].get("url").is_none());
        // Go's RequestRecord always has id, method and useragent.
        assert_eq!(
            v["request"],
            serde_json::json!({"id": "", "method": "", "useragent": ""})
        );
        assert_eq!(v["actor"], serde_json::json!({}));
        assert_eq!(v["source"]["instanceID"], "i");
        let env = envelope([e.to_json().as_str(), e.to_json().as_str()]);
        let v: serde_json::Value = serde_json::from_slice(&env).expect("envelope");
        assert_eq!(v["events"].as_array().map(Vec::len), Some(2));
    }

    #[test]
    fn ids_are_uuid_shaped_and_distinct() {
        let a = new_id();
        let b = new_id();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(a.as_bytes()[14], b'4');
        assert_eq!(a.matches('-').count(), 4);
    }

    #[test]
    fn signature_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(timestamp(86_400, 0), "1970-01-02T00:00:00Z");
    }
}
