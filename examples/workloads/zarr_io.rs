//! Every read and write of array data in the workloads goes through zarrs `Array`s over a floe
//! session (the zarrs storage adapter), exactly as a user's Zarr client would.
//!
//! Parallelism: zarrs' sync API encodes/decodes and stores/retrieves the chunks of one
//! `store_chunks` / `retrieve_array_subset` call on its rayon pool (one thread per core by
//! default); every store call reaches floe through the sync adapter.

use std::sync::Arc;

use floe::Session;
use zarrs::array::codec::ZstdCodec;
use zarrs::array::{data_type, Array, ArrayBuilder, ArrayBytes, ArraySubset};
use zarrs::group::GroupBuilder;
use zarrs::storage::ReadableWritableListableStorage;

use super::data::{self, LAT, LON};
use super::report::Res;

/// zstd level used by the compressed arrays (zarr-python's default level).
pub const ZSTD_LEVEL: i32 = 3;

/// The zarrs view of a session. Sync zarrs calls must not run on a tokio worker thread.
pub fn store_of(
    session: &Session,
    rt: &tokio::runtime::Runtime,
) -> Res<ReadableWritableListableStorage> {
    let store = floe::SyncZarrsStore::new(session.zarr(), rt.handle().clone());
    Ok(Arc::new(store))
}

/// Writes the root group's `zarr.json` with `attributes`.
pub fn create_root_group(
    store: &ReadableWritableListableStorage,
    attributes: serde_json::Map<String, serde_json::Value>,
) -> Res<()> {
    GroupBuilder::new()
        .attributes(attributes)
        .build(store.clone(), "/")?
        .store_metadata()?;
    Ok(())
}

/// W1's two arrays, empty along time: `t2m` float32 (0, 181, 360) chunks (1, 181, 360), NaN
/// fill, zstd, dimension names (time, lat, lon); `time` int64 (0,) chunks (1,).
pub fn create_forecast_arrays(store: &ReadableWritableListableStorage) -> Res<()> {
    ArrayBuilder::new(
        vec![0, LAT as u64, LON as u64],
        vec![1, LAT as u64, LON as u64],
        data_type::float32(),
        f32::NAN,
    )
    .bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(ZSTD_LEVEL, false))])
    .dimension_names(Some(["time", "lat", "lon"]))
    .build(store.clone(), "/t2m")?
    .store_metadata()?;
    ArrayBuilder::new(vec![0], vec![1], data_type::int64(), 0i64)
        .dimension_names(Some(["time"]))
        .build(store.clone(), "/time")?
        .store_metadata()?;
    Ok(())
}

/// What the daily job does between opening a session and committing: grow both arrays by one
/// along time and write day `day`'s field and timestamp.
pub fn append_day(store: &ReadableWritableListableStorage, day: u64, field: &[f32]) -> Res<()> {
    let mut t2m = Array::open(store.clone(), "/t2m")?;
    let mut time = Array::open(store.clone(), "/time")?;
    if t2m.shape()[0] != day || time.shape()[0] != day {
        return Err(format!(
            "day {day}: arrays hold {} / {} days, expected {day} (not a fresh run of this job?)",
            t2m.shape()[0],
            time.shape()[0]
        )
        .into());
    }
    t2m.set_shape(vec![day + 1, LAT as u64, LON as u64])?;
    t2m.store_metadata()?;
    time.set_shape(vec![day + 1])?;
    time.store_metadata()?;
    t2m.store_chunk(&[day, 0, 0], field)?;
    time.store_chunk(&[day], &[data::day_timestamp(day)][..])?;
    Ok(())
}

/// Number of days `t2m` holds.
pub fn forecast_days(store: &ReadableWritableListableStorage) -> Res<u64> {
    Ok(Array::open(store.clone(), "/t2m")?.shape()[0])
}

/// Days `first..first + count` of `t2m`, row-major.
pub fn read_t2m(store: &ReadableWritableListableStorage, first: u64, count: u64) -> Res<Vec<f32>> {
    let t2m = Array::open(store.clone(), "/t2m")?;
    let subset =
        ArraySubset::new_with_ranges(&[first..first + count, 0..LAT as u64, 0..LON as u64]);
    Ok(t2m.retrieve_array_subset::<Vec<f32>>(&subset)?)
}

