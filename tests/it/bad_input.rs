//! Bad input gets a clear 4xx and changes nothing (reliability.md §B.3):
//! invalid repository names (grammar, length, `..`, upper case, percent
//! encodings) never reach the filesystem; bad tags; malformed digests are 400
//! or 404, never 500; digest and size mismatches on upload completion store
//! nothing; truncated bodies store nothing; unknown upload ids are
//! BLOB_UPLOAD_UNKNOWN; silly pagination parameters are not a 500.

use crate::harness::*;
use serde_json::Value;
use std::path::Path;

const OCTET: (&str, &str) = ("Content-Type", "application/octet-stream");

/// SQLite keeps side files whose presence changes with every write.
fn is_sqlite_sidecar(p: &str) -> bool {
    p.ends_with("-wal") || p.ends_with("-shm") || p.ends_with("-journal")
}

fn snapshot(dir: &Path) -> Vec<String> {
    tree(dir)
        .into_iter()
        .filter(|p| !is_sqlite_sidecar(p))
        .collect()
}

#[test]
fn invalid_repository_names_are_refused_and_touch_nothing() {
    let reg = TestRegistry::start();
    let canary = format!("soute-canary-{}", std::process::id());
    let before = reg.data_dir().map(snapshot);
    let long = "a".repeat(256);
    let too_long_path = format!("{}abcdef", "abcdefghi/".repeat(25)); // valid grammar, 256 chars
    assert_eq!(too_long_path.len(), 256);
    let names: Vec<String> = vec![
        "../../etc".into(),
        format!("../../../{canary}"),
        format!("%2e%2e/%2e%2e/%2e%2e/{canary}"),
        format!("%2E%2E%2F%2E%2E%2F{canary}"),
        format!("a/%2e%2e/%2e%2e/%2e%2e/{canary}"),
        "a/../b".into(),
        "./a".into(),
        "a/./b".into(),
        "A".into(),
        "Upper/case".into(),
        "a//b".into(),
        "-a".into(),
        "a-".into(),
        "a_".into(),
        ".a".into(),
        "a.".into(),
        "caf%C3%A9".into(),
        "a%00b".into(),
        "a%20b".into(),
        long,
        too_long_path,
    ];
    let manifest = br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a","size":2},"layers":[]}"#;
    let mut f = Failures::default();
    for name in &names {
        let requests = [
            format!("GET /v2/{name}/tags/list HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes(),
            format!("POST /v2/{name}/blobs/uploads/ HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .into_bytes(),
            [
                format!(
                    "PUT /v2/{name}/manifests/latest HTTP/1.1\r\nHost: x\r\nContent-Type: {OCI_MANIFEST}\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n",
                    manifest.len()
                )
                .into_bytes(),
                manifest.to_vec(),
            ]
            .concat(),
        ];
        for req in requests {
            let line =
                String::from_utf8_lossy(&req[..req.iter().position(|&b| b == b'\r').unwrap_or(0)])
                    .into_owned();
            let raw = raw_exchange(reg.addr(), &req);
            f.check(
                raw.header("docker-distribution-api-version") == Some("registry/2.0"),
                || {
                    format!(
                        "{line}: no Docker-Distribution-API-Version on the {} answer",
                        raw.status
                    )
                },
            );
            let code = raw.error_code();
            let ok = matches!(
                (raw.status, code.as_deref()),
                (400, Some("NAME_INVALID")) | (404, Some("NAME_UNKNOWN"))
            );
            f.check(ok, || {
                format!(
                    "{line}: want 400 NAME_INVALID or 404 NAME_UNKNOWN, got {} {:?} ({})",
                    raw.status,
                    code,
                    String::from_utf8_lossy(&raw.body).trim()
                )
            });
        }
    }
    // Nothing was created: not in the catalog, not in the data folder, not next to it.
    let r = reg.get("/v2/_catalog?n=1000");
    r.expect_status(200);
    let repos = r.json()["repositories"].clone();
    for name in &names {
        let decoded = percent_decode(name);
        f.check(
            !repos
                .as_array()
                .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(decoded.as_str()))),
            || format!("{decoded} appeared in the catalog"),
        );
    }
    if let (Some(dir), Some(before)) = (reg.data_dir(), before) {
        let after = snapshot(dir);
        f.check(before == after, || {
            format!("the data folder changed: before {before:?}, after {after:?}")
        });
        let all = tree(dir);
        f.check(
            !all.iter().any(|p| p.contains(&canary) || p.contains("etc")),
            || format!("{all:?}"),
        );
        for up in dir.ancestors().take(5) {
            f.check(!up.join(&canary).exists(), || {
                format!("{} was created", up.join(&canary).display())
            });
        }
    } else {
        eprintln!("note: data-folder checks skipped (external mode)");
    }
    f.finish();
}

