//! Repository names, tags, references and upload ids, parsed strictly by the
//! spec's grammars. A value of these types can never name a path outside the
//! data folder: none of them may contain `..`, a leading `/` or a backslash.
//!
//! It must never accept a value outside its grammar, nor do I/O.

use super::Digest;
use crate::error::{Code, Error, Result};
use std::fmt;

/// The longest repository name accepted (most clients cap host + name at 255).
pub const MAX_NAME_LEN: usize = 255;

/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

impl RepoName {
    pub fn parse(s: &str) -> Result<RepoName> {
        let invalid = |why: &str| {
            Error::client(Code::NameInvalid, format!("invalid repository name: {why}"))
                .with_detail(serde_json::json!({ "name": s.chars().take(300).collect::<String>() }))
        };
        if s.is_empty() {
            return Err(invalid("empty"));
        }
        if s.len() > MAX_NAME_LEN {
            return Err(invalid("longer than 255 characters"));
        }
        for component in s.split('/') {
            if !valid_component(component) {
                return Err(invalid(
                    "each path component must match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*",
                ));
            }
        }
        Ok(RepoName(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn valid_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-".
        let start = i;
        match b[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < b.len() && b[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < b.len() && b[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= b.len() || !alnum(b[i]) {
            return false;
        }
    }
    true
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

impl Tag {
    pub fn parse(s: &str) -> Result<Tag> {
        let b = s.as_bytes();
        let head_ok = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
        let tail_ok = |x: u8| x.is_ascii_alphanumeric() || matches!(x, b'_' | b'.' | b'-');
        if b.is_empty() || b.len() > 128 || !head_ok(b[0]) || !b[1..].iter().all(|&x| tail_ok(x)) {
            return Err(Error::client(
                Code::TagInvalid,
                format!(
                    "invalid tag {:?}: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{{0,127}}",
                    s.chars().take(160).collect::<String>()
                ),
            ));
        }
        Ok(Tag(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A manifest reference: a tag or a digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reference {
    Tag(Tag),
    Digest(Digest),
}

impl Reference {
    pub fn parse(s: &str) -> Result<Reference> {
        if s.contains(':') {
            Digest::parse(s).map(Reference::Digest)
        } else {
            Tag::parse(s).map(Reference::Tag)
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

/// An upload session id: 32 lowercase hex characters, made by soute.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UploadId(String);

impl UploadId {
    pub fn parse(s: &str) -> Result<UploadId> {
        if s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            Ok(UploadId(s.to_string()))
        } else {
            Err(Error::client(
                Code::BlobUploadUnknown,
                "unknown upload session",
            ))
        }
    }

    /// A fresh random id.
    pub fn random() -> Result<UploadId> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|e| Error::internal_from("random", e))?;
        Ok(UploadId(bytes.iter().map(|b| format!("{b:02x}")).collect()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UploadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_names() {
        let good = [
            "a",
            "library/busybox",
            "a.b_c__d---e/f0",
            "lab/multi",
            &"a".repeat(255),
        ];
        for n in good {
            assert!(RepoName::parse(n).is_ok(), "{n}");
        }
        let too_long = "a".repeat(256);
        let bad = [
            "", "A", "a/", "/a", "a//b", "..", "a/../b", "a/./b", "a..b", "a___b", "-a", "a-",
            "a_.b", "a b", "a%2fb", "a\\b", "_a", &too_long,
        ];
        for n in bad {
            assert_eq!(
                RepoName::parse(n).expect_err(n).code(),
                Code::NameInvalid,
                "{n}"
            );
        }
    }

    #[test]
    fn tags() {
        for t in ["latest", "1.0", "_x", "A-b.c_d", &"t".repeat(128)] {
            assert!(Tag::parse(t).is_ok(), "{t}");
        }
        for t in ["", ".x", "-x", "a/b", "a:b", &"t".repeat(129), "ü"] {
            assert_eq!(Tag::parse(t).expect_err(t).code(), Code::TagInvalid, "{t}");
        }
    }

    #[test]
    fn references_and_ids() {
        assert!(matches!(Reference::parse("v1"), Ok(Reference::Tag(_))));
        assert!(matches!(
            Reference::parse(&format!("sha256:{}", "b".repeat(64))),
            Ok(Reference::Digest(_))
        ));
        assert_eq!(
            Reference::parse("sha256:totallywrong")
                .expect_err("bad")
                .code(),
            Code::DigestInvalid
        );
        let id = UploadId::random().expect("random");
        assert!(UploadId::parse(id.as_str()).is_ok());
        for bad in ["../x", "", "ABCDEF0123456789ABCDEF0123456789"] {
            assert!(UploadId::parse(bad).is_err());
        }
    }
}
