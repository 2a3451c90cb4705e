//! error: the crate's one error type. Every variant knows its OCI error code and
//! HTTP status; `api::error_response` is the only place that serializes it.
//!
//! It must never format HTTP bodies or log: it only describes what went wrong.

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
    Unknown,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::TagInvalid => "TAG_INVALID",
            Code::RangeInvalid => "RANGE_INVALID",
            Code::PaginationNumberInvalid => "PAGINATION_NUMBER_INVALID",
            Code::Unknown => "UNKNOWN",
        }
    }

    /// The status a code carries unless the caller chose another.
    pub fn default_status(self) -> u16 {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => 404,
            Code::Unauthorized => 401,
            Code::Denied => 403,
            Code::Unsupported => 405,
            Code::TooManyRequests => 429,
            Code::RangeInvalid => 416,
            Code::Unknown => 500,
            _ => 400,
        }
    }
}

/// Everything that can fail in soute.
#[derive(Debug)]
pub enum Error {
    /// The client's request is wrong or names something that does not exist.
    Client {
        code: Code,
        status: u16,
        message: String,
        detail: Option<serde_json::Value>,
    },
    /// The disk (or the database) is full: 507, nothing half-written is visible.
    NoSpace(String),
    /// A server-side failure; the client sees 500 UNKNOWN with a request id.
    Internal {
        context: String,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn client(code: Code, message: impl Into<String>) -> Error {
        Error::Client {
            code,
            status: code.default_status(),
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

    /// Override the HTTP status (e.g. 413 for a manifest that is too large).
    pub fn with_status(mut self, new: u16) -> Error {
        if let Error::Client { status, .. } = &mut self {
            *status = new;
        }
        self
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
            _ => Code::Unknown,
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            Error::Client { status, .. } => *status,
            Error::NoSpace(_) => 507,
            Error::Internal { .. } => 500,
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
            Error::NoSpace(m) => write!(f, "no space left on the data folder's disk: {m}"),
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
        Error::Internal {
            context: "database".into(),
            source: Some(Box::new(err)),
        }
    }
}

impl From<r2d2::Error> for Error {
    fn from(err: r2d2::Error) -> Error {
        Error::Internal {
            context: "database pool".into(),
            source: Some(Box::new(err)),
        }
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

    #[test]
    fn codes_have_spec_statuses() {
        let table = [
            (Code::BlobUnknown, 404),
            (Code::DigestInvalid, 400),
            (Code::ManifestUnknown, 404),
            (Code::Unsupported, 405),
            (Code::Unauthorized, 401),
            (Code::TooManyRequests, 429),
            (Code::RangeInvalid, 416),
        ];
        for (code, status) in table {
            assert_eq!(code.default_status(), status, "{}", code.as_str());
        }
        assert_eq!(
            Error::client(Code::ManifestInvalid, "x")
                .with_status(413)
                .status(),
            413
        );
        let full = std::io::Error::from_raw_os_error(libc::ENOSPC);
        assert_eq!(Error::io("write", full).status(), 507);
    }
}
