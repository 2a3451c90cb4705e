//! Manifest parsing and validation: image manifests and indexes in their OCI
//! and Docker schema2 forms, artifact manifests (`artifactType`, `subject`).
//! The exact bytes are kept by the caller; this module only reads them.
//!
//! It must never re-serialize a manifest (its digest is of the pushed bytes) nor do I/O.

use super::{media, Digest};
use crate::error::{Code, Error, Result};
use serde_json::{Map, Value};

/// The largest manifest accepted (the spec says registries SHOULD accept 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// An image (or artifact) manifest: config + layers.
    Image,
    /// An index or manifest list: child manifests.
    Index,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Descriptor {
    pub media_type: String,
    pub digest: Digest,
    pub size: u64,
    pub artifact_type: Option<String>,
    pub annotations: Option<Map<String, Value>>,
    /// True for foreign / non-distributable layers, which need not be in the registry.
    pub foreign: bool,
}

/// A parsed, validated manifest.
#[derive(Clone, Debug)]
pub struct Manifest {
    /// The media type stored with the manifest and served back as Content-Type.
    pub media_type: String,
    pub kind: Kind,
    pub config: Option<Descriptor>,
    pub layers: Vec<Descriptor>,
    pub manifests: Vec<Descriptor>,
    pub subject: Option<Descriptor>,
    pub artifact_type: Option<String>,
    pub annotations: Option<Map<String, Value>>,
}

fn invalid(msg: impl Into<String>) -> Error {
    Error::client(Code::ManifestInvalid, msg)
}

/// The media type without parameters, lower-cased.
pub fn bare_media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn kind_of(media_type: &str) -> Option<Kind> {
    match media_type {
        media::OCI_MANIFEST | media::DOCKER_MANIFEST => Some(Kind::Image),
        media::OCI_INDEX | media::DOCKER_LIST => Some(Kind::Index),
        _ => None,
    }
}

impl Manifest {
    /// Parse `body` pushed with the given `Content-Type` header (if any).
    pub fn parse(body: &[u8], content_type: Option<&str>) -> Result<Manifest> {
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(Error::ManifestTooLarge {
                limit: MAX_MANIFEST_BYTES,
            });
        }
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| invalid(format!("manifest is not valid JSON: {e}")))?;
        let obj = value
            .as_object()
            .ok_or_else(|| invalid("manifest must be a JSON object"))?;
        let header_type = content_type.map(bare_media_type).filter(|t| !t.is_empty());
        let body_type = match obj.get("mediaType") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(invalid("mediaType must be a string")),
        };
        if let Some(t) = header_type.as_deref().or(body_type.as_deref()) {
            if t == media::DOCKER_SCHEMA1 || t == media::DOCKER_SCHEMA1_SIGNED {
                return Err(invalid(
                    "Docker schema 1 manifests are deprecated and not accepted",
                ));
            }
        }
        match obj.get("schemaVersion") {
            Some(Value::Number(n)) if n.as_u64() == Some(2) => {}
            _ => return Err(invalid("schemaVersion must be 2")),
        }
        if let (Some(h), Some(b)) = (&header_type, &body_type) {
            if h != b {
                return Err(invalid(format!(
                    "Content-Type {h:?} does not match the manifest's mediaType {b:?}"
                )));
            }
        }
        let media_type = match header_type.or(body_type) {
            Some(t) => t,
            None if obj.contains_key("manifests") => media::OCI_INDEX.to_string(),
            None if obj.contains_key("config") => media::OCI_MANIFEST.to_string(),
            None => return Err(invalid("cannot tell the manifest's media type")),
        };
        let kind = kind_of(&media_type)
            .ok_or_else(|| invalid(format!("unsupported manifest media type {media_type:?}")))?;

        let artifact_type = optional_string(obj, "artifactType")?;
        let annotations = optional_annotations(obj)?;
        let subject = match obj.get("subject") {
            None | Some(Value::Null) => None,
            Some(v) => Some(descriptor(v, "subject")?),
        };
        let mut m = Manifest {
            media_type,
            kind,
            config: None,
            layers: Vec::new(),
            manifests: Vec::new(),
            subject,
            artifact_type,
            annotations,
        };
        match kind {
            Kind::Image => {
                if obj.contains_key("manifests") {
                    return Err(invalid("an image manifest must not have manifests"));
                }
                let config = obj
                    .get("config")
                    .ok_or_else(|| invalid("image manifest without config"))?;
                m.config = Some(descriptor(config, "config")?);
                m.layers = descriptor_list(obj, "layers", true)?;
            }
            Kind::Index => {
                if obj.contains_key("config") || obj.contains_key("layers") {
                    return Err(invalid("an index must not have config or layers"));
                }
                m.manifests = descriptor_list(obj, "manifests", true)?;
            }
        }
        Ok(m)
    }

    /// The artifact type the referrers API reports for this manifest.
    pub fn referrer_artifact_type(&self) -> Option<String> {
        self.artifact_type
            .clone()
            .or_else(|| self.config.as_ref().map(|c| c.media_type.clone()))
    }
}

