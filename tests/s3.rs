//! The S3 client of `storage::s3` (issue L, first slice) against a real
//! 3-node Garage cluster on loopback (`support/garage.rs`, replication
//! factor 3): exact-byte round trips (put, get, range, head, delete, paged
//! list, presigned GET), a 64 MiB multipart upload streamed with bounded
//! memory, a file's parts sent in parallel, abort and the in-progress listing, a node SIGKILLed during a
//! multipart upload (quorum), a stopped and a silent endpoint (bounded
//! failure), and the start-up check's messages for a wrong bucket and wrong
//! credentials. Under CI=true a missing `garage` binary fails; otherwise the
//! Garage tests print SKIPPED.

#[path = "support/mod.rs"]
mod support;

#[path = "support/garage.rs"]
mod garage;

use garage::{garage_or_skip, GarageCluster, BUCKET, REGION};
use sha2::{Digest as _, Sha256};
use soute::storage::s3::check::startup_check;
use soute::storage::s3::client::{CONNECT_TIMEOUT, RESPONSE_TIMEOUT};
use soute::storage::s3::config::Credentials;
use soute::storage::s3::multipart::{upload_file_with, upload_stream_with};
use soute::storage::s3::S3ErrorKind;
use soute::storage::s3::{upload_stream, ByteRange, S3Client, S3Config, PART_SIZE};
use std::io::{self, Read, Write};
use std::time::{Duration, Instant};
use support::{status_kib, Deadline, Rng};

const MIB: u64 = 1 << 20;

fn config(cluster: &GarageCluster, node: usize, prefix: &str) -> S3Config {
    S3Config {
        endpoint: cluster.endpoint(node),
        bucket: BUCKET.to_string(),
        prefix: prefix.to_string(),
        region: REGION.to_string(),
        credentials: Credentials {
            access_key_id: cluster.key_id.clone(),
            secret_access_key: cluster.secret.clone(),
        },
    }
}

fn client(cfg: S3Config) -> S3Client {
    S3Client::new(cfg).expect("client")
}

/// Waits until the cluster serves S3 (it settles after the layout is applied).
fn ready(cluster: &GarageCluster, c: &S3Client) {
    let d = Deadline::after(Duration::from_secs(90));
    loop {
        match startup_check(c) {
            Ok(()) => return,
            Err(e) if !d.left() => panic!(
                "garage never became usable: {e}\n{}",
                cluster.log_tail(0, 3000)
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

/// `len` deterministic pseudo-random bytes, generated as read (never held),
/// hashed as they go; `hook` runs once when `at` bytes have been read.
struct Generated<'h> {
    left: u64,
    read: u64,
    state: u64,
    hash: Sha256,
    hook: Option<(u64, Box<dyn FnMut() + 'h>)>,
}

impl<'h> Generated<'h> {
    fn new(len: u64, seed: u64) -> Generated<'h> {
        Generated {
            left: len,
            read: 0,
            state: seed | 1,
            hash: Sha256::new(),
            hook: None,
        }
    }
}

impl Read for Generated<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.left as usize).min(64 * 1024);
        for b in &mut buf[..n] {
            // xorshift64
            self.state ^= self.state << 13;
            self.state ^= self.state >> 7;
            self.state ^= self.state << 17;
            *b = self.state as u8;
        }
        self.hash.update(&buf[..n]);
        self.left -= n as u64;
        self.read += n as u64;
        if let Some((at, _)) = &self.hook {
            if self.read >= *at {
                if let Some((_, mut f)) = self.hook.take() {
                    f();
                }
            }
        }
        Ok(n)
    }
}

/// A writer that only hashes and counts.
#[derive(Default)]
struct HashingSink {
    hash: Sha256,
    len: u64,
}

impl Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hash.update(buf);
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn get_bytes(c: &S3Client, name: &str, range: Option<ByteRange>) -> Vec<u8> {
    let mut out = Vec::new();
    c.get_into(name, range, &mut out).expect("get");
    out
}

