//! Chunk keys: from chunk coordinates to key suffixes and back, for every supported encoding.

use crate::format::path::NodePath;

use super::metadata::{ArrayGeometry, ChunkKeyEncoding};

/// The key suffix (after `path/`) of the chunk at `coords`.
pub fn chunk_key_suffix(encoding: ChunkKeyEncoding, coords: &[u64]) -> String {
    let join = |sep: char| {
        coords
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join(&sep.to_string())
    };
    match encoding {
        ChunkKeyEncoding::Default { separator } => {
            if coords.is_empty() {
                "c".to_string()
            } else {
                format!("c{separator}{}", join(separator))
            }
        }
        ChunkKeyEncoding::V2 { separator } => {
            if coords.is_empty() {
                "0".to_string()
            } else {
                join(separator)
            }
        }
    }
}

/// Parses a chunk key suffix of an array of rank `ndim`; `None` when it is not a chunk key of
/// that encoding and rank (leading zeros and signs are refused so each chunk has one key).
pub fn parse_chunk_key_suffix(
    encoding: ChunkKeyEncoding,
    ndim: usize,
    suffix: &str,
) -> Option<Vec<u64>> {
    let (separator, body) = match encoding {
        ChunkKeyEncoding::Default { separator } => {
            if ndim == 0 {
                return (suffix == "c").then(Vec::new);
            }
            (
                separator,
                suffix.strip_prefix('c')?.strip_prefix(separator)?,
            )
        }
        ChunkKeyEncoding::V2 { separator } => {
            if ndim == 0 {
                return (suffix == "0").then(Vec::new);
            }
            (separator, suffix)
        }
    };
    let coords: Option<Vec<u64>> = body
        .split(separator)
        .map(|part| {
            let canonical = !part.is_empty()
                && part.bytes().all(|b| b.is_ascii_digit())
                && (part == "0" || !part.starts_with('0'));
            if canonical {
                part.parse().ok()
            } else {
                None
            }
        })
        .collect();
    coords.filter(|c| c.len() == ndim)
}

/// The full key of chunk `coords` of the array at `path`.
pub(crate) fn chunk_key(path: &NodePath, geometry: &ArrayGeometry, coords: &[u64]) -> String {
    format!(
        "{}{}",
        path.key_prefix(),
        chunk_key_suffix(geometry.key_encoding, coords)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_encodings_round_trip() {
        let encodings = [
            ChunkKeyEncoding::Default { separator: '/' },
            ChunkKeyEncoding::Default { separator: '.' },
            ChunkKeyEncoding::V2 { separator: '.' },
            ChunkKeyEncoding::V2 { separator: '/' },
        ];
        for enc in encodings {
            for coords in [vec![], vec![0], vec![1, 20, 300]] {
                let key = chunk_key_suffix(enc, &coords);
                assert_eq!(
                    parse_chunk_key_suffix(enc, coords.len(), &key),
                    Some(coords.clone()),
                    "{enc:?} {key}"
                );
            }
        }
        assert_eq!(chunk_key_suffix(encodings[0], &[1, 2]), "c/1/2");
        assert_eq!(chunk_key_suffix(encodings[1], &[1, 2]), "c.1.2");
        assert_eq!(chunk_key_suffix(encodings[2], &[1, 2]), "1.2");
    }

    #[test]
    fn rejects_non_canonical_keys() {
        let enc = ChunkKeyEncoding::Default { separator: '/' };
        for bad in [
            "c/01/2", "c/1", "c/1/2/3", "c/-1/2", "c/a/2", "1/2", "c//2", "c/1/+2",
        ] {
            assert_eq!(parse_chunk_key_suffix(enc, 2, bad), None, "{bad}");
        }
        assert_eq!(
            parse_chunk_key_suffix(enc, 1, "c/99999999999999999999999"),
            None
        );
    }
}
