//! pattern: globs over repository names, for access rules and token scopes.
//!
//! `*` matches any characters within one path segment (never `/`), `**`
//! matches any characters across segments (`/` included); everything else is
//! literal. `alice/*` matches `alice/app` but not `alice/x/app`; `team/**`
//! matches `team/app` and `team/x/app` but not `team`; `**` matches every
//! repository. A pattern's specificity (the number of literal characters,
//! then fewer `**`, then fewer `*`) orders competing rules in
//! [`super::access`].
//!
//! It must never allocate per match nor accept a character no repository
//! name or glob may hold (so a stored pattern is always printable as is).

use std::fmt;

/// The longest pattern accepted (repository names are at most 255 bytes).
pub const MAX_PATTERN_LEN: usize = 255;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern(String);

/// Why a pattern was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError(pub String);

impl fmt::Display for PatternError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PatternError {}

/// How specific a pattern is; a greater value is more specific.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Specificity {
    pub literals: usize,
    /// `usize::MAX - count`, so that fewer wildcards compare greater.
    fewer_double_stars: usize,
    fewer_stars: usize,
}

impl Pattern {
    /// Parses a glob: 1 to 255 characters from `a-z 0-9 . _ - / *`, no
    /// `***`, no empty segment (`a//b`, a leading or trailing `/`).
    pub fn parse(s: &str) -> Result<Pattern, PatternError> {
        let bad = |why: &str| Err(PatternError(format!("invalid pattern {s:?}: {why}")));
        if s.is_empty() {
            return bad("it is empty");
        }
        if s.len() > MAX_PATTERN_LEN {
            return bad("it is longer than 255 characters");
        }
        if !s.bytes().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || matches!(c, b'.' | b'_' | b'-' | b'/' | b'*')
        }) {
            return bad("only a-z 0-9 . _ - / and the wildcards * and ** are allowed");
        }
        if s.contains("***") {
            return bad("*** is not a wildcard (use * within a segment, ** across segments)");
        }
        if s.split('/').any(str::is_empty) {
            return bad("a path segment is empty");
        }
        Ok(Pattern(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The pattern that matches every repository.
    pub fn everything() -> Pattern {
        Pattern("**".into())
    }

    pub fn is_everything(&self) -> bool {
        self.0 == "**"
    }

    pub fn specificity(&self) -> Specificity {
        let b = self.0.as_bytes();
        let (mut literals, mut doubles, mut singles, mut i) = (0, 0, 0, 0);
        while i < b.len() {
            if b[i] == b'*' {
                if b.get(i + 1) == Some(&b'*') {
                    doubles += 1;
                    i += 2;
                } else {
                    singles += 1;
                    i += 1;
                }
            } else {
                literals += 1;
                i += 1;
            }
        }
        Specificity {
            literals,
            fewer_double_stars: usize::MAX - doubles,
            fewer_stars: usize::MAX - singles,
        }
    }

    /// Whether `name` (a repository name) matches.
    pub fn matches(&self, name: &str) -> bool {
        glob(self.0.as_bytes(), name.as_bytes())
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Iterative glob with one backtracking point per wildcard kind: O(p * n) at
/// worst, no recursion, no allocation. `**` backtracks over anything; `*`
/// backtracks only within the current segment.
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0usize, 0usize);
    // The last `**` seen: (pattern index after it, subject index it started at).
    let mut double: Option<(usize, usize)> = None;
    // The last `*` seen since then: (pattern index after it, subject index).
    let mut single: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() && p[pi] == b'*' {
            if p.get(pi + 1) == Some(&b'*') {
                pi += 2;
                double = Some((pi, si));
                single = None;
            } else {
                pi += 1;
                single = Some((pi, si));
            }
            continue;
        }
        if si == s.len() && pi == p.len() {
            return true;
        }
        if pi < p.len() && si < s.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
            continue;
        }
        // Mismatch: let the innermost wildcard swallow one more byte.
        if let Some((sp, ss)) = single {
            if ss < s.len() && s[ss] != b'/' {
                single = Some((sp, ss + 1));
                pi = sp;
                si = ss + 1;
                continue;
            }
        }
        if let Some((dp, ds)) = double {
            if ds < s.len() {
                double = Some((dp, ds + 1));
                single = None;
                pi = dp;
                si = ds + 1;
                continue;
            }
        }
        return false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_table() {
        let cases: &[(&str, &str, bool)] = &[
            ("**", "a", true),
            ("**", "a/b/c", true),
            ("alice/*", "alice/app", true),
            ("alice/*", "alice/x/app", false),
            ("alice/*", "alice", false),
            ("alice/*", "alicex/app", false),
            ("team/**", "team/app", true),
            ("team/**", "team/a/b/c", true),
            ("team/**", "team", false),
            ("team/**", "teams/app", false),
            ("public/**", "public/x", true),
            ("*", "app", true),
            ("*", "a/b", false),
            ("*/app", "x/app", true),
            ("*/app", "x/y/app", false),
            ("**/app", "x/y/app", true),
            ("**/app", "app", false),
            ("a*c", "abc", true),
            ("a*c", "ab/c", false),
            ("a**c", "ab/c", true),
            ("lab/app", "lab/app", true),
            ("lab/app", "lab/app2", false),
            ("lab/*-dev", "lab/web-dev", true),
            ("lab/*-dev", "lab/web-prod", false),
            ("**/*-dev", "a/b/web-dev", true),
            ("**/*-dev", "a/web-dev/x", false),
            ("a/*/c/**", "a/b/c/d/e", true),
            ("a/*/c/**", "a/b/x/c/d", false),
        ];
        for (pattern, name, want) in cases {
            let p = Pattern::parse(pattern).expect(pattern);
            assert_eq!(p.matches(name), *want, "{pattern} vs {name}");
        }
    }

    #[test]
    fn parsing_refuses_what_no_name_holds() {
        for bad in [
            "", "/a", "a/", "a//b", "A/b", "a b", "***", "a/***", "a?", "..\\x", "é",
        ] {
            assert!(Pattern::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Pattern::parse(&"a".repeat(256)).is_err());
        for good in ["**", "a/*", "team/**", "x.y_z-w/**/v"] {
            assert!(Pattern::parse(good).is_ok(), "{good:?} refused");
        }
    }

    #[test]
    fn specificity_counts_literals_then_fewer_wildcards() {
        let s = |p: &str| Pattern::parse(p).expect(p).specificity();
        assert!(s("team/app") > s("team/*"));
        assert!(s("team/*") > s("team/**"), "same literals, * beats **");
        assert!(s("team/a*") > s("team/**"));
        assert!(s("team/**") > s("**"));
        assert_eq!(s("a/*").literals, 2);
    }

    #[test]
    fn pathological_patterns_stay_linear_enough() {
        let p = Pattern::parse(&"*a".repeat(60)).expect("pattern");
        let name = "a".repeat(59) + "b";
        let start = std::time::Instant::now();
        assert!(!p.matches(&name));
        let p = Pattern::parse(&"**a".repeat(40)).expect("pattern");
        assert!(!p.matches(&("a/".repeat(100) + "b")));
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }
}
