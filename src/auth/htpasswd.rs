//! htpasswd: the bcrypt htpasswd format (`user:$2y$...`, as `htpasswd -B`
//! writes it), for importing a `registry:2` installation's users.
//!
//! It must never accept a hash it cannot verify (only bcrypt), store users
//! itself (the registry imports the pairs), or quote a hash in an error.

use super::password::is_bcrypt;
use super::{validate_username, CredError};

/// Parses an htpasswd file into `(user, hash)` pairs, in file order.
/// Blank lines and lines starting with `#` are skipped. Only bcrypt hashes
/// are accepted (`htpasswd -B`); any other line is an error naming its line
/// number (and never quoting the hash).
pub fn parse_htpasswd(text: &str) -> Result<Vec<(String, String)>, CredError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let err = |reason: String| CredError::Htpasswd { line, reason };
        let Some((user, hash)) = trimmed.split_once(':') else {
            return Err(err("expected user:hash".into()));
        };
        validate_username(user).map_err(|e| err(e.to_string()))?;
        if !is_bcrypt(hash.trim()) {
            return Err(err(format!(
                "the hash of user {user:?} is not bcrypt; only bcrypt hashes \
                 (created with `htpasswd -B`) can be imported"
            )));
        }
        if out.iter().any(|(u, _)| u == user) {
            return Err(err(format!("user {user:?} appears twice")));
        }
        out.push((user.to_string(), hash.trim().to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::password::{verify, Memory, Verdict};
    use super::*;

    #[test]
    fn htpasswd_bcrypt_lines_import_and_verify() {
        let hash = bcrypt::hash("hunter2", 4).expect("bcrypt");
        let hash_2y = format!("$2y${}", &hash[4..]);
        let text =
            format!("# made by htpasswd -B\n\nalice:{hash}\r\n  \nbob@example.org:{hash_2y}\n");
        let users = parse_htpasswd(&text).expect("parse");
        assert_eq!(users.len(), 2);
        assert_eq!(users[0], ("alice".to_string(), hash.clone()));
        assert_eq!(users[1].0, "bob@example.org");
        let mut memory = Memory::new();
        for (_, h) in &users {
            assert_eq!(verify(h, "hunter2", &mut memory), Verdict::Match);
            assert_eq!(verify(h, "hunter3", &mut memory), Verdict::Mismatch);
        }
    }

    #[test]
    fn htpasswd_rejects_what_it_cannot_import_by_line_without_quoting_hashes() {
        let good = bcrypt::hash("x", 4).expect("bcrypt");
        let cases: &[(&str, usize, &str)] = &[
            ("carol:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=", 1, "not bcrypt"),
            (
                "#c\ndave:$apr1$abcdefgh$0123456789abcdefghijkl",
                2,
                "not bcrypt",
            ),
            ("erin:plaintextpassword", 1, "not bcrypt"),
            ("no colon here", 1, "expected user:hash"),
            ("-frank:GOOD", 1, "starts with '-'"),
            ("gr ace:GOOD", 1, "only letters"),
            ("alice:GOOD\nalice:GOOD", 2, "appears twice"),
        ];
        for (text, line, needle) in cases {
            let text = text.replace("GOOD", &good);
            let err = parse_htpasswd(&text).expect_err(&text);
            let msg = err.to_string();
            assert!(
                matches!(err, CredError::Htpasswd { line: l, .. } if l == *line),
                "{text}: {msg}"
            );
            assert!(msg.contains(needle), "{text}: {msg}");
            assert!(!msg.contains(&good) && !msg.contains("W6ph5") && !msg.contains("apr1"));
            assert!(!msg.contains("plaintextpassword"));
        }
        assert_eq!(
            parse_htpasswd("# only comments\n\n").expect("empty"),
            vec![]
        );
    }
}
