//! Byte ranges a client sends: `Range` on a blob GET and `Content-Range` on an
//! upload chunk. Pure parsers; every sum and difference on the client's numbers
//! is checked, so `0-18446744073709551615` is refused, never wrapped.
//!
//! They must never read a body, look at the registry or panic on any input.

use crate::error::{Code, Error, Result};

/// What a `Range` header asks of a blob of a known size.
#[derive(Debug, PartialEq)]
pub enum RangeRequest {
    /// No usable single range: serve the whole blob.
    Ignore,
    /// 416 with `Content-Range: bytes */size`.
    Unsatisfiable,
    /// Inclusive byte positions, `start <= end < size`.
    Bytes(u64, u64),
}

impl RangeRequest {
    /// The byte count of a satisfiable range (`end - start + 1`, never overflowing
    /// because `end < size`).
    pub fn len(start: u64, end: u64) -> u64 {
        end - start + 1
    }
}

/// Parse a `Range` header against a blob of `size` bytes (RFC 9110 §14.1.2,
/// single ranges only).
pub fn parse_range(header: &str, size: u64) -> RangeRequest {
    let Some(spec) = header.trim().strip_prefix("bytes=") else {
        return RangeRequest::Ignore;
    };
    if spec.contains(',') {
        return RangeRequest::Ignore;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Ignore;
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), b.is_empty()) {
        (true, true) => RangeRequest::Ignore,
        (true, false) => match b.parse::<u64>() {
            Ok(0) => RangeRequest::Unsatisfiable,
            Ok(_) if size == 0 => RangeRequest::Unsatisfiable,
            Ok(n) => RangeRequest::Bytes(size.saturating_sub(n), size - 1),
            Err(_) => RangeRequest::Ignore,
        },
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else {
                return RangeRequest::Ignore;
            };
            let end = if b.is_empty() {
                size.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e.min(size.saturating_sub(1)),
                    // last < first: the conformance suite expects 416 here.
                    Ok(_) => return RangeRequest::Unsatisfiable,
                    Err(_) => return RangeRequest::Ignore,
                }
            };
            if start >= size {
                RangeRequest::Unsatisfiable
            } else {
                RangeRequest::Bytes(start, end)
            }
        }
    }
}

