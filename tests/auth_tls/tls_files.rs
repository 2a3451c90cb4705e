//! TLS with the user's own certificate files, reloaded without a restart.

use crate::support::*;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::version::TLS13;
use soute::config::TlsMode;
use std::fs;
use std::path::Path;
use std::time::Duration;

struct Pair {
    cert_pem: String,
    key_pem: String,
    der: Vec<u8>,
}

fn make_ca() -> (Issuer<'static, KeyPair>, String) {
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params
        .distinguished_name
        .push(DnType::CommonName, "auth_tls test CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params.self_signed(&key).expect("self-sign CA");
    (Issuer::new(params, key), cert.pem())
}

fn make_leaf(issuer: &Issuer<'static, KeyPair>, cn: &str) -> Pair {
    let key = KeyPair::generate().expect("leaf key");
    let mut params = CertificateParams::new(vec!["localhost".to_string()]).expect("leaf params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let cert = params.signed_by(&key, issuer).expect("sign leaf");
    Pair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().to_vec(),
    }
}

/// Replace `path` atomically (write a temporary file, rename over).
fn replace(path: &Path, bytes: &[u8]) {
    let tmp = path.with_extension("tmp");
    fs::write(&tmp, bytes).expect("write temporary file");
    fs::rename(&tmp, path).expect("rename over");
}

fn install(dir: &Path, pair: &Pair) {
    replace(&dir.join("key.pem"), pair.key_pem.as_bytes());
    replace(&dir.join("cert.pem"), pair.cert_pem.as_bytes());
}

#[test]
fn own_certificate_files_are_reloaded_and_garbage_is_refused() {
    let (ca, ca_pem) = make_ca();
    let a = make_leaf(&ca, "pair A");
    let b = make_leaf(&ca, "pair B");
    let files = tempfile::tempdir().expect("tempdir");
    let dir = files.path().to_path_buf();
    install(&dir, &a);

    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let soute = Soute::start(move |cfg| {
        cfg.tls = TlsMode::Files {
            cert: cert.clone(),
            key: key.clone(),
        }
    });
    let addr = soute.addr();
    let seen = || {
        tls_get(
            addr,
            "localhost",
            roots_from_pem(ca_pem.as_bytes()),
            &[&TLS13],
            "/v2/",
        )
        .expect("handshake with the test CA")
    };
    let first = seen();
    assert_eq!(first.peer, a.der, "the server presents pair A");
    assert!(
        first.response.starts_with("HTTP/1.1 200"),
        "{}",
        first.response
    );
    // soute runs no CA of its own here: nothing at /ca.crt.
    assert!(!soute.data().join("tls").join("ca.crt").exists());
    let agent = tls_agent(ca_pem.as_bytes(), ureq::config::IpFamily::Ipv4Only);
    let r = get(&agent, &format!("{}/ca.crt", soute.https_base()), None);
    r.expect_status(404);

    // Pair B replaces A without a restart (the files are checked at most
    // once a second, during handshakes).
    install(&dir, &b);
    wait_for("pair B to be served", Duration::from_secs(5), || {
        (seen().peer == b.der).then_some(())
    });
    get(&agent, &format!("{}/v2/", soute.https_base()), None).expect_status(200);

    // Garbage in place of the certificate: refused, B stays in service.
    replace(&dir.join("cert.pem"), b"this is not a certificate\n");
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(seen().peer, b.der, "garbage must not replace pair B");
    }
    // A key that does not belong to the certificate: refused too.
    replace(&dir.join("cert.pem"), b.cert_pem.as_bytes());
    replace(&dir.join("key.pem"), a.key_pem.as_bytes());
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(seen().peer, b.der, "a mismatched pair must not replace B");

    // A good pair is picked up again afterwards.
    install(&dir, &a);
    wait_for("pair A to be served again", Duration::from_secs(5), || {
        (seen().peer == a.der).then_some(())
    });
    soute.stop();
}
