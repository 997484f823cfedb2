//! HTTP caching: strong ETags derived from the resolved snapshot and what was asked, the
//! `Cache-Control` policy, and `If-None-Match`.
//!
//! The same bytes of the same snapshot always get the same ETag, whichever name addressed
//! them. Responses addressed by a full snapshot id never change and may be cached for a year
//! without revalidation; responses addressed by a branch, tag, id prefix or as-of time must be
//! revalidated (`no-cache`), which costs one ref lookup and a 304 when nothing moved.

use axum::http::{header, HeaderMap, HeaderValue};

use crate::id::SnapshotId;

/// `Cache-Control` of responses addressed by a full snapshot id.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `Cache-Control` of responses addressed by a name that can move.
pub const REVALIDATE: &str = "no-cache";

/// The strong ETag (quoted) of `what` (a key, or a listing marker) of `snapshot` seen through
/// the view described by `view_tag`.
pub fn etag(snapshot: &SnapshotId, view_tag: &str, what: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    hasher.update(b"floe-http-etag\0");
    hasher.update(snapshot.as_bytes());
    hasher.update(view_tag.as_bytes());
    hasher.update(b"\0");
    hasher.update(what.as_bytes());
    let hex = hasher.finalize().to_hex();
    format!("\"{}\"", &hex.as_str()[..32])
}

/// True when the request's `If-None-Match` matches `etag` (weak comparison, as RFC 9110
/// requires for this header; `*` matches anything that exists).
pub fn not_modified(request: &HeaderMap, etag: &str) -> bool {
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|candidate| {
            candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
        })
}

/// Adds `ETag`, `Cache-Control` and `Vary: chunks` (the zarr-proxy request header selects a
/// rechunked view, so shared caches must key on it) for a response about `snapshot`.
pub fn add_cache_headers(headers: &mut HeaderMap, etag: &str, immutable: bool) {
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::VARY,
        HeaderValue::from_static(super::view::CHUNKS_HEADER),
    );
    let policy = if immutable { IMMUTABLE } else { REVALIDATE };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_differ_by_snapshot_key_and_view() {
        let a = SnapshotId::of_bytes(b"a");
        let b = SnapshotId::of_bytes(b"b");
        let e = etag(&a, "", "zarr.json");
        assert!(e.starts_with('"') && e.ends_with('"'));
        assert_eq!(e, etag(&a, "", "zarr.json"));
        assert_ne!(e, etag(&b, "", "zarr.json"));
        assert_ne!(e, etag(&a, "", "x/zarr.json"));
        assert_ne!(e, etag(&a, "v", "zarr.json"));
    }

    #[test]
    fn if_none_match_lists_and_weak_forms() {
        let mut headers = HeaderMap::new();
        assert!(!not_modified(&headers, "\"x\""));
        headers.insert(header::IF_NONE_MATCH, "\"y\", W/\"x\"".parse().unwrap());
        assert!(not_modified(&headers, "\"x\""));
        assert!(!not_modified(&headers, "\"z\""));
        headers.insert(header::IF_NONE_MATCH, "*".parse().unwrap());
        assert!(not_modified(&headers, "\"z\""));
    }
}
