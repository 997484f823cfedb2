//! The repository the Python interop suite reads: arrays of many data types and codecs written
//! by zarrs through floe's [`AsyncZarrsStore`], over several commits, a tag and a second
//! branch, with an in-memory model of every element so each version's expected values can be
//! handed to Python.
//!
//! Every array has shape [`SHAPE`] and dimension names [`DIMS`]. An element's value depends
//! only on the commit generation `g` that last wrote it and its row-major index `i` (see
//! [`Kind::element`]); generation 0 means "never written or erased": the fill value.

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::ops::Range;
use std::sync::Arc;

use floe::{AsyncZarrsStore, Repository, SnapshotId};
use serde_json::{json, Map, Value};
use zarrs::array::codec::{BytesCodec, Crc32cCodec, GzipCodec, ShardingCodecBuilder, ZstdCodec};
use zarrs::array::{data_type, Array, ArrayBuilder, ArrayBytes, DataType, FillValueMetadata};
use zarrs::group::GroupBuilder;

/// The shape of every array.
pub const SHAPE: [u64; 2] = [12, 10];
/// The dimension names of every array (xarray needs them for Zarr v3).
pub const DIMS: [&str; 2] = ["y", "x"];
/// Characters of the fixed-length string array.
const LABEL_CHARS: u64 = 8;

/// The element type of an array.
#[derive(Clone, Copy, Debug)]
pub enum Kind {
    F32,
    F64,
    I16,
    I32,
    I64,
    U8,
    Bool,
    C64,
    C128,
    /// `fixed_length_utf32` of [`LABEL_CHARS`] characters (numpy `<U8`).
    Utf32,
    /// `string` (variable-length UTF-8, `vlen-utf8` codec); its values are texts, not bytes.
    Text,
}

impl Kind {
    fn data_type(self) -> DataType {
        match self {
            Kind::F32 => data_type::float32(),
            Kind::F64 => data_type::float64(),
            Kind::I16 => data_type::int16(),
            Kind::I32 => data_type::int32(),
            Kind::I64 => data_type::int64(),
            Kind::U8 => data_type::uint8(),
            Kind::Bool => data_type::bool(),
            Kind::C64 => data_type::complex64(),
            Kind::C128 => data_type::complex128(),
            Kind::Utf32 => {
                data_type::fixed_length_utf32(NonZeroU64::new(LABEL_CHARS * 4).unwrap()).unwrap()
            }
            Kind::Text => data_type::string(),
        }
    }

    /// The numpy dtype (little-endian) Python should see.
    fn numpy(self) -> String {
        match self {
            Kind::F32 => "<f4".into(),
            Kind::F64 => "<f8".into(),
            Kind::I16 => "<i2".into(),
            Kind::I32 => "<i4".into(),
            Kind::I64 => "<i8".into(),
            Kind::U8 => "|u1".into(),
            Kind::Bool => "|b1".into(),
            Kind::C64 => "<c8".into(),
            Kind::C128 => "<c16".into(),
            Kind::Utf32 => format!("<U{LABEL_CHARS}"),
            Kind::Text => "text".into(),
        }
    }

    /// The fill value as written in `zarr.json`.
    fn fill_json(self) -> Value {
        match self {
            Kind::F32 => json!("NaN"),
            Kind::F64 => json!(-1.5),
            Kind::I16 => json!(-7),
            Kind::I32 => json!(0),
            Kind::I64 => json!(42),
            Kind::U8 => json!(255),
            Kind::Bool => json!(false),
            Kind::C64 => json!([0.0, 0.0]),
            Kind::C128 => json!([1.0, -1.0]),
            Kind::Utf32 | Kind::Text => json!(""),
        }
    }

