//! Repository names: `RepoName::parse` agrees with the spec's regular
//! expression (and the 255-byte cap), accepted names round-trip through
//! Display and can never name a path outside the data folder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use regex::Regex;
use soute::error::Code;
use soute::oci::name::MAX_NAME_LEN;
use soute::oci::RepoName;
use std::sync::LazyLock;

/// The distribution spec's `<name>` grammar, anchored.
static GRAMMAR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("valid regex")
});

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let expected = s.len() <= MAX_NAME_LEN && GRAMMAR.is_match(s);
    match RepoName::parse(s) {
        Ok(name) => {
            assert!(expected, "accepted {s:?}, which the grammar refuses");
            assert_eq!(name.as_str(), s);
            assert_eq!(name.to_string(), s);
            assert_eq!(RepoName::parse(&name.to_string()).ok(), Some(name));
            assert!(!s.starts_with('/') && !s.ends_with('/') && !s.contains("//"));
            assert!(!s.split('/').any(|c| c == "." || c == ".."), "{s:?}");
            assert!(!s.contains('\\') && !s.contains('\0'));
        }
        Err(e) => {
            assert!(!expected, "refused {s:?}, which the grammar accepts");
            assert_eq!((e.code(), e.status()), (Code::NameInvalid, 400));
            assert!(e.client_message().len() <= 2048);
        }
    }
});
