//! Parsing chunk shape requests in the zarr-proxy header grammar.
//!
//! The text is a comma-separated list of tokens. A token containing `=` starts a new array:
//! `name=size`; the tokens that follow, up to the next `name=` token, are the further chunk
//! sizes of that array: `temperature=256,256,30,group/pressure=256,256,30`. Array names are
//! node paths (`group/temp`); a leading `/` is ignored. Percent-encoded names (`group%2Ftemp`)
//! must be decoded by the caller. Whitespace around tokens is ignored.

use std::fmt;

use crate::error::{Error, Result};
use crate::format::path::NodePath;

/// A parsed request for rechunked views: a chunk shape per named array.
///
/// Parsing checks only the syntax (names, positive integer sizes, no duplicate array); whether
/// the arrays exist and have that many dimensions is checked when a
/// [`super::RechunkedStore`] is built from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkShapeRequest {
    arrays: Vec<(NodePath, Vec<u64>)>,
}

impl ChunkShapeRequest {
    /// Parses `text` (see the module docs for the grammar).
    ///
    /// Errors with [`Error::InvalidRechunk`] for an empty request, sizes before any array name,
    /// an empty or invalid array name, an array without sizes, sizes that are not integers,
    /// are zero or negative, or an array named twice.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidRechunk {
            request: text.to_string(),
            reason,
        };
        if text.trim().is_empty() {
            return Err(bad("the request is empty".into()));
        }
        let mut arrays: Vec<(NodePath, Vec<u64>)> = Vec::new();
        for token in text.split(',').map(str::trim) {
            let size_text = match token.split_once('=') {
                Some((name, size)) => {
                    let path = parse_name(name.trim()).map_err(&bad)?;
                    if arrays.iter().any(|(p, _)| *p == path) {
                        return Err(bad(format!("array `{}` is named twice", path.as_str())));
                    }
                    arrays.push((path, Vec::new()));
                    size.trim()
                }
                None => token,
            };
            let Some((path, sizes)) = arrays.last_mut() else {
                return Err(bad(format!("`{token}` comes before any `array=` name")));
            };
            sizes.push(parse_size(path.as_str(), size_text).map_err(&bad)?);
        }
        Ok(ChunkShapeRequest { arrays })
    }

    /// A request for a single array.
    ///
    /// Errors with [`Error::InvalidRechunk`] when `chunk_shape` is empty or holds a zero.
    pub fn single(array: NodePath, chunk_shape: Vec<u64>) -> Result<Self> {
        let request = ChunkShapeRequest {
            arrays: vec![(array, chunk_shape)],
        };
        let (path, shape) = &request.arrays[0];
        let reason = if path.is_root() {
            Some("an array name cannot be empty".to_string())
        } else if shape.is_empty() {
            Some(format!("array `{}` has no chunk sizes", path.as_str()))
        } else if shape.contains(&0) {
            Some(format!(
                "chunk sizes of `{}` must be positive",
                path.as_str()
            ))
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidRechunk {
                request: request.to_string(),
                reason,
            }),
            None => Ok(request),
        }
    }

    /// This request with `array` in `chunk_shape` appended, unless the request already names
    /// `array` (its own shape wins). `chunk_shape` must come from valid metadata (one
    /// positive size per dimension): it is not checked here.
    pub(crate) fn with_default(mut self, array: NodePath, chunk_shape: Vec<u64>) -> Self {
        if self.chunk_shape(&array).is_none() {
            self.arrays.push((array, chunk_shape));
        }
        self
    }

    /// A request naming no array (only built internally, as the start of a default view).
    pub(crate) fn empty() -> Self {
        ChunkShapeRequest { arrays: Vec::new() }
    }

    /// True when the request names no array.
    pub fn is_empty(&self) -> bool {
        self.arrays.is_empty()
    }

    /// The requested arrays and their chunk shapes, in request order.
    pub fn arrays(&self) -> impl Iterator<Item = (&NodePath, &[u64])> {
        self.arrays.iter().map(|(p, s)| (p, s.as_slice()))
    }

    /// The requested chunk shape of `array`, `None` when the request does not name it.
    pub fn chunk_shape(&self, array: &NodePath) -> Option<&[u64]> {
        self.arrays
            .iter()
            .find(|(p, _)| p == array)
            .map(|(_, s)| s.as_slice())
    }
}

