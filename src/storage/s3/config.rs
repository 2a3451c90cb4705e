//! The S3 blob store's configuration (issue L): endpoint, bucket, key prefix,
//! region and credentials, from the later `--s3-*` flags, distribution's
//! `REGISTRY_STORAGE_S3_*` environment, `AWS_ACCESS_KEY_ID` /
//! `AWS_SECRET_ACCESS_KEY`, or a credentials file that only its owner can read.
//!
//! It owns parsing and validation only. It must NEVER open a connection,
//! print or `Debug`-format a secret, or read a credentials file readable by
//! group or others.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Region used when none is given: Garage's default `s3_region`.
pub const DEFAULT_REGION: &str = "garage";

/// What the operator gave (flags win over the environment); every field optional.
#[derive(Default, Clone)]
pub struct S3Flags {
    pub endpoint: Option<String>,
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub region: Option<String>,
    /// A file holding the credentials (mode 0600 or stricter).
    pub credentials_file: Option<PathBuf>,
}

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Credentials {{ access_key_id: {:?}, secret: <hidden> }}",
            self.access_key_id
        )
    }
}

/// A validated S3 configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct S3Config {
    /// `http://` or `https://` host[:port], no path, no query; path-style addressing.
    pub endpoint: String,
    pub bucket: String,
    /// Key prefix without leading or trailing `/` ("" for none).
    pub prefix: String,
    pub region: String,
    pub credentials: Credentials,
}

impl S3Config {
    /// The object key of `name` under the prefix.
    pub fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    /// One line for `check-config`: every setting except the secret.
    pub fn describe(&self) -> String {
        format!(
            "s3 endpoint={} bucket={} prefix={:?} region={} access_key_id={} secret=<set>",
            self.endpoint, self.bucket, self.prefix, self.region, self.credentials.access_key_id
        )
    }

    /// Resolves `flags` over the environment `env` (a lookup, so tests need
    /// not touch the process environment).
    pub fn resolve(
        flags: &S3Flags,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<S3Config, String> {
        let pick = |flag: &Option<String>, names: &[&str]| -> Option<String> {
            flag.clone()
                .or_else(|| names.iter().find_map(|n| env(n)))
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let endpoint = pick(&flags.endpoint, &["REGISTRY_STORAGE_S3_REGIONENDPOINT"])
            .ok_or("--s3-endpoint URL is required with --blob-store s3 (or REGISTRY_STORAGE_S3_REGIONENDPOINT)")?;
        let bucket = pick(&flags.bucket, &["REGISTRY_STORAGE_S3_BUCKET"]).ok_or(
            "--s3-bucket NAME is required with --blob-store s3 (or REGISTRY_STORAGE_S3_BUCKET)",
        )?;
        let prefix =
            pick(&flags.prefix, &["REGISTRY_STORAGE_S3_ROOTDIRECTORY"]).unwrap_or_default();
        let region = pick(&flags.region, &["REGISTRY_STORAGE_S3_REGION", "AWS_REGION"])
            .unwrap_or_else(|| DEFAULT_REGION.to_string());
        let credentials = match &flags.credentials_file {
            Some(path) => read_credentials_file(path)?,
            None => {
                let id = pick(
                    &None,
                    &["REGISTRY_STORAGE_S3_ACCESSKEY", "AWS_ACCESS_KEY_ID"],
                );
                let secret = pick(
                    &None,
                    &["REGISTRY_STORAGE_S3_SECRETKEY", "AWS_SECRET_ACCESS_KEY"],
                );
                match (id, secret) {
                    (Some(access_key_id), Some(secret_access_key)) => Credentials {
                        access_key_id,
                        secret_access_key,
                    },
                    _ => return Err("S3 credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or REGISTRY_STORAGE_S3_ACCESSKEY/_SECRETKEY), or give a credentials file".into()),
                }
            }
        };
        Ok(S3Config {
            endpoint: validate_endpoint(&endpoint)?,
            bucket: validate_bucket(&bucket)?,
            prefix: validate_prefix(&prefix)?,
            region: validate_region(&region)?,
            credentials,
        })
    }
}

fn validate_endpoint(raw: &str) -> Result<String, String> {
    let rest = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"))
        .ok_or_else(|| format!("--s3-endpoint {raw:?}: must start with http:// or https://"))?;
    let host = rest.strip_suffix('/').unwrap_or(rest);
    if host.is_empty() {
        return Err(format!("--s3-endpoint {raw:?}: no host"));
    }
    if host.contains(['/', '?', '#', '@', ' ']) {
        return Err(format!(
            "--s3-endpoint {raw:?}: give only scheme, host and port (the bucket goes in --s3-bucket, a path in --s3-prefix)"
        ));
    }
    let scheme = &raw[..raw.len() - rest.len()];
    Ok(format!("{scheme}{host}"))
}

/// S3 bucket naming rules: 3-63 of `a-z 0-9 . -`, starting and ending with a letter or digit.
fn validate_bucket(b: &str) -> Result<String, String> {
    let ok_chars = b
        .bytes()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'.' || c == b'-');
    let ends_ok = |c: Option<u8>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if (3..=63).contains(&b.len())
        && ok_chars
        && ends_ok(b.bytes().next())
        && ends_ok(b.bytes().last())
        && !b.contains("..")
    {
        Ok(b.to_string())
    } else {
        Err(format!(
            "--s3-bucket {b:?}: a bucket name is 3-63 characters of a-z, 0-9, '.', '-', starting and ending with a letter or digit"
        ))
    }
}

fn validate_prefix(p: &str) -> Result<String, String> {
    let p = p.trim_matches('/');
    let ok = p
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"/-_.".contains(&c))
        && !p
            .split('/')
            .any(|seg| seg.is_empty() || seg == "." || seg == "..");
    if p.is_empty() || (ok && p.len() <= 256) {
        Ok(p.to_string())
    } else {
        Err(format!(
            "--s3-prefix {p:?}: use segments of A-Z a-z 0-9 - _ . separated by '/', no empty, '.' or '..' segment, at most 256 bytes"
        ))
    }
}

