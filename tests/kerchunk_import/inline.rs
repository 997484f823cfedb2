//! Imports built from inline references (no Python needed): appends that grow arrays, make a
//! rectilinear chunk grid or are refused, and refusals of unsupported codecs and bad keys.

use bytes::Bytes;
use floe::{import_kerchunk, Error, ImportOptions, KerchunkRef, KerchunkRefs, Session};
use serde_json::Value;

use super::common::inline_refs::base64_ref;
use super::{chunk_grid, import, new_repo, p, read_le_bytes, reader, rectilinear_grid};

/// References of one day: `v` (dimension `time`, `len` steps, chunks of 2, int16 values
/// `first..`) and the coordinate `x` (dimension `x`, values `x_values`), all inline.
fn inline_day(len: u64, first: i16, x_values: [i16; 2]) -> KerchunkRefs {
    inline_file(len, 2, first, x_values)
}

/// [`inline_day`] with chunks of `chunk` steps along `time`.
fn inline_file(len: u64, chunk: u64, first: i16, x_values: [i16; 2]) -> KerchunkRefs {
    let zarray = |shape: u64, chunk: u64| {
        serde_json::json!({"zarr_format": 2, "shape": [shape], "chunks": [chunk], "dtype": "<i2",
            "fill_value": null, "order": "C", "filters": null, "compressor": null})
        .to_string()
    };
    let mut refs = serde_json::json!({
        ".zgroup": "{\"zarr_format\": 2}",
        "v/.zarray": zarray(len, chunk),
        "v/.zattrs": "{\"_ARRAY_DIMENSIONS\": [\"time\"]}",
        "x/.zarray": zarray(2, 2),
        "x/.zattrs": "{\"_ARRAY_DIMENSIONS\": [\"x\"]}",
    });
    let b64 = |values: &[i16]| {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        base64_ref(&bytes)
    };
    refs["x/0"] = Value::String(b64(&x_values));
    for index in 0..len.div_ceil(chunk) {
        let values: Vec<i16> = (0..chunk)
            .map(|i| first + (index * chunk + i) as i16)
            .collect();
        refs[format!("v/{index}")] = Value::String(b64(&values));
    }
    KerchunkRefs::from_json("inline", refs.to_string().as_bytes()).unwrap()
}

async fn inline_chunks(session: &Session, path: &str) -> Vec<Bytes> {
    let mut out = Vec::new();
    for coord in session.list_chunks(&p(path)).await.unwrap() {
        out.push(session.get_chunk(&p(path), &coord).await.unwrap().unwrap());
    }
    out
}

#[tokio::test]
async fn appends_grow_arrays_and_refuse_what_does_not_fit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    let first = import(&session, &inline_day(4, 0, [7, 8]), "a", Some("time")).await;
    assert_eq!(
        (
            first.arrays_created,
            first.inline_chunks,
            first.virtual_refs
        ),
        (2, 2, 0)
    );
    // The coordinate `x` is loaded; `v` keeps kerchunk's inline chunks.
    assert_eq!(
        first.loaded,
        vec![floe::LoadedArray {
            path: p("a/x"),
            reason: floe::LoadReason::Coordinate
        }]
    );
    assert!(first.containers.is_empty());
    let second = import(&session, &inline_day(4, 100, [7, 8]), "a", Some("time")).await;
    assert_eq!((second.arrays_appended, second.arrays_unchanged), (1, 1));
    let v = session.node(&p("a/v")).unwrap().unwrap();
    assert_eq!(v.metadata.geometry().unwrap().shape, vec![8]);
    let le = |values: [i16; 2]| {
        Bytes::from(
            values
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect::<Vec<u8>>(),
        )
    };
    assert_eq!(
        inline_chunks(&session, "a/v").await,
        vec![le([0, 1]), le([2, 3]), le([100, 101]), le([102, 103])]
    );

    // A coordinate that differs is refused.
    let err = import_kerchunk(&session, &inline_day(2, 0, [7, 9]), &{
        let mut o = ImportOptions::new(p("a"));
        o.append_dim = Some("time".into());
        o
    })
    .await
    .unwrap_err();
    assert!(
        matches!(err, Error::KerchunkImport { .. })
            && err.to_string().contains("its values differ"),
        "{err}"
    );

    // An unknown append dimension is refused before anything changes.
    let mut options = ImportOptions::new(p("a"));
    options.append_dim = Some("level".into());
    let err = import_kerchunk(&session, &inline_day(2, 0, [7, 8]), &options)
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("append dimension `level`"),
        "{err}"
    );

    // After 3 steps (chunks of 2), the next day starts inside a chunk: that chunk is cut to
    // its one element and stored, and the new chunks follow in a rectilinear grid.
    let odd = repo.writable_session("main").await.unwrap();
    import(&odd, &inline_day(3, 0, [7, 8]), "b", Some("time")).await;
    options.to = p("b");
    options.append_dim = Some("time".into());
    let cut = import_kerchunk(&odd, &inline_day(2, 10, [7, 8]), &options)
        .await
        .unwrap();
    assert_eq!(
        (cut.arrays_appended, cut.materialized_chunks),
        (1, 1),
        "{cut}"
    );
    assert_eq!(
        chunk_grid(&odd, "b/v"),
        rectilinear_grid(serde_json::json!([[2, 1, 2]]))
    );
    assert_eq!(
        inline_chunks(&odd, "b/v").await,
        vec![
            le([0, 1]),
            Bytes::from(2i16.to_le_bytes().to_vec()),
            le([10, 11])
        ]
    );

    // Without an append dimension the arrays are replaced.
    let replaced = import(&session, &inline_day(2, 50, [1, 2]), "a", None).await;
    assert_eq!(replaced.arrays_created, 2);
    assert_eq!(inline_chunks(&session, "a/v").await, vec![le([50, 51])]);
}

