//! What a request reads from: the stored hierarchy of a version, or a rechunked view of it.
//!
//! A request asks for a rechunked view with the `chunks` parameter of the version segment
//! (`/main;chunks=temperature=256,256,30/...`, the value percent-decoded with the segment, so
//! nested arrays may be written `group%2Ftemperature`) or with the zarr-proxy `chunks` request
//! header (`chunks: temperature=256,256,30`, also percent-decoded). Both use the
//! [`ChunkShapeRequest`] grammar. When both are given they must ask for the same view
//! (compared in canonical form); otherwise the request is refused, so a URL never silently
//! means something else because of a header. [`view_for`] is the one place that picks the
//! view; handlers only see [`ByteSource`].
//!
//! Arrays stored with a rectilinear chunk grid (variable chunk sizes) are served through a
//! regular-grid view by default, so that clients reading only regular grids (zarr-python 3.1)
//! open the whole hierarchy: chunks of the largest stored edge length along each dimension
//! (see [`crate::default_regular_chunk_shape`]), in addition to the arrays a `chunks` request
//! names. The `grid=native` parameter (`/main;grid=native/...`, combinable with `chunks`)
//! serves them with their native rectilinear metadata instead; `grid=regular` names the
//! default explicitly.

use std::ops::Range;

use axum::http::HeaderMap;
use bytes::Bytes;
use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};
use crate::zarr::rechunk::{ChunkShapeRequest, RechunkedStore};
use crate::zarr::store::{ByteRange, ZarrStore};

/// The request header of the zarr-proxy convention asking for other chunk shapes.
pub const CHUNKS_HEADER: &str = "chunks";

/// The version segment parameter asking for other chunk shapes (`;chunks=...`).
pub const CHUNKS_PARAM: &str = "chunks";

/// The version segment parameter choosing how rectilinear chunk grids are served:
/// `;grid=native` (as stored) or `;grid=regular` (through a regular grid, the default).
pub const GRID_PARAM: &str = "grid";

/// The [`GRID_PARAM`] value serving rectilinear chunk grids as stored.
pub const NATIVE_GRID: &str = "native";

/// The [`GRID_PARAM`] value serving rectilinear chunk grids through a regular grid.
pub const REGULAR_GRID: &str = "regular";

/// The view a request asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum View {
    /// The hierarchy as stored, except that arrays stored with a rectilinear chunk grid are
    /// served through a regular grid (the default).
    Stored,
    /// Some arrays in other chunk shapes; other arrays as in [`View::Stored`].
    Rechunked(ChunkShapeRequest),
    /// `grid=native`: rectilinear chunk grids as stored, with the arrays of the request (if
    /// any) in other chunk shapes.
    Native(Option<ChunkShapeRequest>),
}

impl View {
    /// A short stable description, mixed into ETags so a view never shares one with the
    /// stored bytes: empty for the stored view, `chunks=<canonical request>` otherwise.
    pub fn tag(&self) -> String {
        match self {
            View::Stored => String::new(),
            View::Rechunked(request) => format!("{CHUNKS_PARAM}={request}"),
            View::Native(None) => format!("{GRID_PARAM}={NATIVE_GRID}"),
            View::Native(Some(request)) => {
                format!("{GRID_PARAM}={NATIVE_GRID};{CHUNKS_PARAM}={request}")
            }
        }
    }
}

/// Parses a request text, the error being the reason for a 400 answer. Header values are
/// percent-decoded here; URL parameters arrive decoded (once) with the path.
fn parse_request(text: &str, origin: &str, decode: bool) -> Result<ChunkShapeRequest, String> {
    let decoded = if decode {
        percent_decode_str(text)
            .decode_utf8()
            .map_err(|_| format!("the {origin} is not valid UTF-8 once percent-decoded"))?
    } else {
        std::borrow::Cow::Borrowed(text)
    };
    ChunkShapeRequest::parse(&decoded).map_err(|e| format!("{origin}: {e}"))
}