    /// The fill value's bytes (little-endian, as numpy stores the dtype of [`Kind::numpy`]).
    fn fill_bytes(self) -> Vec<u8> {
        match self {
            Kind::F32 => f32::NAN.to_le_bytes().to_vec(),
            Kind::F64 => (-1.5f64).to_le_bytes().to_vec(),
            Kind::I16 => (-7i16).to_le_bytes().to_vec(),
            Kind::I32 => 0i32.to_le_bytes().to_vec(),
            Kind::I64 => 42i64.to_le_bytes().to_vec(),
            Kind::U8 => vec![255],
            Kind::Bool => vec![0],
            Kind::C64 => vec![0; 8],
            Kind::C128 => [1.0f64.to_le_bytes(), (-1.0f64).to_le_bytes()].concat(),
            Kind::Utf32 => vec![0; (LABEL_CHARS * 4) as usize],
            Kind::Text => unreachable!("texts have no fixed-size bytes"),
        }
    }

    /// The value of element `i` of a [`Kind::Text`] array written by generation `g` (>= 1):
    /// lengths vary from 0 to 9 characters, some non-ASCII.
    pub fn text(g: u8, i: u64) -> String {
        let base = u64::from(g) * 1000 + i;
        match base % 4 {
            0 => String::new(),
            1 => format!("é{base}"),
            2 => format!("{g}"),
            _ => format!("text-{i}-ü"),
        }
    }

    /// The little-endian bytes of element `i` (row-major) written by generation `g` (>= 1).
    pub fn element(self, g: u8, i: u64) -> Vec<u8> {
        let base = u64::from(g) * 1000 + i;
        match self {
            Kind::F32 => (base as f32 * 0.25).to_le_bytes().to_vec(),
            Kind::F64 => (base as f64 * 0.5 + 0.125).to_le_bytes().to_vec(),
            Kind::I16 => (-(base as i16)).to_le_bytes().to_vec(),
            Kind::I32 => ((base * 3) as i32).to_le_bytes().to_vec(),
            Kind::I64 => ((base as i64) * 1_000_000_007).to_le_bytes().to_vec(),
            Kind::U8 => vec![(base % 251) as u8],
            Kind::Bool => vec![u8::from((i + u64::from(g)) % 3 == 0)],
            Kind::C64 => [
                (base as f32 * 0.5).to_le_bytes(),
                (-f32::from(g)).to_le_bytes(),
            ]
            .concat(),
            Kind::C128 => [(base as f64).to_le_bytes(), (i as f64 * 0.25).to_le_bytes()].concat(),
            Kind::Text => unreachable!("texts have no fixed-size bytes"),
            Kind::Utf32 => {
                let text = format!("g{g}i{i}");
                let mut out: Vec<u8> = text
                    .chars()
                    .flat_map(|c| u32::from(c).to_le_bytes())
                    .collect();
                out.resize((LABEL_CHARS * 4) as usize, 0);
                out
            }
        }
    }
}

/// How an array's chunks are encoded.
#[derive(Clone, Copy, Debug)]
pub enum Codecs {
    /// `bytes` (little-endian) only.
    Bytes,
    Gzip,
    Zstd,
    Crc32c,
    /// `bytes` big-endian, then zstd with its checksum.
    BigEndianZstd,
    /// `sharding_indexed` with inner chunks of half the outer chunk's rows and columns, the
    /// inner chunks zstd-compressed.
    Sharded,
}

/// One array of the dataset.
#[derive(Clone, Debug)]
pub struct Case {
    /// The node path without the leading `/`.
    pub path: &'static str,
    pub kind: Kind,
    pub codecs: Codecs,
    /// The chunk shape of the grid (the shard shape for [`Codecs::Sharded`]).
    pub chunks: [u64; 2],
}

impl Case {
    /// The read chunk shape (inner chunks for sharded arrays) and the shard shape.
    fn chunks_and_shards(&self) -> ([u64; 2], Option<[u64; 2]>) {
        match self.codecs {
            Codecs::Sharded => ([self.chunks[0] / 2, self.chunks[1] / 2], Some(self.chunks)),
            _ => (self.chunks, None),
        }
    }