#[test]
fn client_round_trips_on_a_3_node_garage_cluster() {
    let Some(bin) = garage_or_skip("client_round_trips_on_a_3_node_garage_cluster") else {
        return;
    };
    let cluster = GarageCluster::start(bin);
    let c = client(config(&cluster, 0, "t1/soute"));
    ready(&cluster, &c);
    let mut rng = Rng::seeded("s3 round trips");

    // put / head / get / range with exact bytes
    let body = rng.bytes((MIB + 7) as usize);
    let etag = c
        .put("blobs/a", &mut body.as_slice(), body.len() as u64)
        .expect("put");
    assert!(!etag.is_empty(), "PUT returns an ETag");
    assert_eq!(c.head("blobs/a").expect("head"), Some(body.len() as u64));
    assert_eq!(get_bytes(&c, "blobs/a", None), body);
    let r = ByteRange {
        start: 100,
        end: 199,
    };
    assert_eq!(get_bytes(&c, "blobs/a", Some(r)), &body[100..200]);
    let tail = ByteRange {
        start: body.len() as u64 - 5,
        end: body.len() as u64 - 1,
    };
    assert_eq!(
        get_bytes(&c, "blobs/a", Some(tail)),
        &body[body.len() - 5..]
    );
    let mut reader = c.open("blobs/a", Some(r)).expect("open").expect("exists");
    assert_eq!(reader.len, 100);
    let mut got = Vec::new();
    reader.read_to_end(&mut got).expect("read");
    assert_eq!(got, &body[100..200]);
    assert_eq!(c.head("blobs/missing").expect("head"), None);
    assert!(c.open("blobs/missing", None).expect("open").is_none());
    let e = c
        .get_into("blobs/missing", None, &mut Vec::new())
        .expect_err("missing");
    assert_eq!(e.kind, S3ErrorKind::NotFound, "{e}");

    // the object sits under the prefix, seen from a client without one
    let raw = client(config(&cluster, 1, ""));
    assert_eq!(
        raw.head("t1/soute/blobs/a").expect("head"),
        Some(body.len() as u64)
    );

    // paged listing, prefix stripped, key order, sizes
    let mut want = vec![("blobs/a".to_string(), body.len() as u64)];
    for i in 0..5u8 {
        let name = format!("blobs/small-{i}");
        let b = vec![i; usize::from(i) * 10 + 1];
        c.put(&name, &mut b.as_slice(), b.len() as u64)
            .expect("put small");
        want.push((name, b.len() as u64));
    }
    c.put("other/x", &mut &b"x"[..], 1).expect("put other");
    let listed: Vec<(String, u64)> = c
        .list_paged("blobs/", 2)
        .expect("list")
        .into_iter()
        .map(|e| (e.name, e.size))
        .collect();
    assert_eq!(listed, want, "three pages of two, prefix stripped");
    assert_eq!(c.list("").expect("list all").len(), 7);

    // presigned GET works without credentials; a tampered one does not
    let url = c.presigned_get("blobs/small-3", Duration::from_secs(60));
    assert!(url.starts_with(&cluster.endpoint(0)), "{url}");
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .new_agent();
    let mut resp = agent.get(&url).call().expect("presigned GET");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.body_mut().read_to_vec().expect("body"), vec![3u8; 31]);
    let tampered = url.replace("blobs/small-3", "blobs/small-4");
    assert_eq!(
        agent.get(&tampered).call().expect("GET").status().as_u16(),
        403
    );

    // delete (twice: S3 deletes are idempotent)
    c.delete("blobs/a").expect("delete");
    assert_eq!(c.head("blobs/a").expect("head"), None);
    c.delete("blobs/a").expect("delete again");

    // 64 MiB multipart upload, streamed: memory grows far less than the object
    let len = 64 * MIB;
    let before = status_kib(None, "VmRSS");
    let mut src = Generated::new(len, 42);
    let parts = upload_stream(&c, "blobs/big", &mut src, len).expect("multipart upload");
    // the peak (high-water mark) since start, minus the RSS before the upload
    let grown = status_kib(None, "VmHWM").saturating_sub(before);
    assert_eq!(parts, len / PART_SIZE, "8 MiB parts");
    assert!(
        grown < 24 * 1024,
        "RSS grew {grown} KiB while streaming 64 MiB"
    );
    let mut sink = HashingSink::default();
    assert_eq!(
        c.get_into("blobs/big", None, &mut sink).expect("get big"),
        len
    );
    assert_eq!(sink.len, len);
    assert_eq!(
        sink.hash.finalize(),
        src.hash.finalize(),
        "64 MiB read back exactly"
    );
    assert_eq!(c.head("blobs/big").expect("head"), Some(len));
    let r = ByteRange {
        start: PART_SIZE - 3,
        end: PART_SIZE + 2,
    };
    // the same generator, cut short: the first PART_SIZE + 3 bytes of the object
    let mut prefix_bytes = Vec::new();
    Generated::new(PART_SIZE + 3, 42)
        .read_to_end(&mut prefix_bytes)
        .expect("gen");
    assert_eq!(
        get_bytes(&c, "blobs/big", Some(r)),
        &prefix_bytes[(PART_SIZE - 3) as usize..],
        "a range across the part boundary"
    );

    // abort + in-progress listing (what GC will use for orphans)
    let id = c.create_multipart("up/orphan").expect("create");
    let mut part = Generated::new(5 * MIB, 7);
    c.upload_part("up/orphan", &id, 1, &mut part, 5 * MIB)
        .expect("part");
    let id2 = c.create_multipart("up/second").expect("create 2");
    let listed = c.list_multipart_uploads("up/").expect("list uploads");
    let mut ids: Vec<(String, String)> = listed
        .iter()
        .map(|u| (u.name.clone(), u.upload_id.clone()))
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        vec![
            ("up/orphan".to_string(), id.clone()),
            ("up/second".to_string(), id2.clone())
        ]
    );
    assert!(listed.iter().all(|u| !u.initiated.is_empty()), "{listed:?}");
    assert!(c.list_multipart_uploads("blobs/").expect("list").is_empty());
    c.abort_multipart("up/orphan", &id).expect("abort");
    c.abort_multipart("up/second", &id2).expect("abort 2");
    assert!(c
        .list_multipart_uploads("up/")
        .expect("list after abort")
        .is_empty());
    assert_eq!(c.head("up/orphan").expect("head"), None);
    let e = c
        .complete_multipart("up/orphan", &id, &["\"x\"".to_string()])
        .expect_err("aborted");
    assert!(
        matches!(e.kind, S3ErrorKind::NotFound | S3ErrorKind::Refused),
        "{e}"
    );

    // a failed part aborts the upload: nothing left in progress
    let mut short = Generated::new(3 * MIB, 9); // shorter than the 12 MiB promised
    let e =
        upload_stream_with(&c, "up/short", &mut short, 12 * MIB, 5 * MIB).expect_err("short body");
    assert!(!e.message.is_empty());
    assert!(
        c.list_multipart_uploads("up/").expect("list").is_empty(),
        "aborted on failure"
    );
    assert_eq!(c.head("up/short").expect("head"), None);

    // a file sent with parts in parallel (pread per part): exact bytes, and a
    // file shorter than promised aborts the upload, leaving nothing in progress
    let file_len = 23 * MIB + 17;
    let mut bytes = Vec::new();
    Generated::new(file_len, 77)
        .read_to_end(&mut bytes)
        .expect("gen");
    let mut file = tempfile::tempfile().expect("tempfile");
    file.write_all(&bytes).expect("write");
    let parts = upload_file_with(&c, "blobs/parallel", &file, file_len, 5 * MIB, 4)
        .expect("parallel upload");
    assert_eq!(parts, 5, "5 MiB parts");
    assert_eq!(
        get_bytes(&c, "blobs/parallel", None),
        bytes,
        "read back exactly"
    );
    let e = upload_file_with(
        &c,
        "up/parallel-short",
        &file,
        file_len + 6 * MIB,
        5 * MIB,
        4,
    )
    .expect_err("short file");
    assert!(!e.message.is_empty());
    assert!(
        c.list_multipart_uploads("up/").expect("list").is_empty(),
        "aborted on failure"
    );
    assert_eq!(c.head("up/parallel-short").expect("head"), None);

    // the start-up check names what is wrong
    let mut wrong_bucket = config(&cluster, 0, "");
    wrong_bucket.bucket = "no-such-bucket".into();
    let e = startup_check(&client(wrong_bucket)).expect_err("wrong bucket");
    assert!(
        e.contains("--s3-bucket") && e.contains("no-such-bucket"),
        "{e}"
    );
    let mut wrong_secret = config(&cluster, 0, "");
    wrong_secret.credentials.secret_access_key = "0".repeat(64);
    let e = startup_check(&client(wrong_secret)).expect_err("wrong secret");
    assert!(e.contains("check the credentials"), "{e}");
    assert!(
        !e.contains(&"0".repeat(64)),
        "no secret in the message: {e}"
    );
    let mut wrong_key = config(&cluster, 0, "");
    wrong_key.credentials.access_key_id = "GK000000000000000000000000".into();
    let e = startup_check(&client(wrong_key)).expect_err("unknown key");
    assert!(
        e.contains("check the credentials") && e.contains("GK0000"),
        "{e}"
    );
    assert!(
        c.list("")
            .expect("list")
            .iter()
            .all(|o| !o.name.starts_with(".soute-probe")),
        "the probe object is deleted"
    );
}

