//! W3: bulk throughput. A 268 MB float32 cube in 64 chunks of 4 MiB, written + committed and
//! read back (fresh repository handle) through zarrs, uncompressed and with zstd; and the same
//! 64 chunks as plain files, with as many threads as zarrs' rayon pool uses for the chunks.

use std::path::Path;
use std::time::Instant;

use floe::{Repository, StorageOptions, VersionSpec};

use super::report::{median, mismatch, ms_since, Report, Res};
use super::{data, zarr_io, Ctx};

const READ_RUNS: usize = 3;

/// Writes dirty pages back (`sync`) before a timed write, so that every write starts from the
/// same state instead of paying for the previous one's writeback.
fn settle_disk() {
    let _ = std::process::Command::new("sync").status();
}

fn mbps(bytes: u64, ms: f64) -> f64 {
    bytes as f64 / 1e6 / (ms / 1e3)
}

/// Write + commit time and median read time (ms) of the cube in a new repository at `dir`.
fn repository_round_trip(ctx: &Ctx, dir: &Path, cube: &[f32], zstd: bool) -> Res<RoundTrip> {
    let location = dir.to_str().ok_or("scratch path is not UTF-8")?;
    let repo = ctx.init(location)?;
    let write_ms = timed_write(ctx, &repo, cube, zstd)?;
    drop(repo);

    let mut reads = Vec::with_capacity(READ_RUNS);
    for _ in 0..READ_RUNS {
        let start = Instant::now();
        let repo = ctx.open(location)?;
        let session = ctx
            .rt
            .block_on(repo.readonly_session(&VersionSpec::Branch(floe::DEFAULT_BRANCH.into())))?;
        let got = zarr_io::read_bulk(&zarr_io::store_of(&session, &ctx.rt)?)?;
        reads.push(ms_since(start));
        if let Some(at) = data::first_mismatch_le_bytes(&got, cube) {
            return Err(mismatch(format!(
                "W3 (zstd: {zstd}): element {at} read back differs"
            )));
        }
    }
    let (stored, _) = super::report::dir_usage(dir)?;
    Ok(RoundTrip {
        write_ms,
        read_ms: median(&reads),
        chunk_read_ms: floe_chunk_reads(ctx, location)?,
        stored,
    })
}

/// Write + commit time (ms) of the uncompressed cube in a new repository at `dir` whose
/// sessions keep at most `in_flight` chunk uploads running (`io_concurrency`).
fn write_with_in_flight(ctx: &Ctx, dir: &Path, cube: &[f32], in_flight: usize) -> Res<f64> {
    let location = dir.to_str().ok_or("scratch path is not UTF-8")?;
    let settings = floe::RepositorySettings {
        io_concurrency: in_flight,
        ..floe::RepositorySettings::default()
    };
    let storage = floe::create_storage(location, &StorageOptions::default())?;
    let repo = ctx.rt.block_on(Repository::init(storage, settings))?;
    timed_write(ctx, &repo, cube, false)
}

/// Creates the cube array in `repo` (a new repository), then times writing the cube through
/// zarrs and committing it, after `sync`. Returns milliseconds.
fn timed_write(ctx: &Ctx, repo: &Repository, cube: &[f32], zstd: bool) -> Res<f64> {
    let session = ctx
        .rt
        .block_on(repo.writable_session(floe::DEFAULT_BRANCH))?;
    let store = zarr_io::store_of(&session, &ctx.rt)?;
    zarr_io::create_root_group(&store, Default::default())?;
    let array = zarr_io::create_bulk_array(&store, zstd)?;
    settle_disk();
    let start = Instant::now();
    zarr_io::write_bulk(&array, cube)?;
    ctx.rt.block_on(session.commit("bulk write", None))?;
    Ok(ms_since(start))
}

