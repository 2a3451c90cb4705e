//! TLS to an upstream is verified: a soute with its own CA as the upstream
//! is trusted with `--ca` (its CA file) and refused without it (its CA is
//! in no system bundle).

use super::common::*;
use crate::support::*;
use soute::config::TlsMode;
use ureq::config::IpFamily;

#[test]
fn an_https_upstream_is_trusted_with_its_ca_and_refused_without() {
    let upstream = Soute::start(|cfg| cfg.tls = TlsMode::Auto);
    let ca_file = upstream.data().join("tls/ca.crt");
    let ca_pem = std::fs::read(&ca_file).expect("ca.crt");
    let url = format!("https://127.0.0.1:{}", upstream.port());
    let image = push_image(
        &tls_agent(&ca_pem, IpFamily::Ipv4Only),
        &url,
        "org/tls",
        "1",
        90,
        &[4000],
        None,
    );

    let soute = Soute::plain();
    let ca = ca_file.to_str().expect("utf-8 path");
    add_upstream(soute.data(), &["trusted.example", &url, "--ca", ca], None);
    add_upstream(soute.data(), &["untrusted.example", &url], None);
    pull_manifest(&soute, "trusted.example/org/tls", "1", &image.manifest);
    pull_blobs(&soute, "trusted.example/org/tls", &image);

    let r = manifest_at(
        &soute.url("/v2/untrusted.example/org/tls/manifests/1"),
        None,
    );
    r.expect_error(502, &["UNKNOWN"]);
    assert!(
        r.text().to_lowercase().contains("certificate"),
        "{}",
        r.text()
    );

    let not_pem = soute.data().join("not-a-ca.txt");
    std::fs::write(&not_pem, "hello").expect("write");
    let (ok, _, err) = upstream_cmd(
        soute.data(),
        &[
            "add",
            "bad.example",
            &url,
            "--ca",
            not_pem.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(!ok && err.contains("no PEM certificate"), "{err}");
}
