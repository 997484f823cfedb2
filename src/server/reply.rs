//! Error answers: a status and a one-line plain-text reason, and how library errors map to
//! statuses.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::Error;

/// A request that cannot be answered with the value it asked for.
#[derive(Debug)]
pub struct Rejection {
    /// The status to answer with.
    pub status: StatusCode,
    /// The reason, sent as the plain-text body.
    pub reason: String,
}

impl Rejection {
    /// A rejection with `status` and `reason`.
    pub fn new(status: StatusCode, reason: impl Into<String>) -> Self {
        Rejection {
            status,
            reason: reason.into(),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, reason)
    }

    /// 404 Not Found.
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, reason)
    }

    /// The rejection for a library error met while resolving a version or reading a key.
    /// Names that resolve to nothing are 404, malformed names 400, a damaged repository 500
    /// and transient storage failures 503; server-side failures are logged.
    pub fn from_error(error: Error) -> Self {
        let status = match &error {
            Error::BranchNotFound { .. }
            | Error::TagNotFound { .. }
            | Error::TagDeleted { .. }
            | Error::SnapshotNotFound { .. }
            | Error::NoCommitAsOf { .. }
            | Error::NodeNotFound { .. }
            | Error::InvalidVersion { .. } => StatusCode::NOT_FOUND,
            Error::HistoryExpired { .. } | Error::SnapshotExpired { .. } => StatusCode::GONE,
            Error::InvalidRefName { .. }
            | Error::AmbiguousSnapshotPrefix { .. }
            | Error::InvalidPath { .. }
            | Error::InvalidKey { .. }
            | Error::InvalidRechunk { .. } => StatusCode::BAD_REQUEST,
            Error::InvalidByteRange { .. } => StatusCode::RANGE_NOT_SATISFIABLE,
            e if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        if status.is_server_error() {
            tracing::error!(target: "floe::server", error = %error, "request failed");
        }
        Self::new(status, error.to_string())
    }
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let mut body = self.reason;
        body.push('\n');
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            body,
        )
            .into_response()
    }
}
