//! error: the crate's one error type and the one table of error kinds. Every
//! kind has its OCI code, its HTTP status and a one-line meaning, modelled on
//! CNCF distribution's errcode registry; `Error::status` is the one `match`
//! that chooses a status. `api::envelope::error_response` is the only place an
//! `Error` becomes a response.
//!
//! It must never format HTTP bodies, log, or know about requests: it only
//! describes what went wrong.

use crate::storage::space::format_size;
use std::fmt;

/// The spec's error codes (plus distribution's legacy ones real clients know).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    TagInvalid,
    RangeInvalid,
    PaginationNumberInvalid,
    /// Server-side failures only: never the code of a client mistake.
    Unknown,
}

impl Code {
    /// Every code, in the table's order.
    pub const ALL: [Code; 18] = [
        Code::BlobUnknown,
        Code::BlobUploadInvalid,
        Code::BlobUploadUnknown,
        Code::DigestInvalid,
        Code::ManifestBlobUnknown,
        Code::ManifestInvalid,
        Code::ManifestUnknown,
        Code::NameInvalid,
        Code::NameUnknown,
        Code::SizeInvalid,
        Code::Unauthorized,
        Code::Denied,
        Code::Unsupported,
        Code::TooManyRequests,
        Code::TagInvalid,
        Code::RangeInvalid,
        Code::PaginationNumberInvalid,
        Code::Unknown,
    ];

    /// The table: (name on the wire, status of a plain client error with this
    /// code, what it means). Domain kinds with another status are `Error` variants.
    const fn spec(self) -> (&'static str, u16, &'static str) {
        match self {
            Code::BlobUnknown => ("BLOB_UNKNOWN", 404, "blob unknown to the repository"),
            Code::BlobUploadInvalid => (
                "BLOB_UPLOAD_INVALID",
                400,
                "the upload's body could not be received",
            ),
            Code::BlobUploadUnknown => ("BLOB_UPLOAD_UNKNOWN", 404, "upload session unknown"),
            Code::DigestInvalid => (
                "DIGEST_INVALID",
                400,
                "digest malformed or not the content's",
            ),
            Code::ManifestBlobUnknown => (
                "MANIFEST_BLOB_UNKNOWN",
                400,
                "a manifest references a blob or manifest the repository lacks",
            ),
            Code::ManifestInvalid => ("MANIFEST_INVALID", 400, "manifest malformed"),
            Code::ManifestUnknown => ("MANIFEST_UNKNOWN", 404, "manifest unknown"),
            Code::NameInvalid => ("NAME_INVALID", 400, "invalid repository name"),
            Code::NameUnknown => ("NAME_UNKNOWN", 404, "repository unknown"),
            Code::SizeInvalid => (
                "SIZE_INVALID",
                400,
                "content length does not match what was declared",
            ),
            Code::Unauthorized => ("UNAUTHORIZED", 401, "authentication required"),
            Code::Denied => ("DENIED", 403, "access to the resource denied"),
            Code::Unsupported => ("UNSUPPORTED", 405, "operation unsupported on this endpoint"),
            Code::TooManyRequests => ("TOOMANYREQUESTS", 429, "too many requests; retry later"),
            Code::TagInvalid => ("TAG_INVALID", 400, "invalid tag"),
            Code::RangeInvalid => ("RANGE_INVALID", 416, "invalid or unsatisfiable range"),
            Code::PaginationNumberInvalid => (
                "PAGINATION_NUMBER_INVALID",
                400,
                "invalid number of results requested",
            ),
            Code::Unknown => ("UNKNOWN", 500, "server-side failure"),
        }
    }

    pub fn as_str(self) -> &'static str {
        self.spec().0
    }

    /// The status of a plain `Error::Client` with this code.
    pub fn default_status(self) -> u16 {
        self.spec().1
    }

    pub fn description(self) -> &'static str {
        self.spec().2
    }
}

