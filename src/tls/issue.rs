//! tls::issue: soute's own certificate authority and the leaf certificate it
//! signs (rcgen), kept under `<data>/tls/` (file names from
//! `storage::layout`). Creates what is missing, renews a leaf that no longer
//! covers the names or expires within 30 days, and checks a new leaf the way a
//! client will before putting it in place.
//!
//! It must never choose the host names (that is `names`), serve certificates
//! (that is `resolver`), or write outside the TLS folder it is given.

use super::names::normalize_names;
use super::resolver::load_certified_key;
use super::{bad_file, io_err, provider, TlsError};
use crate::storage::layout;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Lifetime of the local CA.
const CA_LIFETIME: Duration = Duration::from_secs(3650 * 24 * 60 * 60);
/// Lifetime of the leaf certificate.
const LEAF_LIFETIME: Duration = Duration::from_secs(730 * 24 * 60 * 60);
/// A leaf that expires sooner than this is replaced.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Certificates start this long before "now", to tolerate clients whose clock lags.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// Where the PKI files live, and what [`ensure_ca_and_leaf`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub dir: PathBuf,
    pub ca_cert: PathBuf,
    pub ca_key: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// True when this call created a new CA (clients must trust it anew).
    pub ca_created: bool,
    /// True when this call issued a new leaf certificate.
    pub leaf_issued: bool,
}

impl TlsFiles {
    fn in_dir(dir: &Path) -> TlsFiles {
        TlsFiles {
            dir: dir.to_path_buf(),
            ca_cert: dir.join(layout::CA_CERT),
            ca_key: dir.join(layout::CA_KEY),
            cert: dir.join(layout::LEAF_CERT),
            key: dir.join(layout::LEAF_KEY),
            ca_created: false,
            leaf_issued: false,
        }
    }
}

/// Makes sure `tls_dir` holds a CA and a leaf certificate valid for every name
/// in `names` for at least 30 more days, creating or renewing what is missing.
///
/// The CA is created once and then reused; the leaf (and its key) is replaced
/// only when it does not cover all `names`, expires within 30 days, does not
/// match its key, or was not signed by the CA.
pub fn ensure_ca_and_leaf(tls_dir: &Path, names: &[String]) -> Result<TlsFiles, TlsError> {
    let names = normalize_names(names)?;
    if names.is_empty() {
        return Err(TlsError::NoNames);
    }
    if !tls_dir.is_dir() {
        // Parents too are created 0700; the folder itself is set exactly.
        crate::storage::create_private_dir(tls_dir).map_err(io_err(tls_dir))?;
    }
    let mut files = TlsFiles::in_dir(tls_dir);
    let provider = provider();

    let (ca_key, ca_created) = load_or_create_ca(&files)?;
    files.ca_created = ca_created;
    let ca_der = read_single_cert(&files.ca_cert)?;
    if !ca_created {
        match leaf_problem(&files, &ca_der, &names, &provider) {
            None => return Ok(files),
            Some(reason) => log::info!("issuing a new server certificate: {reason}"),
        }
    }

    let issuer = Issuer::new(ca_params(&ca_key)?, ca_key);
    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let leaf = leaf_params(&names)?.signed_by(&leaf_key, &issuer)?;

    // Check the new leaf the way a client will, before putting it in place:
    // this catches a ca.crt that does not belong to ca.key.
    let verifier = verifier_for(&ca_der, &provider)?;
    for name in &names {
        check_name(&verifier, leaf.der(), name, SystemTime::now()).map_err(|reason| {
            bad_file(
                &files.ca_cert,
                format!("does not match ca.key (a freshly signed certificate fails: {reason})"),
            )
        })?;
    }

    // Key first: a crash in between leaves a pair that does not match, which
    // the next call (and the resolver) detect.
    write_atomic(
        &files.key,
        leaf_key.serialize_pem().as_bytes(),
        layout::FILE_MODE,
    )?;
    write_atomic(&files.cert, leaf.pem().as_bytes(), layout::CERT_MODE)?;
    files.leaf_issued = true;
    log::info!(
        "server certificate written to {} for {}",
        files.cert.display(),
        names.join(", ")
    );
    Ok(files)
}

