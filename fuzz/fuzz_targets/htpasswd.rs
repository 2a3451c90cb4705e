//! htpasswd files (`soute::auth::htpasswd::parse_htpasswd`): an accepted file
//! yields one pair per non-blank, non-comment line, each a valid user name with
//! a bcrypt hash, names unique, and writing the pairs back parses to the same
//! pairs. A refused file names a real line (every line before it parses), and
//! the error does not depend on that line's hash (so it cannot quote it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use soute::auth::htpasswd::parse_htpasswd;
use soute::auth::password::is_bcrypt;
use soute::auth::{validate_username, CredError};

fn is_entry(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_htpasswd(text) {
        Ok(pairs) => {
            assert_eq!(pairs.len(), text.lines().filter(|l| is_entry(l)).count());
            for (i, (user, hash)) in pairs.iter().enumerate() {
                assert!(validate_username(user).is_ok(), "{user:?}");
                assert!(is_bcrypt(hash) && hash.trim() == hash);
                assert!(!pairs[..i].iter().any(|(u, _)| u == user), "{user:?} twice");
            }
            let written: String = pairs.iter().map(|(u, h)| format!("{u}:{h}\n")).collect();
            assert_eq!(parse_htpasswd(&written).ok().as_ref(), Some(&pairs));
        }
        Err(CredError::Htpasswd { line, reason }) => {
            let lines: Vec<&str> = text.lines().collect();
            assert!(
                line >= 1 && line <= lines.len(),
                "line {line} of {}",
                lines.len()
            );
            let bad = lines[line - 1];
            assert!(is_entry(bad), "line {line} {bad:?} is blank or a comment");
            let before = lines[..line - 1].join("\n");
            assert!(parse_htpasswd(&before).is_ok(), "an earlier line fails too");
            // The error must not depend on the hash: the same file with another
            // hash of the same kind on that line gives the same error, so it
            // cannot quote the hash.
            if let Some((user, hash)) = bad.trim().split_once(':') {
                let hash = hash.trim();
                let other = if is_bcrypt(hash) {
                    let last = if hash.ends_with('a') { "b" } else { "a" };
                    format!("{}{last}", &hash[..hash.len() - 1])
                } else {
                    "x".repeat(hash.len())
                };
                let mut changed = lines.clone();
                let replaced = format!("{user}:{other}");
                changed[line - 1] = &replaced;
                match parse_htpasswd(&changed.join("\n")) {
                    Err(CredError::Htpasswd { line: l, reason: r }) => {
                        assert_eq!((l, &r), (line, &reason), "the error depends on the hash");
                    }
                    other => panic!("another hash changed the outcome: {other:?}"),
                }
            }
        }
        Err(other) => panic!("unexpected error kind: {other}"),
    }
});
