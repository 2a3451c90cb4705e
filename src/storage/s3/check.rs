//! The start-up check of an S3 blob store: the bucket is reachable and
//! writable (HEAD bucket, then put, get and delete of a probe object), with
//! a message naming the setting to fix: endpoint, credentials or bucket.
//!
//! It must NEVER leave its probe object behind when the delete can succeed,
//! nor print the secret.

use super::client::S3Client;
use super::{S3Error, S3ErrorKind};

/// Name of the probe object (under the prefix).
pub const PROBE_NAME: &str = ".soute-probe";

/// `Ok` when the store works; otherwise one line for the operator.
pub fn startup_check(client: &S3Client) -> Result<(), String> {
    let probe = format!("{PROBE_NAME}-{}", std::process::id());
    let explain = |e: S3Error| explain(client, &e);
    client.head_bucket().map_err(explain)?;
    let body = format!("soute probe {probe}\n").into_bytes();
    client
        .put(&probe, &mut body.as_slice(), body.len() as u64)
        .map_err(explain)?;
    let mut back = Vec::new();
    let read = client.get_into(&probe, None, &mut back);
    let deleted = client.delete(&probe);
    read.map_err(explain)?;
    deleted.map_err(explain)?;
    if back != body {
        return Err(format!(
            "S3 store {} bucket {}: the probe object read back differs from what was written",
            client.config().endpoint,
            client.config().bucket
        ));
    }
    Ok(())
}

fn explain(client: &S3Client, e: &S3Error) -> String {
    let c = client.config();
    let hint = match e.kind {
        S3ErrorKind::Endpoint | S3ErrorKind::Unreachable => format!(
            "check --s3-endpoint {} (nothing answers there, or it is not an S3 API)",
            c.endpoint
        ),
        S3ErrorKind::Credentials => format!(
            "check the credentials: access key {} is unknown, its secret is wrong, or it may not read and write bucket {}",
            c.credentials.access_key_id, c.bucket
        ),
        S3ErrorKind::NoSuchBucket | S3ErrorKind::NotFound => {
            format!("check --s3-bucket: bucket {} does not exist at {}", c.bucket, c.endpoint)
        }
        S3ErrorKind::Unavailable => format!("the store at {} is failing (no quorum?)", c.endpoint),
        S3ErrorKind::Refused | S3ErrorKind::Protocol => {
            format!("the store at {} refused the probe (check --s3-region {})", c.endpoint, c.region)
        }
    };
    format!("S3 blob store not usable: {hint}: {e}")
}
