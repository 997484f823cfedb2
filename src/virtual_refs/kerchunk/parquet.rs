//! The parquet reference layout of fsspec/kerchunk (`LazyReferenceMapper`,
//! `kerchunk.df.refs_to_dataframe`):
//!
//! - `<dir>/.zmetadata`: `{"metadata": {key: JSON document}, "record_size": n}`, holding every
//!   metadata key (`.zgroup`, `.zattrs`, `<var>/.zarray`, `<var>/.zattrs`);
//! - `<dir>/<var>/refs.<r>.parq`: the references of variable `<var>`, `n` rows per file, in the
//!   C order of its chunk grid: row `i` of file `r` is chunk number `r * n + i`. Columns `path`
//!   (URL or null), `offset`, `size` (both 0 with a path: the whole file) and `raw` (inline
//!   bytes, or null). A row with neither path nor raw is a missing chunk, and so is a whole
//!   missing file.
//!
//! Chunk keys are formed with `.` between coordinates, as fsspec does.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde_json::Value;

use super::{invalid, KerchunkRef, KerchunkRefs};
use crate::error::{Error, Result};

/// Reads the whole reference set of a parquet layout directory.
pub(crate) fn read_dir(dir: &Path) -> Result<KerchunkRefs> {
    let origin = dir.display().to_string();
    let meta_path = dir.join(".zmetadata");
    let bytes = std::fs::read(&meta_path).map_err(|source| Error::Io {
        path: meta_path.clone(),
        source,
    })?;
    let meta: Value = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(&origin, format!("`.zmetadata` is not JSON: {e}")))?;
    let record_size = meta
        .get("record_size")
        .and_then(Value::as_u64)
        .filter(|&n| n > 0)
        .ok_or_else(|| invalid(&origin, "`.zmetadata` has no positive `record_size`"))?;
    let metadata = meta
        .get("metadata")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid(&origin, "`.zmetadata` has no `metadata` object"))?;
    let mut refs = BTreeMap::new();
    let mut urls: BTreeMap<String, Arc<str>> = BTreeMap::new();
    for (key, document) in metadata {
        let text = match document {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        refs.insert(key.clone(), KerchunkRef::Inline(Bytes::from(text)));
        let Some(variable) =
            key.strip_suffix("/.zarray")
                .or(if key == ".zarray" { Some("") } else { None })
        else {
            continue;
        };
        let grid = chunk_grid(document).map_err(|e| invalid(format!("{origin}: {key}"), e))?;
        read_variable(dir, variable, &grid, record_size, &mut urls, &mut refs)?;
    }
    Ok(KerchunkRefs { origin, refs })
}

/// Number of chunks along each dimension of a `.zarray` document (`[1]` for 0-d arrays).
fn chunk_grid(zarray: &Value) -> std::result::Result<Vec<u64>, String> {
    let zarray = match zarray {
        Value::String(s) => serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))?,
        other => other.clone(),
    };
    let list = |field: &str| -> std::result::Result<Vec<u64>, String> {
        zarray
            .get(field)
            .and_then(Value::as_array)
            .and_then(|l| l.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>())
            .ok_or_else(|| format!("`{field}` must be a list of non-negative integers"))
    };
    let (shape, chunks) = (list("shape")?, list("chunks")?);
    if shape.len() != chunks.len() || chunks.contains(&0) {
        return Err("`chunks` must hold one positive size per dimension".into());
    }
    if shape.is_empty() {
        return Ok(vec![1]);
    }
    Ok(shape
        .iter()
        .zip(&chunks)
        .map(|(s, c)| s.div_ceil(*c))
        .collect())
}

