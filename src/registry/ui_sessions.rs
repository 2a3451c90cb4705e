//! The web UI's sessions and its one batch write: a session is created for
//! an identity `api::identify` already verified (password through the
//! throttled verifier pool, or an API token), stored as the sha256 of its
//! cookie's secret with a CSRF token and an expiry; deleting several tags is
//! one transaction, recorded in each tag's history. Each sign-in removes the
//! expired sessions and keeps at most [`MAX_UI_SESSIONS_PER_USER`] per user.
//!
//! It must never check a password itself, store a cookie's secret, or hand
//! back an expired session or one whose API token was revoked.

use super::Registry;
use crate::auth::tokens::hash_secret;
use crate::auth::Identity;
use crate::db::ui_sessions::{self, SessionRow};
use crate::db::{self, repos, tags};
use crate::error::{Error, Result};
use crate::oci::{RepoName, Tag};

/// How long a UI session lives.
pub const UI_SESSION_SECS: i64 = 12 * 3600;
/// The most live sessions one user has: signing in once more ends the
/// oldest (so the table holds at most this many rows per user, plus none
/// expired: every sign-in removes those).
pub const MAX_UI_SESSIONS_PER_USER: u64 = 20;

/// A new session: the cookie's secret (sent once, never stored) and the
/// CSRF token of its forms.
pub struct NewSession {
    pub secret: String,
    pub csrf: String,
}

fn random_hex() -> Result<String> {
    let bytes = crate::auth::random_bytes::<32>()
        .map_err(|e| Error::internal(format!("no randomness for a session: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

impl Registry {
    /// Start a session for `who` (a user, or an API token with the token's
    /// `secret`, whose sha256 is kept so a revoked token ends the session).
    pub fn start_ui_session(
        &self,
        who: &Identity,
        token_secret: Option<&str>,
    ) -> Result<NewSession> {
        let user = who
            .user()
            .ok_or_else(|| Error::internal("an anonymous caller has no session"))?;
        let (secret, csrf) = (random_hex()?, random_hex()?);
        let now = db::now();
        let row = SessionRow {
            user: user.to_string(),
            token_hash: token_secret.map(hash_secret),
            csrf: csrf.clone(),
            expires_at: now + UI_SESSION_SECS,
        };
        self.db.write(|tx| {
            ui_sessions::prune(tx, now)?;
            ui_sessions::keep_newest(tx, user, MAX_UI_SESSIONS_PER_USER - 1)?;
            ui_sessions::insert(tx, &hash_secret(&secret), &row, now)
        })?;
        Ok(NewSession { secret, csrf })
    }

    /// The identity and CSRF token of the session whose cookie holds
    /// `secret`: `None` when unknown, expired, or its API token is gone.
    pub fn ui_session(&self, secret: &str) -> Result<Option<(Identity, String)>> {
        let Some(row) = self
            .db
            .read(|c| ui_sessions::by_hash(c, &hash_secret(secret), db::now()))?
        else {
            return Ok(None);
        };
        let who = match &row.token_hash {
            None => Identity::User(row.user.clone()),
            Some(hash) => {
                let Some(scopes) = self.live_token_scopes(hash, &row.user) else {
                    return Ok(None);
                };
                let name = self
                    .db
                    .read(|c| db::tokens::by_hash(c, hash))?
                    .map(|t| t.name)
                    .unwrap_or_default();
                Identity::Token {
                    user: row.user.clone(),
                    token: name,
                    scopes,
                }
            }
        };
        Ok(Some((who, row.csrf)))
    }

    /// End the session whose cookie holds `secret`.
    pub fn end_ui_session(&self, secret: &str) -> Result<bool> {
        self.db
            .write(|tx| ui_sessions::delete(tx, &hash_secret(secret)))
    }

    /// Delete several tags of `repo` in one transaction (each recorded in its
    /// history with `actor`); the names of those that existed, now deleted.
    pub fn delete_tags(&self, repo: &RepoName, names: &[Tag], actor: &str) -> Result<Vec<String>> {
        self.require_delete()?;
        self.db
            .write(|tx| {
                let Some(id) = repos::repo_id(tx, repo.as_str())? else {
                    return Ok(Vec::new());
                };
                let mut deleted = Vec::new();
                for t in names {
                    // The API's rules: a protected tag is refused (403 naming the rule),
                    // and each deletion is a webhook event in this transaction.
                    if tags::resolve_tag(tx, id, t.as_str())?.is_some() {
                        super::protect::check_tag_delete(tx, repo.as_str(), t.as_str())?;
                    }
                    if tags::delete_tag(tx, id, t.as_str(), actor)? {
                        self.webhooks.tag_deleted(tx, repo.as_str(), t.as_str())?;
                        deleted.push(t.as_str().to_string());
                    }
                }
                Ok(deleted)
            })
            .inspect(|_| self.webhooks.wake())
    }
}
