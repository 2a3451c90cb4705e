//! tls: the registry's own PKI and its rustls configuration.
//!
//! Owns the files under `<data>/tls/` (a local CA and a leaf certificate signed
//! by it, made with rcgen), the choice of names the leaf covers, the
//! certificate resolver that reloads changed certificate files without a
//! restart, the rustls `ServerConfig`, and the text telling users how to trust
//! the CA.
//!
//! It must never open sockets, speak HTTP, touch the database, or write outside
//! the TLS folder it is given. Private keys are never logged.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::net::{IpAddr, Ipv6Addr, UdpSocket};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType, SerialNumber,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use sha2::{Digest, Sha256};

/// Lifetime of the local CA.
const CA_LIFETIME: Duration = Duration::from_secs(3650 * 24 * 60 * 60);
/// Lifetime of the leaf certificate.
const LEAF_LIFETIME: Duration = Duration::from_secs(730 * 24 * 60 * 60);
/// A leaf that expires sooner than this is replaced.
const RENEW_BEFORE: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Certificates start this long before "now", to tolerate clients whose clock lags.
const BACKDATE: Duration = Duration::from_secs(60 * 60);
/// The resolver stats its files at most this often.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const LEAF_CERT: &str = "server.crt";
const LEAF_KEY: &str = "server.key";

/// Everything that can go wrong while making, loading or using certificates.
#[derive(Debug)]
pub enum TlsError {
    /// A file or directory operation failed.
    Io { path: PathBuf, source: io::Error },
    /// rcgen could not build a key or certificate.
    Generate(rcgen::Error),
    /// rustls refused a configuration, certificate or key.
    Rustls(rustls::Error),
    /// A host name is neither a valid DNS name nor an IP address.
    InvalidName(String),
    /// No host name was given for the certificate.
    NoNames,
    /// A certificate or key file exists but cannot be used.
    BadFile { path: PathBuf, reason: String },
    /// The operating system's random number generator failed.
    Random(String),
}

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsError::Io { path, source } => write!(f, "{}: {source}", path.display()),
            TlsError::Generate(e) => write!(f, "cannot generate certificate: {e}"),
            TlsError::Rustls(e) => write!(f, "TLS: {e}"),
            TlsError::InvalidName(n) => write!(
                f,
                "{n:?} is neither a valid DNS name nor an IP address for a certificate"
            ),
            TlsError::NoNames => write!(f, "no host name given for the server certificate"),
            TlsError::BadFile { path, reason } => write!(f, "{}: {reason}", path.display()),
            TlsError::Random(e) => write!(f, "random number generator: {e}"),
        }
    }
}

impl std::error::Error for TlsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TlsError::Io { source, .. } => Some(source),
            TlsError::Generate(e) => Some(e),
            TlsError::Rustls(e) => Some(e),
            TlsError::InvalidName(_)
            | TlsError::NoNames
            | TlsError::BadFile { .. }
            | TlsError::Random(_) => None,
        }
    }
}

impl From<rcgen::Error> for TlsError {
    fn from(e: rcgen::Error) -> Self {
        TlsError::Generate(e)
    }
}

impl From<rustls::Error> for TlsError {
    fn from(e: rustls::Error) -> Self {
        TlsError::Rustls(e)
    }
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn bad_file(path: &Path, reason: impl Into<String>) -> TlsError {
    TlsError::BadFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

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
            ca_cert: dir.join(CA_CERT),
            ca_key: dir.join(CA_KEY),
            cert: dir.join(LEAF_CERT),
            key: dir.join(LEAF_KEY),
            ca_created: false,
            leaf_issued: false,
        }
    }
}

/// The crypto provider soute uses everywhere: ring.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
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
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(tls_dir)
            .map_err(io_err(tls_dir))?;
        // `recursive` applies the mode to the parents it creates too; make
        // sure the TLS folder itself ends up private whatever the umask.
        fs::set_permissions(tls_dir, fs::Permissions::from_mode(0o700)).map_err(io_err(tls_dir))?;
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
    write_atomic(&files.key, leaf_key.serialize_pem().as_bytes(), 0o600)?;
    write_atomic(&files.cert, leaf.pem().as_bytes(), 0o644)?;
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
                write_atomic(&files.ca_cert, cert.pem().as_bytes(), 0o644)?;
            }
            Ok((key, false))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
            let cert = ca_params(&key)?.self_signed(&key)?;
            write_atomic(&files.ca_key, key.serialize_pem().as_bytes(), 0o600)?;
            write_atomic(&files.ca_cert, cert.pem().as_bytes(), 0o644)?;
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

