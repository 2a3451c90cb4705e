//! basic: the `Authorization: Basic` header value.
//!
//! It must never check a password or keep what it decoded: it only turns a
//! header value into (user, password).

use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;

/// Decodes an `Authorization` value `Basic <base64(user:password)>`.
/// The scheme is case-insensitive; padding is optional; the user name ends at
/// the first `:`. `None` when the value is not Basic, not base64, not UTF-8,
/// has no `:`, or has an empty user name (no user, no credentials).
pub fn parse_basic(header_value: &str) -> Option<(String, String)> {
    const B64: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let (scheme, rest) = header_value.trim().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = B64.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pw) = text.split_once(':')?;
    if user.is_empty() {
        return None;
    }
    Some((user.to_string(), pw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_basic_cases() {
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("Basic YWxpY2U6czNjcmV0", Some(("alice", "s3cret"))),
            ("basic YWxpY2U6czNjcmV0", Some(("alice", "s3cret"))),
            ("BASIC   YWxpY2U6czNjcmV0  ", Some(("alice", "s3cret"))),
            // password containing ':' splits at the first one
            ("Basic YWxpY2U6YTpiOmM=", Some(("alice", "a:b:c"))),
            // missing padding is tolerated
            ("Basic YWxpY2U6YTpiOmM", Some(("alice", "a:b:c"))),
            // empty password is a (wrong) credential, empty user is none
            ("Basic YWxpY2U6", Some(("alice", ""))),
            ("Basic Og==", None),
            ("Basic bm9jb2xvbg==", None), // "nocolon"
            ("Basic !!!notbase64", None),
            ("Basic /w==", None), // 0xff: not UTF-8
            ("Basic gDpw", None), // 0x80 ':' 'p': not UTF-8
            ("Bearer YWxpY2U6czNjcmV0", None),
            ("BasicYWxpY2U6czNjcmV0", None),
            ("Basic", None),
            ("", None),
        ];
        for (input, want) in cases {
            let got = parse_basic(input);
            let want = want.map(|(u, p)| (u.to_string(), p.to_string()));
            assert_eq!(got, want, "{input:?}");
        }
    }
}