#[test]
fn one_node_killed_during_a_multipart_upload_still_completes() {
    let Some(bin) = garage_or_skip("one_node_killed_during_a_multipart_upload_still_completes")
    else {
        return;
    };
    let mut cluster = GarageCluster::start(bin);
    let c = client(config(&cluster, 0, ""));
    ready(&cluster, &c);
    let len = 64 * MIB;
    let killed_at;
    {
        let cluster = &mut cluster;
        let mut src = Generated::new(len, 1234);
        let mut when = None;
        let when_ref = &mut when;
        src.hook = Some((
            20 * MIB,
            Box::new(move || {
                cluster.kill(2);
                *when_ref = Some(Instant::now());
            }),
        ));
        let parts =
            upload_stream(&c, "blobs/quorum", &mut src, len).expect("upload with a node down");
        assert_eq!(parts, 8);
        let hash = src.hash.clone().finalize();
        drop(src);
        killed_at = when.expect("node 2 was killed mid-upload");
        let mut sink = HashingSink::default();
        c.get_into("blobs/quorum", None, &mut sink)
            .expect("read back with a node down");
        assert_eq!((sink.len, sink.hash.finalize()), (len, hash));
    }
    eprintln!(
        "upload finished {:?} after node 2 was killed",
        killed_at.elapsed()
    );
    // the surviving second node serves it too
    let c1 = client(config(&cluster, 1, ""));
    assert_eq!(c1.head("blobs/quorum").expect("head on node 1"), Some(len));
}