/// Reads a PEM certificate chain and its PEM private key, and checks they belong together.
fn load_certified_key(
    cert_path: &Path,
    key_path: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let cert_pem = fs::read(cert_path).map_err(io_err(cert_path))?;
    let key_pem = fs::read(key_path).map_err(io_err(key_path))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_file(cert_path, format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(bad_file(cert_path, "holds no certificate"));
    }
    let key = PrivateKeyDer::from_pem_slice(&key_pem)
        .map_err(|e| bad_file(key_path, format!("not a PEM private key: {e}")))?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| bad_file(key_path, format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    certified.keys_match().map_err(|e| {
        bad_file(
            key_path,
            format!("does not match {}: {e}", cert_path.display()),
        )
    })?;
    Ok(certified)
}

/// Writes `bytes` to `path` so that readers see either the old or the new
/// content: temporary file, fsync, rename, fsync of the directory.
fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
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

/// Canonical form of a host name for a certificate: IP addresses in their
/// standard text form (brackets removed), DNS names lower-cased without a
/// trailing dot. Duplicates are dropped, first occurrence wins.
fn normalize_names(names: &[String]) -> Result<Vec<String>, TlsError> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for raw in names {
        let name = normalize_name(raw).ok_or_else(|| TlsError::InvalidName(raw.clone()))?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}

fn normalize_name(raw: &str) -> Option<String> {
    let trimmed = raw.trim();
    let unbracketed = trimmed
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(trimmed);
    if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        return Some(ip.to_string());
    }
    let dns = trimmed.trim_end_matches('.').to_ascii_lowercase();
    match ServerName::try_from(dns.as_str()) {
        Ok(ServerName::DnsName(_)) if !dns.is_empty() => Some(dns),
        _ => None,
    }
}

/// The names a self-made certificate should cover: `extra` (as given, in
/// order), the machine's host name, `localhost`, `127.0.0.1`, `::1`, then the
/// machine's other IPv4 and global IPv6 addresses. Deduplicated, stable order.
/// Machine-derived names that are not valid certificate names are skipped;
/// invalid `extra` names are kept so that [`ensure_ca_and_leaf`] reports them.
pub fn default_names(extra: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |name: String| {
        if !out.contains(&name) {
            out.push(name);
        }
    };
    for name in extra {
        push(normalize_name(name).unwrap_or_else(|| name.clone()));
    }
    let machine = machine_hostname()
        .into_iter()
        .chain(["localhost".to_string(), "127.0.0.1".into(), "::1".into()])
        .chain(local_ipv4().into_iter().map(|ip| ip.to_string()))
        .chain(local_ipv6().into_iter().map(|ip| ip.to_string()));
    for name in machine {
        if let Some(n) = normalize_name(&name) {
            push(n);
        }
    }
    out
}

fn machine_hostname() -> Option<String> {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| fs::read_to_string(p).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Local IPv4 addresses other than loopback: every `/32 host LOCAL` entry of
/// /proc/net/fib_trie, or, when that is unreadable, the source address the
/// kernel picks for a route to a documentation address (a UDP `connect`
/// sends no packet).
fn local_ipv4() -> Vec<IpAddr> {
    let mut out = Vec::new();
    if let Ok(text) = fs::read_to_string("/proc/net/fib_trie") {
        out = parse_fib_trie(&text);
    }
    if out.is_empty() {
        let primary = UdpSocket::bind("0.0.0.0:0")
            .and_then(|s| s.connect("192.0.2.1:9").map(|()| s))
            .and_then(|s| s.local_addr());
        if let Ok(addr) = primary {
            if !addr.ip().is_unspecified() && !addr.ip().is_loopback() {
                out.push(addr.ip());
            }
        }
    }
    out
}

fn parse_fib_trie(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    let mut last: Option<IpAddr> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("|-- ") {
            last = rest.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(ip) = last.take() {
                if !ip.is_loopback() && !out.contains(&ip) {
                    out.push(ip);
                }
            }
        }
    }
    out
}

/// Global-scope IPv6 addresses from /proc/net/if_inet6 (loopback and
/// link-local addresses are useless in a certificate).
fn local_ipv6() -> Vec<IpAddr> {
    fs::read_to_string("/proc/net/if_inet6")
        .map(|t| parse_if_inet6(&t))
        .unwrap_or_default()
}

fn parse_if_inet6(text: &str) -> Vec<IpAddr> {
    let mut out = Vec::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(hex), Some(scope)) = (fields.first(), fields.get(3)) else {
            continue;
        };
        if *scope != "00" || hex.len() != 32 {
            continue;
        }
        let Ok(bits) = u128::from_str_radix(hex, 16) else {
            continue;
        };
        let ip = IpAddr::V6(Ipv6Addr::from(bits));
        if !ip.is_loopback() && !out.contains(&ip) {
            out.push(ip);
        }
    }
    out
}

