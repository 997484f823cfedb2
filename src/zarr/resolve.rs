//! From a Zarr key to what it names in a session: the metadata of a node, or one chunk of an
//! array.
//!
//! Keys are relative to the hierarchy root and never start with `/`. A key ending in
//! `zarr.json` names the metadata of the node whose path precedes it. Any other key is a chunk
//! key: the array whose path is a prefix of the key (arrays cannot contain nodes, so at most one
//! array qualifies) parses the remainder with its chunk key encoding.

use crate::error::{Error, Result};
use crate::format::path::NodePath;
use crate::repo::Session;

use super::keys::parse_chunk_key_suffix;

/// Longest accepted key, in bytes (a node path of up to 1024 bytes plus a generous chunk
/// suffix).
pub const MAX_KEY_LEN: usize = 4096;

/// The file name of node metadata.
pub const METADATA_FILE: &str = "zarr.json";

/// What a valid key names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyTarget {
    /// The `zarr.json` of the node at this path (which may or may not exist).
    Metadata(NodePath),
    /// The chunk at `coords` of the array at `array` (inside the array's current grid).
    Chunk {
        /// The array.
        array: NodePath,
        /// Chunk grid coordinates.
        coords: Vec<u64>,
    },
}

/// Why a key names nothing this store can hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolved {
    /// Human-readable reason, used in [`crate::Error::InvalidKey`].
    pub reason: String,
    /// True when the key is malformed as a key (empty segment, `..`, too long, leading `/`),
    /// false when it is well formed but addresses nothing that can exist here.
    pub malformed: bool,
}

impl Unresolved {
    fn malformed(reason: impl Into<String>) -> Self {
        Unresolved {
            reason: reason.into(),
            malformed: true,
        }
    }

    fn nothing(reason: impl Into<String>) -> Self {
        Unresolved {
            reason: reason.into(),
            malformed: false,
        }
    }
}

/// Checks the shape of a key (not what it names): non-empty, relative, no empty, `.` or `..`
/// segments, no control characters, at most [`MAX_KEY_LEN`] bytes.
pub fn check_key_syntax(key: &str) -> std::result::Result<(), String> {
    if key.is_empty() {
        return Err("empty key".into());
    }
    if key.len() > MAX_KEY_LEN {
        return Err(format!("longer than {MAX_KEY_LEN} bytes"));
    }
    if key.starts_with('/') {
        return Err("keys are relative to the root and cannot start with `/`".into());
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err("empty path segment".into());
        }
        if segment == "." || segment == ".." {
            return Err("`.` and `..` segments are not allowed".into());
        }
    }
    if key.chars().any(|c| c.is_control() || c == '\\') {
        return Err("control characters and backslashes are not allowed".into());
    }
    Ok(())
}

/// Checks a listing prefix in canonical form: `""` (everything) or a valid key followed by
/// `/`. See [`canonical_prefix`] for the spellings listings also accept.
pub fn check_prefix_syntax(prefix: &str) -> std::result::Result<(), String> {
    if prefix.is_empty() {
        return Ok(());
    }
    let Some(body) = prefix.strip_suffix('/') else {
        return Err("a prefix must be empty or end with `/`".into());
    };
    check_key_syntax(body)
}

/// The root prefix as zarr-python also spells it.
pub const SLASH_ROOT_PREFIX: &str = "/";

/// The canonical form of a listing prefix: `"/"` is the root, `""`; any other prefix is
/// returned unchanged when [`check_prefix_syntax`] accepts it, and refused with the reason
/// otherwise.
///
/// Only a prefix that is exactly `"/"` is read as the root. zarr-python's `Store` keys are
/// relative to the store's root and never start with `/`, and zarr-python spells the root
/// `""`, except that its stateful hierarchy test (`ZarrHierarchyStateMachine`, 3.1) asks
/// `store.is_empty("/")` and means the whole store: it calls `MemoryStore`'s literal reading,
/// under which `"/"` matches no key, a bug, while `LocalStore.list_prefix` (which `is_empty`
/// uses) strips the slash and lists the root. A longer prefix with a leading `/` (`"/a/"`)
/// has no agreed meaning there: `MemoryStore` matches nothing with it, and `LocalStore` joins
/// it to its root as an absolute filesystem path, outside the store. Guessing could list or
/// delete another part of the hierarchy than the caller meant, so such prefixes stay refused
/// as malformed, like keys with a leading `/`.
pub fn canonical_prefix(prefix: &str) -> std::result::Result<&str, String> {
    if prefix == SLASH_ROOT_PREFIX {
        return Ok("");
    }
    check_prefix_syntax(prefix).map(|()| prefix)
}

