//! Manifest endpoints (end-3, end-7, end-9): `GET`/`HEAD`/`PUT`/`DELETE
//! /v2/<name>/manifests/<reference>`, with `?tag=` on PUT (OCI-Tag) and
//! `OCI-Subject` for referrers.
//!
//! They must never read more than `MAX_MANIFEST_BYTES + 1` bytes of a body
//! nor parse a manifest (the registry does, through `oci`).

use super::headers::manifest_headers;
use super::query::Query;
use super::Api;
use crate::error::{Code, Error, Result};
use crate::http::{Body, Request, Response};
use crate::oci::manifest::MAX_MANIFEST_BYTES;
use crate::oci::{Reference, RepoName, Tag};
use std::io::Read;

/// At most this many `?tag=` parameters on one manifest PUT (the spec asks for 10).
const MAX_TAG_PARAMS: usize = 100;

impl Api {
    pub(super) fn get_manifest(
        &self,
        name: &RepoName,
        reference: &str,
        query: &Query,
        seen: Option<i64>,
    ) -> Result<Response> {
        let reference = lookup_reference(reference)?;
        let cached = self
            .pull_through
            .manifest(name, &reference, query.get("ns"))?;
        // The pull-through cache may have just written: read the generation anew.
        let seen = seen.filter(|_| cached.is_none());
        let name = cached.as_ref().unwrap_or(name);
        let (digest, media_type, bytes) = self.registry.get_manifest_at(name, &reference, seen)?;
        if cached.is_none() {
            // The pull-through cache noted its own; batched, no write here.
            self.registry
                .note_pull(name, &Reference::Digest(digest.clone()));
        }
        Ok(manifest_headers(Response::new(200), &digest, &media_type).body(Body::Bytes(bytes)))
    }

    pub(super) fn head_manifest(
        &self,
        name: &RepoName,
        reference: &str,
        query: &Query,
        seen: Option<i64>,
    ) -> Result<Response> {
        let reference = lookup_reference(reference)?;
        let cached = self
            .pull_through
            .manifest(name, &reference, query.get("ns"))?;
        // The pull-through cache may have just written: read the generation anew.
        let seen = seen.filter(|_| cached.is_none());
        let name = cached.as_ref().unwrap_or(name);
        let (digest, media_type, size) = self.registry.head_manifest_at(name, &reference, seen)?;
        Ok(manifest_headers(Response::new(200), &digest, &media_type).body(Body::Length(size)))
    }

    pub(super) fn delete_manifest(
        &self,
        name: &RepoName,
        reference: &str,
        actor: &str,
    ) -> Result<Response> {
        let reference = lookup_reference(reference)?;
        self.registry.delete_manifest(name, &reference, actor)?;
        Ok(Response::new(202))
    }

    pub(super) fn put_manifest(
        &self,
        req: &mut Request<'_>,
        name: &RepoName,
        reference: &str,
        query: &Query,
        actor: &str,
    ) -> Result<Response> {
        let reference = Reference::parse(reference)?;
        let too_large = || Error::ManifestTooLarge {
            limit: MAX_MANIFEST_BYTES,
        };
        if req
            .body
            .declared_len()
            .is_some_and(|n| n > MAX_MANIFEST_BYTES as u64)
        {
            return Err(too_large());
        }
        let tag_params: Vec<&str> = query.all("tag").collect();
        if tag_params.len() > MAX_TAG_PARAMS {
            return Err(Error::TooManyTagParams {
                limit: MAX_TAG_PARAMS,
            });
        }
        let extra_tags = tag_params
            .iter()
            .map(|t| Tag::parse(t))
            .collect::<Result<Vec<_>>>()?;
        let mut body = Vec::new();
        req.body
            .take(MAX_MANIFEST_BYTES as u64 + 1)
            .read_to_end(&mut body)
            .map_err(|e| {
                Error::client(
                    Code::ManifestInvalid,
                    format!("reading the manifest failed: {e}"),
                )
            })?;
        if body.len() > MAX_MANIFEST_BYTES {
            return Err(too_large());
        }
        let content_type = req.header("content-type").map(str::to_string);
        let outcome = self.registry.put_manifest(
            name,
            &reference,
            content_type.as_deref(),
            &body,
            &extra_tags,
            actor,
        )?;
        let mut resp = Response::new(201)
            .header(
                "Location",
                format!("/v2/{name}/manifests/{}", outcome.digest),
            )
            .header("Docker-Content-Digest", outcome.digest.to_string());
        if let Some(subject) = &outcome.subject {
            resp = resp.header("OCI-Subject", subject.to_string());
        }
        if !extra_tags.is_empty() {
            for t in &outcome.tags {
                resp = resp.header("OCI-Tag", t.as_str());
            }
        }
        Ok(resp)
    }
}

/// A reference to read or delete: an invalid tag names nothing, so it is 404
/// MANIFEST_UNKNOWN (as distribution answers); an invalid digest stays 400.
fn lookup_reference(raw: &str) -> Result<Reference> {
    Reference::parse(raw).map_err(|e| match e.code() {
        Code::TagInvalid => Error::client(Code::ManifestUnknown, e.to_string()),
        _ => e,
    })
}