/// Identity of a file as seen by `stat`: a change in any part means "re-read".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: i64,
    mtime_nsec: i64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    fs::metadata(path).ok().map(|m| FileStamp {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: m.mtime(),
        mtime_nsec: m.mtime_nsec(),
    })
}

/// A certificate resolver that serves one certificate and key, and picks up
/// new files when they change on disk (checked at most once per second during
/// handshakes, or on demand with [`ReloadingResolver::check_reload`]).
///
/// A new pair that cannot be used (unparsable, empty, key not matching the
/// certificate) is refused with a warning; the previous pair stays in service.
pub struct ReloadingResolver {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// File stamps at the last load attempt (successful or not).
    seen: Mutex<(Option<FileStamp>, Option<FileStamp>)>,
    last_check: Mutex<Instant>,
}

impl fmt::Debug for ReloadingResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadingResolver")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ReloadingResolver {
    /// Loads the pair once; fails when it cannot be used.
    pub fn new(cert_path: &Path, key_path: &Path) -> Result<ReloadingResolver, TlsError> {
        let provider = provider();
        let seen = (stamp(cert_path), stamp(key_path));
        let certified = load_certified_key(cert_path, key_path, &provider)?;
        Ok(ReloadingResolver {
            cert_path: cert_path.to_path_buf(),
            key_path: key_path.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(certified)),
            seen: Mutex::new(seen),
            last_check: Mutex::new(Instant::now()),
        })
    }

    /// The pair currently served.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the files if their stamps changed since the last attempt.
    /// Returns true when a new pair was put in service.
    pub fn check_reload(&self) -> bool {
        let now_seen = (stamp(&self.cert_path), stamp(&self.key_path));
        {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if *seen == now_seen {
                return false;
            }
            *seen = now_seen;
        }
        match load_certified_key(&self.cert_path, &self.key_path, &self.provider) {
            Ok(certified) => {
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(certified);
                log::info!(
                    "reloaded TLS certificate {} and key {}",
                    self.cert_path.display(),
                    self.key_path.display()
                );
                true
            }
            Err(e) => {
                log::warn!("keeping the previous TLS certificate: {e}");
                false
            }
        }
    }

    /// Runs [`check_reload`](Self::check_reload) if the last check is more
    /// than a second old and no other thread is checking right now.
    fn maybe_reload(&self) {
        let Ok(mut last) = self.last_check.try_lock() else {
            return;
        };
        if last.elapsed() < RELOAD_INTERVAL {
            return;
        }
        *last = Instant::now();
        self.check_reload();
    }
}

impl ResolvesServerCert for ReloadingResolver {
    fn resolve(&self, _client_hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.maybe_reload();
        Some(self.current())
    }
}

