//! Ref records: the only objects whose keys are names rather than digests.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::SnapshotId;

/// Longest accepted branch or tag name.
pub const MAX_REF_NAME_LEN: usize = 128;

/// One step of a branch: the object `refs/branch.<name>/<seq>`.
///
/// Ref records are not content-addressed, so decoding is strict: an unknown field (a damaged
/// key) is an error rather than a missing `snapshot` silently read as a deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BranchRecord {
    /// Position in the branch's sequence (0 for the first record).
    pub seq: u64,
    /// The branch tip after this step; `None` records that the branch was deleted.
    pub snapshot: Option<SnapshotId>,
    /// When the record was written (microseconds since the epoch).
    pub written_at_us: i64,
}

/// A tag: the object `refs/tag.<name>/ref`, never changed once written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagRecord {
    /// The tagged snapshot.
    pub snapshot: SnapshotId,
    /// When the tag was created (microseconds since the epoch).
    pub created_at_us: i64,
}

/// The tombstone `refs/tag.<name>/deleted` of a deleted tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TagTombstone {
    /// When the tag was deleted (microseconds since the epoch).
    pub deleted_at_us: i64,
}

/// Checks a branch or tag name: 1 to 128 characters of `A-Z a-z 0-9 . _ -`, not starting with
/// `.` or `-`, without `..`, and not containing `@` (reserved for `branch@time`).
pub fn validate_ref_name(kind: &'static str, name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        "the name is empty"
    } else if name.len() > MAX_REF_NAME_LEN {
        "the name is longer than 128 characters"
    } else if name.starts_with('.') || name.starts_with('-') {
        "the name cannot start with `.` or `-`"
    } else if name.contains("..") {
        "the name cannot contain `..`"
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        "only letters, digits, `.`, `_` and `-` are allowed"
    } else {
        return Ok(());
    };
    Err(Error::InvalidRefName {
        kind,
        name: name.chars().take(MAX_REF_NAME_LEN).collect(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::envelope::{decode, encode, ObjectKind};

    #[test]
    fn records_round_trip() {
        let b = BranchRecord {
            seq: 3,
            snapshot: Some(SnapshotId::of_bytes(b"s")),
            written_at_us: 5,
        };
        let bytes = encode(ObjectKind::Ref, &b).unwrap();
        assert_eq!(
            decode::<BranchRecord>("r", &bytes, ObjectKind::Ref).unwrap(),
            b
        );
        let t = TagRecord {
            snapshot: SnapshotId::of_bytes(b"s"),
            created_at_us: 9,
        };
        let bytes = encode(ObjectKind::Ref, &t).unwrap();
        assert_eq!(
            decode::<TagRecord>("r", &bytes, ObjectKind::Ref).unwrap(),
            t
        );
        assert!(decode::<TagRecord>("r", &bytes, ObjectKind::Snapshot).is_err());
    }

    #[test]
    fn damaged_field_names_are_refused() {
        let b = BranchRecord {
            seq: 1,
            snapshot: Some(SnapshotId::of_bytes(b"s")),
            written_at_us: 5,
        };
        let bytes = encode(ObjectKind::Ref, &b).unwrap();
        let at = bytes.windows(8).position(|w| w == b"snapshot").unwrap();
        let mut damaged = bytes.to_vec();
        damaged[at] ^= 0xff;
        // Without strict decoding this would read as a deletion record (`snapshot: None`).
        assert!(decode::<BranchRecord>("r", &damaged, ObjectKind::Ref).is_err());
    }

    #[test]
    fn ref_names() {
        for ok in ["main", "dev-1", "v1.2.3", "a_b"] {
            validate_ref_name("branch", ok).unwrap();
        }
        for bad in [
            "",
            ".x",
            "-x",
            "a..b",
            "a/b",
            "a@b",
            "sp ace",
            &"x".repeat(129),
        ] {
            assert!(validate_ref_name("branch", bad).is_err(), "{bad:?}");
        }
    }
}
