//! bearer: the short-lived tokens of the Docker token service (`--auth
//! token`), issued at `/v2/token` and presented as `Authorization: Bearer`.
//!
//! A bearer token is `PAYLOAD.MAC`: `PAYLOAD` is base64url (no padding) of
//! the JSON [`Claims`] (who, the access granted, when issued, when it
//! expires), `MAC` is base64url of blake3's keyed hash of `PAYLOAD` under the
//! registry's 32-byte bearer key (kept in SQLite, so a backup carries it).
//! soute is both issuer and verifier, so a MAC needs no key pair and no JWT
//! library; verifying costs one blake3 and one small JSON parse, no database
//! write, no argon2. What a token grants is re-checked on every request
//! against the current rules, so a revoked rule, a deleted user or a revoked
//! API token stops its bearer tokens at once; a changed password does not
//! (they expire within [`LIFETIME_SECS`]).
//!
//! It must never look at HTTP requests or the database, decide access (that
//! is `access`), or accept a token whose MAC, size or expiry is wrong.

use super::rule::{Action, Actions, Scope};
use super::{random_bytes, CredError, Key, Pattern};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// How long a bearer token is valid (Docker Hub issues 300 s tokens too).
pub const LIFETIME_SECS: i64 = 300;
/// The longest token accepted, and the most access entries in one.
pub const MAX_TOKEN_LEN: usize = 16 * 1024;
pub const MAX_GRANTS: usize = 32;

/// One entry of a token's access, as in Docker's token specification:
/// `{"type":"repository","name":"alice/app","actions":["pull","push"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// What a bearer token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user it was issued to; `None`: anonymous.
    pub sub: Option<String>,
    /// For a token issued on an API token's credentials: that token's
    /// stored hash (so revoking the API token revokes this one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    pub access: Vec<Grant>,
    /// Issued at and expires at, seconds since the epoch.
    pub iat: i64,
    pub exp: i64,
}

impl Claims {
    /// The grants as token scopes: a `repository` grant is the literal name
    /// with its actions; `registry:catalog:*` (listings, `docker search`) is
    /// pull on `**` (the listing still shows only what the user may pull);
    /// `registry:soute:admin` is admin on `**`. Unknown grants give nothing.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut out = Vec::with_capacity(self.access.len());
        for g in &self.access {
            let actions = |names: &[String]| {
                let list: Vec<Action> = names.iter().filter_map(|a| Action::parse(a)).collect();
                Actions::of(&list)
            };
            match (g.kind.as_str(), g.name.as_str()) {
                ("repository", name) => {
                    if let Ok(pattern) = Pattern::parse(name) {
                        if !name.contains('*') {
                            out.push(Scope {
                                pattern,
                                actions: actions(&g.actions),
                            });
                        }
                    }
                }
                ("registry", "catalog") => out.push(Scope {
                    pattern: Pattern::everything(),
                    actions: Actions::of(&[Action::Pull]),
                }),
                ("registry", "soute") => {
                    let system: Vec<Action> = [Action::Admin, Action::Metrics]
                        .into_iter()
                        .filter(|a| g.actions.iter().any(|n| n == a.as_str()))
                        .collect();
                    if !system.is_empty() {
                        out.push(Scope {
                            pattern: Pattern::everything(),
                            actions: Actions::of(&system),
                        })
                    }
                }
                _ => {}
            }
        }
        out
    }
}

/// A new random bearer key.
pub fn new_key() -> Result<Key, CredError> {
    random_bytes::<32>()
}

fn mac(key: &Key, payload: &str) -> blake3::Hash {
    blake3::keyed_hash(key, payload.as_bytes())
}

/// The token for `claims`.
pub fn issue(key: &Key, claims: &Claims) -> String {
    let json = serde_json::to_vec(claims).unwrap_or_default();
    let payload = URL_SAFE_NO_PAD.encode(json);
    let tag = URL_SAFE_NO_PAD.encode(mac(key, &payload).as_bytes());
    format!("{payload}.{tag}")
}

/// The claims of a token whose MAC is right and that has not expired at
/// `now`; otherwise why not (words for the log, never the token).
pub fn verify(key: &Key, token: &str, now: i64) -> Result<Claims, &'static str> {
    if token.len() > MAX_TOKEN_LEN {
        return Err("the token is too long");
    }
    let (payload, tag) = token.split_once('.').ok_or("not a soute bearer token")?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .ok()
        .and_then(|t| <[u8; 32]>::try_from(t.as_slice()).ok())
        .ok_or("not a soute bearer token")?;
    // blake3::Hash compares in constant time.
    if mac(key, payload) != blake3::Hash::from(tag) {
        return Err("the token's signature is wrong");
    }
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| "the token is not readable")?;
    let claims: Claims = serde_json::from_slice(&json).map_err(|_| "the token is not readable")?;
    if claims.exp <= now {
        return Err("the token has expired");
    }
    if claims.access.len() > MAX_GRANTS {
        return Err("the token grants too much");
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Some("alice".into()),
            via: None,
            access: vec![Grant {
                kind: "repository".into(),
                name: "alice/app".into(),
                actions: vec!["pull".into(), "push".into()],
            }],
            iat: 100,
            exp,
        }
    }

    #[test]
    fn a_token_verifies_under_its_key_only_and_until_it_expires() {
        let key = [7u8; 32];
        let t = issue(&key, &claims(400));
        assert_eq!(verify(&key, &t, 399), Ok(claims(400)));
        assert_eq!(verify(&key, &t, 400), Err("the token has expired"));
        assert_eq!(
            verify(&[8u8; 32], &t, 200),
            Err("the token's signature is wrong")
        );
    }

    #[test]
    fn a_changed_payload_or_tag_is_refused() {
        let key = [7u8; 32];
        let t = issue(&key, &claims(400));
        let (payload, tag) = t.split_once('.').expect("two parts");
        let forged = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&Claims {
                sub: Some("root".into()),
                ..claims(400)
            })
            .expect("json"),
        );
        assert!(verify(&key, &format!("{forged}.{tag}"), 200).is_err());
        let mut bad_tag = tag.to_string();
        bad_tag.replace_range(0..1, if tag.starts_with('A') { "B" } else { "A" });
        assert!(verify(&key, &format!("{payload}.{bad_tag}"), 200).is_err());
        for junk in ["", ".", "abc", "a.b", &"x".repeat(MAX_TOKEN_LEN + 1)] {
            assert!(verify(&key, junk, 200).is_err(), "{junk:.20}");
        }
    }

    #[test]
    fn grants_become_scopes() {
        let mut c = claims(400);
        c.access.push(Grant {
            kind: "registry".into(),
            name: "catalog".into(),
            actions: vec!["*".into()],
        });
        c.access.push(Grant {
            kind: "repository".into(),
            name: "x/**".into(),
            actions: vec!["pull".into()],
        });
        let s: Vec<String> = c.scopes().iter().map(Scope::to_string).collect();
        assert_eq!(s, ["alice/app:pull,push", "**:pull"]);
    }
}
