//! Query strings and percent-encoding (RFC 3986): decoding path segments and
//! `key=value` pairs, encoding values for `Link` headers.
//!
//! It must never interpret a parameter (that is each handler's job) nor fail:
//! invalid escapes stay literal and then fail the grammar checks in `oci`.

/// The decoded `(key, value)` pairs of a request's query string, in order.
pub struct Query(Vec<(String, String)>);

impl Query {
    pub fn parse(raw: &str) -> Query {
        Query(parse_query(raw))
    }

    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (e.g. repeated `?tag=`).
    pub fn all<'q>(&'q self, key: &'q str) -> impl Iterator<Item = &'q str> + 'q {
        self.0
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-decode one path segment or query component. `plus_is_space` for
/// `application/x-www-form-urlencoded` query strings. Invalid escapes are kept
/// literally (they then fail the grammar checks).
pub fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' && i + 2 < bytes.len() {
            let hex = |c: u8| (c as char).to_digit(16);
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(if plus_is_space && b == b'+' { b' ' } else { b });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Percent-encode a query component (RFC 3986 unreserved characters kept).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Parse a query string into (key, value) pairs, in order, percent-decoded.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (percent_decode(k, true), percent_decode(v, true)),
            None => (percent_decode(pair, true), String::new()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        let table = [
            ("abc", "abc"),
            ("a%2Fb", "a/b"),
            ("%2e%2e", ".."),
            ("sha256%3Aab", "sha256:ab"),
            ("bad%zz", "bad%zz"),
            ("end%2", "end%2"),
            ("a+b", "a+b"),
        ];
        for (input, want) in table {
            assert_eq!(percent_decode(input, false), want, "{input}");
        }
        assert_eq!(percent_decode("a+b", true), "a b");
    }

    #[test]
    fn query_pairs() {
        let q = parse_query("n=2&last=a%2Fb&tag=x&tag=y&flag");
        assert_eq!(q[0], ("n".into(), "2".into()));
        assert_eq!(q[1], ("last".into(), "a/b".into()));
        assert_eq!(q.iter().filter(|(k, _)| k == "tag").count(), 2);
        assert_eq!(q[4], ("flag".into(), String::new()));
        assert_eq!(percent_encode("a/b c"), "a%2Fb%20c");
        let q = Query::parse("tag=x&n=1&tag=y");
        assert_eq!(q.get("tag"), Some("x"));
        assert_eq!(q.all("tag").collect::<Vec<_>>(), ["x", "y"]);
        assert_eq!(q.get("last"), None);
    }
}
