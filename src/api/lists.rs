//! Paged lists (end-8, end-12 and the catalog): `/v2/_catalog`,
//! `/v2/<name>/tags/list` with `n`/`last` and `Link`, and the referrers index
//! with `artifactType` filtering.
//!
//! They must never return more than `MAX_PAGE` entries, nor list a
//! repository the caller may not pull, nor build a JSON tree per entry of a
//! long list, nor hold a long list in memory: a tag or catalog list is read
//! from the database [`LIST_PAGE`] entries at a time and written as it is
//! read, into memory while under [`SPOOL_AT`] bytes, beyond that into an
//! unnamed file in the data folder that the response streams.

use super::access::Caller;
use super::headers::{next_page_link, JSON};
use super::query::Query;
use super::Api;
use crate::error::{Code, Error, Result};
use crate::http::{Body, Response};
use crate::oci::{Digest, RepoName};
use crate::registry::MAX_PAGE;
use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};
use std::path::Path;

/// Entries read from the database per query while a list is written.
const LIST_PAGE: usize = 1_000;
/// A list body larger than this goes to a file instead of memory.
const SPOOL_AT: usize = 64 * 1024;

/// A JSON list body written as it is read: in memory while small, then in an
/// unnamed file (O_TMPFILE in the data folder, or a name unlinked at once),
/// so a list of 100,000 entries costs at most [`SPOOL_AT`] plus one write
/// buffer of memory however long it is.
struct ListBody<'a> {
    dir: &'a Path,
    mem: Vec<u8>,
    file: Option<BufWriter<File>>,
    len: u64,
    items: usize,
}

impl<'a> ListBody<'a> {
    fn new(dir: &'a Path) -> ListBody<'a> {
        ListBody {
            dir,
            mem: Vec::with_capacity(1024),
            file: None,
            len: 0,
            items: 0,
        }
    }

    fn raw(&mut self, bytes: &[u8]) -> Result<()> {
        self.len += bytes.len() as u64;
        if let Some(f) = &mut self.file {
            return Ok(f.write_all(bytes)?);
        }
        self.mem.extend_from_slice(bytes);
        if self.mem.len() > SPOOL_AT {
            let mut f = BufWriter::with_capacity(SPOOL_AT, spool_file(self.dir)?);
            f.write_all(&self.mem)?;
            self.mem = Vec::new();
            self.file = Some(f);
        }
        Ok(())
    }

    /// Appends entries already in JSON and separated by commas (`a","b`
    /// without the brackets); nothing when `entries` is empty.
    fn entries(&mut self, entries: &[u8]) -> Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        if self.items > 0 {
            self.raw(b",")?;
        }
        self.items += 1;
        self.raw(entries)
    }

    /// Appends one string entry.
    fn string(&mut self, s: &str) -> Result<()> {
        let json = serde_json::to_vec(s).map_err(|e| Error::internal_from("a list entry", e))?;
        self.entries(&json)
    }

    fn finish(mut self, end: &[u8]) -> Result<Response> {
        self.raw(end)?;
        let body = match self.file {
            None => Body::Bytes(self.mem),
            Some(f) => {
                let mut file = f.into_inner().map_err(|e| Error::from(e.into_error()))?;
                file.rewind()?;
                Body::File {
                    file,
                    offset: 0,
                    len: self.len,
                }
            }
        };
        Ok(Response::new(200).header("Content-Type", JSON).body(body))
    }
}

/// A new file no other process can see, in `dir`, gone when closed.
fn spool_file(dir: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let unnamed = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_TMPFILE)
        .open(dir);
    if let Ok(f) = unnamed {
        return Ok(f);
    }
    // File systems without O_TMPFILE: a fresh name, unlinked at once.
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!(".list-{}-{n}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(f)
}

impl Api {
    /// The catalog, listing only the repositories `caller` may pull.
    pub(super) fn catalog(&self, query: &Query, caller: &Caller) -> Result<Response> {
        let (n, last) = page_params(query)?;
        let mut body = ListBody::new(self.registry.data_dir());
        body.raw(b"{\"repositories\":[")?;
        let (more, last_listed) = if n == 0 {
            (false, None)
        } else {
            self.write_catalog(last, n, caller, &mut body)?
        };
        let resp = body.finish(b"]}")?;
        Ok(match (more, last_listed) {
            (true, Some(l)) => next_page_link(resp, "/v2/_catalog", n, &l),
            _ => resp,
        })
    }

    /// Writes up to `n` repositories after `last` that `caller` may pull
    /// into `body`, reading pages until they are found (and one more, to
    /// know whether more remain) or the catalog ends. Returns whether more
    /// remain and the last one written.
    fn write_catalog(
        &self,
        last: &str,
        n: usize,
        caller: &Caller,
        body: &mut ListBody,
    ) -> Result<(bool, Option<String>)> {
        let everything = caller.sees_everything();
        let mut written = 0usize;
        let mut cursor = last.to_string();
        let mut last_written = None;
        loop {
            // Everything visible: read exactly what is still wanted.
            let want = if everything {
                (n - written).min(LIST_PAGE)
            } else {
                LIST_PAGE
            };
            let (page, page_more) = self.registry.catalog(&cursor, want)?;
            for name in page {
                let may = everything || RepoName::parse(&name).is_ok_and(|r| caller.may_list(&r));
                if may {
                    if written == n {
                        return Ok((true, last_written));
                    }
                    body.string(&name)?;
                    written += 1;
                    last_written = Some(name.clone());
                }
                cursor = name;
            }
            if !page_more {
                return Ok((false, last_written));
            }
            if everything && written == n {
                return Ok((true, last_written));
            }
        }
    }