    fn codec_names(&self) -> Vec<&'static str> {
        let to_bytes = match self.kind {
            Kind::Text => "vlen-utf8",
            _ => "bytes",
        };
        match self.codecs {
            Codecs::Bytes => vec![to_bytes],
            Codecs::Gzip => vec![to_bytes, "gzip"],
            Codecs::Zstd => vec![to_bytes, "zstd"],
            Codecs::Crc32c => vec![to_bytes, "crc32c"],
            Codecs::BigEndianZstd => vec!["bytes", "zstd"],
            Codecs::Sharded => vec!["sharding_indexed"],
        }
    }

    fn builder(&self) -> ArrayBuilder {
        let fill: FillValueMetadata = serde_json::from_value(self.kind.fill_json()).unwrap();
        let mut b = ArrayBuilder::new(
            SHAPE.to_vec(),
            self.chunks.to_vec(),
            self.kind.data_type(),
            fill,
        );
        b.dimension_names(Some(DIMS));
        let mut attrs = Map::new();
        attrs.insert("long_name".into(), json!(format!("array {}", self.path)));
        b.attributes(attrs);
        match self.codecs {
            Codecs::Bytes => {}
            Codecs::Gzip => {
                b.bytes_to_bytes_codecs(vec![Arc::new(GzipCodec::new(5).unwrap())]);
            }
            Codecs::Zstd => {
                b.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(3, false))]);
            }
            Codecs::Crc32c => {
                b.bytes_to_bytes_codecs(vec![Arc::new(Crc32cCodec::new())]);
            }
            Codecs::BigEndianZstd => {
                b.array_to_bytes_codec(Arc::new(BytesCodec::big()))
                    .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(1, true))]);
            }
            Codecs::Sharded => {
                let (inner, _) = self.chunks_and_shards();
                let inner = inner.map(|n| NonZeroU64::new(n).unwrap()).to_vec();
                b.array_to_bytes_codec(Arc::new(
                    ShardingCodecBuilder::new(inner, &self.kind.data_type())
                        .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(1, false))])
                        .build(),
                ));
            }
        }
        b
    }
}

/// The arrays present from the first commit on.
pub fn cases() -> Vec<Case> {
    let case = |path, kind, codecs, chunks| Case {
        path,
        kind,
        codecs,
        chunks,
    };
    vec![
        case("f32", Kind::F32, Codecs::Bytes, [4, 5]),
        case("f64", Kind::F64, Codecs::Gzip, [4, 5]),
        case("i16", Kind::I16, Codecs::Zstd, [4, 5]),
        case("i32", Kind::I32, Codecs::Crc32c, [4, 5]),
        case("i64", Kind::I64, Codecs::BigEndianZstd, [4, 5]),
        case("u8", Kind::U8, Codecs::Gzip, [3, 10]),
        case("flag", Kind::Bool, Codecs::Zstd, [4, 5]),
        case("c64", Kind::C64, Codecs::Bytes, [4, 5]),
        case("c128", Kind::C128, Codecs::Gzip, [6, 5]),
        case("label", Kind::Utf32, Codecs::Zstd, [4, 5]),
        case("text", Kind::Text, Codecs::Gzip, [4, 5]),
        case("sharded", Kind::I32, Codecs::Sharded, [6, 10]),
        case("weather/surface/t2m", Kind::F32, Codecs::Zstd, [4, 5]),
    ]
}

/// The array created by the second commit.
pub fn added_case() -> Case {
    Case {
        path: "added",
        kind: Kind::I32,
        codecs: Codecs::Zstd,
        chunks: [6, 5],
    }
}

/// Attributes of the groups.
pub fn group_attributes() -> Vec<(&'static str, Value)> {
    vec![
        (
            "",
            json!({"title": "python interop", "conventions": "none"}),
        ),
        (
            "weather",
            json!({"source": "model-x", "levels": [1000, 850]}),
        ),
        ("weather/surface", json!({})),
    ]
}

/// Which generation last wrote each element of each array (0 = fill value); arrays absent
/// from a version are absent from its model.
pub type Model = BTreeMap<String, (Case, Vec<u8>)>;

