//! W4: a million virtual references. One uint8 array of N chunks of 64 bytes (N = 1,000,000
//! by default, `--refs` to change), every chunk a virtual reference into one local file
//! (`file://` container) at offset 64 * i, then the same with shuffled offsets.
//!
//! The writer and the reader run as child processes (this binary re-executed with
//! `--w4-writer` / `--w4-reader`) so that each peak RSS is its own.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use floe::{
    NodePath, Repository, StorageOptions, VersionSpec, VirtualAccess, VirtualChunkRef,
    VirtualContainer, VirtualSource,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::report::{dir_usage, mismatch, ms_since, peak_rss_mib, Report, Res};
use super::Ctx;

const CHUNK: u64 = 64;
const SEED: u64 = 4;

/// Where chunk `i` lives in the source file.
fn offset_of(i: u64, permutation: Option<&[u64]>) -> u64 {
    CHUNK * permutation.map_or(i, |p| p[i as usize])
}

fn permutation(n: u64) -> Vec<u64> {
    let mut p: Vec<u64> = (0..n).collect();
    p.shuffle(&mut rand::rngs::StdRng::seed_from_u64(SEED));
    p
}

/// The source file: byte k is a hash of k, so every chunk is distinct.
fn write_source(path: &Path, n: u64) -> Res<()> {
    let bytes: Vec<u8> = (0..n * CHUNK)
        .map(|k| (k.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8)
        .collect();
    std::fs::write(path, bytes)?;
    Ok(())
}

fn array_json(n: u64) -> Value {
    json!({
        "zarr_format": 3, "node_type": "array", "shape": [n * CHUNK], "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [CHUNK]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0, "codecs": [{"name": "bytes"}]
    })
}

/// `--w4-writer <repo> <source file> <refs> <shuffled 0|1>`: sets every reference, commits,
/// prints one JSON line.
pub fn writer_main(args: &[String]) -> Res<()> {
    let [location, source, refs, shuffled] = args else {
        return Err("--w4-writer <repo> <source> <refs> <shuffled>".into());
    };
    let n: u64 = refs.parse()?;
    let perm = (shuffled == "1").then(|| permutation(n));
    let rt = tokio::runtime::Runtime::new()?;
    let repo = rt.block_on(Repository::open_location(
        location,
        &StorageOptions::default(),
    ))?;
    let session = rt.block_on(repo.writable_session(floe::DEFAULT_BRANCH))?;
    let path = NodePath::new("/refs")?;
    let dir = Path::new(source)
        .parent()
        .and_then(Path::to_str)
        .ok_or("source path is not UTF-8")?;
    rt.block_on(
        repo.declare_virtual_containers(&[VirtualContainer::new(&format!("{dir}/"), vec![])?]),
    )?;
    rt.block_on(session.create_array(&path, array_json(n)))?;
    let source = Arc::new(VirtualSource {
        location: format!("file://{source}"),
        checksum: None,
    });
    let start = Instant::now();
    rt.block_on(async {
        for i in 0..n {
            let chunk = VirtualChunkRef {
                source: source.clone(),
                offset: offset_of(i, perm.as_deref()),
                length: CHUNK,
            };
            session.set_virtual_chunk(&path, &[i], chunk).await?;
        }
        Ok::<(), floe::Error>(())
    })?;
    let set_ms = ms_since(start);
    let start = Instant::now();
    rt.block_on(session.commit(&format!("{n} virtual refs"), None))?;
    let commit_ms = ms_since(start);
    let line = json!({
        "set_refs_ms": set_ms,
        "commit_ms": commit_ms,
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{line}");
    Ok(())
}

/// `--w4-reader <repo> <refs> <shuffled 0|1> <source file>`: opens the repository cold,
/// reads two random chunks, prints one JSON line.
pub fn reader_main(args: &[String]) -> Res<()> {
    let [location, refs, shuffled, source] = args else {
        return Err("--w4-reader <repo> <refs> <shuffled> <source>".into());
    };
    let n: u64 = refs.parse()?;
    let perm = (shuffled == "1").then(|| permutation(n));
    let rt = tokio::runtime::Runtime::new()?;
    let start = Instant::now();
    let repo = rt
        .block_on(Repository::open_location(
            location,
            &StorageOptions::default(),
        ))?
        .with_virtual_access(VirtualAccess::deny_all().allow_declared());
    let session =
        rt.block_on(repo.readonly_session(&VersionSpec::Branch(floe::DEFAULT_BRANCH.into())))?;
    let open_ms = ms_since(start);
    let path = NodePath::new("/refs")?;
    let mut rng = rand::rngs::StdRng::seed_from_u64(SEED + 1);
    // Expected bytes are read from the file at the chunk's offset (never the whole file, which
    // would count in the reader's peak RSS).
    let expected = |at: u64| -> Res<Vec<u8>> {
        use std::io::{Read, Seek, SeekFrom};
        let mut f = std::fs::File::open(source)?;
        f.seek(SeekFrom::Start(at))?;
        let mut buf = vec![0u8; CHUNK as usize];
        f.read_exact(&mut buf)?;
        Ok(buf)
    };
    let mut read_ms = Vec::new();
    for _ in 0..2 {
        let i = rng.random_range(0..n);
        let start = Instant::now();
        let got = rt.block_on(session.get_chunk(&path, &[i]))?;
        read_ms.push(ms_since(start));
        let want = expected(offset_of(i, perm.as_deref()))?;
        if got.as_deref() != Some(want.as_slice()) {
            return Err(mismatch(format!("W4: chunk {i} reads back wrong")));
        }
    }
    let line = json!({
        "open_ms": open_ms,
        "first_random_read_ms": read_ms[0],
        "second_random_read_ms": read_ms[1],
        "peak_rss_mib": peak_rss_mib(),
    });
    println!("{line}");
    Ok(())
}

fn child(args: &[String]) -> Res<Value> {
    let exe = std::env::current_exe()?;
    let out = Command::new(exe).args(args).output()?;
    if !out.status.success() {
        return Err(mismatch(format!(
            "W4 child {} failed: {}",
            args[0],
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

fn number(v: &Value, key: &str) -> f64 {
    v[key].as_f64().unwrap_or(f64::NAN)
}

/// Runs W4 (in order, then shuffled) in `dir`.
pub fn run(ctx: &Ctx, dir: &Path, refs: u64) -> Res<Report> {
    std::fs::create_dir_all(dir)?;
    let source = dir.join("source.bin");
    write_source(&source, refs)?;
    let source = source
        .to_str()
        .ok_or("scratch path is not UTF-8")?
        .to_string();
    let mut report = Report::new("w4");
    for (suffix, shuffled) in [("", "0"), ("_shuffled", "1")] {
        let repo_dir = dir.join(format!("repo{suffix}"));
        let location = repo_dir
            .to_str()
            .ok_or("scratch path is not UTF-8")?
            .to_string();
        ctx.init(&location)?;
        println!("W4{suffix}: {refs} virtual refs into {location}");
        let w = child(&[
            "--w4-writer".into(),
            location.clone(),
            source.clone(),
            refs.to_string(),
            shuffled.into(),
        ])?;
        let (manifest_bytes, _) = dir_usage(&repo_dir.join("manifests"))?;
        let r = child(&[
            "--w4-reader".into(),
            location,
            refs.to_string(),
            shuffled.into(),
            source.clone(),
        ])?;
        let key = |k: &str| -> &'static str { Box::leak(format!("{k}{suffix}").into_boxed_str()) };
        let full = refs == 1_000_000;
        let reference = |v: f64| full.then_some(v);
        report.figure(
            key("set_refs_ms"),
            number(&w, "set_refs_ms"),
            reference(18_600.0),
            "ms",
        );
        report.figure(
            key("commit_ms"),
            number(&w, "commit_ms"),
            reference(2_500.0),
            "ms",
        );
        report.figure(
            key("manifest_bytes_per_ref"),
            manifest_bytes as f64 / refs as f64,
            Some(if shuffled == "1" { 13.0 } else { 8.8 }),
            "B/ref",
        );
        report.figure(
            key("writer_peak_rss_mib"),
            number(&w, "peak_rss_mib"),
            reference(822.0),
            "MiB",
        );
        report.figure(key("open_ms"), number(&r, "open_ms"), None, "ms");
        report.figure(
            key("first_random_read_ms"),
            number(&r, "first_random_read_ms"),
            Some(392.0),
            "ms",
        );
        report.figure(
            key("second_random_read_ms"),
            number(&r, "second_random_read_ms"),
            None,
            "ms",
        );
        report.figure(
            key("reader_peak_rss_mib"),
            number(&r, "peak_rss_mib"),
            Some(213.0),
            "MiB",
        );
    }
    report.note("icechunk (WORKLOADS.md): set 18.6 s, commit 2.5 s, 8.8 B/ref (13.0 shuffled), writer RSS 822 MiB; cold first read 392 ms, reader RSS 213 MiB");
    Ok(report)
}
