//! Users: the registry's glue to [`crate::auth`]. Add, change, delete and
//! list accounts (argon2id hashes in SQLite), import a bcrypt htpasswd file,
//! keep a registry that has had users closed until the operator opens it,
//! and check Basic credentials through the shared [`Authenticator`].
//!
//! Changes made by `soute user ...` in another process reach a running server
//! at the next request: every request reads whether the registry is closed
//! (one indexed read), every check looks the hash up and the cache is keyed by it.
//!
//! It must never hash or verify a password itself (auth does), nor decide
//! what an identity may do (auth::access does), nor store or log a password.

use super::Registry;
use crate::auth::{self, AuthOutcome, Authenticator};
use crate::db::{settings, users};
use crate::error::{Error, Result};
use std::net::IpAddr;
use std::path::Path;

/// A bad user name is the caller's mistake; a failed hash or RNG is ours.
fn cred_error(e: auth::CredError) -> Error {
    match e {
        auth::CredError::InvalidUsername(_) => Error::InvalidParameter(e.to_string()),
        _ => Error::internal_from("credentials", e),
    }
}

impl Registry {
    /// Create or replace a user. Returns true when the user is new. A new
    /// user is an administrator only when the registry has none yet (see
    /// [`Registry::add_user`]); an existing one keeps its flag.
    pub fn set_user(&self, name: &str, password: &str) -> Result<bool> {
        auth::validate_username(name).map_err(cred_error)?;
        if password.is_empty() {
            return Err(Error::InvalidParameter(
                "the password must not be empty".into(),
            ));
        }
        let hash = auth::hash_password(password).map_err(cred_error)?;
        self.db.write(|tx| {
            let admin_if_new = !users::has_admin(tx)?;
            users::set_user(tx, name, &hash, admin_if_new)
        })
    }

    pub fn user_exists(&self, name: &str) -> Result<bool> {
        Ok(self.db.read(|c| users::user_hash(c, name))?.is_some())
    }

    pub fn delete_user(&self, name: &str) -> Result<bool> {
        self.db.write(|tx| users::delete_user(tx, name))
    }

    pub fn user_names(&self) -> Result<Vec<String>> {
        self.db.read(users::user_names)
    }

    pub fn has_users(&self) -> Result<bool> {
        self.db.read(users::has_users)
    }

    /// True when requests need credentials: users exist, or existed and the
    /// registry was not opened since with [`Registry::open_to_anyone`].
    pub fn is_closed(&self) -> Result<bool> {
        self.db.read(users::is_closed)
    }

    /// Opens a registry without users to anyone (`soute user open`).
    /// False (and nothing changes) while users exist.
    pub fn open_to_anyone(&self) -> Result<bool> {
        self.db.write(|tx| users::open(tx))
    }

    /// Import the users of a bcrypt htpasswd file. A line is imported once:
    /// a user deleted or given a new password with `soute user` stays so until
    /// the file's line for that user changes. New users are administrators,
    /// as every htpasswd user could do everything in distribution.
    pub fn import_htpasswd(&self, path: &Path) -> Result<usize> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
        let entries = auth::parse_htpasswd(&text)
            .map_err(|e| Error::internal_from(format!("importing {}", path.display()), e))?;
        self.db.write(|tx| {
            let mut changed = 0;
            for (name, hash) in &entries {
                let key = format!("htpasswd:{name}");
                if settings::setting(tx, &key)?.as_deref() != Some(hash.as_str()) {
                    users::set_user(tx, name, hash, true)?;
                    settings::set_setting(tx, &key, hash)?;
                    changed += 1;
                }
            }
            Ok(changed)
        })
    }

    /// Check a user's password. A lookup that fails (the database pool is
    /// busy) is `Busy` (429, try again), never `Bad`: a valid login must not
    /// be told its credentials are wrong, nor count as a failure.
    pub fn check_password(
        &self,
        auth: &Authenticator,
        user: &str,
        password: &str,
        ip: IpAddr,
    ) -> AuthOutcome {
        self.check_password_at(auth, user, password, ip, None)
    }

    /// [`Registry::check_password`] for a request that read the access
    /// generation `seen` when it started: the stored hash then comes from
    /// `read_cache::UserHashes` while that generation holds.
    pub fn check_password_at(
        &self,
        auth: &Authenticator,
        user: &str,
        password: &str,
        ip: IpAddr,
        seen: Option<i64>,
    ) -> AuthOutcome {
        // The hash an unknown user's check is timed against (read afresh:
        // never kept in the per-name hash cache, where a crafted login name
        // could reach it).
        let decoy = || self.db.read(costliest).ok().flatten();
        if let Some(stored) = seen.and_then(|g| self.user_hashes.get(g, user)) {
            return auth.verify_with_decoy(user, password, ip, |_| stored, decoy);
        }
        let read = self.db.read(|c| users::user_hash(c, user));
        if let (Some(g), Ok(hash)) = (seen, &read) {
            self.user_hashes.insert(g, user, hash.clone());
        }
        let stored = match read {
            Ok(hash) => hash,
            Err(e) => {
                log::error!("looking up a user failed: {e}");
                return AuthOutcome::Busy {
                    retry_after_secs: 1,
                };
            }
        };
        auth.verify_with_decoy(user, password, ip, |_| stored, decoy)
    }
}

/// The stored hash whose check costs the most (`auth::password::check_cost`):
/// an unknown user's check is timed against it, so a failed login for a
/// name that does not exist costs at least what one for the costliest user
/// costs (users with cheaper hashes are told apart by nothing but their own,
/// cheaper, hash kind; one decoy cannot match every cost at once).
fn costliest(conn: &rusqlite::Connection) -> Result<Option<String>> {
    users::costliest_hash(conn, crate::auth::password::check_cost)
}

#[cfg(test)]
mod tests {
    use super::costliest;
    use crate::db::users::set_user;

    #[test]
    fn the_decoy_is_the_costliest_stored_hash() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = crate::db::Db::open(&dir.path().join("soute.db"), 2).expect("open");
        let decoy = || db.read(costliest).expect("read");
        assert_eq!(decoy(), None, "no users");
        let tail = "abcdefghijklmnopqrstuu".repeat(3)[..53].to_string();
        let new = "$argon2id$v=19$m=7168,t=5,p=1$c2FsdA$aGFzaA".to_string();
        let old = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".to_string();
        let (b5, b10, b12) = (
            format!("$2y$05${tail}"),
            format!("$2y$10${tail}"),
            format!("$2b$12${tail}"),
        );
        db.write(|tx| set_user(tx, "cheap", &b5, false))
            .expect("b5");
        db.write(|tx| set_user(tx, "new", &new, false))
            .expect("new");
        assert_eq!(decoy(), Some(new.clone()), "argon2 over a cost-5 bcrypt");
        db.write(|tx| set_user(tx, "old", &old, false))
            .expect("old");
        assert_eq!(decoy(), Some(old.clone()), "the older, costlier argon2");
        db.write(|tx| set_user(tx, "b10", &b10, false))
            .expect("b10");
        assert_eq!(decoy(), Some(b10.clone()), "bcrypt cost 10 costs more");
        // `$2b$` sorts before `$2y$`: the cost decides, not the prefix.
        db.write(|tx| set_user(tx, "b12", &b12, false))
            .expect("b12");
        assert_eq!(decoy(), Some(b12));
    }
}
