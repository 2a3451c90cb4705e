//! `Range` and `Content-Range`: a satisfiable `Range` answer lies within the
//! blob, for any size including 0 and u64::MAX; a `Range` not starting with
//! `bytes=` is ignored. A `Content-Range` that is accepted names a first byte
//! and a count that fit in u64 and match Content-Length; a refused one is 416
//! RANGE_INVALID. Input: one byte picks the blob size and declared length
//! (extremes or 8 bytes read from the input), the rest is the header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soute::error::Code;
use soute::fuzzing::{content_range, range, RangeRequest};

fn take_u64(data: &mut &[u8]) -> u64 {
    let mut buf = [0u8; 8];
    let n = data.len().min(8);
    buf[..n].copy_from_slice(&data[..n]);
    *data = &data[n..];
    u64::from_le_bytes(buf)
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let size = match mode & 7 {
        0 => 0,
        1 => 1,
        2 => 100,
        3 => u64::MAX,
        4 => u64::MAX - 1,
        _ => take_u64(&mut rest),
    };
    let declared = match (mode >> 3) & 3 {
        0 => None,
        1 => Some(0),
        2 => Some(u64::MAX),
        _ => Some(take_u64(&mut rest)),
    };
    let Ok(header) = std::str::from_utf8(rest) else {
        return;
    };

    for size in [size, 0, 1, u64::MAX] {
        match range(header, size) {
            RangeRequest::Bytes(start, end) => {
                assert!(
                    start <= end && end < size,
                    "{header:?}: {start}-{end} of {size}"
                );
                assert!(RangeRequest::len(start, end) <= size);
            }
            RangeRequest::Unsatisfiable => {}
            RangeRequest::Ignore => {}
        }
        if !header.trim().starts_with("bytes=") {
            assert_eq!(range(header, size), RangeRequest::Ignore, "{header:?}");
        }
    }

    assert_eq!(content_range(None, declared).ok(), Some((None, declared)));
    match content_range(Some(header), declared) {
        Ok((Some(start), Some(count))) => {
            assert!(count >= 1);
            assert!(start.checked_add(count - 1).is_some(), "{header:?}");
            if let Some(d) = declared {
                assert_eq!(d, count);
            }
        }
        Ok(other) => panic!("{header:?} gave {other:?}"),
        Err(e) => {
            assert_eq!((e.code(), e.status()), (Code::RangeInvalid, 416));
            assert!(
                e.client_message().len() <= 2048,
                "{} bytes",
                e.client_message().len()
            );
        }
    }
});