    pub(super) fn tags(&self, name: &RepoName, query: &Query) -> Result<Response> {
        let (n, last) = page_params(query)?;
        let cached = self.pull_through.local_name(name, query.get("ns"))?;
        let target = cached.as_ref().unwrap_or(name);
        let mut body = ListBody::new(self.registry.data_dir());
        body.raw(b"{\"name\":")?;
        let quoted =
            serde_json::to_vec(name.as_str()).map_err(|e| Error::internal_from("a name", e))?;
        body.raw(&quoted)?;
        body.raw(b",\"tags\":[")?;
        let mut cursor = last.to_string();
        let mut left = n;
        let mut last_tag = None;
        let more = loop {
            let want = left.min(LIST_PAGE);
            let page = self.registry.tags(target, &cursor, want)?;
            // The page is a JSON array: its entries without the brackets.
            let json = &page.json;
            body.entries(
                json.get(1..json.len().saturating_sub(1))
                    .unwrap_or_default(),
            )?;
            if let Some(l) = page.last {
                cursor.clone_from(&l);
                last_tag = Some(l);
            }
            // A page with more after it was full: `want` entries.
            if !page.more || want == left {
                break page.more;
            }
            left -= want;
        };
        let resp = body.finish(b"]}")?;
        Ok(match (more, last_tag) {
            (true, Some(l)) => next_page_link(resp, &format!("/v2/{name}/tags/list"), n, &l),
            _ => resp,
        })
    }

    pub(super) fn referrers(
        &self,
        name: &RepoName,
        digest: &str,
        query: &Query,
    ) -> Result<Response> {
        let digest = Digest::parse(digest)?;
        let artifact_type = query.get("artifactType").filter(|t| !t.is_empty());
        let after = match query.get("after") {
            None | Some("") => 0,
            Some(s) => s.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
                Error::client(
                    Code::PaginationNumberInvalid,
                    format!("invalid after {:?}", s.chars().take(40).collect::<String>()),
                )
            })?,
        };
        let page = self
            .registry
            .referrers(name, &digest, artifact_type, after)?;
        let mut resp = Response::new(200)
            .header("Content-Type", crate::oci::media::OCI_INDEX)
            .body(Body::Bytes(page.body));
        if let Some(next) = page.next {
            let filter = artifact_type
                .map(|t| format!("&artifactType={}", super::query::percent_encode(t)))
                .unwrap_or_default();
            resp = resp.header(
                "Link",
                format!("</v2/{name}/referrers/{digest}?after={next}{filter}>; rel=\"next\""),
            );
        }
        Ok(match artifact_type {
            Some(_) => resp.header("OCI-Filters-Applied", "artifactType"),
            None => resp,
        })
    }
}

/// `n` and `last` of a paged list. `n` absent means "everything" (bounded by MAX_PAGE).
fn page_params(query: &Query) -> Result<(usize, &str)> {
    let n = match query.get("n") {
        None | Some("") => MAX_PAGE,
        Some(s) => s
            .parse::<usize>()
            .map_err(|_| Error::client(Code::PaginationNumberInvalid, format!("invalid n {s:?}")))?
            .min(MAX_PAGE),
    };
    Ok((n, query.get("last").unwrap_or("")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    fn body_bytes(resp: Response) -> (Vec<u8>, bool) {
        match resp.body {
            Body::Bytes(b) => (b, false),
            Body::File {
                mut file,
                offset,
                len,
            } => {
                assert_eq!(offset, 0);
                let mut out = Vec::new();
                file.read_to_end(&mut out).expect("read spool");
                assert_eq!(out.len() as u64, len, "announced length");
                (out, true)
            }
            _ => panic!("unexpected body"),
        }
    }

    #[test]
    fn long_lists_spool_to_an_unnamed_file_with_the_same_bytes() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (count, spooled) in [(0usize, false), (3, false), (20_000, true)] {
            let names: Vec<String> = (0..count).map(|i| format!("repo/{i:05}")).collect();
            let mut body = ListBody::new(dir.path());
            body.raw(b"{\"repositories\":[").expect("start");
            // Half as single strings, half as a page of entries.
            let (one, page) = names.split_at(count / 2);
            for n in one {
                body.string(n).expect("entry");
            }
            let page_json: Vec<String> = page.iter().map(|n| format!("\"{n}\"")).collect();
            body.entries(page_json.join(",").as_bytes()).expect("page");
            let (bytes, was_spooled) = body_bytes(body.finish(b"]}").expect("finish"));
            let want =
                serde_json::to_vec(&serde_json::json!({ "repositories": names })).expect("json");
            assert_eq!(bytes, want, "{count} entries");
            assert_eq!(was_spooled, spooled, "{count} entries");
            assert_eq!(
                std::fs::read_dir(dir.path()).expect("dir").count(),
                0,
                "the spool file has no name"
            );
        }
    }
}