/// All of `time`.
pub fn read_time(store: &ReadableWritableListableStorage) -> Res<Vec<i64>> {
    let time = Array::open(store.clone(), "/time")?;
    let subset = ArraySubset::new_with_shape(time.shape().to_vec());
    Ok(time.retrieve_array_subset::<Vec<i64>>(&subset)?)
}

/// Checks days `first..first + count` of `t2m` against regenerated fields.
pub fn verify_days(values: &[f32], first: u64, count: u64, what: &str) -> Res<()> {
    let per_day = data::DAY_ELEMENTS;
    if values.len() != per_day * count as usize {
        return Err(super::report::mismatch(format!(
            "{what}: read {} values, expected {}",
            values.len(),
            per_day * count as usize
        )));
    }
    for (i, got) in values.chunks(per_day).enumerate() {
        let day = first + i as u64;
        if let Some(at) = data::first_mismatch_f32(got, &data::day_field(day)) {
            return Err(super::report::mismatch(format!(
                "{what}: day {day} differs at element {at}"
            )));
        }
    }
    Ok(())
}

/// Creates W3's float32 cube array, uncompressed (`bytes` only) or zstd-compressed.
pub fn create_bulk_array(
    store: &ReadableWritableListableStorage,
    zstd: bool,
) -> Res<Array<dyn zarrs::storage::ReadableWritableListableStorageTraits>> {
    let mut builder = ArrayBuilder::new(
        data::W3_SHAPE.to_vec(),
        data::W3_CHUNKS.to_vec(),
        data_type::float32(),
        0f32,
    );
    if zstd {
        builder.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(ZSTD_LEVEL, false))]);
    }
    let array = builder.build(store.clone(), "/cube")?;
    array.store_metadata()?;
    Ok(array)
}

/// Writes the whole cube: all 64 chunks in one zarrs call (parallel over chunks).
pub fn write_bulk(
    array: &Array<dyn zarrs::storage::ReadableWritableListableStorageTraits>,
    cube: &[f32],
) -> Res<()> {
    let grid = array.chunk_grid_shape().to_vec();
    array.store_chunks(&ArraySubset::new_with_shape(grid), cube)?;
    Ok(())
}

/// Reads the whole cube (parallel over chunks) as its little-endian bytes. zarrs decodes each
/// chunk straight into the output buffer; asking for `ArrayBytes` rather than `Vec<f32>` skips
/// one more copy of the whole output (zarrs' element conversion), as a reader handing the
/// buffer to numpy-like code would.
pub fn read_bulk(store: &ReadableWritableListableStorage) -> Res<Vec<u8>> {
    let array = Array::open(store.clone(), "/cube")?;
    let subset = ArraySubset::new_with_shape(array.shape().to_vec());
    let bytes = array.retrieve_array_subset::<ArrayBytes<'static>>(&subset)?;
    Ok(bytes.into_fixed()?.into_owned())
}

/// W6's int32 array of `len` one-element chunks (`bytes` codec, fill 0).
pub fn create_counter_array(store: &ReadableWritableListableStorage, len: u64) -> Res<()> {
    ArrayBuilder::new(vec![len], vec![1], data_type::int32(), 0i32)
        .build(store.clone(), "/counter")?
        .store_metadata()?;
    Ok(())
}

/// Writes element `index` of W6's array (one 4-byte chunk).
pub fn write_counter(store: &ReadableWritableListableStorage, index: u64, value: i32) -> Res<()> {
    let array = Array::open(store.clone(), "/counter")?;
    array.store_chunk(&[index], &[value][..])?;
    Ok(())
}

/// All of W6's array.
pub fn read_counter(store: &ReadableWritableListableStorage) -> Res<Vec<i32>> {
    let array = Array::open(store.clone(), "/counter")?;
    let subset = ArraySubset::new_with_shape(array.shape().to_vec());
    Ok(array.retrieve_array_subset::<Vec<i32>>(&subset)?)
}
