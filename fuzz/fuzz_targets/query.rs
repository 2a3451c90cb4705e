//! Query strings and percent-encoding: `Query::parse` and `parse_query` agree,
//! `get` is the first of `all`; `percent_decode` never grows its input and
//! leaves escape-free text alone; `percent_encode` emits only unreserved
//! characters and `%XX`, and decoding it gives the input back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use soute::api::query::{parse_query, percent_decode, percent_encode, Query};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let pairs = parse_query(s);
    assert!(pairs.len() <= s.split('&').count());
    let q = Query::parse(s);
    for (k, v) in &pairs {
        assert_eq!(q.get(k), q.all(k).next());
        assert!(q.all(k).any(|x| x == v));
    }

    for plus in [false, true] {
        let decoded = percent_decode(s, plus);
        assert!(decoded.len() <= s.len(), "{s:?} grew to {decoded:?}");
        let escaped = s.contains('%') || (plus && s.contains('+'));
        if !escaped {
            assert_eq!(decoded, s);
        }
    }

    let encoded = percent_encode(s);
    let b = encoded.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            assert!(
                i + 2 < b.len()
                    && b[i + 1..i + 3]
                        .iter()
                        .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())
            );
            i += 3;
        } else {
            assert!(
                b[i].is_ascii_alphanumeric() || b"-._~".contains(&b[i]),
                "{encoded:?}"
            );
            i += 1;
        }
    }
    assert_eq!(percent_decode(&encoded, false), s);
    assert_eq!(percent_decode(&encoded, true), s);
});