/// True when two requests ask for the same chunk shapes, in whatever order they name arrays.
fn same_request(a: &ChunkShapeRequest, b: &ChunkShapeRequest) -> bool {
    let shapes = |r: &ChunkShapeRequest| {
        r.arrays()
            .map(|(path, shape)| (path.clone(), shape.to_vec()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    shapes(a) == shapes(b)
}

/// Picks the view from the version segment's parameters and the request headers; the error is
/// the reason for a 400 answer. Parameters other than `chunks` and `grid`, a `grid` value
/// other than `native` or `regular`, a parameter or header given twice, and a header and
/// parameter asking for different views are refused.
pub fn view_for(params: &[(String, String)], headers: &HeaderMap) -> Result<View, String> {
    let mut from_url = None;
    let mut native = None;
    for (name, value) in params {
        if name == GRID_PARAM {
            if native.is_some() {
                return Err(format!("the `{GRID_PARAM}` parameter is given twice"));
            }
            native = Some(match value.as_str() {
                NATIVE_GRID => true,
                REGULAR_GRID => false,
                other => {
                    return Err(format!(
                        "`{GRID_PARAM}={other}`: the grid is `{NATIVE_GRID}` (rectilinear chunk \
                         grids as stored) or `{REGULAR_GRID}` (through a regular grid)"
                    ))
                }
            });
            continue;
        }
        if name != CHUNKS_PARAM {
            return Err(format!(
                "unknown view parameter `{name}` (they are `{CHUNKS_PARAM}` and `{GRID_PARAM}`)"
            ));
        }
        if from_url.is_some() {
            return Err(format!("the `{CHUNKS_PARAM}` parameter is given twice"));
        }
        from_url = Some(parse_request(value, "the `chunks` URL parameter", false)?);
    }
    let mut values = headers.get_all(CHUNKS_HEADER).iter();
    let from_header = match (values.next(), values.next()) {
        (None, _) => None,
        (Some(_), Some(_)) => {
            return Err(format!("the `{CHUNKS_HEADER}` header is given twice"));
        }
        (Some(value), None) => {
            let text = value
                .to_str()
                .map_err(|_| format!("the `{CHUNKS_HEADER}` header is not visible ASCII"))?;
            Some(parse_request(text, "the `chunks` header", true)?)
        }
    };
    let request = match (from_url, from_header) {
        (None, None) => None,
        (Some(request), None) | (None, Some(request)) => Some(request),
        (Some(url), Some(header)) if same_request(&url, &header) => Some(url),
        (Some(url), Some(header)) => {
            return Err(format!(
                "the `{CHUNKS_HEADER}` header (`{header}`) and the URL parameter (`{url}`) ask \
                 for different views; give one of them, or the same request in both"
            ))
        }
    };
    Ok(match (native == Some(true), request) {
        (true, request) => View::Native(request),
        (false, None) => View::Stored,
        (false, Some(request)) => View::Rechunked(request),
    })
}

/// The bytes behind the keys of one version, as a particular view shows them.
#[derive(Clone, Debug)]
pub enum ByteSource {
    /// The version's keys as stored (group `zarr.json` documents with consolidated metadata).
    Stored(ZarrStore),
    /// The version's keys with some arrays rechunked.
    Rechunked(RechunkedStore),
}

/// The size of a value and, when learning the size meant producing it, the value itself.
#[derive(Clone, Debug)]
pub struct SizedValue {
    /// The size in bytes.
    pub size: u64,
    /// The whole value, when it was produced to learn its size (assembled view chunks).
    pub value: Option<Bytes>,
}

/// True when reading `key` from `view` assembles a requested chunk (decoding and encoding).
fn assembles(view: &RechunkedStore, key: &str) -> bool {
    view.request().arrays().any(|(path, _)| {
        key.strip_prefix(&path.key_prefix())
            .is_some_and(|rest| rest != "zarr.json")
    })
}

/// The value of `key` in `view`. Assembling a requested chunk decodes and encodes on the
/// calling thread, so that work runs on tokio's blocking pool (driven there with
/// `Handle::block_on`) instead of stalling the async workers; other keys are answered inline.
async fn view_get(view: &RechunkedStore, key: &str) -> Result<Option<Bytes>> {
    if !assembles(view, key) {
        return view.get(key).await;
    }
    let view = view.clone();
    let key = key.to_string();
    let handle = tokio::runtime::Handle::current();
    let task = tokio::task::spawn_blocking({
        let key = key.clone();
        move || handle.block_on(crate::storage::with_inline_io(view.get(&key)))
    });
    task.await.map_err(|e| Error::Io {
        path: key.into(),
        source: std::io::Error::other(format!("assembling a view chunk failed: {e}")),
    })?
}

impl ByteSource {
    /// The whole value of `key`, `None` when absent.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        match self {
            ByteSource::Stored(store) => store.get(key).await,
            ByteSource::Rechunked(view) => view_get(view, key).await,
        }
    }

    /// Bytes `range` of `key` (a range already resolved against [`ByteSource::size`]),
    /// `None` when absent.
    pub async fn get_range(&self, key: &str, range: Range<u64>) -> Result<Option<Bytes>> {
        match self {
            ByteSource::Stored(store) => store.get_range(key, ByteRange::from(range)).await,
            ByteSource::Rechunked(view) if assembles(view, key) => {
                Ok(view_get(view, key).await?.and_then(|bytes| {
                    let end = usize::try_from(range.end).ok()?.min(bytes.len());
                    let start = usize::try_from(range.start).ok()?.min(end);
                    Some(bytes.slice(start..end))
                }))
            }
            ByteSource::Rechunked(view) => view.get_range(key, ByteRange::from(range)).await,
        }
    }

    /// The size of the value of `key`, `None` when absent.
    pub async fn size(&self, key: &str) -> Result<Option<u64>> {
        Ok(self.sized(key).await?.map(|s| s.size))
    }

    /// The size of the value of `key` (`None` when absent), with the value itself when it had
    /// to be produced to learn the size (a requested chunk of a view is assembled whole), so
    /// a handler never assembles a chunk twice.
    pub async fn sized(&self, key: &str) -> Result<Option<SizedValue>> {
        match self {
            ByteSource::Stored(store) => Ok(store
                .size(key)
                .await?
                .map(|size| SizedValue { size, value: None })),
            ByteSource::Rechunked(view) if assembles(view, key) => {
                Ok(view_get(view, key).await?.map(|value| SizedValue {
                    size: value.len() as u64,
                    value: Some(value),
                }))
            }
            ByteSource::Rechunked(view) => Ok(view
                .size(key)
                .await?
                .map(|size| SizedValue { size, value: None })),
        }
    }

    /// The keys directly inside `prefix` and its child prefixes (see
    /// [`ZarrStore::list_dir`] and [`RechunkedStore::list_dir`]).
    pub async fn list_dir(&self, prefix: &str) -> Result<(Vec<String>, Vec<String>)> {
        match self {
            ByteSource::Stored(store) => store.list_dir(prefix).await,
            ByteSource::Rechunked(view) => view.list_dir(prefix).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(value: &str) -> Vec<(String, String)> {
        vec![(CHUNKS_PARAM.to_string(), value.to_string())]
    }

    fn header(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CHUNKS_HEADER, value.parse().unwrap());
        headers
    }

    fn rechunked(text: &str) -> View {
        View::Rechunked(ChunkShapeRequest::parse(text).unwrap())
    }

    #[test]
    fn url_and_header_forms() {
        let none = HeaderMap::new();
        assert_eq!(view_for(&[], &none), Ok(View::Stored));
        assert_eq!(view_for(&params("t=1,2"), &none), Ok(rechunked("t=1,2")));
        assert_eq!(view_for(&[], &header("t=1,2")), Ok(rechunked("t=1,2")));
        assert_eq!(
            view_for(&[], &header("g%2Ft=1, 2")),
            Ok(rechunked("g/t=1,2"))
        );
        // Both forms: accepted when they agree (canonically), refused otherwise.
        assert_eq!(
            view_for(&params("t=1,2"), &header(" t = 1,2 ")),
            Ok(rechunked("t=1,2"))
        );
        let err = view_for(&params("t=1,2"), &header("t=1,3")).unwrap_err();
        assert!(err.contains("different views"), "{err}");
        assert_eq!(rechunked("t=1,2").tag(), "chunks=t=1,2");
        assert_eq!(View::Stored.tag(), "");
    }

    #[test]
    fn grid_parameter() {
        let none = HeaderMap::new();
        let grid = |value: &str| (GRID_PARAM.to_string(), value.to_string());
        assert_eq!(view_for(&[grid("native")], &none), Ok(View::Native(None)));
        assert_eq!(view_for(&[grid("regular")], &none), Ok(View::Stored));
        let both = [grid("native"), params("t=1,2").remove(0)];
        let native = view_for(&both, &none).unwrap();
        assert_eq!(
            native,
            View::Native(Some(ChunkShapeRequest::parse("t=1,2").unwrap()))
        );
        assert_eq!(native.tag(), "grid=native;chunks=t=1,2");
        assert_eq!(View::Native(None).tag(), "grid=native");
        assert_eq!(
            view_for(&[grid("regular")], &header("t=1,2")),
            Ok(rechunked("t=1,2"))
        );
        let err = view_for(&[grid("rectangular")], &none).unwrap_err();
        assert!(err.contains("`native`"), "{err}");
        let err = view_for(&[grid("native"), grid("native")], &none).unwrap_err();
        assert!(err.contains("twice"), "{err}");
    }

    #[test]
    fn refusals_carry_the_reason() {
        let none = HeaderMap::new();
        let unknown = vec![("x".to_string(), "1".to_string())];
        assert!(view_for(&unknown, &none)
            .unwrap_err()
            .contains("unknown view parameter `x`"));
        let twice = [params("t=1"), params("t=1")].concat();
        assert!(view_for(&twice, &none).unwrap_err().contains("twice"));
        let err = view_for(&params("t=0"), &none).unwrap_err();
        assert!(err.contains("positive"), "{err}");
        let err = view_for(&[], &header("")).unwrap_err();
        assert!(err.contains("empty"), "{err}");
        let mut two = header("t=1");
        two.append(CHUNKS_HEADER, "t=1".parse().unwrap());
        assert!(view_for(&[], &two).unwrap_err().contains("twice"));
    }
}