/// A writable branch of the repository seen through zarrs, and the model of its contents.
pub struct Writer {
    pub store: Arc<AsyncZarrsStore>,
    pub model: Model,
}

impl Writer {
    /// Creates the groups (when `with_groups`) and `cases` (metadata only).
    pub async fn create(&mut self, cases: &[Case], with_groups: bool) {
        let groups = if with_groups {
            group_attributes()
        } else {
            Vec::new()
        };
        for (path, attrs) in groups {
            let mut group = GroupBuilder::new()
                .build(self.store.clone(), &format!("/{path}"))
                .unwrap();
            *group.attributes_mut() = attrs.as_object().unwrap().clone();
            group.async_store_metadata().await.unwrap();
        }
        for case in cases {
            let array = case
                .builder()
                .build(self.store.clone(), &format!("/{}", case.path))
                .unwrap();
            array.async_store_metadata().await.unwrap();
            let len = (SHAPE[0] * SHAPE[1]) as usize;
            self.model
                .insert(case.path.to_string(), (case.clone(), vec![0; len]));
        }
    }

    /// Writes generation `g` into `rows` × `cols` of every array in the model.
    pub async fn write_region(&mut self, rows: Range<u64>, cols: Range<u64>, g: u8) {
        for (path, (case, gens)) in self.model.iter_mut() {
            let array = Array::async_open(self.store.clone(), &format!("/{path}"))
                .await
                .unwrap();
            let region = [rows.clone(), cols.clone()];
            let indices: Vec<u64> = rows
                .clone()
                .flat_map(|r| cols.clone().map(move |c| r * SHAPE[1] + c))
                .collect();
            for &i in &indices {
                gens[i as usize] = g;
            }
            if let Kind::Text = case.kind {
                let texts: Vec<String> = indices.iter().map(|&i| Kind::text(g, i)).collect();
                array
                    .async_store_array_subset(&region, texts)
                    .await
                    .unwrap();
                continue;
            }
            let bytes: Vec<u8> = indices
                .iter()
                .flat_map(|&i| case.kind.element(g, i))
                .collect();
            array
                .async_store_array_subset(&region, ArrayBytes::new_flen(bytes))
                .await
                .unwrap();
        }
    }

