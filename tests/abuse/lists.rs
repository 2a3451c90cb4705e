//! Long tag lists cannot take the server's memory: 32 whole lists of a
//! repository with 40,000 tags, asked at once from eight addresses by
//! clients that do not read yet, keep the server's VmHWM under a stated
//! bound, and every list is complete and in order.

use crate::helpers::*;
use crate::support::*;
use std::io::{BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

const TAGS: usize = 40_000;
const LISTS: usize = 32;
/// The bound ARCHITECTURE.md states for this probe: measured 54 MiB, of
/// which SQLite's page caches (16 read connections x 2 MiB) are ~30; the
/// lists built whole in memory reached 226 MiB.
const MAX_HWM_KIB: u64 = 80 * 1024;
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Tag `i`: about 100 bytes, so a whole list is ~4 MiB of JSON.
fn tag(i: usize) -> String {
    format!("build-{i:06}-{}", "x".repeat(90))
}

fn send(
    to: SocketAddr,
    src: Ipv4Addr,
    method: &str,
    path: &str,
    ctype: &str,
    body: &[u8],
) -> RawResp {
    let mut s = connect_from_io(src, to).expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: {ctype}\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).expect("head");
    s.write_all(body).expect("body");
    read_response(&mut BufReader::new(s), false).expect("response")
}

/// One image in `big`, tagged `tag(0)`; returns its manifest digest.
fn push_image(to: SocketAddr) -> String {
    let config = br#"{"architecture":"amd64","os":"linux"}"#;
    let cfg = Descriptor::new("application/vnd.oci.image.config.v1+json", config);
    let r = send(
        to,
        NORMAL_CLIENT,
        "POST",
        &format!("/v2/big/blobs/uploads/?digest={}", cfg.digest),
        "application/octet-stream",
        config,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let manifest = image_manifest(OCI_MANIFEST, &cfg, &[], None, None);
    let r = send(
        to,
        NORMAL_CLIENT,
        "PUT",
        &format!("/v2/big/manifests/{}", tag(0)),
        OCI_MANIFEST,
        &manifest,
    );
    assert_eq!(r.status, 201, "{}", r.text());
    sha256(&manifest)
}

/// Tags 1..TAGS on the same manifest, straight into the stopped server's database.
fn add_tags(data: &std::path::Path, digest: &str) {
    let db = rusqlite::Connection::open(data.join("soute.db")).expect("open db");
    let tx = db.unchecked_transaction().expect("tx");
    {
        let mut add = tx
            .prepare(
                "INSERT INTO tag (repo_id, name, digest, updated_at)
                 SELECT repo_id, ?1, digest, updated_at FROM tag WHERE digest = ?2 LIMIT 1",
            )
            .expect("prepare");
        for i in 1..TAGS {
            assert_eq!(
                add.execute(rusqlite::params![tag(i), digest])
                    .expect("insert"),
                1
            );
        }
    }
    tx.commit().expect("commit");
}

#[test]
fn concurrent_whole_tag_lists_stay_bounded() {
    let _one = serial();
    raise_fd_limit(400);
    let flags = ["--workers", "40", "--max-workers-per-ip", "8"];
    let first = spawn(false, &flags);
    let digest = push_image(first.addr);
    let server = first.restart_plain(|data| add_tags(data, &digest), &flags);
    let before = server.vm_hwm_kib();

    // 32 requests from eight addresses; nobody reads until all are sent and
    // the server had time to build what it builds.
    let request = b"GET /v2/big/tags/list HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    let socks: Vec<TcpStream> = (0..LISTS)
        .map(|i| {
            let mut s =
                connect_from(source(i), server.addr, Duration::from_secs(30)).expect("connect");
            s.write_all(request).expect("request");
            s
        })
        .collect();
    std::thread::sleep(Duration::from_secs(1));
    let lat = measure(10, || plain_v2(server.addr, NORMAL_CLIENT));
    let started = Instant::now();
    let readers: Vec<_> = socks
        .into_iter()
        .map(|s| std::thread::spawn(move || read_response(&mut BufReader::new(s), false)))
        .collect();
    let want: Vec<String> = {
        let mut v: Vec<String> = (0..TAGS).map(tag).collect();
        v.sort();
        v
    };
    // The exact bytes a list built in one buffer had.
    let quoted: Vec<String> = want.iter().map(|t| format!("\"{t}\"")).collect();
    let exact = format!("{{\"name\":\"big\",\"tags\":[{}]}}", quoted.join(","));
    for r in readers {
        let r = r.join().expect("reader").expect("a whole list");
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-length"),
            Some(exact.len().to_string().as_str())
        );
        assert!(r.body == exact.as_bytes(), "every tag, in order, as JSON");
        assert!(r.header("link").is_none());
    }
    let read_all = started.elapsed();
    let hwm = server.vm_hwm_kib();
    // A page of it still has its Link.
    let r = call_from(
        NORMAL_CLIENT,
        server.addr.port(),
        "GET",
        "/v2/big/tags/list?n=25000",
        None,
    );
    let v = r.json().expect("JSON");
    assert_eq!(v["tags"].as_array().map(Vec::len), Some(25_000));
    assert_eq!(
        r.header("link").map(str::to_string),
        Some(format!(
            "</v2/big/tags/list?n=25000&last={}>; rel=\"next\"",
            want[24_999]
        ))
    );
    eprintln!(
        "{LISTS} whole lists of {TAGS} tags at once: VmHWM {before} KiB at start, {hwm} KiB after; \
         all read in {read_all:?}; /v2/ meanwhile max {:?}",
        lat[lat.len() - 1]
    );
    assert!(hwm < MAX_HWM_KIB, "VmHWM {hwm} KiB");
    assert!(lat[lat.len() - 1] < Duration::from_secs(1), "{lat:?}");
}
