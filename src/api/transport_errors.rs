//! The answers the HTTP layer makes itself (refused heads, connection caps,
//! handler panics), worded as the registry's own: the OCI error envelope and
//! the Docker-Distribution-API-Version header. `Api`'s own `impl Handler`
//! (api/mod.rs) answers with these.
//!
//! It must never decide when such an answer is sent (that is `http`), and
//! never put anything from the request into the answer.

use super::headers::API_VERSION;
use crate::http::{Body, Response};
use serde_json::json;

/// The answer to a request the transport refused before routing (400, 417,
/// 431, 503...): `reason` is the transport's plain-English reason.
pub(crate) fn rejection(status: u16, reason: &str) -> Response {
    envelope(status, code_for(status), reason, json!({}))
}

/// The answer when the handler panicked on request `request_id`.
pub(crate) fn internal_error(request_id: u64) -> Response {
    envelope(
        500,
        "UNKNOWN",
        "internal error",
        json!({ "request_id": request_id }),
    )
}

/// The OCI code for a status the transport refuses with.
fn code_for(status: u16) -> &'static str {
    match status {
        // The request head (or one of its fields) is too large.
        431 | 413 => "SIZE_INVALID",
        429 | 503 => "TOOMANYREQUESTS",
        _ => "UNKNOWN",
    }
}

fn envelope(status: u16, code: &str, message: &str, detail: serde_json::Value) -> Response {
    let body = json!({ "errors": [{ "code": code, "message": message, "detail": detail }] });
    Response::new(status)
        .header("Content-Type", "application/json")
        .header(API_VERSION.0, API_VERSION.1)
        .body(Body::Bytes(body.to_string().into_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_for_transport_statuses() {
        assert_eq!(code_for(431), "SIZE_INVALID");
        assert_eq!(code_for(503), "TOOMANYREQUESTS");
        assert_eq!(code_for(400), "UNKNOWN");
        assert_eq!(code_for(417), "UNKNOWN");
        let r = envelope(503, "TOOMANYREQUESTS", "busy", json!({}));
        let Body::Bytes(b) = r.body else {
            panic!("body")
        };
        let v: serde_json::Value = serde_json::from_slice(&b).expect("json");
        assert_eq!(v["errors"][0]["code"], "TOOMANYREQUESTS");
        assert!(r
            .headers
            .iter()
            .any(|(n, v)| n == API_VERSION.0 && v == API_VERSION.1));
    }
}