#[test]
fn an_encoded_slash_in_a_name_is_not_a_path_separator() {
    // RFC 3986 §2.2: a percent-encoded reserved character is data, not a
    // delimiter, so `a%2fb` is one path component containing `/`, which the
    // name grammar does not allow; treating it as `a/b` lets one repository be
    // reached under two spellings (reliability.md BI1).
    let reg = TestRegistry::start();
    let before = reg.data_dir().map(snapshot);
    let mut f = Failures::default();
    for name in ["a%2fb", "a%2Fb/c"] {
        for (method, path) in [
            ("GET", format!("/v2/{name}/tags/list")),
            ("POST", format!("/v2/{name}/blobs/uploads/")),
        ] {
            let body = if method == "POST" {
                Some(&b""[..])
            } else {
                None
            };
            let r = reg.call(method, &path, &[], body);
            let code = r.try_error_code().unwrap_or_else(|e| e);
            f.check(
                matches!(
                    (r.status, code.as_str()),
                    (400, "NAME_INVALID") | (404, "NAME_UNKNOWN")
                ),
                || {
                    format!(
                        "{}: want 400 NAME_INVALID or 404 NAME_UNKNOWN, got {} {code}",
                        r.what, r.status
                    )
                },
            );
        }
    }
    if let (Some(dir), Some(before)) = (reg.data_dir(), before) {
        let after = snapshot(dir);
        f.check(before == after, || {
            format!("the data folder changed: before {before:?}, after {after:?}")
        });
    }
    f.finish();
}

#[test]
fn names_up_to_255_characters_work_and_256_do_not() {
    let reg = TestRegistry::start();
    let prefix = reg.repo("");
    let ok = format!("{prefix}{}", "n".repeat(255 - prefix.len()));
    assert_eq!(ok.len(), 255);
    let bytes = b"long name".to_vec();
    let d = reg.push_blob(&ok, &bytes);
    let g = reg.get_blob(&ok, &d);
    g.expect_status(200);
    assert_eq!(g.body, bytes);
    let too_long = format!("{ok}n");
    let r = reg.call(
        "POST",
        &format!("/v2/{too_long}/blobs/uploads/"),
        &[],
        Some(b""),
    );
    let code = r.error_code();
    assert!(
        matches!(
            (r.status, code.as_str()),
            (400, "NAME_INVALID") | (404, "NAME_UNKNOWN")
        ),
        "256-character name: {} {code}",
        r.status
    );
}

#[test]
fn invalid_tags_are_refused_and_valid_edge_tags_accepted() {
    let reg = TestRegistry::start();
    let repo = reg.repo("bad/tags");
    let img = reg.sample_image(&repo, "v1");
    let t129 = "t".repeat(129);
    let mut f = Failures::default();
    for tag in [
        t129.as_str(),
        ".lead",
        "-lead",
        "%2e%2e",
        "tag%20x",
        "t%C3%A9",
        "tag+x",
        "tag%2Fx",
        "tag%00",
    ] {
        let r = reg.put_manifest(&repo, tag, OCI_MANIFEST, &img.manifest);
        f.add(r.error_mismatch(400, &["TAG_INVALID", "MANIFEST_INVALID"]));
    }
    f.finish();
    let r = reg.get(&format!("/v2/{repo}/tags/list"));
    r.expect_status(200);
    assert_eq!(
        r.json()["tags"],
        serde_json::json!(["v1"]),
        "a refused tag was stored"
    );
    let t128 = "T".repeat(128);
    for tag in [t128.as_str(), "_lead", "A.b-c_d", "0"] {
        reg.push_manifest(&repo, tag, OCI_MANIFEST, &img.manifest);
        reg.get_manifest(&repo, tag).expect_status(200);
    }
}