/// The server configuration: ring, TLS 1.2 and 1.3, ALPN `http/1.1`, no client certificates.
pub fn server_config(
    resolver: Arc<ReloadingResolver>,
) -> Result<Arc<rustls::ServerConfig>, TlsError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

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
    use rustls::{ClientConfig, ClientConnection, ServerConnection};

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).map(|m| m.mode() & 0o777).unwrap_or(0)
    }

    /// A full TLS handshake in memory between a client trusting `ca_pem` and
    /// a server using `resolver`. Returns the server certificate the client saw.
    fn handshake(
        ca_pem: &[u8],
        resolver: Arc<ReloadingResolver>,
        name: &str,
    ) -> Result<CertificateDer<'static>, rustls::Error> {
        let mut roots = RootCertStore::empty();
        roots.add(CertificateDer::from_pem_slice(ca_pem).expect("ca pem"))?;
        let mut client_config = ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client_config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let server_name = ServerName::try_from(name.to_string()).expect("server name");
        let mut client = ClientConnection::new(Arc::new(client_config), server_name)?;
        let mut server = ServerConnection::new(server_config(resolver).expect("config"))?;
        let mut buf = Vec::new();
        for _ in 0..20 {
            if !client.is_handshaking() && !server.is_handshaking() {
                break;
            }
            buf.clear();
            while client.wants_write() {
                client.write_tls(&mut buf).expect("client write");
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                server.read_tls(&mut rd).expect("server read");
            }
            server.process_new_packets()?;
            buf.clear();
            while server.wants_write() {
                server.write_tls(&mut buf).expect("server write");
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                client.read_tls(&mut rd).expect("client read");
            }
            client.process_new_packets()?;
        }
        assert!(!client.is_handshaking(), "handshake did not finish");
        assert_eq!(client.alpn_protocol(), Some(&b"http/1.1"[..]));
        Ok(client
            .peer_certificates()
            .and_then(|c| c.first())
            .expect("peer certificate")
            .clone()
            .into_owned())
    }

    #[test]
    fn first_call_creates_private_files_that_a_client_accepts() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("data/tls");
        let files = ensure_ca_and_leaf(&dir, &names(&["registry.lan", "127.0.0.1", "::1"]))
            .expect("ensure");
        assert!(files.ca_created && files.leaf_issued);
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&files.ca_key), 0o600);
        assert_eq!(mode(&files.key), 0o600);
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
        write_atomic(&files.key, key.serialize_pem().as_bytes(), 0o600).expect("key");
        write_atomic(&files.cert, short.pem().as_bytes(), 0o644).expect("cert");
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

    #[test]
    fn resolver_reloads_a_valid_pair_and_keeps_the_old_one_on_garbage() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("tls");
        let files = ensure_ca_and_leaf(&dir, &names(&["a.lan"])).expect("first");
        let ca_pem = fs::read(&files.ca_cert).expect("ca");
        let resolver = Arc::new(ReloadingResolver::new(&files.cert, &files.key).expect("load"));
        let served_first = handshake(&ca_pem, resolver.clone(), "a.lan").expect("hs1");
        assert!(!resolver.check_reload(), "nothing changed yet");

        // A new leaf (new name forces one): picked up.
        ensure_ca_and_leaf(&dir, &names(&["a.lan", "b.lan"])).expect("renew");
        assert!(resolver.check_reload());
        let served_second = handshake(&ca_pem, resolver.clone(), "b.lan").expect("hs2");
        assert_ne!(served_first, served_second);

        // Garbage, an empty file, a mismatched key: all refused, old pair kept.
        let good_cert = fs::read(&files.cert).expect("cert");
        let good_key = fs::read(&files.key).expect("key");
        let other =
            ensure_ca_and_leaf(&tmp.path().join("other"), &names(&["a.lan"])).expect("other");
        let other_key = fs::read(&other.key).expect("other key");
        let cases: [(&[u8], &[u8]); 4] = [
            (b"garbage", &good_key),
            (b"", &good_key),
            (
                &good_cert,
                b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n",
            ),
            (&good_cert, &other_key),
        ];
        for (cert, key) in cases {
            write_atomic(&files.cert, cert, 0o644).expect("write cert");
            write_atomic(&files.key, key, 0o600).expect("write key");
            assert!(!resolver.check_reload());
            let served = handshake(&ca_pem, resolver.clone(), "b.lan").expect("still serving");
            assert_eq!(served, served_second);
        }
        // Restoring a good pair is picked up again.
        write_atomic(&files.cert, &good_cert, 0o644).expect("restore cert");
        write_atomic(&files.key, &good_key, 0o600).expect("restore key");
        assert!(resolver.check_reload());
    }

    #[test]
    fn resolve_checks_files_at_most_once_per_second() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("tls");
        let files = ensure_ca_and_leaf(&dir, &names(&["a.lan"])).expect("first");
        let resolver = ReloadingResolver::new(&files.cert, &files.key).expect("load");
        let before = resolver.current();
        ensure_ca_and_leaf(&dir, &names(&["a.lan", "b.lan"])).expect("renew");
        resolver.maybe_reload(); // within a second of creation: no stat
        assert!(Arc::ptr_eq(&before, &resolver.current()));
        *resolver.last_check.lock().expect("lock") = Instant::now() - RELOAD_INTERVAL * 2;
        resolver.maybe_reload();
        assert!(!Arc::ptr_eq(&before, &resolver.current()));
    }

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

    #[test]
    fn default_names_order_and_dedup() {
        let got = default_names(&names(&["Registry.LAN.", "localhost", "[::1]"]));
        assert_eq!(got[0], "registry.lan");
        assert_eq!(got[1], "localhost");
        assert_eq!(got[2], "::1");
        assert!(got.contains(&"127.0.0.1".to_string()));
        let mut dedup = got.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), got.len());
        // Every machine-derived name is usable in a certificate.
        normalize_names(&got).expect("all valid");
        eprintln!("default names here: {got:?}");
    }

    #[test]
    fn proc_parsers() {
        let fib = "\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        |-- 127.0.0.1
           /32 host LOCAL
     |-- 192.168.1.7
        /32 host LOCAL
     |-- 192.168.1.255
        /32 link BROADCAST
Local:
     |-- 192.168.1.7
        /32 host LOCAL
";
        assert_eq!(
            parse_fib_trie(fib),
            vec!["192.168.1.7".parse::<IpAddr>().expect("ip")]
        );
        let inet6 = "\
00000000000000000000000000000001 01 80 10 80       lo
fe800000000000000000000000000001 02 40 20 80     eth0
20010db8000000000000000000000042 02 40 00 00     eth0
";
        assert_eq!(
            parse_if_inet6(inet6),
            vec!["2001:db8::42".parse::<IpAddr>().expect("ip")]
        );
    }
}