#[test]
fn stopped_endpoint_fails_fast_with_a_clear_error() {
    let Some(bin) = garage_or_skip("stopped_endpoint_fails_fast_with_a_clear_error") else {
        return;
    };
    let mut cluster = GarageCluster::start(bin);
    let c = client(config(&cluster, 0, ""));
    ready(&cluster, &c);
    for i in 0..3 {
        cluster.kill(i);
    }
    let t = Instant::now();
    let e = c
        .put("blobs/x", &mut &b"abc"[..], 3)
        .expect_err("endpoint stopped");
    assert_eq!(e.kind, S3ErrorKind::Unreachable, "{e}");
    assert!(e.message.contains("unreachable"), "{e}");
    let e = startup_check(&c).expect_err("endpoint stopped");
    assert!(
        e.contains("--s3-endpoint") && e.contains(&cluster.endpoint(0)),
        "{e}"
    );
    assert!(
        t.elapsed() < CONNECT_TIMEOUT * 2,
        "failed in {:?}",
        t.elapsed()
    );
}

/// An endpoint that accepts connections and never answers: the client
/// gives up after its response timeout, not never. Needs no Garage.
#[test]
fn silent_endpoint_times_out_within_the_bound() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let holder = std::thread::spawn(move || {
        // hold the accepted connection open, silent, until the client leaves
        let (mut s, _) = listener.accept().expect("accept");
        s.set_read_timeout(Some(RESPONSE_TIMEOUT + Duration::from_secs(15)))
            .ok();
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 {
                break;
            }
        }
    });
    let c = client(S3Config {
        endpoint: format!("http://127.0.0.1:{port}"),
        bucket: "silent".into(),
        prefix: String::new(),
        region: REGION.into(),
        credentials: Credentials {
            access_key_id: "GK1".into(),
            secret_access_key: "s".into(),
        },
    });
    let t = Instant::now();
    let e = c.head("blobs/x").expect_err("no answer");
    let took = t.elapsed();
    assert_eq!(e.kind, S3ErrorKind::Unreachable, "{e}");
    assert!(
        took >= RESPONSE_TIMEOUT - Duration::from_secs(1),
        "gave up early: {took:?}"
    );
    assert!(
        took < RESPONSE_TIMEOUT + Duration::from_secs(10),
        "took {took:?}"
    );
    drop(c);
    holder.join().expect("holder");
}