/// Loads the CA key, or creates a new CA. Returns the key and whether the CA is new.
fn load_or_create_ca(files: &TlsFiles) -> Result<(KeyPair, bool), TlsError> {
    match fs::read_to_string(&files.ca_key) {
        Ok(pem) => {
            let key = KeyPair::from_pem(&pem)
                .map_err(|e| bad_file(&files.ca_key, format!("not a usable private key: {e}")))?;
            if !files.ca_cert.exists() {
                // The key survived but its certificate did not (crash between
                // the two writes, or a deleted file): issue it again. The
                // subject depends only on the key, so older leaves still chain.
                log::warn!(
                    "{} is missing; issuing it again from {}",
                    files.ca_cert.display(),
                    files.ca_key.display()
                );
                let cert = ca_params(&key)?.self_signed(&key)?;
                write_atomic(&files.ca_cert, cert.pem().as_bytes(), layout::CERT_MODE)?;
            }
            Ok((key, false))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let cert = ca_params(&key)?.self_signed(&key)?;
            write_atomic(
                &files.ca_key,
                key.serialize_pem().as_bytes(),
                layout::FILE_MODE,
            )?;
            write_atomic(&files.ca_cert, cert.pem().as_bytes(), layout::CERT_MODE)?;
            log::info!(
                "created a local certificate authority in {}",
                files.dir.display()
            );
            Ok((key, true))
        }
        Err(e) => Err(io_err(&files.ca_key)(e)),
    }
}

/// The CA's parameters. The subject is derived from the key alone (its short
/// random id is a hash of the public key), so the issuer name can be rebuilt
/// from `ca.key` without parsing `ca.crt`.
fn ca_params(key: &KeyPair) -> Result<CertificateParams, TlsError> {
    let id = Sha256::digest(key.subject_public_key_info());
    let short_id: String = id.iter().take(4).map(|b| format!("{b:02x}")).collect();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "soute");
    dn.push(DnType::CommonName, format!("soute local CA {short_id}"));

    let now = SystemTime::now();
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + CA_LIFETIME).into();
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

fn leaf_params(names: &[String]) -> Result<CertificateParams, TlsError> {
    let mut sans = Vec::with_capacity(names.len());
    for name in names {
        sans.push(match name.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(
                name.clone()
                    .try_into()
                    .map_err(|_| TlsError::InvalidName(name.clone()))?,
            ),
        });
    }
    let mut dn = DistinguishedName::new();
    dn.push(DnType::OrganizationName, "soute");
    dn.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );

    let now = SystemTime::now();
    let mut params = CertificateParams::default();
    params.distinguished_name = dn;
    params.subject_alt_names = sans;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = (now - BACKDATE).into();
    params.not_after = (now + LEAF_LIFETIME).into();
    params.serial_number = Some(random_serial()?);
    Ok(params)
}

fn random_serial() -> Result<SerialNumber, TlsError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| TlsError::Random(e.to_string()))?;
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01; // positive, and never shorter than 16 bytes
    Ok(SerialNumber::from_slice(&bytes))
}

/// Why the existing leaf cannot be kept, or `None` when it can.
fn leaf_problem(
    files: &TlsFiles,
    ca_der: &CertificateDer<'static>,
    names: &[String],
    provider: &Arc<CryptoProvider>,
) -> Option<String> {
    let certified = match load_certified_key(&files.cert, &files.key, provider) {
        Ok(ck) => ck,
        Err(TlsError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
            return Some("no server certificate yet".into())
        }
        Err(e) => return Some(e.to_string()),
    };
    let Some(leaf) = certified.cert.first() else {
        return Some("the current certificate file is empty".into());
    };
    let verifier = match verifier_for(ca_der, provider) {
        Ok(v) => v,
        Err(e) => return Some(e.to_string()),
    };
    let now = SystemTime::now();
    for name in names {
        if let Err(reason) = check_name(&verifier, leaf, name, now) {
            return Some(format!("the current one is not valid for {name}: {reason}"));
        }
    }
    let first = names.first().map(String::as_str).unwrap_or("localhost");
    if let Err(reason) = check_name(&verifier, leaf, first, now + RENEW_BEFORE) {
        return Some(format!(
            "the current one will not be valid in 30 days: {reason}"
        ));
    }
    None
}

