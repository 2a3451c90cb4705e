//! tls::trust: what a user needs to trust soute's CA on a client machine: the
//! CA's SHA-256 fingerprint and the commands for Docker, Podman and containerd.
//!
//! It must never change a file: it only reads the CA certificate and writes text.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use std::fs;
use std::path::Path;

/// SHA-256 fingerprint of the first certificate in `ca_pem`, as upper-case
/// colon-separated hex (the format of `openssl x509 -fingerprint -sha256`).
/// Empty when `ca_pem` holds no certificate.
pub fn ca_fingerprint(ca_pem: &str) -> String {
    match CertificateDer::from_pem_slice(ca_pem.as_bytes()) {
        Ok(der) => Sha256::digest(der.as_ref())
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":"),
        Err(_) => String::new(),
    }
}

/// The commands a user runs on a client machine to trust the CA at `ca_path`
/// for the registry at `host_port` (for example `registry.lan:5000`).
pub fn trust_instructions(ca_path: &Path, host_port: &str) -> String {
    let fingerprint = match fs::read_to_string(ca_path) {
        Ok(pem) => match ca_fingerprint(&pem) {
            f if f.is_empty() => format!("(cannot read a certificate from {})", ca_path.display()),
            f => f,
        },
        Err(e) => format!("(cannot read {}: {e})", ca_path.display()),
    };
    let ca = ca_path.display();
    let hp = host_port;
    format!(
        "\
soute uses its own certificate authority (CA). Clients must trust it once.
CA certificate: {ca}
CA SHA-256 fingerprint:
  {fingerprint}

1. Get the CA certificate onto the client machine: copy {ca}, or download it
   and check that its fingerprint is exactly the one above (the download itself
   is not verified yet, so the comparison is what makes it safe):
     curl --insecure -o ca.crt https://{hp}/ca.crt
     openssl x509 -in ca.crt -noout -fingerprint -sha256
   Do not use the file if the fingerprints differ.

2. Docker (no daemon restart needed):
     sudo mkdir -p /etc/docker/certs.d/{hp}
     sudo cp ca.crt /etc/docker/certs.d/{hp}/ca.crt

3. Podman, Skopeo, Buildah:
     sudo mkdir -p /etc/containers/certs.d/{hp}
     sudo cp ca.crt /etc/containers/certs.d/{hp}/ca.crt

4. containerd (ctr, nerdctl, Kubernetes nodes):
     sudo mkdir -p /etc/containerd/certs.d/{hp}
     sudo cp ca.crt /etc/containerd/certs.d/{hp}/ca.crt
     sudo tee /etc/containerd/certs.d/{hp}/hosts.toml >/dev/null <<'EOF'
server = \"https://{hp}\"

[host.\"https://{hp}\"]
  ca = \"/etc/containerd/certs.d/{hp}/ca.crt\"
EOF
   containerd's CRI plugin reads this folder when its registry config_path
   includes /etc/containerd/certs.d; ctr needs --hosts-dir /etc/containerd/certs.d.
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::ensure_ca_and_leaf;
    use crate::tls::test_support::names;

    #[test]
    fn fingerprint_and_instructions() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let files = ensure_ca_and_leaf(tmp.path(), &names(&["a.lan"])).expect("ensure");
        let pem = fs::read_to_string(&files.ca_cert).expect("ca");
        let fp = ca_fingerprint(&pem);
        assert_eq!(fp.len(), 32 * 3 - 1);
        assert!(fp.split(':').all(|h| h.len() == 2
            && h.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase())));
        assert_eq!(ca_fingerprint("not pem"), "");

        let text = trust_instructions(&files.ca_cert, "a.lan:5000");
        for needle in [
            fp.as_str(),
            "/etc/docker/certs.d/a.lan:5000/ca.crt",
            "/etc/containers/certs.d/a.lan:5000/ca.crt",
            "/etc/containerd/certs.d/a.lan:5000/hosts.toml",
            "server = \"https://a.lan:5000\"",
            "[host.\"https://a.lan:5000\"]",
            "curl --insecure -o ca.crt https://a.lan:5000/ca.crt",
            "openssl x509 -in ca.crt -noout -fingerprint -sha256",
        ] {
            assert!(text.contains(needle), "missing {needle:?} in\n{text}");
        }
    }
}
