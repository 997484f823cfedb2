//! The parquet reference layout written from Rust (no Python needed): chunk keys follow the
//! array's `dimension_separator`, so an array with `/` imports like one with `.`.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use floe::KerchunkRefs;
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, Int64Type};
use parquet::file::properties::WriterProperties;
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::parser::parse_message_type;

use super::{import, new_repo, p};

/// Writes a `refs.<r>.parq` file whose rows all hold inline bytes (`raw`), no path.
fn write_raw_record(path: &Path, raws: &[&[u8]]) {
    let schema = parse_message_type(
        "message schema {
            OPTIONAL BYTE_ARRAY path (UTF8);
            REQUIRED INT64 offset;
            REQUIRED INT64 size;
            OPTIONAL BYTE_ARRAY raw;
        }",
    )
    .unwrap();
    let properties = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        SerializedFileWriter::new(file, Arc::new(schema), Arc::new(properties)).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let rows = raws.len();
    let mut column_index = 0;
    while let Some(mut column) = group.next_column().unwrap() {
        match column_index {
            // `path`: all null.
            0 => {
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&[], Some(&vec![0; rows]), None)
                    .unwrap();
            }
            1 | 2 => {
                column
                    .typed::<Int64Type>()
                    .write_batch(&vec![0; rows], None, None)
                    .unwrap();
            }
            _ => {
                let values: Vec<ByteArray> =
                    raws.iter().map(|r| ByteArray::from(r.to_vec())).collect();
                column
                    .typed::<ByteArrayType>()
                    .write_batch(&values, Some(&vec![1; rows]), None)
                    .unwrap();
            }
        }
        column.close().unwrap();
        column_index += 1;
    }
    group.close().unwrap();
    writer.close().unwrap();
}

/// A 2×2 grid of int16 chunks of one element each, in records of 3 rows (two files).
fn layout(dir: &Path, separator: &str) {
    let zarray = serde_json::json!({"zarr_format": 2, "shape": [2, 2], "chunks": [1, 1],
        "dtype": "<i2", "fill_value": 0, "order": "C", "filters": null, "compressor": null,
        "dimension_separator": separator});
    let meta = serde_json::json!({"record_size": 3, "metadata": {
        ".zgroup": {"zarr_format": 2},
        "v/.zarray": zarray,
        "v/.zattrs": {"_ARRAY_DIMENSIONS": ["y", "x"]}}});
    std::fs::write(dir.join(".zmetadata"), meta.to_string()).unwrap();
    std::fs::create_dir(dir.join("v")).unwrap();
    write_raw_record(&dir.join("v/refs.0.parq"), &[&[0, 0], &[1, 0], &[2, 0]]);
    write_raw_record(&dir.join("v/refs.1.parq"), &[&[3, 0]]);
}

#[tokio::test]
async fn parquet_refs_import_with_either_dimension_separator() {
    for separator in [".", "/"] {
        let dir = tempfile::tempdir().unwrap();
        let refs_dir = dir.path().join("refs.parq");
        std::fs::create_dir(&refs_dir).unwrap();
        layout(&refs_dir, separator);
        let refs = KerchunkRefs::read(&refs_dir).unwrap();
        let key = |y: u64, x: u64| format!("v/{y}{separator}{x}");
        assert!(refs.refs.contains_key(&key(1, 0)), "{:?}", refs.refs.keys());

        let repo = new_repo(&dir.path().join("repo")).await;
        let session = repo.writable_session("main").await.unwrap();
        let summary = import(&session, &refs, "d", None).await;
        assert_eq!(summary.inline_chunks, 4, "{separator}: {summary}");
        for (coord, value) in [([0, 0], 0u8), ([0, 1], 1), ([1, 0], 2), ([1, 1], 3)] {
            let chunk = session.get_chunk(&p("d/v"), &coord).await.unwrap();
            assert_eq!(
                chunk,
                Some(Bytes::from(vec![value, 0])),
                "{separator} {coord:?}"
            );
        }
    }
}
