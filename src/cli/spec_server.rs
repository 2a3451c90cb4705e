//! cli::spec_server: the flags of `serve` and `check-config` (`SERVER_FLAGS`)
//! and the `--s3-*` flags that `blobs migrate` shares with them, for the
//! command table in `spec`.
//!
//! It must never do I/O or parse: it only holds names and help text.

use super::spec::{repeated, switch, valued, Flag, DATA};

pub(super) const SERVER_FLAGS: &[Flag] = &[
    DATA,
    repeated(
        "--listen",
        "ADDR",
        "address to listen on: :5000, [::1]:5000, host:port (default :5000, every interface)",
    ),
    repeated(
        "--hostname",
        "NAME",
        "a name (DNS or IP) the server certificate covers, besides the machine's own",
    ),
    valued(
        "--tls",
        "auto|off|CERT,KEY",
        "own CA (default), plain HTTP, or your certificate and key files",
    ),
    switch("--no-delete", "refuse DELETE of manifests, tags and blobs"),
    switch(
        "--anonymous-pull",
        "the rule `anonymous ** pull`: anyone may pull (more specific rules still apply)",
    ),
    valued(
        "--auth",
        "auto|basic|token",
        "auto (default): Basic, Bearer tokens while anonymous rules exist; or always one",
    ),
    valued(
        "--token-realm",
        "URL",
        "the token URL Bearer challenges name (default http(s)://HOST/v2/token)",
    ),
    valued(
        "--log-level",
        "LEVEL",
        "error, warn, info (default) or debug",
    ),
    valued(
        "--workers",
        "N",
        "most requests served at once (default 128)",
    ),
    valued(
        "--max-connections",
        "N",
        "open connections at most (default 4096; env SOUTE_MAX_CONNECTIONS)",
    ),
    valued(
        "--max-connections-per-ip",
        "N",
        "open connections at most from one client address (default 64; env SOUTE_MAX_CONNECTIONS_PER_IP)",
    ),
    valued(
        "--max-workers-per-ip",
        "N",
        "requests from one client address served at once (default 8; env SOUTE_MAX_WORKERS_PER_IP)",
    ),
    valued(
        "--min-body-rate",
        "BYTES",
        "slowest average request-body rate, bytes/s (default 500; env SOUTE_MIN_BODY_RATE)",
    ),
    valued(
        "--min-send-rate",
        "BYTES",
        "slowest response rate over each grace window, bytes/s (default 500; env SOUTE_MIN_SEND_RATE)",
    ),
    valued(
        "--body-rate-grace",
        "SECS",
        "time before a body's rate is checked (default 20; env SOUTE_BODY_RATE_GRACE)",
    ),
    valued(
        "--head-budget",
        "BYTES",
        "bytes at most in request heads waiting for a worker (default 16777216; env SOUTE_HEAD_BUDGET)",
    ),
    valued(
        "--auth-threads",
        "N",
        "password verifier threads, 7 MiB each (default: one per CPU; env SOUTE_AUTH_THREADS)",
    ),
    valued(
        "--gc-interval",
        "SECS",
        "run gc this often (default 3600, 0: never; first run 600 s after start)",
    ),
    valued(
        "--gc-grace",
        "SECS",
        "the scheduled gc's --grace (default 3600)",
    ),
    switch(
        "--gc-delete-untagged",
        "the scheduled gc also removes manifests no tag reaches",
    ),
    valued(
        "--max-blob-size",
        "SIZE",
        "largest blob an upload may make: 64GiB (default), 500MB, ...",
    ),
    valued(
        "--disk-reserve",
        "SIZE|PCT",
        "free space uploads leave: 1GiB, 5%, 0 (default: the smaller of 1GiB, 5%)",
    ),
    valued(
        "--max-upload-sessions",
        "N",
        "open upload sessions in all; 429 beyond (default 10000)",
    ),
    valued(
        "--max-upload-sessions-per-client",
        "N",
        "open upload sessions per client address; 429 beyond (default 100)",
    ),
    valued("--audit-keep", "N", "audit events kept (default 100000; 0: none)"),
    valued("--audit-days", "N", "days audit events are kept (default 90; 0: no limit)"),
    valued(
        "--metrics-listen",
        "ADDR",
        "also serve /metrics, /livez, /readyz without auth here (env REGISTRY_HTTP_DEBUG_ADDR)",
    ),
    valued(
        "--metrics",
        "on|off",
        "count requests for /metrics (default on; off: no /metrics, the benchmark's baseline)",
    ),
    valued("--blob-store", "local|s3", "where blobs live (default local: DIR/blobs/)"),
    S3_ENDPOINT,
    S3_BUCKET,
    S3_PREFIX,
    S3_REGION,
    switch("--s3-redirect", "answer blob GETs with a 307 to a presigned URL of the store"),
    S3_CREDENTIALS_FILE,
];

pub(super) const S3_ENDPOINT: Flag = valued(
    "--s3-endpoint",
    "URL",
    "S3 endpoint, http(s)://host[:port] (env REGISTRY_STORAGE_S3_REGIONENDPOINT)",
);
pub(super) const S3_BUCKET: Flag = valued(
    "--s3-bucket",
    "NAME",
    "S3 bucket (env REGISTRY_STORAGE_S3_BUCKET)",
);
pub(super) const S3_PREFIX: Flag = valued(
    "--s3-prefix",
    "P",
    "key prefix in the bucket (env REGISTRY_STORAGE_S3_ROOTDIRECTORY)",
);
pub(super) const S3_REGION: Flag = valued(
    "--s3-region",
    "R",
    "S3 region (default garage; env REGISTRY_STORAGE_S3_REGION)",
);
pub(super) const S3_CREDENTIALS_FILE: Flag = valued(
    "--s3-credentials-file",
    "FILE",
    "AWS-format credentials, mode 0600 (default: env AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)",
);