/// Diagnostic: median time to fetch the 64 stored (encoded) chunks straight from a fresh
/// session with `Session::get_chunk`, as many at once as zarrs has threads, no decoding. It
/// separates floe's share of a read from zarrs' decoding and assembly.
fn floe_chunk_reads(ctx: &Ctx, location: &str) -> Res<f64> {
    use futures::{StreamExt, TryStreamExt};
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cube = floe::NodePath::new("cube")?;
    let [g0, g1, g2] = [0, 1, 2].map(|d| data::W3_SHAPE[d] / data::W3_CHUNKS[d]);
    let coords: Vec<[u64; 3]> = (0..g0)
        .flat_map(|i| (0..g1).flat_map(move |j| (0..g2).map(move |k| [i, j, k])))
        .collect();
    let mut times = Vec::with_capacity(READ_RUNS);
    for _ in 0..READ_RUNS {
        let start = Instant::now();
        // The chunks are kept until the end, like the plain-file reads keep theirs.
        let chunks = ctx.rt.block_on(async {
            let repo = Repository::open_location(location, &StorageOptions::default()).await?;
            let session = repo
                .readonly_session(&VersionSpec::Branch(floe::DEFAULT_BRANCH.into()))
                .await?;
            futures::stream::iter(coords.iter())
                .map(|c| {
                    let (session, cube) = (&session, &cube);
                    async move { session.get_chunk(cube, c).await }
                })
                .buffer_unordered(threads)
                .try_collect::<Vec<_>>()
                .await
        })?;
        times.push(ms_since(start));
        let bytes: u64 = chunks.iter().flatten().map(|b| b.len() as u64).sum();
        if chunks.len() != coords.len() || bytes < data::bulk_bytes() / 2 {
            return Err(mismatch(format!(
                "W3: the stored chunks hold only {bytes} bytes"
            )));
        }
    }
    Ok(median(&times))
}

/// Reference: the same uncompressed cube written and read by the same zarrs calls on zarrs'
/// own plain filesystem store (one file per chunk). Returns (write ms, median read ms): what the
/// Zarr client itself costs on top of plain files, independent of floe.
fn zarrs_filesystem_round_trip(dir: &Path, cube: &[f32]) -> Res<(f64, f64)> {
    std::fs::create_dir_all(dir)?;
    let store: zarrs::storage::ReadableWritableListableStorage =
        std::sync::Arc::new(zarrs::filesystem::FilesystemStore::new(dir)?);
    zarr_io::create_root_group(&store, Default::default())?;
    let array = zarr_io::create_bulk_array(&store, false)?;
    settle_disk();
    let start = Instant::now();
    zarr_io::write_bulk(&array, cube)?;
    let write_ms = ms_since(start);
    let mut reads = Vec::with_capacity(READ_RUNS);
    for _ in 0..READ_RUNS {
        let start = Instant::now();
        let got = zarr_io::read_bulk(&store)?;
        reads.push(ms_since(start));
        if let Some(at) = data::first_mismatch_le_bytes(&got, cube) {
            return Err(mismatch(format!(
                "W3 (zarrs filesystem): element {at} differs"
            )));
        }
    }
    Ok((write_ms, median(&reads)))
}

/// Figures of one codec's round trip.
struct RoundTrip {
    write_ms: f64,
    read_ms: f64,
    chunk_read_ms: f64,
    stored: u64,
}

/// The cube's 64 chunks as little-endian bytes (what the uncompressed codec stores).
fn chunk_bytes(cube: &[f32]) -> Vec<Vec<u8>> {
    let [n0, n1, n2] = data::W3_SHAPE.map(|n| n as usize);
    let [c0, c1, c2] = data::W3_CHUNKS.map(|n| n as usize);
    let mut chunks = Vec::new();
    for i in 0..n0 / c0 {
        for j in 0..n1 / c1 {
            for k in 0..n2 / c2 {
                let mut bytes = Vec::with_capacity(c0 * c1 * c2 * 4);
                for a in 0..c0 {
                    for b in 0..c1 {
                        let row = ((i * c0 + a) * n1 + j * c1 + b) * n2 + k * c2;
                        for v in &cube[row..row + c2] {
                            bytes.extend_from_slice(&v.to_le_bytes());
                        }
                    }
                }
                chunks.push(bytes);
            }
        }
    }
    chunks
}

