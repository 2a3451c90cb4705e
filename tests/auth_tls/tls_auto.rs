//! TLS auto: soute's own CA, made on first start and reused after.

use crate::support::*;
use rustls::version::{TLS12, TLS13};
use rustls::{CertificateError, ProtocolVersion, RootCertStore};
use soute::config::TlsMode;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use ureq::config::IpFamily;

fn mode(path: &std::path::Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[test]
fn auto_tls_creates_a_ca_that_only_its_own_clients_trust_and_keeps_it() {
    let mut soute = Soute::start(|cfg| {
        cfg.tls = TlsMode::Auto;
        cfg.listen = vec![
            "127.0.0.1:0".parse().expect("v4"),
            "[::1]:0".parse().expect("v6"),
        ];
    });
    let tls_dir = soute.data().join("tls");
    for f in ["ca.crt", "ca.key", "server.crt", "server.key"] {
        assert!(tls_dir.join(f).is_file(), "{f} missing after first start");
    }
    assert_eq!(mode(&tls_dir), 0o700, "tls folder mode");
    assert_eq!(mode(&tls_dir.join("ca.key")), 0o600, "ca.key mode");
    assert_eq!(mode(&tls_dir.join("server.key")), 0o600, "server.key mode");
    let ca_pem = fs::read(tls_dir.join("ca.crt")).expect("ca.crt");
    let ca_key = fs::read(tls_dir.join("ca.key")).expect("ca.key");

    // A client trusting only this CA reaches /v2/ by name ...
    let addrs = soute.addrs();
    assert_eq!(addrs.len(), 2);
    let agent = tls_agent(&ca_pem, IpFamily::Ipv4Only);
    get(&agent, &format!("{}/v2/", soute.https_base()), None).expect_status(200);
    // ... and by the loopback addresses, which the certificate covers too.
    let v4 = format!("https://127.0.0.1:{}/v2/", addrs[0].port());
    get(&tls_agent(&ca_pem, IpFamily::Any), &v4, None).expect_status(200);
    let v6 = format!("https://[::1]:{}/v2/", addrs[1].port());
    get(&tls_agent(&ca_pem, IpFamily::Any), &v6, None).expect_status(200);
    // `localhost` over IPv6 (this resolver may map it to 127.0.0.1 only, so
    // connect to [::1] directly and present the name).
    let seen = tls_get(
        addrs[1],
        "localhost",
        roots_from_pem(&ca_pem),
        &[&TLS13],
        "/v2/",
    )
    .expect("localhost over [::1]");
    assert!(
        seen.response.starts_with("HTTP/1.1 200"),
        "{}",
        seen.response
    );

    // Mozilla's roots do not vouch for it; nor does an empty store; nor does
    // our CA for a name the certificate does not cover.
    let url = format!("{}/v2/", soute.https_base());
    let rustls_error = |e: &ureq::Error| match e {
        ureq::Error::Rustls(e) => Some(e.clone()),
        ureq::Error::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned(),
        _ => None,
    };
    match try_call(&webpki_agent(), "GET", &url, None, &[], None) {
        Err(e) => assert_eq!(
            rustls_error(&e),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )),
            "webpki roots: {e}"
        ),
        Ok(r) => panic!("webpki roots: the handshake must fail, got {}", r.status),
    }
    let rustls_io_error = |e: std::io::Error| {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .cloned()
    };
    let err = tls_get(
        addrs[0],
        "localhost",
        RootCertStore::empty(),
        &[&TLS13],
        "/v2/",
    )
    .err()
    .expect("no roots: the handshake must fail");
    assert_eq!(
        rustls_io_error(err),
        Some(rustls::Error::InvalidCertificate(
            CertificateError::UnknownIssuer
        ))
    );
    let err = tls_get(
        addrs[0],
        "not-this-host.example",
        roots_from_pem(&ca_pem),
        &[&TLS13],
        "/v2/",
    )
    .err()
    .expect("wrong name: the handshake must fail");
    assert!(
        matches!(
            rustls_io_error(err),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ))
        ),
        "wrong name"
    );

    // /ca.crt over TLS without credentials: the file's bytes, users or not.
    let agent = tls_agent(&ca_pem, IpFamily::Ipv4Only);
    let ca_url = format!("{}/ca.crt", soute.https_base());
    let r = get(&agent, &ca_url, None);
    r.expect_status(200);
    assert_eq!(r.body, ca_pem, "/ca.crt differs from tls/ca.crt");
    soute
        .registry()
        .set_user("alice", "pw-alice")
        .expect("set_user");
    wait_for("/v2/ to need credentials", CALL_TIMEOUT, || {
        (get(&agent, &url, None).status == 401).then_some(())
    });
    let r = get(&agent, &ca_url, None);
    r.expect_status(200);
    assert_eq!(r.body, ca_pem, "/ca.crt with users");
    get(&agent, &url, Some(&basic("alice", "pw-alice"))).expect_status(200);

    // Both TLS versions negotiate, with ALPN http/1.1.
    for (version, want) in [
        (&TLS12, ProtocolVersion::TLSv1_2),
        (&TLS13, ProtocolVersion::TLSv1_3),
    ] {
        let seen = tls_get(
            addrs[0],
            "localhost",
            roots_from_pem(&ca_pem),
            &[version],
            "/v1/_ping",
        )
        .unwrap_or_else(|e| panic!("{want:?}: {e}"));
        assert_eq!(seen.version, Some(want));
        assert_eq!(
            seen.alpn.as_deref(),
            Some(&b"http/1.1"[..]),
            "{want:?} ALPN"
        );
        assert!(
            seen.response.starts_with("HTTP/1.1 200"),
            "{want:?}: {}",
            seen.response
        );
    }

    // Go clients (docker) offer h2 first: soute picks http/1.1.
    let seen = tls_get_alpn(
        addrs[0],
        "localhost",
        roots_from_pem(&ca_pem),
        &[&TLS13, &TLS12],
        &[b"h2", b"http/1.1"],
        "/v2/",
    )
    .expect("h2 + http/1.1 offered");
    assert_eq!(seen.alpn.as_deref(), Some(&b"http/1.1"[..]));
    // A client offering no ALPN at all is served too.
    let seen = tls_get_alpn(
        addrs[0],
        "localhost",
        roots_from_pem(&ca_pem),
        &[&TLS13],
        &[],
        "/v2/",
    )
    .expect("no ALPN offered");
    assert_eq!(seen.alpn, None);
    assert!(
        seen.response.starts_with("HTTP/1.1 401"),
        "{}",
        seen.response
    );

    // Restart on the same folder: same CA, and the old trust still works.
    let leaf_before = fs::read(tls_dir.join("server.crt")).expect("server.crt");
    soute.restart();
    assert_eq!(fs::read(tls_dir.join("ca.crt")).expect("ca.crt"), ca_pem);
    assert_eq!(fs::read(tls_dir.join("ca.key")).expect("ca.key"), ca_key);
    assert_eq!(
        fs::read(tls_dir.join("server.crt")).expect("server.crt"),
        leaf_before,
        "an unexpired leaf covering the same names is kept"
    );
    let addrs = soute.addrs();
    let seen = tls_get(
        addrs[0],
        "localhost",
        roots_from_pem(&ca_pem),
        &[&TLS13],
        "/ca.crt",
    )
    .expect("handshake after restart with the CA from before");
    assert_eq!(seen.peer, first_der(&leaf_before));
    let agent = tls_agent(&ca_pem, IpFamily::Ipv4Only);
    let r = get(&agent, &format!("{}/ca.crt", soute.https_base()), None);
    r.expect_status(200);
    assert_eq!(r.body, ca_pem, "/ca.crt after restart");
    get(
        &agent,
        &format!("{}/v2/", soute.https_base()),
        Some(&basic("alice", "pw-alice")),
    )
    .expect_status(200);
    soute.stop();
}
