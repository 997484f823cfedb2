//! W7: latency. The operations an analyst or an ingestion service does against object
//! storage, on a repository of 100 commits held by the S3 test server, each request delayed
//! by a fixed latency (20 ms) by `scripts/latency_proxy.py`, which also counts the requests
//! and the round trips waited one after another ("waves"). Every operation starts from a fresh
//! repository handle (cold caches), as a new process would.
//!
//! Run through `scripts/w7`, which starts the server and the proxy, builds and measures
//! Icechunk 2.3.0 the same way through the same proxy, and hands its figures to this runner
//! (`FLOE_W7_ICECHUNK`, a JSON file) to print beside floe's. Environment: `FLOE_W7_DIRECT`
//! (the server, used to build the repository without latency), `FLOE_W7_PROXY` (the proxy),
//! `FLOE_W7_BUCKET`, and the `AWS_*` credentials the server accepts.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

use bytes::Bytes;
use floe::{NodePath, Repository, RepositorySettings, SnapshotId, VersionSpec};
use serde_json::{json, Value};

use super::report::{median, mismatch, ms_since, Report, Res};
use super::Ctx;

/// Commits in the repository before measuring (the figures are at 100).
const COMMITS: u64 = 100;
/// Elements per row: one row of 4 KiB per commit.
const ROW: u64 = 1024;
/// Repetitions of each operation; the median is reported.
const RUNS: usize = 5;

/// The row commit `i` writes (also what readers check).
fn row_bytes(i: u64) -> Bytes {
    let mut out = Vec::with_capacity(ROW as usize * 4);
    for j in 0..ROW {
        out.extend_from_slice(&((i * ROW + j) as i32).to_le_bytes());
    }
    Bytes::from(out)
}

fn array_json(rows: u64) -> Value {
    json!({
        "zarr_format": 3,
        "node_type": "array",
        "shape": [rows, ROW],
        "data_type": "int32",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1, ROW]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0,
        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
        "dimension_names": ["time", "x"],
        "attributes": {}
    })
}

fn env(name: &str) -> Res<String> {
    std::env::var(name).map_err(|_| {
        format!("W7 needs {name}: run it through scripts/w7, which starts the S3 test server and the latency proxy").into()
    })
}

