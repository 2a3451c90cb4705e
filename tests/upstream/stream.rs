//! Streaming through the cache: a cold blob reaches its first client while
//! the download is still running (slowed by `--max-rate`), eight
//! concurrent clients share one upstream GET (the upstream's access log),
//! the rate cap holds, and a cold HEAD asks the upstream's HEAD and
//! downloads nothing. Clients read raw sockets, to time the first bytes and
//! to see a connection cut short of its Content-Length.

use super::common::*;
use crate::support::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// A GET read off a raw socket: status, announced length, the body bytes
/// that came, and when the first `early` of them had come.
pub struct RawPull {
    pub status: u16,
    pub content_length: u64,
    pub body: Vec<u8>,
    pub early_at: Option<Duration>,
    pub took: Duration,
}

/// `GET path` with `Connection: close`, read to EOF (at most 60 s).
pub fn raw_pull(addr: SocketAddr, path: &str, early: usize) -> RawPull {
    let started = Instant::now();
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("read timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: soute-tests/1\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut head_end = None;
    let mut early_at = None;
    let deadline = started + Duration::from_secs(60);
    while Instant::now() < deadline {
        let n = match s.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        got.extend_from_slice(&buf[..n]);
        if head_end.is_none() {
            head_end = find(&got, b"\r\n\r\n").map(|i| i + 4);
        }
        if let Some(h) = head_end {
            if early_at.is_none() && got.len() - h >= early {
                early_at = Some(started.elapsed());
            }
        }
    }
    let h = head_end.expect("a response head");
    let head = String::from_utf8_lossy(&got[..h]).to_string();
    let status = head[9..12].parse().expect("status");
    let content_length = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .expect("Content-Length");
    RawPull {
        status,
        content_length,
        body: got[h..].to_vec(),
        early_at,
        took: started.elapsed(),
    }
}

#[test]
fn a_cold_blob_streams_to_its_first_client_and_eight_clients_make_one_get() {
    if !distribution_available(
        "a_cold_blob_streams_to_its_first_client_and_eight_clients_make_one_get",
    ) {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let size = 4 << 20;
    let image = push_image(&agent, &upstream.url(), "org/big", "1", 40, &[size], None);
    let layer = sha256(&image.blobs[1]);
    // 16 workers: half of them (8) may read cold blobs as they grow.
    let soute = Soute::start(|c| c.workers = 16);
    // 1 MiB/s: the 4 MiB layer takes about 4 s to download.
    add_upstream(
        soute.data(),
        &["ghcr.io", &upstream.url(), "--max-rate", "1048576"],
        None,
    );
    let listed = list_json(soute.data());
    assert_eq!(listed[0]["max_rate"], 1048576, "{listed}");
    let (ok, out, _) = upstream_cmd(soute.data(), &["list"], None);
    assert!(ok && out.contains("1048576/s"), "{out}");
    pull_manifest(&soute, "ghcr.io/org/big", "1", &image.manifest);

    let path = format!("/v2/ghcr.io/org/big/blobs/{layer}");
    let addr = soute.addr();
    let started = Instant::now();
    let first = {
        let path = path.clone();
        std::thread::spawn(move || raw_pull(addr, &path, 256 * 1024))
    };
    // The others arrive while the first download runs.
    std::thread::sleep(Duration::from_millis(300));
    let others: Vec<_> = (0..7)
        .map(|_| {
            let path = path.clone();
            std::thread::spawn(move || raw_pull(addr, &path, 1))
        })
        .collect();
    let first = first.join().expect("first client");
    let others: Vec<RawPull> = others
        .into_iter()
        .map(|t| t.join().expect("client"))
        .collect();
    let all_done = started.elapsed();

    assert_eq!(first.status, 200);
    assert_eq!(first.content_length, size as u64);
    assert!(
        first.body == image.blobs[1],
        "the first client's bytes differ"
    );
    let early = first.early_at.expect("first bytes");
    assert!(
        early < Duration::from_millis(2500) && early + Duration::from_millis(1000) < first.took,
        "the first client waited for the download: 256 KiB after {early:?}, all after {:?}",
        first.took
    );
    // The cap holds: 4 MiB at 1 MiB/s (the first second may come at once).
    assert!(
        first.took >= Duration::from_millis(2500),
        "--max-rate ignored: {:?}",
        first.took
    );
    for (i, o) in others.iter().enumerate() {
        assert_eq!(o.status, 200, "client {i}");
        assert!(o.body == image.blobs[1], "client {i}'s bytes differ");
    }
    assert!(all_done < Duration::from_secs(30), "took {all_done:?}");
    let gets: Vec<_> = soute_requests(&upstream)
        .into_iter()
        .filter(|(m, p, _)| m == "GET" && p.ends_with(&layer))
        .collect();
    assert_eq!(gets.len(), 1, "one upstream GET for 8 clients: {gets:?}");
    let data = soute.data().to_path_buf();
    wait_until("the blob to be stored", Duration::from_secs(20), || {
        blob_rows(&data).contains(&layer)
    });
    assert_eq!(
        list_json(soute.data())[0]["bytes_fetched"].as_u64(),
        Some(image.manifest.len() as u64 + size as u64),
    );
    // Warm now: served from the store.
    let warm = raw_pull(addr, &path, 1);
    assert!(warm.body == image.blobs[1]);
    assert!(
        warm.took < Duration::from_secs(2),
        "warm pull took {:?}",
        warm.took
    );
}

#[test]
fn a_cold_blob_head_asks_the_upstream_and_downloads_nothing() {
    if !distribution_available("a_cold_blob_head_asks_the_upstream_and_downloads_nothing") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(
        &agent,
        &upstream.url(),
        "org/headed",
        "1",
        41,
        &[2 << 20],
        None,
    );
    let layer = sha256(&image.blobs[1]);
    let soute = Soute::plain();
    add_upstream(soute.data(), &["quay.io", &upstream.url()], None);
    let head = call(
        &agent,
        "HEAD",
        &soute.url(&format!("/v2/quay.io/org/headed/blobs/{layer}")),
        None,
        &[],
        None,
    );
    head.expect_status(200);
    assert_eq!(head.content_length(), Some(2 << 20));
    assert_eq!(head.header("docker-content-digest"), Some(layer.as_str()));
    let missing = sha256(b"not there");
    let head = call(
        &agent,
        "HEAD",
        &soute.url(&format!("/v2/quay.io/org/headed/blobs/{missing}")),
        None,
        &[],
        None,
    );
    head.expect_status(404);
    let asked = soute_requests(&upstream);
    // A GET of a digest the upstream lacks: 404, and no partial file.
    let r = get(
        &agent,
        &soute.url(&format!("/v2/quay.io/org/headed/blobs/{missing}")),
        None,
    );
    r.expect_error(404, &["BLOB_UNKNOWN"]);
    let partial = soute.data().join("upstream-partial");
    assert_eq!(
        std::fs::read_dir(&partial).map(|d| d.count()).unwrap_or(0),
        0,
        "a 404 left a partial file"
    );
    assert!(
        asked
            .iter()
            .any(|(m, p, s)| m == "HEAD" && p.ends_with(&layer) && *s == 200),
        "{asked:?}"
    );
    assert!(
        !asked.iter().any(|(m, _, _)| m == "GET"),
        "a HEAD downloaded: {asked:?}"
    );
    assert!(blob_rows(soute.data()).is_empty());
    assert!(blob_files(soute.data()).is_empty());
}

#[test]
fn a_slow_client_and_a_range_of_a_cold_blob_get_the_right_bytes() {
    if !distribution_available("a_slow_client_and_a_range_of_a_cold_blob_get_the_right_bytes") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let size = 16 << 20;
    let image = push_image(
        &agent,
        &upstream.url(),
        "org/slow",
        "1",
        42,
        &[size, 3 << 20],
        None,
    );
    let (layer, second) = (sha256(&image.blobs[1]), sha256(&image.blobs[2]));
    let soute = Soute::plain();
    add_upstream(soute.data(), &["ghcr.io", &upstream.url()], None);

    // The client reads 64 KiB, then nothing until the download is stored:
    // the rest comes from the committed file.
    let mut s = TcpStream::connect(soute.addr()).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    write!(
        s,
        "GET /v2/ghcr.io/org/slow/blobs/{layer} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("request");
    let mut got = vec![0u8; 64 * 1024];
    s.read_exact(&mut got).expect("the first bytes");
    let data = soute.data().to_path_buf();
    wait_until("the download to be stored", Duration::from_secs(30), || {
        blob_rows(&data).contains(&layer)
    });
    s.read_to_end(&mut got).expect("the rest");
    let h = find(&got, b"\r\n\r\n").expect("head") + 4;
    assert!(
        got[..h].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&got[..h])
    );
    assert!(
        got[h..] == image.blobs[1][..],
        "the slow client's bytes differ"
    );

    // A range of a cold blob, while it streams.
    let r = call(
        &agent,
        "GET",
        &soute.url(&format!("/v2/ghcr.io/org/slow/blobs/{second}")),
        None,
        &[("Range", "bytes=1000000-1999999")],
        None,
    );
    r.expect_status(206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 1000000-1999999/{}", 3 << 20).as_str())
    );
    assert!(
        r.body == image.blobs[2][1_000_000..2_000_000],
        "range bytes differ"
    );
}

#[test]
fn a_cold_blob_streams_over_tls_too() {
    if !distribution_available("a_cold_blob_streams_over_tls_too") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let image = push_image(
        &agent,
        &upstream.url(),
        "org/tls",
        "1",
        43,
        &[4 << 20],
        None,
    );
    let layer = sha256(&image.blobs[1]);
    let soute = Soute::start(|cfg| cfg.tls = soute::config::TlsMode::Auto);
    // 2 MiB/s: about two seconds of streaming through rustls.
    add_upstream(
        soute.data(),
        &["ghcr.io", &upstream.url(), "--max-rate", "2097152"],
        None,
    );
    let ca_pem = std::fs::read(soute.data().join("tls/ca.crt")).expect("ca.crt");
    let tls = tls_agent(&ca_pem, ureq::config::IpFamily::Ipv4Only);
    let url = format!("{}/v2/ghcr.io/org/tls/blobs/{layer}", soute.https_base());
    let started = Instant::now();
    let r = get(&tls, &url, None);
    r.expect_status(200);
    assert!(r.body == image.blobs[1], "bytes differ over TLS");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "not rate-capped, so not streamed: {:?}",
        started.elapsed()
    );
    // Warm, over TLS: the stored file.
    let r = get(&tls, &url, None);
    assert!(r.body == image.blobs[1], "warm bytes differ over TLS");
}

/// Slow readers of a cold blob hold a worker each until its digest matched:
/// at most half the workers do (8 workers: 4), the next ones get 429, and a
/// normal client's manifest GET is still answered meanwhile.
#[test]
fn readers_of_cold_blobs_hold_at_most_half_the_workers() {
    if !distribution_available("readers_of_cold_blobs_hold_at_most_half_the_workers") {
        return;
    }
    let upstream = Distribution::start(None);
    let agent = http_agent();
    let size = 2 << 20;
    let image = push_image(&agent, &upstream.url(), "org/slow", "1", 40, &[size], None);
    let layer = sha256(&image.blobs[1]);
    let soute = Soute::plain();
    // 256 KiB/s: the 2 MiB layer takes about 8 s to download.
    add_upstream(
        soute.data(),
        &["ghcr.io", &upstream.url(), "--max-rate", "262144"],
        None,
    );
    pull_manifest(&soute, "ghcr.io/org/slow", "1", &image.manifest);
    let addr = soute.addr();
    let path = format!("/v2/ghcr.io/org/slow/blobs/{layer}");
    // Six readers from six addresses (the per-address worker cap is not what
    // bounds them), each holding its connection open for at most 6 s.
    let readers: Vec<_> = (0..6u8)
        .map(|i| {
            let path = path.clone();
            std::thread::spawn(move || {
                let src = std::net::Ipv4Addr::new(127, 0, 3, 10 + i);
                let mut s = connect_from(src, addr, Duration::from_secs(10)).expect("connect");
                write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").expect("request");
                let mut head = [0u8; 12];
                s.read_exact(&mut head).expect("status line");
                let status: u16 = String::from_utf8_lossy(&head[9..12])
                    .parse()
                    .expect("status");
                // Hold it (a slow reader), then drop it.
                let until = Instant::now() + Duration::from_secs(6);
                let mut buf = [0u8; 1024];
                while status == 200 && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(200));
                    if matches!(s.read(&mut buf), Ok(0) | Err(_)) {
                        break;
                    }
                }
                status
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    // Meanwhile a normal client: the cached manifest, promptly, three times.
    for _ in 0..3 {
        let t = Instant::now();
        pull_manifest(&soute, "ghcr.io/org/slow", "1", &image.manifest);
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "a manifest GET waited {:?} behind the cold readers",
            t.elapsed()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let mut statuses: Vec<u16> = readers
        .into_iter()
        .map(|t| t.join().expect("reader"))
        .collect();
    statuses.sort_unstable();
    assert_eq!(statuses, vec![200, 200, 200, 200, 429, 429], "{statuses:?}");
}