#[tokio::test]
async fn an_appended_chunk_key_past_the_grid_is_refused_instead_of_wrapping() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    import(&session, &inline_day(4, 0, [7, 8]), "a", Some("time")).await;
    let before = inline_chunks(&session, "a/v").await;
    // Shifted by the 2 existing chunks, u64::MAX would wrap to chunk 1 and replace it.
    let mut hostile = inline_day(2, 100, [7, 8]);
    hostile.refs.insert(
        format!("v/{}", u64::MAX - 1),
        KerchunkRef::Inline(Bytes::from_static(&[9, 9, 9, 9])),
    );
    let mut options = ImportOptions::new(p("a"));
    options.append_dim = Some("time".into());
    let err = import_kerchunk(&session, &hostile, &options)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        matches!(err, Error::KerchunkImport { .. })
            && text.contains(&format!("key `v/{}`", u64::MAX - 1))
            && text.contains("outside the array's grid of [1] chunks"),
        "{text}"
    );
    assert_eq!(inline_chunks(&session, "a/v").await, before);
    assert_eq!(
        session
            .node(&p("a/v"))
            .unwrap()
            .unwrap()
            .metadata
            .geometry()
            .unwrap()
            .shape,
        vec![4]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unequal_chunk_lengths_along_the_append_dimension_make_a_rectilinear_grid() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    // (steps, chunk length along time, first value) of each file.
    let files = [(4, 2, 0), (3, 3, 100), (5, 5, 200), (4, 3, 300)];
    for (i, &(len, chunk, first)) in files.iter().enumerate() {
        let summary = import(
            &session,
            &inline_file(len, chunk, first, [7, 8]),
            "m",
            Some("time"),
        )
        .await;
        assert_eq!(summary.arrays_appended, usize::from(i > 0), "{summary}");
    }
    // Two chunks of 2, one of 3, one of 5, two of 3 (the last reaching past the end).
    assert_eq!(
        chunk_grid(&session, "m/v"),
        rectilinear_grid(serde_json::json!([[[2, 2], 3, 5, [3, 2]]]))
    );
    // The coordinate without the append dimension keeps its regular grid.
    assert_eq!(chunk_grid(&session, "m/x")["name"], "regular");
    session.commit("four files", None).await.unwrap();
    let read = reader(&repo).await;
    let (shape, bytes) = read_le_bytes(&read, "m/v", "<i2");
    assert_eq!(shape, vec![16]);
    let want: Vec<u8> = files
        .iter()
        .flat_map(|&(len, _, first)| (first..first + len as i16).flat_map(i16::to_le_bytes))
        .collect();
    assert_eq!(bytes, want);

    // The last chunk now reaches past the end (its 3 elements are stored, 1 of them used):
    // the next file's chunks follow once it is cut to that element.
    let more = repo.writable_session("main").await.unwrap();
    let mut options = ImportOptions::new(p("m"));
    options.append_dim = Some("time".into());
    let summary = import_kerchunk(&more, &inline_file(2, 2, 400, [7, 8]), &options)
        .await
        .unwrap();
    assert_eq!(summary.materialized_chunks, 1, "{summary}");
    assert_eq!(
        chunk_grid(&more, "m/v"),
        rectilinear_grid(serde_json::json!([[[2, 2], 3, 5, 3, 1, 2]]))
    );
    more.commit("a fifth file", None).await.unwrap();
    let read = reader(&repo).await;
    let (shape, bytes) = read_le_bytes(&read, "m/v", "<i2");
    assert_eq!(shape, vec![18]);
    let want: Vec<u8> = want
        .into_iter()
        .chain([400i16, 401].iter().flat_map(|v| v.to_le_bytes()))
        .collect();
    assert_eq!(bytes, want);
}

#[tokio::test]
async fn unsupported_codecs_and_bad_keys_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    let repo = new_repo(dir.path()).await;
    let session = repo.writable_session("main").await.unwrap();
    let refs = |zarray: &str, key: &str| {
        let json = serde_json::json!({".zgroup": "{\"zarr_format\": 2}", "t/.zarray": zarray, key: "base64:AAA="});
        KerchunkRefs::from_json("case", json.to_string().as_bytes()).unwrap()
    };
    let lz4 = r#"{"zarr_format": 2, "shape": [2], "chunks": [2], "dtype": "<i2", "fill_value": 0, "order": "C", "filters": null, "compressor": {"id": "lz4"}}"#;
    let err = import_kerchunk(&session, &refs(lz4, "t/0"), &ImportOptions::new(p("x")))
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("`lz4`") && text.contains("variable `t`"),
        "{text}"
    );
    let plain = r#"{"zarr_format": 2, "shape": [2], "chunks": [2], "dtype": "<i2", "fill_value": 0, "order": "C", "filters": null, "compressor": null}"#;
    let err = import_kerchunk(&session, &refs(plain, "t/0.0"), &ImportOptions::new(p("x")))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("key `t/0.0`"), "{err}");
    let err = import_kerchunk(&session, &refs(plain, "t/5"), &ImportOptions::new(p("x")))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::KerchunkImport { .. })
            && err.to_string().contains("key `t/5`")
            && err
                .to_string()
                .contains("outside the array's grid of [1] chunks"),
        "{err}"
    );
    // A reference outside any supported location form is refused.
    let json = serde_json::json!({".zgroup": "{\"zarr_format\": 2}", "t/.zarray": plain, "t/0": ["relative/file.nc", 0, 4]});
    let rel = KerchunkRefs::from_json("case", json.to_string().as_bytes()).unwrap();
    let err = import_kerchunk(&session, &rel, &ImportOptions::new(p("y")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::VirtualLocationRefused { .. }), "{err}");
}