/// Verifies `leaf` for `name` at time `at`, exactly as a rustls client would.
fn check_name(
    verifier: &WebPkiServerVerifier,
    leaf: &CertificateDer<'_>,
    name: &str,
    at: SystemTime,
) -> Result<(), String> {
    let server_name = ServerName::try_from(name).map_err(|e| e.to_string())?;
    let secs = at
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    verifier
        .verify_server_cert(
            leaf,
            &[],
            &server_name,
            &[],
            UnixTime::since_unix_epoch(Duration::from_secs(secs)),
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
}

fn verifier_for(
    ca_der: &CertificateDer<'static>,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, TlsError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca_der.clone())?;
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| TlsError::Rustls(rustls::Error::General(e.to_string())))
}

fn read_single_cert(path: &Path) -> Result<CertificateDer<'static>, TlsError> {
    let pem = fs::read(path).map_err(io_err(path))?;
    CertificateDer::from_pem_slice(&pem)
        .map_err(|e| bad_file(path, format!("not a PEM certificate: {e}")))
}

/// Writes `bytes` to `path` so that readers see either the old or the new
/// content: temporary file, fsync, rename, fsync of the directory.
pub(super) fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut nonce = [0u8; 6];
    // A clash only makes `create_new` fail, so a weak nonce is harmless.
    let _ = getrandom::fill(&mut nonce);
    let suffix: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = dir.join(format!(".{name}.{suffix}.tmp"));

    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err(path)(e));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::test_support::{handshake, mode, names};
    use crate::tls::ReloadingResolver;

    #[test]
    fn first_call_creates_private_files_that_a_client_accepts() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data/tls");
        let files = ensure_ca_and_leaf(&dir, &names(&["registry.lan", "127.0.0.1", "::1"]))
            .expect("ensure");
        assert!(files.ca_created && files.leaf_issued);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&files.ca_key), layout::FILE_MODE);
        assert_eq!(mode(&files.key), layout::FILE_MODE);
        assert!(files.ca_cert.exists() && files.cert.exists());
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .expect("read_dir")
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left behind");

        let ca_pem = fs::read(&files.ca_cert).expect("ca");
        let resolver = Arc::new(ReloadingResolver::new(&files.cert, &files.key).expect("load"));
        for name in ["registry.lan", "127.0.0.1", "::1"] {
            handshake(&ca_pem, resolver.clone(), name).expect(name);
        }
        // A name the certificate does not cover is refused by the client.
        assert!(handshake(&ca_pem, resolver, "other.lan").is_err());
    }

    #[test]
    fn second_call_reuses_everything_and_a_new_name_renews_only_the_leaf() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("tls");
        let first = ensure_ca_and_leaf(&dir, &names(&["a.lan", "::1"])).expect("first");
        let ca_before = fs::read(&first.ca_cert).expect("ca");
        let ca_key_before = fs::read(&first.ca_key).expect("ca key");
        let leaf_before = fs::read(&first.cert).expect("leaf");

        // Same names (in another spelling and order): nothing changes.
        let again = ensure_ca_and_leaf(&dir, &names(&["[::1]", "A.lan."])).expect("again");
        assert!(!again.ca_created && !again.leaf_issued);
        assert_eq!(fs::read(&again.cert).expect("leaf"), leaf_before);

        // A subset is covered too.
        let subset = ensure_ca_and_leaf(&dir, &names(&["a.lan"])).expect("subset");
        assert!(!subset.leaf_issued);

        // A new name: new leaf, same CA.
        let more =
            ensure_ca_and_leaf(&dir, &names(&["a.lan", "::1", "b.lan", "fd00::5"])).expect("more");
        assert!(!more.ca_created && more.leaf_issued);
        assert_eq!(fs::read(&more.ca_cert).expect("ca"), ca_before);
        assert_eq!(fs::read(&more.ca_key).expect("ca key"), ca_key_before);
        assert_ne!(fs::read(&more.cert).expect("leaf"), leaf_before);

        let resolver = Arc::new(ReloadingResolver::new(&more.cert, &more.key).expect("load"));
        for name in ["a.lan", "b.lan", "::1", "fd00::5"] {
            handshake(&ca_before, resolver.clone(), name).expect(name);
        }
    }

    #[test]
    fn a_leaf_whose_key_does_not_match_or_is_missing_is_replaced() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("tls");
        let files = ensure_ca_and_leaf(&dir, &names(&["a.lan"])).expect("first");
        // server.key replaced by the CA key: pair no longer matches.
        fs::copy(&files.ca_key, &files.key).expect("copy");
        let again = ensure_ca_and_leaf(&dir, &names(&["a.lan"])).expect("again");
        assert!(again.leaf_issued && !again.ca_created);
        fs::remove_file(&files.cert).expect("rm");
        assert!(
            ensure_ca_and_leaf(&dir, &names(&["a.lan"]))
                .expect("3")
                .leaf_issued
        );
        // A lost ca.crt is issued again from ca.key; the leaf still chains to it.
        fs::remove_file(&files.ca_cert).expect("rm ca");
        let re = ensure_ca_and_leaf(&dir, &names(&["a.lan"])).expect("4");
        assert!(!re.ca_created && !re.leaf_issued);
        let ca_pem = fs::read(&re.ca_cert).expect("ca");
        let resolver = Arc::new(ReloadingResolver::new(&re.cert, &re.key).expect("load"));
        handshake(&ca_pem, resolver, "a.lan").expect("handshake");
    }

    #[test]
    fn a_leaf_expiring_within_30_days_is_renewed() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let files = ensure_ca_and_leaf(tmp.path(), &names(&["a.lan"])).expect("first");
        let ca_key =
            KeyPair::from_pem(&fs::read_to_string(&files.ca_key).expect("read")).expect("ca key");
        let issuer = Issuer::new(ca_params(&ca_key).expect("params"), ca_key);
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("key");
        let mut params = leaf_params(&names(&["a.lan"])).expect("params");
        params.not_after = (SystemTime::now() + Duration::from_secs(10 * 24 * 3600)).into();
        let short = params.signed_by(&key, &issuer).expect("sign");
        write_atomic(
            &files.key,
            key.serialize_pem().as_bytes(),
            layout::FILE_MODE,
        )
        .expect("key");
        write_atomic(&files.cert, short.pem().as_bytes(), layout::CERT_MODE).expect("cert");
        // The short-lived leaf is valid now (the resolver accepts it) ...
        ReloadingResolver::new(&files.cert, &files.key).expect("valid pair");
        // ... but is replaced because it expires within 30 days.
        let again = ensure_ca_and_leaf(tmp.path(), &names(&["a.lan"])).expect("again");
        assert!(again.leaf_issued && !again.ca_created);
        assert_ne!(fs::read(&files.cert).expect("leaf"), short.pem().as_bytes());
    }

    #[test]
    fn a_foreign_ca_cert_is_reported_not_silently_used() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let one = ensure_ca_and_leaf(&tmp.path().join("one"), &names(&["a.lan"])).expect("one");
        let two = ensure_ca_and_leaf(&tmp.path().join("two"), &names(&["a.lan"])).expect("two");
        fs::copy(&two.ca_cert, &one.ca_cert).expect("copy");
        let err = ensure_ca_and_leaf(&one.dir, &names(&["a.lan"])).expect_err("mismatch");
        assert!(err.to_string().contains("does not match ca.key"), "{err}");
    }

    #[test]
    fn invalid_names_are_rejected() {
        let tmp = tempfile::tempdir().expect("tempdir");
        for bad in ["", "exa mple", "a..b", "-x_y.lan/", "http://x"] {
            let err = ensure_ca_and_leaf(tmp.path(), &names(&[bad])).expect_err(bad);
            assert!(matches!(err, TlsError::InvalidName(_)), "{bad}: {err}");
        }
        assert!(matches!(
            ensure_ca_and_leaf(tmp.path(), &[]),
            Err(TlsError::NoNames)
        ));
    }
}
