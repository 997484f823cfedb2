//! Validated node paths.
//!
//! A node path names a group or an array inside a repository: `""` is the root, `"a/b"` is the
//! node `b` inside group `a`. Paths use `/` separators, never start or end with `/`, and every
//! segment is non-empty and neither `.` nor `..`. This is the form used in Zarr keys
//! (`a/b/zarr.json`), so no translation happens at the Zarr boundary.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Longest accepted node path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// A validated path of a group or array (see the module docs for the rules).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NodePath(String);

impl NodePath {
    /// The root group.
    pub fn root() -> Self {
        NodePath(String::new())
    }

    /// Validates a path. A leading `/` is accepted and dropped (`/a/b` equals `a/b`); a lone `/`
    /// is the root.
    pub fn new(path: &str) -> Result<Self> {
        let trimmed = path.strip_prefix('/').unwrap_or(path);
        if trimmed.is_empty() {
            return Ok(Self::root());
        }
        if trimmed.len() > MAX_PATH_LEN {
            return Err(Error::invalid_path(
                path.chars().take(64).collect::<String>(),
                format!("longer than {MAX_PATH_LEN} bytes"),
            ));
        }
        for segment in trimmed.split('/') {
            validate_segment(path, segment)?;
        }
        Ok(NodePath(trimmed.to_string()))
    }

    /// The path as used in Zarr keys (`""` for the root).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// True for the root group.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The parent group's path, or `None` for the root.
    pub fn parent(&self) -> Option<NodePath> {
        if self.is_root() {
            return None;
        }
        Some(match self.0.rfind('/') {
            Some(i) => NodePath(self.0[..i].to_string()),
            None => NodePath::root(),
        })
    }

    /// The last segment (`""` for the root).
    pub fn name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or("")
    }

    /// The child of this group named `name` (validated).
    pub fn child(&self, name: &str) -> Result<NodePath> {
        validate_segment(name, name)?;
        Ok(if self.is_root() {
            NodePath(name.to_string())
        } else {
            NodePath(format!("{}/{}", self.0, name))
        })
    }

    /// True when `self` is `other` or lies below it.
    pub fn is_within(&self, other: &NodePath) -> bool {
        other.is_root()
            || self.0 == other.0
            || (self.0.starts_with(&other.0) && self.0.as_bytes().get(other.0.len()) == Some(&b'/'))
    }

    /// The key prefix of everything under this node (`""` for the root, else `path/`).
    pub fn key_prefix(&self) -> String {
        if self.is_root() {
            String::new()
        } else {
            format!("{}/", self.0)
        }
    }

    /// The `zarr.json` key of this node.
    pub fn metadata_key(&self) -> String {
        format!("{}zarr.json", self.key_prefix())
    }

    /// Path depth (0 for the root).
    pub fn depth(&self) -> usize {
        if self.is_root() {
            0
        } else {
            self.0.split('/').count()
        }
    }
}

fn validate_segment(path: &str, segment: &str) -> Result<()> {
    let reason = if segment.is_empty() {
        "empty path segment"
    } else if segment == "." || segment == ".." {
        "`.` and `..` are not allowed"
    } else if segment.contains('/') {
        "a name cannot contain `/`"
    } else if segment.starts_with("__") {
        "names starting with `__` are reserved by Zarr"
    } else if segment == "zarr.json" {
        "`zarr.json` is reserved"
    } else if segment.chars().any(|c| c.is_control() || c == '\\') {
        "control characters and backslashes are not allowed"
    } else {
        return Ok(());
    };
    Err(Error::invalid_path(path, reason))
}

impl TryFrom<String> for NodePath {
    type Error = Error;
    fn try_from(value: String) -> Result<Self> {
        NodePath::new(&value)
    }
}

impl From<NodePath> for String {
    fn from(value: NodePath) -> Self {
        value.0
    }
}

impl fmt::Display for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.0)
    }
}

impl fmt::Debug for NodePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodePath(/{})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_normalises() {
        assert!(NodePath::new("").unwrap().is_root());
        assert!(NodePath::new("/").unwrap().is_root());
        let p = NodePath::new("/a/b").unwrap();
        assert_eq!(p.as_str(), "a/b");
        assert_eq!(p.parent().unwrap().as_str(), "a");
        assert!(p.parent().unwrap().parent().unwrap().is_root());
        assert_eq!(p.name(), "b");
        assert_eq!(p.metadata_key(), "a/b/zarr.json");
        assert_eq!(NodePath::root().metadata_key(), "zarr.json");
        assert!(p.is_within(&NodePath::new("a").unwrap()));
        assert!(!NodePath::new("ab")
            .unwrap()
            .is_within(&NodePath::new("a").unwrap()));
        assert_eq!(p.to_string(), "/a/b");
    }

    #[test]
    fn rejects_hostile_paths() {
        for bad in [
            "a//b",
            "a/../b",
            "./a",
            "a/",
            "__x",
            "a/zarr.json",
            "a\\b",
            "a\u{0}b",
        ] {
            assert!(NodePath::new(bad).is_err(), "{bad:?} accepted");
        }
        assert!(NodePath::new(&"x".repeat(MAX_PATH_LEN + 1)).is_err());
        // Long paths of multibyte characters are refused without slicing inside a character.
        let err = NodePath::new(&"€".repeat(400)).unwrap_err();
        assert!(err.to_string().contains("longer than"), "{err}");
    }

    #[test]
    fn serde_validates() {
        let enc = rmp_serde::to_vec(&NodePath::new("a/b").unwrap()).unwrap();
        assert_eq!(
            rmp_serde::from_slice::<NodePath>(&enc).unwrap().as_str(),
            "a/b"
        );
        let bad = rmp_serde::to_vec("a/../b").unwrap();
        assert!(rmp_serde::from_slice::<NodePath>(&bad).is_err());
    }
}
