//! Digests: `Digest::parse` accepts exactly `sha256:<64 lowercase hex>` and
//! `sha512:<128 lowercase hex>`; a parsed digest's hex is lowercase and of its
//! algorithm's length and round-trips; `Digest::of` always yields a digest that
//! parses back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regex::Regex;
use soute::error::Code;
use soute::oci::{Algorithm, Digest};
use std::sync::LazyLock;

static GRAMMAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$").expect("valid regex")
});

fn hex_len(alg: Algorithm) -> usize {
    match alg {
        Algorithm::Sha256 => 64,
        Algorithm::Sha512 => 128,
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = std::str::from_utf8(data) {
        let expected = GRAMMAR.is_match(s);
        match Digest::parse(s) {
            Ok(d) => {
                assert!(expected, "accepted {s:?}");
                assert_eq!(d.hex().len(), hex_len(d.algorithm()));
                assert!(d
                    .hex()
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
                assert_eq!(d.to_string(), s);
                assert_eq!(
                    s.split_once(':').map(|(a, _)| a),
                    Some(d.algorithm().as_str())
                );
                assert_eq!(Digest::parse(&d.to_string()).ok(), Some(d));
            }
            Err(e) => {
                assert!(!expected, "refused {s:?}");
                assert_eq!((e.code(), e.status()), (Code::DigestInvalid, 400));
                assert!(e.client_message().len() <= 2048);
            }
        }
    }
    let alg = if data.first().is_some_and(|b| b & 1 == 1) {
        Algorithm::Sha512
    } else {
        Algorithm::Sha256
    };
    let of = Digest::of(alg, data);
    assert_eq!(of.algorithm(), alg);
    assert_eq!(Digest::parse(&of.to_string()).ok(), Some(of));
});