/// Writes (once) and reads (median of `READ_RUNS`) the chunks as plain files with `threads`
/// threads, each taking every `threads`-th file. Returns (write ms, read ms).
fn plain_files(dir: &Path, chunks: &[Vec<u8>], threads: usize) -> Res<(f64, f64)> {
    std::fs::create_dir_all(dir)?;
    let path = |i: usize| dir.join(format!("chunk-{i:02}"));
    settle_disk();
    let start = Instant::now();
    std::thread::scope(|scope| -> Res<()> {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || -> std::io::Result<()> {
                    for i in (t..chunks.len()).step_by(threads) {
                        std::fs::write(path(i), &chunks[i])?;
                    }
                    Ok(())
                })
            })
            .collect();
        for w in workers {
            w.join().map_err(|_| "plain-file writer panicked")??;
        }
        Ok(())
    })?;
    let write_ms = ms_since(start);
    let mut reads = Vec::with_capacity(READ_RUNS);
    for _ in 0..READ_RUNS {
        let start = Instant::now();
        let read: Vec<(usize, Vec<u8>)> =
            std::thread::scope(|scope| -> Res<Vec<(usize, Vec<u8>)>> {
                let workers: Vec<_> = (0..threads)
                    .map(|t| {
                        scope.spawn(move || -> std::io::Result<Vec<(usize, Vec<u8>)>> {
                            (t..chunks.len())
                                .step_by(threads)
                                .map(|i| Ok((i, std::fs::read(path(i))?)))
                                .collect()
                        })
                    })
                    .collect();
                let mut all = Vec::new();
                for w in workers {
                    all.extend(w.join().map_err(|_| "plain-file reader panicked")??);
                }
                Ok(all)
            })?;
        reads.push(ms_since(start));
        if read.len() != chunks.len() || read.iter().any(|(i, bytes)| bytes != &chunks[*i]) {
            return Err(mismatch("W3: plain files read back differ"));
        }
    }
    Ok((write_ms, median(&reads)))
}