/// Digests that are not digests.
fn bad_digests() -> Vec<String> {
    let h64 = "a".repeat(64);
    vec![
        "sha256:totallywrong".into(),
        format!("sha256:{}", "a".repeat(63)),
        format!("sha256:{}", "a".repeat(65)),
        format!("sha256:{}", "A".repeat(64)),
        "sha256:".into(),
        format!("SHA256:{h64}"),
        "md5:d41d8cd98f00b204e9800998ecf8427e".into(),
        "sha256:..%2f..%2fetc%2fpasswd".into(),
        "sha256:%2e%2e".into(),
        "sha512:abc".into(),
    ]
}

#[test]
fn malformed_digests_are_400_or_404_never_500() {
    let reg = TestRegistry::start();
    let repo = reg.repo("bad/digests");
    let img = reg.sample_image(&repo, "v1");
    let unknown_family = ["BLOB_UNKNOWN", "MANIFEST_UNKNOWN", "NAME_UNKNOWN"];
    let mut f = Failures::default();
    for d in bad_digests() {
        for (method, path) in [
            ("GET", format!("/v2/{repo}/blobs/{d}")),
            ("DELETE", format!("/v2/{repo}/blobs/{d}")),
            ("GET", format!("/v2/{repo}/manifests/{d}")),
            ("DELETE", format!("/v2/{repo}/manifests/{d}")),
        ] {
            let r = reg.call(method, &path, &[], None);
            let code = r.try_error_code().unwrap_or_else(|e| e);
            let ok = (r.status == 400 && code == "DIGEST_INVALID")
                || (r.status == 404 && unknown_family.contains(&code.as_str()))
                // A reference that is neither digest nor tag may be refused as a tag.
                || (r.status == 400 && path.contains("/manifests/") && (code == "TAG_INVALID" || code == "MANIFEST_INVALID"));
            f.check(ok, || format!("{}: {} {code}", r.what, r.status));
        }
        let h = reg.head(&format!("/v2/{repo}/blobs/{d}"));
        f.check(h.status == 400 || h.status == 404, || {
            format!("{}: {}", h.what, h.status)
        });
        // Completing an upload with it.
        let session = reg.start_upload(&repo);
        let url = TestRegistry::with_query(&session, &format!("digest={d}"));
        let r = reg.call("PUT", &url, &[OCTET], Some(b"payload"));
        f.add(r.error_mismatch(400, &["DIGEST_INVALID"]));
        // Single POST with it.
        let r = reg.call(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            &[OCTET],
            Some(b"payload"),
        );
        f.add(r.error_mismatch(400, &["DIGEST_INVALID"]));
        // Mounting it: refused, or a plain upload session.
        let r = reg.call(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?mount={d}&from={repo}"),
            &[],
            Some(b""),
        );
        if r.status != 202 {
            f.add(r.error_mismatch(400, &["DIGEST_INVALID"]));
        }
        // Pushing a manifest by it.
        let r = reg.put_manifest(&repo, &d, OCI_MANIFEST, &img.manifest);
        f.check(r.status == 400, || {
            format!("{}: {} ({})", r.what, r.status, r.text())
        });
    }
    f.finish();
    reg.get_blob(&repo, &sha256(b"payload")).expect_status(404);
}

#[test]
fn digest_mismatch_on_completion_stores_nothing() {
    let reg = TestRegistry::start();
    let repo = reg.repo("bad/mismatch");
    reg.push_blob(&repo, b"repo exists");
    let bytes = pseudo_random_bytes(50, 5_000);
    let wrong = sha256(b"other bytes");
    // Monolithic.
    let session = reg.start_upload(&repo);
    let url = TestRegistry::with_query(&session, &format!("digest={wrong}"));
    reg.call("PUT", &url, &[OCTET], Some(&bytes))
        .expect_error(400, &["DIGEST_INVALID"]);
    // Chunked.
    let session = reg.start_upload(&repo);
    let r = reg.call(
        "PATCH",
        &session,
        &[OCTET, ("Content-Range", "0-4999")],
        Some(&bytes),
    );
    r.expect_status(202);
    let url = TestRegistry::with_query(&reg.loc(r.location()), &format!("digest={wrong}"));
    reg.call("PUT", &url, &[OCTET], Some(b""))
        .expect_error(400, &["DIGEST_INVALID"]);
    reg.get_blob(&repo, &wrong)
        .expect_error(404, &["BLOB_UNKNOWN"]);
    reg.get_blob(&repo, &sha256(&bytes))
        .expect_error(404, &["BLOB_UNKNOWN"]);
}

