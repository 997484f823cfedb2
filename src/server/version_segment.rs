//! The first path segment: a version, optionally followed by view parameters.
//!
//! Grammar (after percent-decoding): `version *( ";" name "=" value )` where `version` is a
//! branch, a tag, a snapshot id (or a unique prefix of at least 4 hex characters) or
//! `branch@<RFC 3339 time>`. Ref names cannot contain `;`, so the first `;` always ends the
//! version. A segment of exactly 64 hex characters always names a snapshot (never a branch or
//! tag that happens to have that name), which is what makes snapshot URLs immutable.

use crate::error::Result;
use crate::id::SnapshotId;
use crate::repo::VersionSpec;

/// A parsed version segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VersionSegment {
    /// The version text as given (before the first `;`).
    pub version: String,
    /// How to resolve it.
    pub spec: VersionSpec,
    /// True when the version is a full snapshot id: responses are immutable.
    pub immutable: bool,
    /// The view parameters after the version, in order, as `(name, value)`.
    pub params: Vec<(String, String)>,
}

/// Why a view parameter list is malformed.
fn bad_param(param: &str) -> crate::Error {
    crate::Error::InvalidVersion {
        spec: param.to_string(),
        reason: "a view parameter must be `name=value`".to_string(),
    }
}

/// Parses a decoded version segment such as `main`, `v1;chunks=t=1,2` or
/// `main@2026-01-02T03:04:05Z`.
///
/// Errors with [`crate::Error::InvalidVersion`] for an empty version, a bad time or a
/// parameter that is not `name=value`.
pub fn parse_segment(segment: &str) -> Result<VersionSegment> {
    let mut pieces = segment.split(';');
    let version = pieces.next().unwrap_or_default().to_string();
    let mut params = Vec::new();
    for param in pieces {
        match param.split_once('=') {
            Some((name, value)) if !name.is_empty() => {
                params.push((name.to_string(), value.to_string()));
            }
            _ => return Err(bad_param(param)),
        }
    }
    let full_id = (version.len() == 64)
        .then(|| SnapshotId::parse(&version).ok())
        .flatten();
    let (spec, immutable) = match full_id {
        Some(id) => (VersionSpec::Snapshot(id), true),
        None => (VersionSpec::parse(&version)?, false),
    };
    Ok(VersionSegment {
        version,
        spec,
        immutable,
        params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_params() {
        let plain = parse_segment("main").unwrap();
        assert_eq!(plain.spec, VersionSpec::Name("main".into()));
        assert!(!plain.immutable);
        assert!(plain.params.is_empty());

        let id = "ab".repeat(32);
        let snap = parse_segment(&id).unwrap();
        assert!(snap.immutable);
        assert!(matches!(snap.spec, VersionSpec::Snapshot(_)));

        let view = parse_segment("main;chunks=t=256,256,30,p=1,2,3;x=").unwrap();
        assert_eq!(view.version, "main");
        assert_eq!(
            view.params,
            vec![
                ("chunks".to_string(), "t=256,256,30,p=1,2,3".to_string()),
                ("x".to_string(), String::new())
            ]
        );

        let as_of = parse_segment("main@2026-01-02T03:04:05Z").unwrap();
        assert!(matches!(as_of.spec, VersionSpec::AsOf { .. }));
    }

    #[test]
    fn malformed_segments() {
        assert!(parse_segment("").is_err());
        assert!(parse_segment(";chunks=1").is_err());
        assert!(parse_segment("main;novalue").is_err());
        assert!(parse_segment("main;=v").is_err());
        assert!(parse_segment("main@yesterday").is_err());
    }
}