/// The `Content-Range` of a PATCH/PUT chunk as (first byte, byte count), given
/// the body's declared length (`None` when chunked or absent). Accepts the
/// spec's `<start>-<end>` and the RFC forms `bytes <start>-<end>/<total|*>`.
/// A malformed, reversed or overflowing range, or one that disagrees with
/// `Content-Length`, is 416 RANGE_INVALID.
pub fn chunk_range(
    content_range: Option<&str>,
    declared: Option<u64>,
) -> Result<(Option<u64>, Option<u64>)> {
    let Some(raw) = content_range else {
        return Ok((None, declared));
    };
    // Quote at most 160 characters: the header may be 64 KiB of escapes (found by fuzzing).
    let quoted: String = raw.chars().take(160).collect();
    let invalid = || {
        Error::client(
            Code::RangeInvalid,
            format!("invalid Content-Range {quoted:?}"),
        )
    };
    let spec = raw
        .trim()
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    let spec = spec.split('/').next().unwrap_or("");
    let (a, b) = spec.split_once('-').ok_or_else(invalid)?;
    let start: u64 = a.trim().parse().map_err(|_| invalid())?;
    let end: u64 = b.trim().parse().map_err(|_| invalid())?;
    let count = end
        .checked_sub(start)
        .and_then(|d| d.checked_add(1))
        .ok_or_else(invalid)?;
    if declared.is_some_and(|d| d != count) {
        return Err(Error::client(
            Code::RangeInvalid,
            format!("Content-Range {quoted:?} does not match Content-Length"),
        ));
    }
    Ok((Some(start), Some(count)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u64 = u64::MAX;

    #[test]
    fn ranges() {
        use RangeRequest::*;
        let max = MAX.to_string();
        let over = "18446744073709551616"; // u64::MAX + 1
        let table = [
            ("bytes=0-9".to_string(), 100, Bytes(0, 9)),
            ("bytes=10-".into(), 100, Bytes(10, 99)),
            ("bytes=-10".into(), 100, Bytes(90, 99)),
            ("bytes=90-200".into(), 100, Bytes(90, 99)),
            ("bytes=100-".into(), 100, Unsatisfiable),
            ("bytes=-0".into(), 100, Unsatisfiable),
            ("bytes=0-1,3-4".into(), 100, Ignore),
            ("items=0-1".into(), 100, Ignore),
            ("bytes=5-1".into(), 100, Unsatisfiable),
            ("bytes=5-x".into(), 100, Ignore),
            ("bytes=0-0".into(), 0, Unsatisfiable),
            // Extremes: u64::MAX anywhere, overflowing numbers, a u64::MAX blob.
            (format!("bytes=0-{max}"), 100, Bytes(0, 99)),
            (format!("bytes={max}-"), 100, Unsatisfiable),
            (format!("bytes={max}-{max}"), 100, Unsatisfiable),
            (format!("bytes=-{max}"), 100, Bytes(0, 99)),
            (format!("bytes=-{max}"), 0, Unsatisfiable),
            (format!("bytes={max}-0"), 100, Unsatisfiable),
            (format!("bytes={over}-"), 100, Ignore),
            (format!("bytes=0-{over}"), 100, Ignore),
            (format!("bytes=-{over}"), 100, Ignore),
            (format!("bytes=0-{max}"), MAX, Bytes(0, MAX - 1)),
            ("bytes=-1".into(), MAX, Bytes(MAX - 1, MAX - 1)),
        ];
        for (h, size, want) in table {
            let got = parse_range(&h, size);
            if let Bytes(start, end) = got {
                assert!(start <= end && end < size, "{h}: {start}-{end} of {size}");
                assert!(RangeRequest::len(start, end) <= size, "{h}");
            }
            assert_eq!(got, want, "{h} of {size}");
        }
    }

    #[test]
    fn chunk_ranges() {
        let max = MAX.to_string();
        let ok: [(String, Option<u64>, (u64, u64)); 6] = [
            ("0-9".into(), None, (0, 10)),
            ("bytes 10-19/*".into(), Some(10), (10, 10)),
            ("bytes=5-5".into(), Some(1), (5, 1)),
            (format!("{max}-{max}"), None, (MAX, 1)),
            (format!("1-{max}"), None, (1, MAX)),
            (format!("0-{}", MAX - 1), Some(MAX), (0, MAX)),
        ];
        for (header, declared, (start, count)) in ok {
            assert_eq!(
                chunk_range(Some(&header), declared).expect(&header),
                (Some(start), Some(count)),
                "{header}"
            );
        }
        assert_eq!(
            chunk_range(None, Some(7)).expect("no header"),
            (None, Some(7))
        );
        let bad = [
            (format!("0-{max}"), None),              // count would be 2^64
            (format!("0-{max}"), Some(0)),           // ... and Content-Length 0
            ("18446744073709551616-1".into(), None), // start overflows u64
            ("0-18446744073709551616".into(), None),
            ("9-0".into(), None), // reversed
            (format!("{max}-0"), None),
            ("0-9".into(), Some(11)), // disagrees with Content-Length
            ("-5".into(), None),
            ("5-".into(), None),
            ("x-y".into(), None),
            ("".into(), None),
        ];
        for (header, declared) in bad {
            let err = chunk_range(Some(&header), declared).expect_err(&header);
            assert_eq!(
                (err.code(), err.status()),
                (Code::RangeInvalid, 416),
                "{header}"
            );
        }
    }

    /// Found by `fuzz/fuzz_targets/range.rs`: the message quoted the whole header,
    /// Debug-escaped, so a 64 KiB header of control bytes came back as ~380 KiB.
    #[test]
    fn chunk_range_errors_quote_a_bounded_prefix() {
        let controls = "\u{1d}".repeat(64 * 1024);
        for (header, declared) in [(controls.clone(), None), (format!("0-9{controls}"), None)] {
            let err = chunk_range(Some(&header), declared).expect_err("invalid");
            assert!(
                err.client_message().len() < 1200,
                "{} bytes",
                err.client_message().len()
            );
            assert!(err.client_message().starts_with("invalid Content-Range"));
        }
        let mismatch = format!("0-9/{}", "9".repeat(64 * 1024));
        let err = chunk_range(Some(&mismatch), Some(11)).expect_err("mismatch");
        assert!(
            err.client_message().len() < 1200,
            "{} bytes",
            err.client_message().len()
        );
        assert!(err
            .client_message()
            .contains("does not match Content-Length"));
    }
}
