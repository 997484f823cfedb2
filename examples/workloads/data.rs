//! Deterministic data of the workloads (WORKLOADS.md): W1's daily forecast field, W3's bulk
//! cube, W6's tiny chunks. Everything is regenerated from a seed, so readers verify against
//! the same numbers the writers stored.

use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Latitudes of W1's grid (-90..=90 by 1 degree).
pub const LAT: usize = 181;
/// Longitudes of W1's grid (0..360 by 1 degree).
pub const LON: usize = 360;
/// Elements of one day's field.
pub const DAY_ELEMENTS: usize = LAT * LON;
/// Seconds since the Unix epoch of day 0 (2024-01-01T00:00:00Z).
pub const DAY0_UNIX: i64 = 1_704_067_200;

/// Latitude of row `i` of W1's grid, in degrees north: `-90 + i`.
pub fn latitude(i: usize) -> f64 {
    -90.0 + i as f64
}

/// Longitude of column `j` of W1's grid, in degrees east: `j`.
pub fn longitude(j: usize) -> f64 {
    j as f64
}

/// The `LAT` latitudes of W1's grid, south to north.
pub fn latitudes() -> Vec<f64> {
    (0..LAT).map(latitude).collect()
}

/// The `LON` longitudes of W1's grid, eastwards from 0.
pub fn longitudes() -> Vec<f64> {
    (0..LON).map(longitude).collect()
}

/// Day `d`'s 2 m temperature in kelvin: `288 - 30*|sin(lat)| + 5*sin(lon + d/58)` plus
/// N(0, 1.5) noise seeded by `d`, row-major (lat, lon).
pub fn day_field(day: u64) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(day);
    let noise = Normal::new(0.0f64, 1.5).unwrap_or_else(|_| unreachable!("valid sigma"));
    let phase = day as f64 / 58.0;
    let mut out = Vec::with_capacity(DAY_ELEMENTS);
    for i in 0..LAT {
        let lat = latitude(i).to_radians();
        let base = 288.0 - 30.0 * lat.sin().abs();
        for j in 0..LON {
            let lon = longitude(j).to_radians();
            out.push((base + 5.0 * (lon + phase).sin() + noise.sample(&mut rng)) as f32);
        }
    }
    out
}

/// Day `d`'s timestamp (seconds since the Unix epoch).
pub fn day_timestamp(day: u64) -> i64 {
    DAY0_UNIX + day as i64 * 86_400
}

/// Shape of W3's cube.
pub const W3_SHAPE: [u64; 3] = [256, 512, 512];
/// Chunk shape of W3's cube (64 chunks of 4 MiB).
pub const W3_CHUNKS: [u64; 3] = [16, 256, 256];

/// W3's cube, row-major: `10*sin(k/20)` along the last axis plus N(0, 1) noise.
/// Generated in parallel slabs with one seed per slab, so the result does not depend on the
/// number of threads.
pub fn bulk_cube() -> Vec<f32> {
    let [n0, n1, n2] = W3_SHAPE.map(|n| n as usize);
    let wave: Vec<f64> = (0..n2).map(|k| 10.0 * (k as f64 / 20.0).sin()).collect();
    let mut out = vec![0f32; n0 * n1 * n2];
    let slab = n1 * n2;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let per_thread = n0.div_ceil(threads);
    std::thread::scope(|scope| {
        for (t, part) in out.chunks_mut(per_thread * slab).enumerate() {
            let wave = &wave;
            scope.spawn(move || {
                for (s, plane) in part.chunks_mut(slab).enumerate() {
                    let mut rng = StdRng::seed_from_u64(1_000_000 + (t * per_thread + s) as u64);
                    let noise =
                        Normal::new(0.0f64, 1.0).unwrap_or_else(|_| unreachable!("valid sigma"));
                    for (idx, v) in plane.iter_mut().enumerate() {
                        *v = (wave[idx % n2] + noise.sample(&mut rng)) as f32;
                    }
                }
            });
        }
    });
    out
}

/// Bytes of W3's cube.
pub fn bulk_bytes() -> u64 {
    W3_SHAPE.iter().product::<u64>() * 4
}

/// The value W6's commit `i` writes into element `i`.
pub fn long_history_value(i: u64) -> i32 {
    (i as i32).wrapping_mul(7919) ^ 0x5a5a
}

/// Bitwise equality of float slices (NaN-safe), with the first differing index.
pub fn first_mismatch_f32(a: &[f32], b: &[f32]) -> Option<usize> {
    if a.len() != b.len() {
        return Some(a.len().min(b.len()));
    }
    a.iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
}

/// Position of the first element whose little-endian bytes in `bytes` differ from `values`.
pub fn first_mismatch_le_bytes(bytes: &[u8], values: &[f32]) -> Option<usize> {
    if bytes.len() != values.len() * 4 {
        return Some(bytes.len().min(values.len() * 4) / 4);
    }
    bytes
        .chunks_exact(4)
        .zip(values)
        .position(|(b, v)| b != v.to_le_bytes())
}