/// Resolves `key` against the session's current nodes. The outer error is a failure to read
/// the session (a damaged snapshot); the inner one says why the key names nothing.
pub fn resolve_key(
    session: &Session,
    key: &str,
) -> Result<std::result::Result<KeyTarget, Unresolved>> {
    if let Err(reason) = check_key_syntax(key) {
        return Ok(Err(Unresolved::malformed(reason)));
    }
    if key == METADATA_FILE {
        return Ok(Ok(KeyTarget::Metadata(NodePath::root())));
    }
    if let Some(path) = key.strip_suffix("/zarr.json") {
        return Ok(match NodePath::new(path) {
            Ok(path) => Ok(KeyTarget::Metadata(path)),
            Err(e) => Err(Unresolved::nothing(format!(
                "`{path}` cannot be a node path: {e}"
            ))),
        });
    }
    let segments: Vec<&str> = key.split('/').collect();
    for depth in 0..segments.len() {
        let candidate = segments[..depth].join("/");
        let Ok(path) = NodePath::new(&candidate) else {
            // No node can live at or below an invalid path.
            break;
        };
        let Some(node) = session.node(&path)? else {
            continue;
        };
        let Some(geometry) = node.metadata.geometry() else {
            continue;
        };
        let suffix = segments[depth..].join("/");
        let Some(coords) =
            parse_chunk_key_suffix(geometry.key_encoding, geometry.shape.len(), &suffix)
        else {
            return Ok(Err(Unresolved::nothing(format!(
                "`{suffix}` is not a chunk key of array `{path}` (rank {}, encoding {:?})",
                geometry.shape.len(),
                geometry.key_encoding
            ))));
        };
        if !geometry.contains_chunk(&coords) {
            return Ok(Err(Unresolved::nothing(format!(
                "chunk {coords:?} is outside the chunk grid {:?} of array `{path}`",
                geometry.grid_shape()
            ))));
        }
        return Ok(Ok(KeyTarget::Chunk {
            array: path,
            coords,
        }));
    }
    if let Some(name) = segments
        .last()
        .filter(|name| ZARR_V2_METADATA.contains(name))
    {
        return Ok(Err(Unresolved::nothing(format!(
            "`{name}` is Zarr v2 metadata, and floe stores Zarr v3 only: write with \
             zarr_format=3 (zarr-python's default)"
        ))));
    }
    Ok(Err(Unresolved::nothing(
        "not a `zarr.json` key and no array contains it (write the array's zarr.json first)",
    )))
}

/// The metadata documents of Zarr v2, which a Zarr v3 hierarchy never holds.
const ZARR_V2_METADATA: [&str; 4] = [".zgroup", ".zarray", ".zattrs", ".zmetadata"];

/// The canonical form of a listing prefix (`"/"` becomes `""`); [`Error::InvalidKey`] for
/// prefixes that are neither `""`, `"/"` nor a valid key followed by `/`.
pub(crate) fn check_prefix(prefix: &str) -> Result<&str> {
    canonical_prefix(prefix).map_err(|reason| Error::invalid_key(prefix, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_syntax() {
        for good in ["zarr.json", "a/zarr.json", "a/c/0/1", "a/0.1", ".zarray"] {
            assert!(check_key_syntax(good).is_ok(), "{good}");
        }
        let long = "a".repeat(MAX_KEY_LEN + 1);
        for bad in [
            "",
            "/a",
            "a//b",
            "a/",
            "a/../b",
            "./a",
            "a\u{1}b",
            long.as_str(),
        ] {
            assert!(check_key_syntax(bad).is_err(), "{bad:?}");
        }
        assert!(check_prefix_syntax("").is_ok());
        assert!(check_prefix_syntax("a/b/").is_ok());
        for bad in ["a", "/", "a//", "../", "/a/"] {
            assert!(check_prefix_syntax(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_a_lone_slash_names_the_root() {
        assert_eq!(canonical_prefix("/"), Ok(""));
        assert_eq!(canonical_prefix(""), Ok(""));
        assert_eq!(canonical_prefix("a/b/"), Ok("a/b/"));
        for bad in ["/a/", "//", "/a", "a", "a//"] {
            assert!(canonical_prefix(bad).is_err(), "{bad:?}");
        }
        assert!(canonical_prefix("/a/")
            .unwrap_err()
            .contains("cannot start with `/`"));
    }
}
