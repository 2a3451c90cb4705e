//! Tags: `Tag::parse` agrees with `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`,
//! accepted tags round-trip through Display, errors stay short.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regex::Regex;
use soute::error::Code;
use soute::oci::Tag;
use std::sync::LazyLock;

static GRAMMAR: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("valid regex"));

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let expected = GRAMMAR.is_match(s);
    match Tag::parse(s) {
        Ok(tag) => {
            assert!(expected, "accepted {s:?}, which the grammar refuses");
            assert_eq!(tag.as_str(), s);
            assert_eq!(Tag::parse(&tag.to_string()).ok(), Some(tag));
            assert!(s != "." && s != ".." && !s.contains('/'));
        }
        Err(e) => {
            assert!(!expected, "refused {s:?}, which the grammar accepts");
            assert_eq!((e.code(), e.status()), (Code::TagInvalid, 400));
            // The message quotes at most 160 characters of the input.
            assert!(
                e.client_message().len() <= 2048,
                "{} bytes",
                e.client_message().len()
            );
        }
    }
});
