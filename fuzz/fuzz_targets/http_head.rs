//! Request heads and framing (`http::conn::parse_head` and `http::conn::plan`,
//! through `soute::fuzzing::http_head`), then the body and the pipelined next
//! request, as a worker would see them in its buffer. Input: raw bytes from the
//! client. Checked with the server's default limits and with small ones:
//! - a whole head ends with an empty line, is within the limit, and is found
//!   the same from the head's bytes alone; every strict prefix of it waits
//!   for more (so how the bytes arrive cannot change the answer);
//! - header names are lower-case, values trimmed;
//! - a planned request has an origin-form path (or `*`) without `?` or `#`, a
//!   chunked body only on HTTP/1.1 without Content-Length, a Content-Length
//!   only when exactly one was sent and it is that number, and HTTP/1.0 closes
//!   unless it asked for keep-alive;
//! - a chunked body never decodes to more bytes than it was fed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soute::fuzzing::{http_head, BodyFraming, ChunkedDecoder};
use soute::http::Limits;

fn check_head(buffered: &[u8], max_bytes: usize, max_headers: usize) -> Option<usize> {
    let parsed = http_head(buffered, max_bytes, max_headers);
    assert_eq!(
        parsed,
        http_head(buffered, max_bytes, max_headers),
        "not deterministic"
    );
    let head = parsed.ok()??;
    let n = head.len;
    assert!(n <= buffered.len() && n <= max_bytes && head.headers.len() <= max_headers.max(1));
    assert!(buffered[..n].ends_with(b"\n\n") || buffered[..n].ends_with(b"\n\r\n"));
    assert_eq!(
        http_head(&buffered[..n], max_bytes, max_headers)
            .ok()
            .flatten()
            .as_ref(),
        Some(&head)
    );
    for cut in [n - 1, n / 2, 1.min(n - 1)] {
        assert_eq!(
            http_head(&buffered[..cut], max_bytes, max_headers),
            Ok(None),
            "prefix of {cut}"
        );
    }
    assert!(!head.method.is_empty() && head.version <= 1);
    for (name, value) in &head.headers {
        assert_eq!(name, &name.to_ascii_lowercase());
        assert_eq!(value, value.trim());
    }
    let plan = head.plan.as_ref().ok()?;
    assert!(
        plan.path.starts_with('/') || plan.path == "*",
        "{:?}",
        plan.path
    );
    assert!(!plan.path.contains(['?', '#']) && !plan.query.contains('#'));
    let count = |name: &str| head.headers.iter().filter(|(n, _)| n == name).count();
    let body_start = n;
    let body_len = match plan.framing {
        BodyFraming::Chunked => {
            assert!(head.version == 1 && count("content-length") == 0);
            let mut src = &buffered[body_start..];
            let fed = src.len();
            let mut decoder = ChunkedDecoder::new();
            let mut out = [0u8; 512];
            let mut total = 0usize;
            for _ in 0..fed + 2 {
                match decoder.read(&mut src, &mut out) {
                    Ok(0) | Err(_) => break,
                    Ok(k) => total += k,
                }
            }
            assert!(total <= fed - src.len(), "decoded more than it was fed");
            if !decoder.is_done() {
                return None;
            }
            fed - src.len()
        }
        BodyFraming::Length(len) => {
            assert_eq!(count("transfer-encoding"), 0);
            match count("content-length") {
                0 => assert_eq!(len, 0),
                1 => {
                    let (_, v) = head.headers.iter().find(|(n, _)| n == "content-length")?;
                    assert_eq!(v.parse::<u64>().ok(), Some(len));
                }
                more => panic!("{more} Content-Length fields accepted"),
            }
            let len = usize::try_from(len).ok()?;
            if buffered.len() - body_start < len {
                return None;
            }
            len
        }
    };
    if head.version == 0 {
        let keep = head.headers.iter().any(|(n, v)| {
            n == "connection"
                && v.split(',')
                    .any(|t| t.trim().eq_ignore_ascii_case("keep-alive"))
        });
        assert_eq!(plan.close, !keep);
        assert_eq!(plan.keep_alive_10, keep);
    }
    if plan.close {
        return None;
    }
    Some(body_start + body_len)
}

fuzz_target!(|data: &[u8]| {
    let defaults = Limits::default();
    for (max_bytes, max_headers) in [(defaults.max_head_bytes, defaults.max_headers), (256, 4)] {
        // Up to four pipelined requests, each after the previous one's body.
        let mut rest = data;
        for _ in 0..4 {
            match check_head(rest, max_bytes, max_headers) {
                Some(used) if used < rest.len() => rest = &rest[used..],
                _ => break,
            }
        }
    }
});
