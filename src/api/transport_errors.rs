//! The answers the HTTP layer makes itself (refused heads, connection caps,
//! handler panics), worded as the registry's own: the OCI error envelope and
//! the Docker-Distribution-API-Version header. [`Enveloped`] wraps the API
//! handler and supplies them.
//!
//! It must never decide when such an answer is sent (that is `http`), and
//! never put anything from the request into the answer.

use super::headers::API_VERSION;
use crate::http::{Body, Handler, Request, Response};
use serde_json::json;

/// A handler whose transport-level answers use the OCI error envelope.
pub struct Enveloped<H>(pub H);

impl<H: Handler> Handler for Enveloped<H> {
    fn handle(&self, req: &mut Request<'_>) -> Response {
        self.0.handle(req)
    }

    fn rejection(&self, status: u16, reason: &str) -> Response {
        envelope(status, code_for(status), reason, json!({}))
    }

    fn internal_error(&self, request_id: u64) -> Response {
        envelope(
            500,
            "UNKNOWN",
            "internal error",
            json!({ "request_id": request_id }),
        )
    }
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