fn validate_region(r: &str) -> Result<String, String> {
    if !r.is_empty()
        && r.len() <= 64
        && r.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
    {
        Ok(r.to_string())
    } else {
        Err(format!(
            "--s3-region {r:?}: letters, digits, '-' and '_' only"
        ))
    }
}

/// Reads `aws_access_key_id = ...` / `aws_secret_access_key = ...` lines (the
/// AWS shared-credentials format; a `[default]` header and `#` comments are
/// allowed). Refuses a file that group or others can read.
pub fn read_credentials_file(path: &Path) -> Result<Credentials, String> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| format!("S3 credentials file {shown}: {e}"))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "S3 credentials file {shown} has mode {mode:04o}: it must be readable by its owner only (chmod 600)"
        ));
    }
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("S3 credentials file {shown}: {e}"))?;
    parse_credentials(&text).map_err(|e| format!("S3 credentials file {shown}: {e}"))
}

fn parse_credentials(text: &str) -> Result<Credentials, String> {
    let (mut id, mut secret) = (None, None);
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if line.starts_with('[') {
            if line != "[default]" {
                return Err(format!("line {}: only a [default] section is read", n + 1));
            }
            continue;
        }
        let (k, v) = line
            .split_once('=')
            .ok_or_else(|| format!("line {}: expected NAME = VALUE", n + 1))?;
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            "aws_access_key_id" => id = Some(v),
            "aws_secret_access_key" => secret = Some(v),
            "aws_session_token" | "region" => {}
            other => return Err(format!("line {}: unknown name {other:?}", n + 1)),
        }
    }
    match (
        id.filter(|v| !v.is_empty()),
        secret.filter(|v| !v.is_empty()),
    ) {
        (Some(access_key_id), Some(secret_access_key)) => Ok(Credentials {
            access_key_id,
            secret_access_key,
        }),
        _ => Err("needs both aws_access_key_id and aws_secret_access_key".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::os::unix::fs::OpenOptionsExt;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn flags(endpoint: &str, bucket: &str) -> S3Flags {
        S3Flags {
            endpoint: Some(endpoint.into()),
            bucket: Some(bucket.into()),
            ..S3Flags::default()
        }
    }

    const KEYS: &[(&str, &str)] = &[
        ("AWS_ACCESS_KEY_ID", "GKid"),
        ("AWS_SECRET_ACCESS_KEY", "s3cr3t"),
    ];

    #[test]
    fn flags_and_aws_env_resolve_with_defaults() {
        let c = S3Config::resolve(&flags("http://127.0.0.1:3900/", "blobs"), &env_of(KEYS))
            .expect("valid");
        assert_eq!(c.endpoint, "http://127.0.0.1:3900");
        assert_eq!(c.bucket, "blobs");
        assert_eq!(c.prefix, "");
        assert_eq!(c.region, DEFAULT_REGION);
        assert_eq!(c.credentials.access_key_id, "GKid");
        assert_eq!(c.key("blobs/sha256/ab"), "blobs/sha256/ab");
    }

    #[test]
    fn distribution_names_are_honoured_and_flags_win() {
        let env = env_of(&[
            ("REGISTRY_STORAGE_S3_REGIONENDPOINT", "https://s3.lan"),
            ("REGISTRY_STORAGE_S3_BUCKET", "from-env"),
            ("REGISTRY_STORAGE_S3_REGION", "eu-west-3"),
            ("REGISTRY_STORAGE_S3_ROOTDIRECTORY", "/reg/soute/"),
            ("REGISTRY_STORAGE_S3_ACCESSKEY", "AK"),
            ("REGISTRY_STORAGE_S3_SECRETKEY", "SK"),
            ("AWS_ACCESS_KEY_ID", "ignored"),
            ("AWS_SECRET_ACCESS_KEY", "ignored"),
        ]);
        let c = S3Config::resolve(&S3Flags::default(), &env).expect("valid");
        assert_eq!(
            (
                c.endpoint.as_str(),
                c.bucket.as_str(),
                c.region.as_str(),
                c.prefix.as_str()
            ),
            ("https://s3.lan", "from-env", "eu-west-3", "reg/soute")
        );
        assert_eq!(c.credentials.secret_access_key, "SK");
        assert_eq!(c.key("x"), "reg/soute/x");
        let f = S3Flags {
            bucket: Some("from-flag".into()),
            ..S3Flags::default()
        };
        assert_eq!(
            S3Config::resolve(&f, &env).expect("valid").bucket,
            "from-flag"
        );
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_named() {
        let env = env_of(KEYS);
        for (endpoint, bucket, needle) in [
            ("ftp://h", "blobs", "--s3-endpoint"),
            ("http://", "blobs", "--s3-endpoint"),
            ("http://h:3900/blobs", "blobs", "--s3-endpoint"),
            ("http://h", "Blobs", "--s3-bucket"),
            ("http://h", "ab", "--s3-bucket"),
            ("http://h", "-ab", "--s3-bucket"),
            ("http://h", "a..b", "--s3-bucket"),
        ] {
            let e = S3Config::resolve(&flags(endpoint, bucket), &env).expect_err(endpoint);
            assert!(e.contains(needle), "{endpoint} {bucket}: {e}");
        }
        let mut f = flags("http://h", "blobs");
        f.prefix = Some("a/../b".into());
        assert!(S3Config::resolve(&f, &env)
            .expect_err("..")
            .contains("--s3-prefix"));
        f.prefix = None;
        f.region = Some("us east".into());
        assert!(S3Config::resolve(&f, &env)
            .expect_err("space")
            .contains("--s3-region"));
        let e = S3Config::resolve(&flags("http://h", "blobs"), &env_of(&[])).expect_err("no keys");
        assert!(e.contains("AWS_ACCESS_KEY_ID"), "{e}");
        let e = S3Config::resolve(&S3Flags::default(), &env).expect_err("no endpoint");
        assert!(e.contains("--s3-endpoint"), "{e}");
    }

    #[test]
    fn credentials_file_must_be_private_and_complete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, mode: u32, body: &str| {
            let p = dir.path().join(name);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&p)
                .expect("create");
            std::io::Write::write_all(&mut f, body.as_bytes()).expect("write");
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
            p
        };
        let good = "# soute\n[default]\naws_access_key_id = GK1\naws_secret_access_key = abc=def\n";
        let p = write("good", 0o600, good);
        let mut f = flags("http://h", "blobs");
        f.credentials_file = Some(p);
        let c = S3Config::resolve(&f, &env_of(&[])).expect("valid");
        assert_eq!(c.credentials.access_key_id, "GK1");
        assert_eq!(c.credentials.secret_access_key, "abc=def");
        assert!(!c.describe().contains("abc=def"));
        assert!(!format!("{c:?}").contains("abc=def"));

        let open = write("open", 0o644, good);
        let e = read_credentials_file(&open).expect_err("0644");
        assert!(e.contains("chmod 600"), "{e}");
        let half = write("half", 0o600, "aws_access_key_id = GK1\n");
        assert!(read_credentials_file(&half)
            .expect_err("half")
            .contains("both"));
        let junk = write("junk", 0o600, "password: x\n");
        assert!(read_credentials_file(&junk)
            .expect_err("junk")
            .contains("line 1"));
    }
}
