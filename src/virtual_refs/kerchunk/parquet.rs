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
//! A chunk's coordinates follow from its row number alone. fsspec's mapper always names chunks
//! `<var>/i.j.k` (and kerchunk's `refs_to_dataframe` refuses keys with more than one `/`), but
//! the keys formed here use the array's `dimension_separator` (`.` unless `/`), which is how
//! the import parses the chunk keys of that array: both separators give the same chunks.
//!
//! Reference directories may be hostile: variable names (from the `.zmetadata` keys) must be
//! relative paths without `..`, `.`, empty segments or backslashes, so no file outside the
//! directory is read; and only the `refs.<r>.parq` files present in a variable's directory
//! are read, whatever the chunk grid's size.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
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
        let variable = if key == ".zarray" {
            ""
        } else {
            let Some(variable) = key.strip_suffix("/.zarray") else {
                continue;
            };
            check_variable_name(variable).map_err(|e| invalid(format!("{origin}: {key}"), e))?;
            variable
        };
        let array =
            ArrayLayout::parse(document).map_err(|e| invalid(format!("{origin}: {key}"), e))?;
        read_variable(dir, variable, &array, record_size, &mut urls, &mut refs)?;
    }
    Ok(KerchunkRefs { origin, refs })
}

/// Refuses a variable name that is not a plain relative path inside the directory.
fn check_variable_name(variable: &str) -> std::result::Result<(), String> {
    let refuse = |why: &str| Err(format!("variable name `{variable}` {why}"));
    if variable.contains('\\') {
        return refuse("contains a backslash");
    }
    if variable.starts_with('/') || Path::new(variable).is_absolute() {
        return refuse("is an absolute path");
    }
    if variable.contains(':') {
        return refuse("contains `:`");
    }
    for segment in variable.split('/') {
        match segment {
            "" => return refuse("has an empty path segment"),
            "." | ".." => return refuse("has a `.` or `..` path segment"),
            _ => {}
        }
    }
    Ok(())
}

/// What the layout needs of a `.zarray` document.
struct ArrayLayout {
    /// Number of chunks along each dimension (`[1]` for 0-d arrays).
    grid: Vec<u64>,
    /// The `dimension_separator` of chunk keys.
    separator: char,
}

impl ArrayLayout {
    fn parse(zarray: &Value) -> std::result::Result<Self, String> {
        let zarray = match zarray {
            Value::String(s) => serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))?,
            other => other.clone(),
        };
        let separator = match zarray.get("dimension_separator") {
            None | Some(Value::Null) => '.',
            Some(Value::String(s)) if s == "." => '.',
            Some(Value::String(s)) if s == "/" => '/',
            Some(other) => return Err(format!("`dimension_separator` {other} is not `.` or `/`")),
        };
        Ok(ArrayLayout {
            grid: chunk_grid(&zarray)?,
            separator,
        })
    }
}