fn read_variable(
    dir: &Path,
    variable: &str,
    grid: &[u64],
    record_size: u64,
    urls: &mut BTreeMap<String, Arc<str>>,
    refs: &mut BTreeMap<String, KerchunkRef>,
) -> Result<()> {
    let total = grid.iter().try_fold(1u64, |a, &g| a.checked_mul(g));
    let total = total.ok_or_else(|| invalid(variable, "the chunk grid has over 2^64 chunks"))?;
    let files = total.div_ceil(record_size);
    let var_dir = if variable.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(variable)
    };
    for record in 0..files {
        let path = var_dir.join(format!("refs.{record}.parq"));
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Io { path, source }),
        };
        let what = path.display().to_string();
        let bad = |e: parquet::errors::ParquetError| invalid(&what, e.to_string());
        let reader = SerializedFileReader::new(bytes).map_err(bad)?;
        let rows = reader.get_row_iter(None).map_err(bad)?;
        for (i, row) in rows.enumerate() {
            let number = record * record_size + i as u64;
            if i as u64 >= record_size || number >= total {
                break;
            }
            let row = row.map_err(bad)?;
            let mut path = None;
            let (mut offset, mut size, mut raw) = (0u64, 0u64, None);
            for (name, field) in row.get_column_iter() {
                match (name.as_str(), field) {
                    ("path", Field::Str(s)) => path = Some(s.clone()),
                    ("path", Field::Bytes(b)) => {
                        path = Some(String::from_utf8_lossy(b.data()).into_owned())
                    }
                    ("raw", Field::Bytes(b)) => raw = Some(Bytes::copy_from_slice(b.data())),
                    ("raw", Field::Str(s)) => raw = Some(Bytes::from(s.clone().into_bytes())),
                    ("offset" | "size", field) => {
                        let value = integer(field).ok_or_else(|| {
                            invalid(&what, format!("row {i}: `{name}` is not an integer"))
                        })?;
                        if name == "offset" {
                            offset = value;
                        } else {
                            size = value;
                        }
                    }
                    _ => {}
                }
            }
            let reference = match (raw, path) {
                (Some(raw), _) => KerchunkRef::Inline(raw),
                (None, None) => continue,
                (None, Some(url)) => {
                    let url = urls
                        .entry(url)
                        .or_insert_with_key(|u| Arc::from(u.as_str()))
                        .clone();
                    if offset == 0 && size == 0 {
                        KerchunkRef::File { url }
                    } else {
                        KerchunkRef::Range {
                            url,
                            offset,
                            length: size,
                        }
                    }
                }
            };
            refs.insert(chunk_key(variable, grid, number), reference);
        }
    }
    Ok(())
}

fn integer(field: &Field) -> Option<u64> {
    match *field {
        Field::Long(v) => u64::try_from(v).ok(),
        Field::Int(v) => u64::try_from(v).ok(),
        Field::ULong(v) => Some(v),
        Field::UInt(v) => Some(u64::from(v)),
        Field::Null => Some(0),
        _ => None,
    }
}

/// The v2 key of chunk `number` (C order) of a grid: `<var>/i.j.k`.
fn chunk_key(variable: &str, grid: &[u64], mut number: u64) -> String {
    let mut coords = vec![0u64; grid.len()];
    for (c, g) in coords.iter_mut().zip(grid).rev() {
        *c = number % g;
        number /= g;
    }
    let coords: Vec<String> = coords.iter().map(u64::to_string).collect();
    if variable.is_empty() {
        coords.join(".")
    } else {
        format!("{variable}/{}", coords.join("."))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_numbers_unravel_in_c_order() {
        assert_eq!(chunk_key("a", &[2, 3], 0), "a/0.0");
        assert_eq!(chunk_key("a", &[2, 3], 4), "a/1.1");
        assert_eq!(chunk_key("g/v", &[3], 2), "g/v/2");
        assert_eq!(chunk_key("s", &[1], 0), "s/0");
        assert_eq!(
            chunk_grid(&serde_json::json!({"shape": [10, 12], "chunks": [4, 5]})).unwrap(),
            vec![3, 3]
        );
        assert_eq!(
            chunk_grid(&serde_json::json!({"shape": [], "chunks": []})).unwrap(),
            vec![1]
        );
        assert!(chunk_grid(&serde_json::json!({"shape": [3], "chunks": [0]})).is_err());
    }

    #[test]
    fn a_missing_or_bad_metadata_file_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(read_dir(dir.path()), Err(Error::Io { .. })));
        std::fs::write(dir.path().join(".zmetadata"), b"{\"metadata\": {}}").unwrap();
        assert!(matches!(
            read_dir(dir.path()),
            Err(Error::KerchunkImport { .. })
        ));
        std::fs::write(
            dir.path().join(".zmetadata"),
            br#"{"record_size": 10, "metadata": {".zgroup": {"zarr_format": 2}}}"#,
        )
        .unwrap();
        let refs = read_dir(dir.path()).unwrap();
        assert_eq!(refs.len(), 1);
    }
}
