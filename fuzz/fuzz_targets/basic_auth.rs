//! `Authorization: Basic` values (`soute::api::basic::parse_basic`): an
//! accepted value gives a non-empty user without `:`, and encoding that pair
//! again parses to the same pair; a value whose scheme is not `Basic` (any
//! case) followed by a blank is refused.
#![no_main]

use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use soute::api::basic::parse_basic;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_basic(value);
    let t = value.trim();
    let basic_scheme = t.len() > 6
        && t.is_char_boundary(5)
        && t[..5].eq_ignore_ascii_case("basic")
        && matches!(t.as_bytes()[5], b' ' | b'\t');
    if !basic_scheme {
        assert_eq!(parsed, None, "{value:?}");
    }
    if let Some((user, password)) = parsed {
        assert!(!user.is_empty() && !user.contains(':'));
        let again = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        );
        assert_eq!(parse_basic(&again), Some((user, password)));
    }
});