/// Number of chunks along each dimension of a `.zarray` document (`[1]` for 0-d arrays).
fn chunk_grid(zarray: &Value) -> std::result::Result<Vec<u64>, String> {
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

/// The record files present in `var_dir`: `(r, path)` of each `refs.<r>.parq` with
/// `r < files`, by `r`. A missing directory has none.
fn record_files(var_dir: &Path, files: u64) -> Result<Vec<(u64, PathBuf)>> {
    let io = |source| Error::Io {
        path: var_dir.to_path_buf(),
        source,
    };
    let entries = match std::fs::read_dir(var_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(io(source)),
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        let record = name
            .to_str()
            .and_then(|n| n.strip_prefix("refs."))
            .and_then(|n| n.strip_suffix(".parq"))
            .filter(|r| r.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|r| r.parse::<u64>().ok());
        if let Some(record) = record.filter(|&r| r < files) {
            found.push((record, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

fn read_variable(
    dir: &Path,
    variable: &str,
    array: &ArrayLayout,
    record_size: u64,
    urls: &mut BTreeMap<String, Arc<str>>,
    refs: &mut BTreeMap<String, KerchunkRef>,
) -> Result<()> {
    let grid = &array.grid;
    let total = grid.iter().try_fold(1u64, |a, &g| a.checked_mul(g));
    let total = total.ok_or_else(|| invalid(variable, "the chunk grid has over 2^64 chunks"))?;
    let files = total.div_ceil(record_size);
    let var_dir = if variable.is_empty() {
        dir.to_path_buf()
    } else {
        dir.join(variable)
    };
    // Bounded by the files present, not by the (possibly astronomical) number of records.
    for (record, path) in record_files(&var_dir, files)? {
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => Bytes::from(bytes),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let what = path.display().to_string();
        let bad = |e: parquet::errors::ParquetError| invalid(&what, e.to_string());
        let reader = SerializedFileReader::new(bytes).map_err(bad)?;
        let rows = reader.get_row_iter(None).map_err(bad)?;
        for (i, row) in rows.enumerate() {
            if i as u64 >= record_size {
                break;
            }
            // `record < files`, so this stays below `total + record_size`: checked all the same.
            let number = record
                .checked_mul(record_size)
                .and_then(|first| first.checked_add(i as u64))
                .filter(|&number| number < total);
            let Some(number) = number else {
                break;
            };
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
            refs.insert(chunk_key(variable, array, number), reference);
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

/// The v2 key of chunk `number` (C order) of an array: `<var>/i.j.k`, or `<var>/i/j/k` for
/// the separator `/`.
fn chunk_key(variable: &str, array: &ArrayLayout, mut number: u64) -> String {
    let mut coords = vec![0u64; array.grid.len()];
    for (c, g) in coords.iter_mut().zip(&array.grid).rev() {
        *c = number % g;
        number /= g;
    }
    let coords: Vec<String> = coords.iter().map(u64::to_string).collect();
    let separator = array.separator.to_string();
    if variable.is_empty() {
        coords.join(&separator)
    } else {
        format!("{variable}/{}", coords.join(&separator))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_numbers_unravel_in_c_order() {
        let layout = |grid: &[u64], separator| ArrayLayout {
            grid: grid.to_vec(),
            separator,
        };
        assert_eq!(chunk_key("a", &layout(&[2, 3], '.'), 0), "a/0.0");
        assert_eq!(chunk_key("a", &layout(&[2, 3], '.'), 4), "a/1.1");
        assert_eq!(chunk_key("a", &layout(&[2, 3], '/'), 5), "a/1/2");
        assert_eq!(chunk_key("g/v", &layout(&[3], '.'), 2), "g/v/2");
        assert_eq!(chunk_key("s", &layout(&[1], '.'), 0), "s/0");
        assert_eq!(chunk_key("", &layout(&[2, 2], '/'), 3), "1/1");
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

    #[test]
    fn variable_names_outside_the_directory_are_refused() {
        for good in ["t2m", "group/t2m", "a.b", "x..y"] {
            assert_eq!(check_variable_name(good), Ok(()), "{good}");
        }
        for (bad, why) in [
            ("/etc", "absolute"),
            ("../x", "`..`"),
            ("a/../../x", "`..`"),
            ("a/./b", "`.`"),
            ("a//b", "empty"),
            ("a/", "empty"),
            ("a\\..\\b", "backslash"),
            ("C:x", "`:`"),
        ] {
            let err = check_variable_name(bad).unwrap_err();
            assert!(err.contains(why) && err.contains(bad), "{bad}: {err}");
        }
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("refs");
        std::fs::create_dir(&dir).unwrap();
        for key in ["../x/.zarray", "/abs/.zarray", "/.zarray"] {
            let meta = serde_json::json!({"record_size": 10, "metadata": {
                key: {"shape": [1], "chunks": [1]}}});
            std::fs::write(dir.join(".zmetadata"), meta.to_string()).unwrap();
            let err = read_dir(&dir).unwrap_err();
            assert!(
                matches!(&err, Error::KerchunkImport { what, .. } if what.contains(key)),
                "{key}: {err}"
            );
        }
    }

    #[test]
    fn a_huge_grid_reads_only_the_record_files_present() {
        let dir = tempfile::tempdir().unwrap();
        // 10^18 chunks in records of 1: looping over every record would never end.
        let meta = serde_json::json!({"record_size": 1, "metadata": {
            "v/.zarray": {"shape": [1_000_000_000_000_000_000u64], "chunks": [1]}}});
        std::fs::write(dir.path().join(".zmetadata"), meta.to_string()).unwrap();
        std::fs::create_dir(dir.path().join("v")).unwrap();
        std::fs::write(dir.path().join("v/notes.txt"), b"not a record").unwrap();
        std::fs::write(dir.path().join("v/refs.x.parq"), b"not a record").unwrap();
        let refs = read_dir(dir.path()).unwrap();
        assert_eq!(refs.refs.keys().collect::<Vec<_>>(), vec!["v/.zarray"]);
        // A record file that exists is read (and this one is not parquet).
        std::fs::write(dir.path().join("v/refs.123456789012.parq"), b"garbage").unwrap();
        let err = read_dir(dir.path()).unwrap_err();
        assert!(err.to_string().contains("refs.123456789012.parq"), "{err}");
        // Past the last record of the grid, a file is ignored.
        std::fs::remove_file(dir.path().join("v/refs.123456789012.parq")).unwrap();
        std::fs::write(dir.path().join("v/refs.1000000000000000000.parq"), b"x").unwrap();
        assert_eq!(read_dir(dir.path()).unwrap().len(), 1);
    }
}
