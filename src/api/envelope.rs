//! The OCI error envelope `{"errors":[{"code","message","detail"}]}`:
//! `error_response` is the only function that turns an `Error` into a
//! response. Server-side errors are logged here once, with their cause chain,
//! and reach the client as a request id only.
//!
//! It must never choose a status (`Error::status` does) nor add route-specific
//! headers (a handler adds those to the response it gets back).

use super::headers::json_response;
use crate::error::{Code, Error};
use crate::http::Response;
use serde_json::json;

/// The only place an `Error` becomes an HTTP response.
pub fn error_response(err: &Error, request_id: u64) -> Response {
    let detail = match err {
        Error::NoSpace(_) => {
            log::error!("request {request_id}: {err}");
            None
        }
        Error::BelowDiskReserve { .. } => {
            log::warn!("request {request_id}: {err}");
            err.client_detail()
        }
        Error::Internal { .. } => {
            let mut chain = err.to_string();
            let mut src = std::error::Error::source(err);
            while let Some(s) = src {
                chain.push_str(&format!(": {s}"));
                src = s.source();
            }
            log::error!("request {request_id}: {chain}");
            Some(json!({ "request_id": request_id }))
        }
        _ => err.client_detail(),
    };
    let entry = json!({
        "code": err.code().as_str(),
        "message": err.client_message(),
        "detail": detail.unwrap_or(json!({})),
    });
    let resp = json_response(err.status(), &json!({ "errors": [entry] }));
    if err.code() == Code::Unsupported && err.status() == 405 {
        return resp.header("Allow", "GET, HEAD, PUT, PATCH, POST, DELETE");
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Body;
    use serde_json::Value;

    fn envelope(resp: &Response) -> Value {
        let Body::Bytes(bytes) = &resp.body else {
            panic!("an error body is bytes");
        };
        let v: Value = serde_json::from_slice(bytes).expect("JSON envelope");
        let errors = v["errors"].as_array().expect("errors array");
        assert_eq!(errors.len(), 1, "{v}");
        errors[0].clone()
    }

    fn header<'r>(resp: &'r Response, name: &str) -> Option<&'r str> {
        resp.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every code as a plain client error, then every domain kind: status,
    /// code name, message and detail as the client sees them.
    #[test]
    fn every_code_and_kind_has_its_status_and_envelope() {
        let mut cases: Vec<(Error, u16, &str, String, Value)> = Code::ALL
            .iter()
            .filter(|c| **c != Code::Unknown)
            .map(|&code| {
                let msg = format!("about {}", code.as_str());
                let err = Error::client(code, msg.clone()).with_detail(json!({ "k": 1 }));
                (
                    err,
                    code.default_status(),
                    code.as_str(),
                    msg,
                    json!({ "k": 1 }),
                )
            })
            .collect();
        cases.extend([
            (
                Error::client(Code::BlobUnknown, "no detail"),
                404,
                "BLOB_UNKNOWN",
                "no detail".to_string(),
                json!({}),
            ),
            (
                Error::UploadOutOfOrder {
                    start: 5,
                    acknowledged: 3,
                },
                416,
                "RANGE_INVALID",
                "chunk starts at 5 but the upload has 3 bytes".into(),
                json!({ "start": 5, "acknowledged": 3 }),
            ),
            (
                Error::ManifestTooLarge { limit: 4 },
                413,
                "MANIFEST_INVALID",
                "manifest larger than 4 bytes".into(),
                json!({ "limit": 4 }),
            ),
            (
                Error::TooManyTagParams { limit: 100 },
                414,
                "TAG_INVALID",
                "too many tag parameters (at most 100)".into(),
                json!({ "limit": 100 }),
            ),
            (
                Error::NoEndpoint("no endpoint at /x".into()),
                404,
                "UNSUPPORTED",
                "no endpoint at /x".into(),
                json!({}),
            ),
            (
                Error::InvalidParameter("grace must be a number".into()),
                400,
                "UNSUPPORTED",
                "grace must be a number".into(),
                json!({}),
            ),
            (
                Error::NoSpace("writing upload: disk full".into()),
                507,
                "UNKNOWN",
                "insufficient storage: the registry's disk is full; nothing was stored".into(),
                json!({}),
            ),
            (
                Error::Upstream("upstream docker.io (https://x) answered HTTP 503".into()),
                502,
                "UNKNOWN",
                "upstream docker.io (https://x) answered HTTP 503".into(),
                json!({}),
            ),
            (
                Error::BlobTooLarge { limit: 1024 },
                413,
                "BLOB_UPLOAD_INVALID",
                "the blob would be larger than this registry's limit of 1 KiB (1024 bytes)".into(),
                json!({ "limit": 1024 }),
            ),
            (
                Error::BelowDiskReserve {
                    reserve: 1 << 30,
                    available: 1 << 20,
                },
                507,
                "UNKNOWN",
                "insufficient storage: the upload would leave less than the registry's disk \
                 reserve of 1 GiB free; nothing was stored"
                    .into(),
                json!({ "reserve": 1u64 << 30, "available": 1u64 << 20 }),
            ),
            (
                Error::internal_from("database", std::io::Error::other("secret path")),
                500,
                "UNKNOWN",
                "internal server error".into(),
                json!({ "request_id": 42 }),
            ),
        ]);
        for (err, status, code, message, detail) in cases {
            let resp = error_response(&err, 42);
            let what = format!("{err:?}");
            assert_eq!(resp.status, status, "{what}");
            assert_eq!(
                header(&resp, "content-type"),
                Some("application/json"),
                "{what}"
            );
            let entry = envelope(&resp);
            assert_eq!(entry["code"], code, "{what}");
            assert_eq!(entry["message"], message.as_str(), "{what}");
            assert_eq!(entry["detail"], detail, "{what}");
            assert_eq!(
                header(&resp, "allow").is_some(),
                status == 405,
                "{what}: Allow only on 405"
            );
        }
    }
}