/// The canonical text of the request (`a=1,2,g/b=3`), which [`ChunkShapeRequest::parse`]
/// reads back to an equal request.
impl fmt::Display for ChunkShapeRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (path, sizes)) in self.arrays.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}=", path.as_str())?;
            let sizes: Vec<String> = sizes.iter().map(u64::to_string).collect();
            f.write_str(&sizes.join(","))?;
        }
        Ok(())
    }
}

fn parse_name(name: &str) -> std::result::Result<NodePath, String> {
    let name = name.strip_prefix('/').unwrap_or(name);
    if name.is_empty() {
        return Err("an array name before `=` cannot be empty".into());
    }
    NodePath::new(name).map_err(|e| format!("`{name}` is not a valid array path: {e}"))
}

fn parse_size(path: &str, text: &str) -> std::result::Result<u64, String> {
    if text.is_empty() {
        return Err(format!("an empty chunk size for array `{path}`"));
    }
    if text.starts_with('-') && text[1..].bytes().all(|b| b.is_ascii_digit()) && text.len() > 1 {
        return Err(format!(
            "chunk size `{text}` of array `{path}` is negative; sizes must be positive"
        ));
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "chunk size `{text}` of array `{path}` is not a non-negative integer"
        ));
    }
    match text.parse::<u64>() {
        Ok(0) => Err(format!(
            "chunk size 0 for array `{path}`; sizes must be positive"
        )),
        Ok(size) => Ok(size),
        Err(_) => Err(format!(
            "chunk size `{text}` of array `{path}` is too large"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(p: &str) -> NodePath {
        NodePath::new(p).unwrap()
    }

    #[test]
    fn parses_the_header_grammar() {
        let r = ChunkShapeRequest::parse("temperature=256,256,30, group/pressure = 1,2").unwrap();
        let arrays: Vec<_> = r.arrays().map(|(p, s)| (p.clone(), s.to_vec())).collect();
        assert_eq!(
            arrays,
            vec![
                (path("temperature"), vec![256, 256, 30]),
                (path("group/pressure"), vec![1, 2])
            ]
        );
        assert_eq!(r.to_string(), "temperature=256,256,30,group/pressure=1,2");
        assert_eq!(ChunkShapeRequest::parse(&r.to_string()).unwrap(), r);
        assert_eq!(r.chunk_shape(&path("group/pressure")), Some(&[1u64, 2][..]));
        assert_eq!(
            ChunkShapeRequest::parse("/a=3")
                .unwrap()
                .chunk_shape(&path("a")),
            Some(&[3u64][..])
        );
    }

    #[test]
    fn refuses_every_invalid_form() {
        let cases = [
            ("", "empty"),
            ("  ", "empty"),
            ("5,a=1", "before any"),
            ("=4", "cannot be empty"),
            ("/=4", "cannot be empty"),
            ("a=", "empty chunk size"),
            ("a=1,,2", "empty chunk size"),
            ("a=0", "positive"),
            ("a=-3", "negative"),
            ("a=1.5", "not a non-negative integer"),
            ("a=x", "not a non-negative integer"),
            ("a=+4", "not a non-negative integer"),
            ("a=99999999999999999999999", "too large"),
            ("a=1,a=2", "named twice"),
            ("a/../b=1", "not a valid array path"),
        ];
        for (text, expected) in cases {
            let err = ChunkShapeRequest::parse(text).unwrap_err();
            assert!(
                matches!(err, Error::InvalidRechunk { .. }),
                "{text}: {err:?}"
            );
            assert!(err.to_string().contains(expected), "{text}: {err}");
        }
        assert!(ChunkShapeRequest::single(path("a"), vec![]).is_err());
        assert!(ChunkShapeRequest::single(path("a"), vec![1, 0]).is_err());
        assert!(ChunkShapeRequest::single(NodePath::root(), vec![1]).is_err());
        assert!(ChunkShapeRequest::single(path("a"), vec![1, 2]).is_ok());
    }
}