#[test]
fn size_mismatch_stores_nothing() {
    let reg = TestRegistry::start();
    let repo = reg.repo("bad/size");
    reg.push_blob(&repo, b"repo exists");
    let bytes = pseudo_random_bytes(51, 100);
    let digest = sha256(&bytes);
    let accepted = |r: &Resp| {
        r.status == 416
            || (r.status == 400
                && ["SIZE_INVALID", "DIGEST_INVALID", "BLOB_UPLOAD_INVALID"]
                    .contains(&r.error_code().as_str()))
    };
    // A PATCH whose Content-Range claims more bytes than it carries.
    let session = reg.start_upload(&repo);
    let r = reg.call(
        "PATCH",
        &session,
        &[OCTET, ("Content-Range", "0-199")],
        Some(&bytes),
    );
    assert!(accepted(&r), "{}: {} ({})", r.what, r.status, r.text());
    let st = reg.get(&session);
    if st.status == 204 {
        assert_eq!(
            st.header("range"),
            Some("0-0"),
            "a refused chunk must not advance the session"
        );
    }
    // A closing PUT whose Content-Range disagrees with its body.
    let session = reg.start_upload(&repo);
    let url = TestRegistry::with_query(&session, &format!("digest={digest}"));
    let r = reg.call(
        "PUT",
        &url,
        &[OCTET, ("Content-Range", "0-49")],
        Some(&bytes),
    );
    assert!(accepted(&r), "{}: {} ({})", r.what, r.status, r.text());
    reg.get_blob(&repo, &digest)
        .expect_error(404, &["BLOB_UNKNOWN"]);
}

#[test]
fn a_truncated_body_stores_nothing() {
    let reg = TestRegistry::start();
    let repo = reg.repo("bad/truncated");
    let bytes = pseudo_random_bytes(52, 2_000);
    let digest = sha256(&bytes);
    // Closing PUT that announces 2000 bytes and sends 1000.
    let session = reg.start_upload(&repo);
    let target = path_of(&TestRegistry::with_query(
        &session,
        &format!("digest={digest}"),
    ));
    let head = format!(
        "PUT {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 2000\r\n\r\n"
    );
    let mut s = connect(reg.addr(), std::time::Duration::from_secs(10));
    use std::io::Write;
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(&bytes[..1000]).expect("write");
    shutdown_write(&s);
    if let Ok(resp) = read_response(&mut s, false) {
        assert!(
            resp.status >= 400 && resp.status < 500,
            "truncated PUT answered {}",
            resp.status
        );
    }
    reg.get_blob(&repo, &digest).expect_status(404);
    reg.get_blob(&repo, &sha256(&bytes[..1000]))
        .expect_status(404);

    // PATCH that announces 2000 bytes and sends 1000: the session may keep at
    // most what arrived.
    let session = reg.start_upload(&repo);
    let head = format!(
        "PATCH {} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: 2000\r\n\r\n",
        path_of(&session)
    );
    let mut s = connect(reg.addr(), std::time::Duration::from_secs(10));
    s.write_all(head.as_bytes()).expect("write");
    s.write_all(&bytes[..1000]).expect("write");
    shutdown_write(&s);
    if let Ok(resp) = read_response(&mut s, false) {
        assert!(
            resp.status >= 400,
            "truncated PATCH answered {}",
            resp.status
        );
    }
    let st = reg.get(&session);
    if st.status == 204 {
        let range = st.header("range").unwrap_or_default().to_string();
        let end: i64 = range
            .rsplit('-')
            .next()
            .and_then(|e| e.parse().ok())
            .unwrap_or(-1);
        assert!(
            end < 1000,
            "session claims {range} after receiving 1000 of 2000 bytes"
        );
    } else {
        st.expect_error(404, &["BLOB_UPLOAD_UNKNOWN"]);
    }
}