fn optional_string(obj: &Map<String, Value>, key: &str) -> Result<Option<String>> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{key} must be a string"))),
    }
}

fn optional_annotations(obj: &Map<String, Value>) -> Result<Option<Map<String, Value>>> {
    match obj.get("annotations") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => {
            if map.values().all(Value::is_string) {
                Ok(Some(map.clone()))
            } else {
                Err(invalid("annotations must map strings to strings"))
            }
        }
        Some(_) => Err(invalid("annotations must be an object")),
    }
}

fn descriptor_list(obj: &Map<String, Value>, key: &str, required: bool) -> Result<Vec<Descriptor>> {
    match obj.get(key) {
        None | Some(Value::Null) if !required => Ok(Vec::new()),
        None | Some(Value::Null) => Err(invalid(format!("missing {key}"))),
        Some(Value::Array(items)) => items.iter().map(|v| descriptor(v, key)).collect(),
        Some(_) => Err(invalid(format!("{key} must be an array"))),
    }
}

fn descriptor(v: &Value, what: &str) -> Result<Descriptor> {
    let obj = v
        .as_object()
        .ok_or_else(|| invalid(format!("{what}: descriptor must be an object")))?;
    let media_type = match obj.get("mediaType") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(invalid(format!(
                "{what}: descriptor needs a mediaType string"
            )))
        }
    };
    let digest = match obj.get("digest") {
        Some(Value::String(s)) => {
            Digest::parse(s).map_err(|_| invalid(format!("{what}: invalid digest {s:?}")))?
        }
        _ => return Err(invalid(format!("{what}: descriptor needs a digest string"))),
    };
    let size = match obj.get("size") {
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| invalid(format!("{what}: size must be a non-negative integer")))?,
        _ => return Err(invalid(format!("{what}: descriptor needs a size"))),
    };
    let foreign = media_type.contains("nondistributable") || media_type.contains(".foreign.");
    Ok(Descriptor {
        media_type,
        digest,
        size,
        artifact_type: optional_string(obj, "artifactType")?,
        annotations: optional_annotations(obj)?,
        foreign,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifest() {
        let body = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": media::OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": d('a'), "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d('b'), "size": 3}],
            "subject": {"mediaType": media::OCI_MANIFEST, "digest": d('c'), "size": 4},
            "annotations": {"k": "v"}
        });
        let m =
            Manifest::parse(body.to_string().as_bytes(), Some(media::OCI_MANIFEST)).expect("valid");
        assert_eq!(m.kind, Kind::Image);
        assert_eq!(m.layers.len(), 1);
        assert_eq!(m.subject.as_ref().map(|s| s.size), Some(4));
        assert_eq!(
            m.referrer_artifact_type().as_deref(),
            Some("application/vnd.oci.image.config.v1+json")
        );
    }

    #[test]
    fn rejections() {
        let cases: Vec<(String, Option<&str>)> = vec![
            ("not json".into(), None),
            ("[]".into(), None),
            (r#"{"schemaVersion":1}"#.into(), None),
            (serde_json::json!({"schemaVersion":2,"mediaType":media::OCI_INDEX,"manifests":[]}).to_string(), Some(media::OCI_MANIFEST)),
            (serde_json::json!({"schemaVersion":2,"config":{"mediaType":"x","digest":"sha256:bad","size":1},"layers":[]}).to_string(), None),
            (serde_json::json!({"schemaVersion":2,"config":{"mediaType":"x","digest":d('a'),"size":-1},"layers":[]}).to_string(), None),
            (serde_json::json!({"schemaVersion":2,"manifests":[]}).to_string(), Some("application/json")),
            (serde_json::json!({"schemaVersion":2,"mediaType":media::OCI_MANIFEST,"layers":[]}).to_string(), None),
        ];
        for (body, ct) in cases {
            let err = Manifest::parse(body.as_bytes(), ct).expect_err(&body);
            assert_eq!(err.code(), Code::ManifestInvalid, "{body}");
        }
        let big = vec![b' '; MAX_MANIFEST_BYTES + 1];
        assert_eq!(Manifest::parse(&big, None).expect_err("big").status(), 413);
    }

    #[test]
    fn index_and_content_type_params() {
        let body = serde_json::json!({"schemaVersion":2,"manifests":[{"mediaType":media::OCI_MANIFEST,"digest":d('e'),"size":7,"platform":{"os":"linux","architecture":"arm64"}}]});
        let m = Manifest::parse(
            body.to_string().as_bytes(),
            Some("application/vnd.oci.image.index.v1+json; charset=utf-8"),
        )
        .expect("index");
        assert_eq!(m.kind, Kind::Index);
        assert_eq!(m.media_type, media::OCI_INDEX);
        assert_eq!(m.manifests.len(), 1);
    }
}