    /// Erases the first stored chunk (shard) of every array: its elements read as fill.
    pub async fn erase_first_chunk(&mut self) {
        for (path, (case, gens)) in self.model.iter_mut() {
            let array = Array::async_open(self.store.clone(), &format!("/{path}"))
                .await
                .unwrap();
            array.async_erase_chunk(&[0, 0]).await.unwrap();
            for r in 0..case.chunks[0] {
                for c in 0..case.chunks[1] {
                    gens[(r * SHAPE[1] + c) as usize] = 0;
                }
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What Python must find in one version: per array its dtype, chunking, fill value,
/// attributes, dimension names and all values (hex of the little-endian numpy buffer; a list
/// of texts for [`Kind::Text`]).
pub fn expected_version(label: &str, segment: &str, model: &Model) -> Value {
    let mut arrays = Map::new();
    for (path, (case, gens)) in model {
        let (chunks, shards) = case.chunks_and_shards();
        let values = if let Kind::Text = case.kind {
            let texts: Vec<String> = gens
                .iter()
                .enumerate()
                .map(|(i, &g)| {
                    if g == 0 {
                        String::new()
                    } else {
                        Kind::text(g, i as u64)
                    }
                })
                .collect();
            json!({"texts": texts})
        } else {
            let mut data = Vec::new();
            for (i, &g) in gens.iter().enumerate() {
                if g == 0 {
                    data.extend(case.kind.fill_bytes());
                } else {
                    data.extend(case.kind.element(g, i as u64));
                }
            }
            json!({"hex": hex(&data)})
        };
        arrays.insert(
            path.clone(),
            json!({
                "numpy": case.kind.numpy(),
                "shape": SHAPE,
                "dims": DIMS,
                "chunks": chunks,
                "shards": shards,
                "fill": case.kind.fill_json(),
                "codecs": case.codec_names(),
                "attrs": {"long_name": format!("array {path}")},
                "values": values,
            }),
        );
    }
    json!({"label": label, "segment": segment, "arrays": arrays})
}

/// A version to read and its expected contents.
pub struct Version {
    pub label: String,
    pub expected: Value,
}

/// Builds the history and returns the versions to check:
///
/// 1. main, generation 1: rows 0..8 of every array (rows 8.. never written: missing chunks);
/// 2. main, generation 2: rows 2..6 × cols 3..9 overwritten (partial chunks) and the array
///    `added` created and filled; tagged `release`; branch `dev` starts here;
/// 3. main, generation 3: the first chunk (shard) of every array erased, rows 10..12 × cols
///    0..5 written;
/// 4. dev, generation 10: rows 0..4 × cols 5..10.
///
/// Versions: `main` (3), tag `release` (2), the full snapshot id of 1, a 12-character id
/// prefix of 2, `main@<time between 1 and 2>` (1, the time written with a +02:00 offset) and
/// `dev` (4).
pub async fn build_history(repo: &Repository) -> Vec<Version> {
    // Attributes hold exactly what the test writes (no `_zarrs` provenance entry).
    zarrs::config::global_config_mut().set_include_zarrs_metadata(false);
    let session = repo.writable_session("main").await.unwrap();
    let mut main = Writer {
        store: Arc::new(AsyncZarrsStore::new(session.zarr())),
        model: Model::new(),
    };
    main.create(&cases(), true).await;
    main.write_region(0..8, 0..SHAPE[1], 1).await;
    let first = session.commit("generation 1", None).await.unwrap();
    let after_first = main.model.clone();
    tokio::time::sleep(std::time::Duration::from_millis(30)).await;

    main.write_region(2..6, 3..9, 2).await;
    let mut added = Writer {
        store: main.store.clone(),
        model: Model::new(),
    };
    added.create(&[added_case()], false).await;
    added.write_region(0..SHAPE[0], 0..SHAPE[1], 2).await;
    main.model.extend(added.model);
    let second = session.commit("generation 2", None).await.unwrap();
    let after_second = main.model.clone();
    repo.create_tag("release", second).await.unwrap();
    repo.create_branch("dev", second).await.unwrap();

    main.erase_first_chunk().await;
    main.write_region(10..12, 0..5, 3).await;
    session.commit("generation 3", None).await.unwrap();

    let dev_session = repo.writable_session("dev").await.unwrap();
    let mut dev = Writer {
        store: Arc::new(AsyncZarrsStore::new(dev_session.zarr())),
        model: after_second.clone(),
    };
    dev.write_region(0..4, 5..SHAPE[1], 10).await;
    dev_session.commit("dev generation 10", None).await.unwrap();

    let between = midpoint(repo, first, second).await;
    let as_of = format!("main@{between}");
    let full_id = first.to_string();
    let version = |label: &str, segment: &str, model: &Model| Version {
        label: label.to_string(),
        expected: expected_version(label, segment, model),
    };
    vec![
        version("branch main", "main", &main.model),
        version("tag release", "release", &after_second),
        version("snapshot id", &full_id, &after_first),
        version(
            "snapshot id prefix",
            &second.to_string()[..12],
            &after_second,
        ),
        version("as of a time", &as_of, &after_first),
        version("branch dev", "dev", &dev.model),
    ]
}

/// An RFC 3339 time strictly between the commits of `a` and `b`, with a +02:00 offset.
async fn midpoint(repo: &Repository, a: SnapshotId, b: SnapshotId) -> String {
    let ta = repo.snapshot_entry(a).await.unwrap().committed_at;
    let tb = repo.snapshot_entry(b).await.unwrap().committed_at;
    assert!(ta < tb, "commits must have distinct times");
    let mid = ta + (tb - ta) / 2;
    let offset = chrono::FixedOffset::east_opt(2 * 3600).unwrap();
    mid.with_timezone(&offset)
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
}
