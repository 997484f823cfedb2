//! Taking [`floe::Error::Conflict`] errors apart in assertions.

use std::borrow::Borrow;

use floe::{ConflictDetail, Error};

/// The parts of a conflict error: their snapshot and the detail; panics on other errors.
pub fn conflict(err: Error) -> (String, ConflictDetail) {
    match err {
        Error::Conflict {
            their_snapshot,
            detail,
            ..
        } => {
            let detail: &ConflictDetail = detail.borrow();
            (their_snapshot, detail.clone())
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// The reason of a conflict on node `want_path`; panics on any other detail.
pub fn node_reason(detail: &ConflictDetail, want_path: &str) -> String {
    match detail {
        ConflictDetail::Node { path, reason } if path == want_path => reason.clone(),
        other => panic!("expected a conflict on node {want_path}, got {other:?}"),
    }
}