/// Everything that can fail in soute. Each variant is one kind; see
/// [`Error::code`] and [`Error::status`].
#[derive(Debug)]
pub enum Error {
    /// The request is wrong or names something that does not exist; the
    /// status is the code's (`Code::default_status`). Never `Code::Unknown`.
    Client {
        code: Code,
        message: String,
        detail: Option<serde_json::Value>,
    },
    /// 416 RANGE_INVALID: a chunk does not start where the upload ends. Carries
    /// the acknowledged length so the answer's `Range: 0-N` needs no lookup.
    UploadOutOfOrder { start: u64, acknowledged: u64 },
    /// 413 MANIFEST_INVALID: a manifest body over `limit` bytes.
    ManifestTooLarge { limit: usize },
    /// 414 TAG_INVALID: more `?tag=` parameters than `limit`.
    TooManyTagParams { limit: usize },
    /// 404 UNSUPPORTED: no endpoint (or no such resource kind) at this path.
    NoEndpoint(String),
    /// 400 UNSUPPORTED ("invalid set of parameters"): a query parameter,
    /// setting or argument has a bad value. Shown as the message alone.
    InvalidParameter(String),
    /// 507: the disk (or the database) is full; nothing half-written is visible.
    NoSpace(String),
    /// 413 BLOB_UPLOAD_INVALID: the upload would make a blob over `limit`
    /// bytes (`--max-blob-size`); the session is as it was.
    BlobTooLarge { limit: u64 },
    /// 413 SIZE_INVALID: a web UI form body over `limit` bytes.
    FormTooLarge { limit: u64 },
    /// 507 UNKNOWN: storing the upload would leave less than the disk reserve
    /// (`--disk-reserve`, `reserve` bytes) free; `available` were free. Same
    /// code as `NoSpace`: to a client both mean "the registry's disk is full".
    BelowDiskReserve { reserve: u64, available: u64 },
    /// 502 UNKNOWN: the pull-through cache's upstream failed (down, timed
    /// out, refused, sent wrong bytes) and the content is not cached. The
    /// message says which upstream and why (it holds no credentials).
    Upstream(String),
    /// 503 UNKNOWN: the blob store (S3) cannot be reached or is failing;
    /// nothing was recorded, the client may retry. The message names the store.
    StoreUnavailable(String),
    /// 500 UNKNOWN: a server-side failure; the client sees a request id.
    Internal {
        context: String,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A client error whose status is its code's.
    pub fn client(code: Code, message: impl Into<String>) -> Error {
        debug_assert!(code != Code::Unknown, "UNKNOWN is not a client error");
        Error::Client {
            code,
            message: message.into(),
            detail: None,
        }
    }

    pub fn internal(context: impl Into<String>) -> Error {
        Error::Internal {
            context: context.into(),
            source: None,
        }
    }

    /// A server-side failure caused by `source` (kept as the cause chain).
    pub fn internal_from(
        context: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Error {
        Error::Internal {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    pub fn with_detail(mut self, value: serde_json::Value) -> Error {
        if let Error::Client { detail, .. } = &mut self {
            *detail = Some(value);
        }
        self
    }

    pub fn code(&self) -> Code {
        match self {
            Error::Client { code, .. } => *code,
            Error::UploadOutOfOrder { .. } => Code::RangeInvalid,
            Error::ManifestTooLarge { .. } => Code::ManifestInvalid,
            Error::TooManyTagParams { .. } => Code::TagInvalid,
            Error::NoEndpoint(_) | Error::InvalidParameter(_) => Code::Unsupported,
            Error::BlobTooLarge { .. } => Code::BlobUploadInvalid,
            Error::FormTooLarge { .. } => Code::SizeInvalid,
            Error::NoSpace(_)
            | Error::BelowDiskReserve { .. }
            | Error::Upstream(_)
            | Error::StoreUnavailable(_)
            | Error::Internal { .. } => Code::Unknown,
        }
    }

    /// The HTTP status of this error: the one place a status is chosen.
    pub fn status(&self) -> u16 {
        match self {
            Error::Client { code, .. } => code.default_status(),
            Error::UploadOutOfOrder { .. } => 416,
            Error::ManifestTooLarge { .. } => 413,
            Error::TooManyTagParams { .. } => 414,
            Error::NoEndpoint(_) => 404,
            Error::InvalidParameter(_) => 400,
            Error::BlobTooLarge { .. } | Error::FormTooLarge { .. } => 413,
            Error::NoSpace(_) | Error::BelowDiskReserve { .. } => 507,
            Error::Upstream(_) => 502,
            Error::StoreUnavailable(_) => 503,
            Error::Internal { .. } => 500,
        }
    }

    /// What a client may be told (server-side causes stay in the log).
    pub fn client_message(&self) -> String {
        match self {
            Error::Client { message, .. }
            | Error::NoEndpoint(message)
            | Error::InvalidParameter(message)
            | Error::Upstream(message)
            | Error::StoreUnavailable(message) => message.clone(),
            Error::UploadOutOfOrder { .. }
            | Error::ManifestTooLarge { .. }
            | Error::TooManyTagParams { .. }
            | Error::BlobTooLarge { .. }
            | Error::FormTooLarge { .. } => self.to_string(),
            Error::NoSpace(_) => {
                "insufficient storage: the registry's disk is full; nothing was stored".into()
            }
            Error::BelowDiskReserve { reserve, .. } => format!(
                "insufficient storage: the upload would leave less than the registry's disk \
                 reserve of {} free; nothing was stored",
                format_size(*reserve)
            ),
            Error::Internal { .. } => "internal server error".into(),
        }
    }

    /// The envelope's `detail` a client may see, if any (not the request id).
    pub fn client_detail(&self) -> Option<serde_json::Value> {
        match self {
            Error::Client { detail, .. } => detail.clone(),
            Error::UploadOutOfOrder {
                start,
                acknowledged,
            } => Some(serde_json::json!({ "start": start, "acknowledged": acknowledged })),
            Error::ManifestTooLarge { limit } | Error::TooManyTagParams { limit } => {
                Some(serde_json::json!({ "limit": limit }))
            }
            Error::BlobTooLarge { limit } | Error::FormTooLarge { limit } => {
                Some(serde_json::json!({ "limit": limit }))
            }
            Error::BelowDiskReserve { reserve, available } => {
                Some(serde_json::json!({ "reserve": reserve, "available": available }))
            }
            _ => None,
        }
    }

    /// Wrap an I/O error with what was being done. ENOSPC and EDQUOT become `NoSpace`.
    pub fn io(context: impl Into<String>, err: std::io::Error) -> Error {
        let context = context.into();
        if is_no_space(&err) {
            return Error::NoSpace(format!("{context}: {err}"));
        }
        Error::Internal {
            context,
            source: Some(Box::new(err)),
        }
    }
}

pub fn is_no_space(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
        || err.kind() == std::io::ErrorKind::StorageFull
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Client { code, message, .. } => write!(f, "{}: {message}", code.as_str()),
            Error::UploadOutOfOrder {
                start,
                acknowledged,
            } => write!(
                f,
                "chunk starts at {start} but the upload has {acknowledged} bytes"
            ),
            Error::ManifestTooLarge { limit } => write!(f, "manifest larger than {limit} bytes"),
            Error::TooManyTagParams { limit } => {
                write!(f, "too many tag parameters (at most {limit})")
            }
            Error::NoEndpoint(m)
            | Error::InvalidParameter(m)
            | Error::Upstream(m)
            | Error::StoreUnavailable(m) => write!(f, "{m}"),
            Error::NoSpace(m) => write!(f, "no space left on the data folder's disk: {m}"),
            Error::FormTooLarge { limit } => write!(f, "the form is larger than {limit} bytes"),
            Error::BlobTooLarge { limit } => write!(
                f,
                "the blob would be larger than this registry's limit of {} ({limit} bytes)",
                format_size(*limit)
            ),
            Error::BelowDiskReserve { reserve, available } => write!(
                f,
                "upload refused: {} free on the data folder's disk, the reserve is {}",
                format_size(*available),
                format_size(*reserve)
            ),
            Error::Internal {
                context,
                source: Some(s),
            } => write!(f, "{context}: {s}"),
            Error::Internal {
                context,
                source: None,
            } => write!(f, "{context}"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Internal {
                source: Some(s), ..
            } => Some(s.as_ref()),
            _ => None,
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(err: rusqlite::Error) -> Error {
        if let rusqlite::Error::SqliteFailure(e, _) = &err {
            if e.code == rusqlite::ErrorCode::DiskFull {
                return Error::NoSpace(format!("database: {err}"));
            }
        }
        Error::internal_from("database", err)
    }
}

impl From<r2d2::Error> for Error {
    fn from(err: r2d2::Error) -> Error {
        Error::internal_from("database pool", err)
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Error {
        Error::io("i/o", err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every code: its wire name and status (the envelope is tested in api::envelope).
    #[test]
    fn every_code_has_its_name_and_status() {
        for code in Code::ALL {
            // Exhaustive: a new code does not compile until it is listed here.
            let (name, status) = match code {
                Code::BlobUnknown => ("BLOB_UNKNOWN", 404),
                Code::BlobUploadInvalid => ("BLOB_UPLOAD_INVALID", 400),
                Code::BlobUploadUnknown => ("BLOB_UPLOAD_UNKNOWN", 404),
                Code::DigestInvalid => ("DIGEST_INVALID", 400),
                Code::ManifestBlobUnknown => ("MANIFEST_BLOB_UNKNOWN", 400),
                Code::ManifestInvalid => ("MANIFEST_INVALID", 400),
                Code::ManifestUnknown => ("MANIFEST_UNKNOWN", 404),
                Code::NameInvalid => ("NAME_INVALID", 400),
                Code::NameUnknown => ("NAME_UNKNOWN", 404),
                Code::SizeInvalid => ("SIZE_INVALID", 400),
                Code::Unauthorized => ("UNAUTHORIZED", 401),
                Code::Denied => ("DENIED", 403),
                Code::Unsupported => ("UNSUPPORTED", 405),
                Code::TooManyRequests => ("TOOMANYREQUESTS", 429),
                Code::TagInvalid => ("TAG_INVALID", 400),
                Code::RangeInvalid => ("RANGE_INVALID", 416),
                Code::PaginationNumberInvalid => ("PAGINATION_NUMBER_INVALID", 400),
                Code::Unknown => ("UNKNOWN", 500),
            };
            assert_eq!(code.as_str(), name, "{code:?}");
            assert_eq!(code.default_status(), status, "{code:?}");
            assert!(!code.description().is_empty(), "{code:?}");
        }
        let names: std::collections::HashSet<_> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len(), "each code once");
    }

    #[test]
    fn unknown_is_never_a_client_status() {
        for code in Code::ALL {
            let s = code.default_status();
            assert_eq!(code == Code::Unknown, !(400..500).contains(&s), "{code:?}");
        }
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(Error::io("write", full).status(), 507);
    }

    #[test]
    fn internal_errors_keep_their_cause_chain() {
        let cause = std::io::Error::other("disk on fire");
        let err = Error::internal_from("reading a file", cause);
        let source = std::error::Error::source(&err).expect("source kept");
        assert_eq!(source.to_string(), "disk on fire");
        assert_eq!((err.code(), err.status()), (Code::Unknown, 500));
        assert_eq!(err.client_message(), "internal server error");
    }
}
