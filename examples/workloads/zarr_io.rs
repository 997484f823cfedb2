//! Every read and write of array data in the workloads goes through zarrs `Array`s over a floe
//! session (the zarrs storage adapter), exactly as a user's Zarr client would.
//!
//! Parallelism: zarrs' sync API encodes/decodes and stores/retrieves the chunks of one
//! `store_chunks` / `retrieve_array_subset` call on its rayon pool (one thread per core by
//! default); every store call reaches floe through the sync adapter.

use std::sync::Arc;

use floe::Session;
use zarrs::array::codec::ZstdCodec;
use zarrs::array::{data_type, Array, ArrayBuilder, ArrayBytes, ArraySubset, FromArrayBytes};
use zarrs::group::GroupBuilder;
use zarrs::storage::ReadableWritableListableStorage;

use super::cf;
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

/// An array of the workloads' stores.
type StoredArray = Array<dyn zarrs::storage::ReadableWritableListableStorageTraits>;

/// Writes `array`'s `zarr.json` with zarrs' global options except the `_zarrs` attribute
/// (zarrs' version and repository) that zarrs adds by default: the stored metadata holds
/// only what describes the data. Every array metadata write of the forecast goes through
/// here, so no node of it ever carries `_zarrs`.
fn store_metadata(array: &StoredArray) -> Res<()> {
    let options = zarrs::config::global_config()
        .array_metadata_options()
        .with_include_zarrs_metadata(false);
    array.store_metadata_opt(&options)?;
    Ok(())
}

/// W1's dataset as a forecast provider publishes it (CF-1.10, see `cf`), empty along time:
/// the root group with `cf::global()`; `t2m` float32 (0, 181, 360) chunks (1, 181, 360),
/// NaN fill, zstd, dimensions (time, lat, lon); `time` int64 (0,) chunks (1,) with CF time
/// units; and the coordinates `lat` (181,) and `lon` (360,), float64, one chunk each,
/// written here once. Every array names its dimensions; none carries `_zarrs`.
pub fn create_forecast(store: &ReadableWritableListableStorage) -> Res<()> {
    create_root_group(store, cf::global())?;
    let mut t2m = ArrayBuilder::new(
        vec![0, LAT as u64, LON as u64],
        vec![1, LAT as u64, LON as u64],
        data_type::float32(),
        f32::NAN,
    );
    t2m.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(ZSTD_LEVEL, false))])
        .dimension_names(Some(["time", "lat", "lon"]))
        .attributes(cf::t2m());
    store_metadata(&t2m.build(store.clone(), "/t2m")?)?;
    let mut time = ArrayBuilder::new(vec![0], vec![1], data_type::int64(), 0i64);
    time.dimension_names(Some(["time"])).attributes(cf::time());
    store_metadata(&time.build(store.clone(), "/time")?)?;
    for (name, attributes, values) in [
        ("lat", cf::latitude(), data::latitudes()),
        ("lon", cf::longitude(), data::longitudes()),
    ] {
        let len = values.len() as u64;
        let mut builder = ArrayBuilder::new(vec![len], vec![len], data_type::float64(), f64::NAN);
        builder.dimension_names(Some([name])).attributes(attributes);
        let array = builder.build(store.clone(), &format!("/{name}"))?;
        store_metadata(&array)?;
        array.store_chunk(&[0], &values[..])?;
    }
    Ok(())
}

/// What the daily job does between opening a session and committing: grow `t2m` and `time`
/// by one along time and write day `day`'s field and timestamp.
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
    store_metadata(&t2m)?;
    time.set_shape(vec![day + 1])?;
    store_metadata(&time)?;
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

/// The whole array at `path`.
fn read_all<T: FromArrayBytes>(store: &ReadableWritableListableStorage, path: &str) -> Res<T> {
    let array = Array::open(store.clone(), path)?;
    let subset = ArraySubset::new_with_shape(array.shape().to_vec());
    Ok(array.retrieve_array_subset::<T>(&subset)?)
}

/// All of `time`.
pub fn read_time(store: &ReadableWritableListableStorage) -> Res<Vec<i64>> {
    read_all(store, "/time")
}

/// All of coordinate `name` (`lat` or `lon`).
pub fn read_coordinate(store: &ReadableWritableListableStorage, name: &str) -> Res<Vec<f64>> {
    read_all(store, &format!("/{name}"))
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
    read_all(store, "/counter")
}