#[test]
fn unknown_upload_ids_are_blob_upload_unknown() {
    let reg = TestRegistry::start();
    let repo = reg.repo("bad/uploads");
    let other = reg.repo("bad/uploads-other");
    reg.push_blob(&repo, b"repo exists");
    reg.push_blob(&other, b"repo exists too");
    let foreign = reg.start_upload(&other);
    let foreign_path =
        path_of(&foreign).replacen(&format!("/v2/{other}/"), &format!("/v2/{repo}/"), 1);
    assert!(
        foreign_path.starts_with(&format!("/v2/{repo}/blobs/uploads/")),
        "{foreign_path}"
    );
    let d = sha256(b"x");
    let mut targets = vec![
        format!("/v2/{repo}/blobs/uploads/6a1f5e0c-2b8d-4c1e-9f3a-5d6e7f8091a2"),
        format!("/v2/{repo}/blobs/uploads/{}", "z".repeat(2000)),
        format!("/v2/{repo}/blobs/uploads/%2e%2e"),
        format!("/v2/{repo}/blobs/uploads/..%2F..%2Fetc"),
        foreign_path,
    ];
    if !reg.is_external() {
        // A raw `..` segment; HTTP clients would normalise it away.
        targets.push(format!("/v2/{repo}/blobs/uploads/.."));
    }
    for t in &targets {
        let sep = if t.contains('?') { '&' } else { '?' };
        for (method, target, body) in [
            ("GET", t.clone(), None),
            ("PATCH", t.clone(), Some(&b"abc"[..])),
            ("PUT", format!("{t}{sep}digest={d}"), Some(&b"x"[..])),
            ("DELETE", t.clone(), None),
        ] {
            let mut req = format!("{method} {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n");
            if let Some(b) = body {
                req.push_str(&format!(
                    "Content-Type: application/octet-stream\r\nContent-Length: {}\r\n",
                    b.len()
                ));
            }
            req.push_str("\r\n");
            let mut bytes = req.into_bytes();
            bytes.extend_from_slice(body.unwrap_or_default());
            let raw = raw_exchange(reg.addr(), &bytes);
            let short: String = target.chars().take(120).collect();
            assert_eq!(
                raw.header("docker-distribution-api-version"),
                Some("registry/2.0"),
                "{method} {short}: API version header"
            );
            assert_eq!(
                (raw.status, raw.error_code().as_deref()),
                (404, Some("BLOB_UPLOAD_UNKNOWN")),
                "{method} {short}: body {}",
                String::from_utf8_lossy(&raw.body)
            );
        }
    }
    // The foreign session is untouched and still completes in its own repository.
    let url = TestRegistry::with_query(&foreign, &format!("digest={}", sha256(b"mine")));
    reg.call("PUT", &url, &[OCTET], Some(b"mine"))
        .expect_status(201);
}

#[test]
fn odd_pagination_parameters_are_never_a_500() {
    let reg = TestRegistry::start();
    let repo = reg.repo("bad/pages");
    reg.sample_image(&repo, "v1");
    let long = "z".repeat(5_000);
    for q in [
        "n=-1",
        "n=abc",
        "n=99999999999999999999",
        "n=1e9",
        "n=",
        &format!("last={long}"),
        "n=1&n=2",
    ] {
        for base in [format!("/v2/{repo}/tags/list"), "/v2/_catalog".to_string()] {
            let r = reg.get(&format!("{base}?{q}"));
            match r.status {
                200 => {
                    let v = r.json();
                    assert!(
                        matches!(
                            v.get("tags").or(v.get("repositories")),
                            Some(Value::Array(_))
                        ),
                        "{}: {v}",
                        r.what
                    );
                }
                400 => {
                    let code = r.error_code();
                    assert!(
                        [
                            "PAGINATION_NUMBER_INVALID",
                            "UNSUPPORTED",
                            "NAME_INVALID",
                            "TAG_INVALID"
                        ]
                        .contains(&code.as_str()),
                        "{}: {code}",
                        r.what
                    );
                }
                s => panic!("{}: status {s} ({})", r.what, r.text()),
            }
        }
    }
}