/// Runs W3 in `dir`.
pub fn run(ctx: &Ctx, dir: &Path) -> Res<Report> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    println!("W3: generating the 268 MB cube");
    let cube = data::bulk_cube();
    let bytes = data::bulk_bytes();
    println!("W3: uncompressed round trip");
    let raw = repository_round_trip(ctx, &dir.join("raw"), &cube, false)?;
    println!("W3: zstd round trip");
    let zstd = repository_round_trip(ctx, &dir.join("zstd"), &cube, true)?;
    println!("W3: uncompressed writes with 1, 2, 4, 8 and 16 uploads in flight");
    let mut in_flight_mbps = Vec::new();
    for in_flight in [1usize, 2, 4, 8, 16] {
        let ms = write_with_in_flight(
            ctx,
            &dir.join(format!("in-flight-{in_flight}")),
            &cube,
            in_flight,
        )?;
        in_flight_mbps.push((in_flight, mbps(bytes, ms)));
    }
    println!("W3: zarrs on its own filesystem store (reference)");
    let (zarrs_fs_write, zarrs_fs_read) =
        zarrs_filesystem_round_trip(&dir.join("zarrs-fs"), &cube)?;
    println!("W3: plain files ({threads} threads)");
    let chunks = chunk_bytes(&cube);
    drop(cube);
    let (plain_write, plain_read) = plain_files(&dir.join("plain"), &chunks, threads)?;
    let (plain_write_10, plain_read_10) = plain_files(&dir.join("plain-10-threads"), &chunks, 10)?;

    let mut report = Report::new("w3");
    let mb = |ms| mbps(bytes, ms);
    report.figure(
        "write_mbps_raw_codec",
        mb(raw.write_ms),
        Some(883.0),
        "MB/s",
    );
    report.figure("read_mbps_raw_codec", mb(raw.read_ms), Some(1458.0), "MB/s");
    report.figure("write_mbps_zstd", mb(zstd.write_ms), None, "MB/s");
    report.figure("read_mbps_zstd", mb(zstd.read_ms), None, "MB/s");
    report.figure("plain_files_write_mbps", mb(plain_write), None, "MB/s");
    report.figure(
        "plain_files_read_mbps",
        mb(plain_read),
        Some(3719.0),
        "MB/s",
    );
    let vs_plain = plain_read / raw.read_ms;
    report.figure("read_raw_vs_plain_files", vs_plain, Some(0.39), "ratio");
    report.figure(
        "plain_files_write_mbps_10_threads",
        mb(plain_write_10),
        None,
        "MB/s",
    );
    let in_flight: serde_json::Map<String, serde_json::Value> = in_flight_mbps
        .iter()
        .map(|(n, rate)| (n.to_string(), serde_json::Value::from(rate.round())))
        .collect();
    report.note(format!(
        "uncompressed write + commit MB/s by uploads in flight: {}",
        in_flight_mbps
            .iter()
            .map(|(n, rate)| format!("{n}: {rate:.0}"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    report.extra("write_mbps_raw_by_uploads_in_flight", in_flight.into());
    // Icechunk 2.3.0 (WORKLOADS.md; plain files with 10 threads in its window: 2,218 MB/s
    // write, 3,331 read).
    report.newest("write_mbps_raw_codec", 2233.0);
    report.newest("read_mbps_raw_codec", 499.0);
    report.newest("write_mbps_zstd", 859.0);
    report.newest("read_mbps_zstd", 453.0);
    let stored_mb = |ms| mbps(raw.stored, ms);
    report.figure(
        "floe_chunk_read_mbps_raw",
        stored_mb(raw.chunk_read_ms),
        None,
        "MB/s",
    );
    report.extra(
        "floe_chunk_read_mbps_zstd",
        mbps(zstd.stored, zstd.chunk_read_ms).into(),
    );
    report.extra("plain_files_read_mbps_10_threads", mb(plain_read_10).into());
    report.extra("zarrs_filesystem_write_mbps_raw", mb(zarrs_fs_write).into());
    report.extra("zarrs_filesystem_read_mbps_raw", mb(zarrs_fs_read).into());
    let vs_zarrs_fs = zarrs_fs_read / raw.read_ms;
    report.extra("read_raw_vs_zarrs_filesystem", vs_zarrs_fs.into());
    let chunk_vs_plain = plain_read / raw.chunk_read_ms * (raw.stored as f64 / bytes as f64);
    report.extra("floe_chunk_read_vs_plain_files", chunk_vs_plain.into());
    report.extra("threads", threads.into());
    report.extra("stored_bytes_raw_codec", raw.stored.into());
    report.extra("stored_bytes_zstd", zstd.stored.into());
    report.target(
        format!("uncompressed reads >= 0.9 of plain-file reads (got {vs_plain:.2})"),
        vs_plain >= 0.9,
    );
    report.note(format!(
        "zarrs store_chunks / retrieve_array_subset over the sync adapter, {threads} rayon \
         threads; plain files with {threads} threads (10 threads: {:.0} MB/s; Icechunk's \
         plain-file figure used 10)",
        mb(plain_read_10)
    ));
    report.note(
        "write = zarrs encode + store of 64 chunks + commit; read = open + session + zarrs read \
         of the whole cube (median of 3); floe_chunk_read = the 64 encoded chunks fetched with \
         Session::get_chunk, no zarrs (diagnostic)",
    );
    Ok(report)
}