/// Requests and waves the proxy counted since it was last asked.
fn take_meter(proxy: &str) -> Res<(u64, u64)> {
    let address = proxy.trim_start_matches("http://").trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(address)?;
    write!(
        stream,
        "GET /__meter HTTP/1.1\r\nhost: {address}\r\nconnection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .ok_or("the latency proxy sent no body")?;
    let reading: Value = serde_json::from_str(body)?;
    let field = |name: &str| {
        reading[name]
            .as_u64()
            .ok_or("the latency proxy's reading is malformed")
    };
    Ok((field("requests")?, field("waves")?))
}

struct W7 {
    bucket: String,
    prefix: String,
    proxy: String,
}

impl W7 {
    fn storage(&self, endpoint: &str) -> Res<floe::DynStorage> {
        let options: floe::StorageOptions = vec![
            ("aws_endpoint".to_string(), endpoint.to_string()),
            ("aws_allow_http".to_string(), "true".to_string()),
        ];
        Ok(floe::open_storage(
            &format!("s3://{}/{}", self.bucket, self.prefix),
            &options,
        )?)
    }
}

/// What one operation cost over its runs.
struct Measured {
    ms: Vec<f64>,
    requests: Vec<u64>,
    waves: Vec<u64>,
    /// Waves of the commit alone, for operations that end in one.
    commit_waves: Vec<u64>,
}

impl Measured {
    fn median_of(values: &[u64]) -> f64 {
        median(&values.iter().map(|&v| v as f64).collect::<Vec<_>>())
    }
}

/// Runs W7 (`dir` is unused: the repository lives in the S3 test server's bucket).
pub fn run(ctx: &Ctx, _dir: &Path) -> Res<Report> {
    let direct = env("FLOE_W7_DIRECT")?;
    let w7 = W7 {
        bucket: env("FLOE_W7_BUCKET")?,
        prefix: format!("w7-floe-{}", std::process::id()),
        proxy: env("FLOE_W7_PROXY")?,
    };
    let icechunk: BTreeMap<String, Value> = match std::env::var("FLOE_W7_ICECHUNK") {
        Ok(path) => serde_json::from_str(&std::fs::read_to_string(&path)?)?,
        Err(_) => BTreeMap::new(),
    };
    println!(
        "W7: {COMMITS} commits in s3://{}/{}, measured through {}",
        w7.bucket, w7.prefix, w7.proxy
    );

    // Build the repository without latency.
    let settings = RepositorySettings::default;
    let setup = ctx
        .rt
        .block_on(Repository::init(w7.storage(&direct)?, settings()))?;
    let t = NodePath::new("t")?;
    let mut ids: Vec<SnapshotId> = Vec::new();
    {
        let session = ctx.rt.block_on(setup.writable_session("main"))?;
        ctx.rt
            .block_on(session.create_group(&NodePath::root(), Default::default()))?;
        ctx.rt
            .block_on(session.create_array(&t, array_json(COMMITS)))?;
        ctx.rt.block_on(session.commit("create t", None))?;
        for i in 0..COMMITS {
            let session = ctx.rt.block_on(setup.writable_session("main"))?;
            ctx.rt
                .block_on(session.set_chunk(&t, &[i, 0], row_bytes(i)))?;
            ids.push(ctx.rt.block_on(session.commit(&format!("row {i}"), None))?);
        }
    }
    let middle = ctx
        .rt
        .block_on(setup.snapshot_entry(ids[COMMITS as usize / 2]))?
        .committed_at;
    let open = || -> Res<Repository> {
        Ok(ctx
            .rt
            .block_on(Repository::open(w7.storage(&w7.proxy)?, settings()))?)
    };

    let mut results: Vec<(&'static str, &'static str, Measured)> = Vec::new();
    // An operation returns the reading taken just before its commit, if it commits: the
    // commit's own waves are then the rest.
    let mut measure = |key: &'static str,
                       what: &'static str,
                       op: &mut dyn FnMut() -> Res<Option<(u64, u64)>>|
     -> Res<()> {
        let mut measured = Measured {
            ms: Vec::new(),
            requests: Vec::new(),
            waves: Vec::new(),
            commit_waves: Vec::new(),
        };
        for _ in 0..RUNS {
            take_meter(&w7.proxy)?;
            let start = Instant::now();
            let before_commit = op()?;
            measured.ms.push(ms_since(start));
            let (requests, waves) = take_meter(&w7.proxy)?;
            match before_commit {
                Some((early_requests, early_waves)) => {
                    measured.requests.push(early_requests + requests);
                    measured.waves.push(early_waves + waves);
                    measured.commit_waves.push(waves);
                }
                None => {
                    measured.requests.push(requests);
                    measured.waves.push(waves);
                }
            }
        }
        println!(
            "  {what}: {:.1} ms, {} requests, {} waves{}",
            median(&measured.ms),
            Measured::median_of(&measured.requests),
            Measured::median_of(&measured.waves),
            if measured.commit_waves.is_empty() {
                String::new()
            } else {
                format!(
                    " (the commit {})",
                    Measured::median_of(&measured.commit_waves)
                )
            }
        );
        results.push((key, what, measured));
        Ok(())
    };

    let tip = *ids.last().ok_or("no commits")?;
    measure("open_tip", "open + tip of main", &mut || {
        let repo = open()?;
        if ctx.rt.block_on(repo.branch_tip("main"))? != tip {
            return Err(mismatch("W7: the tip of main is not the last commit"));
        }
        Ok(None)
    })?;
    measure("as_of", "open + as-of a time", &mut || {
        let repo = open()?;
        let spec = VersionSpec::AsOf {
            branch: "main".into(),
            time: middle,
        };
        if ctx.rt.block_on(repo.resolve(&spec))? != ids[COMMITS as usize / 2] {
            return Err(mismatch("W7: as-of found the wrong commit"));
        }
        Ok(None)
    })?;
    measure("log_all", "open + whole log", &mut || {
        let repo = open()?;
        let (found, log) = ctx
            .rt
            .block_on(repo.log(&VersionSpec::Branch("main".into()), usize::MAX))?;
        if log.len() as u64 != COMMITS + 2 || log[0].id != tip || found != tip {
            return Err(mismatch(format!("W7: the log has {} entries", log.len())));
        }
        Ok(None)
    })?;
    measure("log_50", "open + newest 50 log entries", &mut || {
        let repo = open()?;
        let (found, log) = ctx
            .rt
            .block_on(repo.log(&VersionSpec::Branch("main".into()), 50))?;
        if log.len() != 50 || log[0].id != tip || found != tip {
            return Err(mismatch("W7: the newest 50 log entries are wrong"));
        }
        Ok(None)
    })?;
    let wanted = COMMITS / 3;
    measure("chunk_read", "open + cold chunk read", &mut || {
        let repo = open()?;
        let session = ctx
            .rt
            .block_on(repo.readonly_session(&VersionSpec::Branch("main".into())))?;
        let got = ctx
            .rt
            .block_on(session.zarr().get(&format!("t/c/{wanted}/0")))?;
        if got != Some(row_bytes(wanted)) {
            return Err(mismatch("W7: the chunk read differs from the one written"));
        }
        Ok(None)
    })?;
    let mut rewritten = 0u64;
    measure(
        "small_commit",
        "open + session + rewrite one chunk + commit",
        &mut || {
            let repo = open()?;
            let session = ctx.rt.block_on(repo.writable_session("main"))?;
            rewritten += 1;
            ctx.rt.block_on(session.set_chunk(
                &t,
                &[rewritten % COMMITS, 0],
                row_bytes(rewritten),
            ))?;
            let before = take_meter(&w7.proxy)?;
            ctx.rt.block_on(session.commit("rewrite", None))?;
            Ok(Some(before))
        },
    )?;
    let mut rows = COMMITS;
    measure(
        "append",
        "open + session + append a row (as W1) + commit",
        &mut || {
            let repo = open()?;
            let session = ctx.rt.block_on(repo.writable_session("main"))?;
            ctx.rt
                .block_on(session.resize_array(&t, &[rows + 1, ROW]))?;
            ctx.rt
                .block_on(session.set_chunk(&t, &[rows, 0], row_bytes(rows)))?;
            let before = take_meter(&w7.proxy)?;
            ctx.rt.block_on(session.commit("append", None))?;
            rows += 1;
            Ok(Some(before))
        },
    )?;

    let mut report = Report::new("w7");
    let reference = |key: &str, field: &str| -> Option<f64> {
        icechunk.get(key).and_then(|v| v[field].as_f64())
    };
    let names: [(&str, [&'static str; 3]); 7] = [
        ("log_50", ["log_50_ms", "log_50_requests", "log_50_waves"]),
        (
            "open_tip",
            ["open_tip_ms", "open_tip_requests", "open_tip_waves"],
        ),
        ("as_of", ["as_of_ms", "as_of_requests", "as_of_waves"]),
        (
            "log_all",
            ["log_all_ms", "log_all_requests", "log_all_waves"],
        ),
        (
            "chunk_read",
            ["chunk_read_ms", "chunk_read_requests", "chunk_read_waves"],
        ),
        (
            "small_commit",
            [
                "small_commit_ms",
                "small_commit_requests",
                "small_commit_waves",
            ],
        ),
        ("append", ["append_ms", "append_requests", "append_waves"]),
    ];
    for (key, _, measured) in &results {
        let Some((_, [ms_key, requests_key, waves_key])) = names.iter().find(|(k, _)| k == key)
        else {
            continue;
        };
        let ms = median(&measured.ms);
        let waves = Measured::median_of(&measured.waves);
        report.figure(ms_key, ms, None, "ms");
        report.figure(
            requests_key,
            Measured::median_of(&measured.requests),
            None,
            "requests",
        );
        report.figure(waves_key, waves, None, "waves");
        for (row, field) in [
            (ms_key, "ms"),
            (requests_key, "requests"),
            (waves_key, "waves"),
        ] {
            if let Some(theirs) = reference(key, field) {
                report.newest(row, theirs);
            }
        }
        if let Some(theirs) = reference(key, "ms") {
            report.target(
                format!("{key}: floe at most Icechunk 2.3.0's time ({ms:.0} vs {theirs:.0} ms)"),
                ms <= theirs,
            );
        }
        let most = match *key {
            "open_tip" => Some(2.0),
            "as_of" | "log_all" => Some(4.0),
            _ => None,
        };
        if let Some(most) = most {
            report.target(
                format!("{key}: at most {most} waves ({waves})"),
                waves <= most,
            );
        }
        if !measured.commit_waves.is_empty() {
            let commit_waves = Measured::median_of(&measured.commit_waves);
            report.extra(&format!("{key}_commit_waves"), commit_waves.into());
            if *key == "append" {
                report.target(
                    format!("the append's commit: at most 4 waves ({commit_waves})"),
                    commit_waves <= 4.0,
                );
            }
        }
    }
    if icechunk.is_empty() {
        report.note("no Icechunk figures (FLOE_W7_ICECHUNK unset): run through scripts/w7");
    } else {
        report.note(format!(
            "Icechunk {} measured in the same run through the same proxy",
            icechunk
                .get("version")
                .and_then(Value::as_str)
                .unwrap_or("?")
        ));
    }
    report.extra("commits", COMMITS.into());
    Ok(report)
}
