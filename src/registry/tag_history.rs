//! Tag history and rollback: what a tag pointed to, when and by whom (rows
//! written by `db::tags` with every create, move and delete), and pointing a
//! tag back at an earlier digest whose manifest is still stored, recorded in
//! the tag's history and in the audit log, with the webhook events a
//! client's PUT of that manifest by the tag sends (`push` and `tag`).
//!
//! It must never point a tag at a manifest the repository does not hold, nor
//! at a digest the tag never had, nor move a protected tag.

use super::audit::{AuditAction, AuditEvent};
use super::manifests::manifest_unknown;
use super::Registry;
use crate::db::tag_history::{self, TagChange};
use crate::db::{manifests, repos, tags};
use crate::error::{Code, Error, Result};
use crate::oci::{Digest, Reference, RepoName, Tag};

/// What a rollback did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// The digest the tag pointed to before (`None`: it was deleted).
    pub previous: Option<String>,
    pub digest: Digest,
}

impl Registry {
    /// The changes of `repo:tag`, newest first (at most `limit`).
    pub fn tag_history(&self, repo: &RepoName, tag: &Tag, limit: i64) -> Result<Vec<TagChange>> {
        self.db.read(|c| match repos::repo_id(c, repo.as_str())? {
            Some(id) => tag_history::history(c, id, tag.as_str(), limit),
            None => Err(Error::client(
                Code::NameUnknown,
                format!("repository {repo} is not known"),
            )),
        })
    }

    /// Point `repo:tag` back at `digest`, one of the digests it pointed to
    /// before, if that manifest is still stored. `actor` and `address` name
    /// who asked in the history and the audit log.
    pub fn rollback_tag(
        &self,
        repo: &RepoName,
        tag: &Tag,
        digest: &Digest,
        actor: &str,
        address: &str,
    ) -> Result<Rollback> {
        let key = digest.to_string();
        let previous = self.db.write(|tx| {
            let unknown = || manifest_unknown(repo, &Reference::Digest(digest.clone()));
            let id = repos::repo_id(tx, repo.as_str())?.ok_or_else(unknown)?;
            let had = tag_history::history(tx, id, tag.as_str(), tag_history::KEEP_PER_TAG)?
                .iter()
                .any(|c| c.digest.as_deref() == Some(&key));
            if !had {
                return Err(Error::client(
                    Code::ManifestUnknown,
                    format!("{repo}:{tag} never pointed to {digest} (see `soute tag history`)"),
                ));
            }
            let Some((media_type, size)) = manifests::manifest_head(tx, id, &key)? else {
                return Err(Error::client(
                    Code::ManifestUnknown,
                    format!(
                        "manifest {digest} is no longer stored in {repo}: it cannot be restored"
                    ),
                ));
            };
            // A protected tag is not moved by a rollback either (403 naming the rule).
            super::protect::check_tag_move(tx, repo.as_str(), id, tag.as_str(), &key)?;
            let previous = tags::resolve_tag(tx, id, tag.as_str())?;
            tags::set_tag(tx, id, tag.as_str(), &key, actor)?;
            // The events of a client's PUT of that manifest by the tag: push and tag.
            let by_tag = Reference::Tag(tag.clone());
            let events = &self.webhooks;
            events.manifest_pushed(
                tx,
                repo,
                &key,
                &media_type,
                size,
                &by_tag,
                std::slice::from_ref(tag),
            )?;
            Ok(previous)
        })?;
        self.webhooks.wake();
        let was = previous.as_deref().unwrap_or("nothing (deleted)");
        self.audit(&AuditEvent {
            action: AuditAction::Push,
            actor: actor.to_string(),
            address: address.to_string(),
            repository: repo.to_string(),
            detail: format!("rollback {tag} to {digest} (was {was})"),
            status: 0,
        });
        Ok(Rollback {
            previous,
            digest: digest.clone(),
        })
    }
}
