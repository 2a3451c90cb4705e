//! Manifest references: `Reference::parse` is a digest exactly when the input
//! has a `:` (then it agrees with `Digest::parse`), else a tag (agreeing with
//! `Tag::parse`); accepted references round-trip through Display.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soute::error::Code;
use soute::oci::{Digest, Reference, Tag};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = Reference::parse(s);
    if s.contains(':') {
        assert_eq!(
            parsed.as_ref().ok(),
            Digest::parse(s).ok().map(Reference::Digest).as_ref()
        );
    } else {
        assert_eq!(
            parsed.as_ref().ok(),
            Tag::parse(s).ok().map(Reference::Tag).as_ref()
        );
    }
    match parsed {
        Ok(r) => {
            assert_eq!(r.to_string(), s);
            assert_eq!(Reference::parse(&r.to_string()).ok(), Some(r));
        }
        Err(e) => {
            assert!(
                matches!(e.code(), Code::TagInvalid | Code::DigestInvalid),
                "{:?}",
                e.code()
            );
            assert_eq!(e.status(), 400);
            assert!(e.client_message().len() <= 2048);
        }
    }
});
