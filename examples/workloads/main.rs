//! The workload runner of WORKLOADS.md:
//!
//! ```text
//! cargo run --release --example workloads -- --workload <w1|w2|w3|w4|w5|w6|w7|lifecycle|all> \
//!     --dir <empty scratch dir> --out <result.json> [--days N] [--commits N]
//! ```
//!
//! `all` runs W1-W6; W7 needs the S3 test server and a latency proxy and runs through `scripts/w7`. `--days` (W1/W2, default 365), `--refs` (W4, default 1000000)
//! and `--commits` (W6, default 10000) change the sizes for quick checks or bigger runs; reference figures
//! that depend on the full size are then left out. Every workload verifies what it reads and
//! the runner exits with status 1 on any error or mismatch (the JSON is not written then).
//!
//! W4 and W5 re-execute this binary as child processes, with the hidden first arguments
//! `--w4-writer`, `--w4-reader`, `--w5-writer` and `--w5-append` (see `w4.rs`, `w5.rs`).
//!
//! floe's async API runs on a tokio runtime owned by `main`; zarrs' sync API is called from the
//! main thread (and zarrs' rayon pool), never from a tokio worker.

mod cf;
mod data;
mod lifecycle;
mod report;
mod w1;
mod w2;
mod w3;
mod w4;
mod w5;
mod w6;
mod w7;
mod zarr_io;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use report::Res;
use serde_json::{Map, Value};

/// What every workload needs.
pub struct Ctx {
    /// The runtime that drives floe's async API.
    pub rt: tokio::runtime::Runtime,
    /// W1's number of days.
    pub days: u64,
    /// W6's number of commits.
    pub commits: u64,
}

impl Ctx {
    /// Opens the repository at `location` (a fresh handle, cold caches).
    pub fn open(&self, location: &str) -> report::Res<floe::Repository> {
        Ok(self.rt.block_on(floe::Repository::open_location(
            location,
            &floe::StorageOptions::default(),
        ))?)
    }

    /// Creates a repository at `location`.
    pub fn init(&self, location: &str) -> report::Res<floe::Repository> {
        Ok(self.rt.block_on(floe::Repository::init_location(
            location,
            &floe::StorageOptions::default(),
        ))?)
    }
}

struct Args {
    workload: String,
    dir: PathBuf,
    out: PathBuf,
    days: u64,
    commits: u64,
    refs: u64,
}

const USAGE: &str = "usage: workloads --workload <w1|w2|w3|w4|w5|w6|w7|lifecycle|all> --dir <empty scratch dir> --out <result.json> [--days N] [--commits N] [--refs N]";

fn parse_args() -> Res<Args> {
    let mut workload = None;
    let mut dir = None;
    let mut out = None;
    let mut days = 365;
    let mut commits = 10_000;
    let mut refs = 1_000_000;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))
        };
        match flag.as_str() {
            "--workload" => workload = Some(value()?),
            "--dir" => dir = Some(PathBuf::from(value()?)),
            "--out" => out = Some(PathBuf::from(value()?)),
            "--days" => days = value()?.parse().map_err(|e| format!("--days: {e}"))?,
            "--commits" => commits = value()?.parse().map_err(|e| format!("--commits: {e}"))?,
            "--refs" => refs = value()?.parse().map_err(|e| format!("--refs: {e}"))?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument `{other}`\n{USAGE}").into()),
        }
    }
    let missing = |name: &str| format!("{name} is required\n{USAGE}");
    Ok(Args {
        workload: workload.ok_or_else(|| missing("--workload"))?,
        dir: dir.ok_or_else(|| missing("--dir"))?,
        out: out.ok_or_else(|| missing("--out"))?,
        days,
        commits,
        refs,
    })
}

/// Creates `dir` or accepts it if empty: the runner never writes into a directory with content.
fn prepare_scratch(dir: &Path) -> Res<()> {
    if dir.exists() {
        if std::fs::read_dir(dir)?.next().is_some() {
            return Err(format!(
                "--dir {} is not empty; give an empty or new directory",
                dir.display()
            )
            .into());
        }
    } else {
        std::fs::create_dir_all(dir)?;
    }
    Ok(())
}

fn run(args: &Args) -> Res<Map<String, Value>> {
    let selected: Vec<&str> = match args.workload.as_str() {
        "all" => vec!["w1", "w2", "w3", "w4", "w5", "w6"],
        w @ ("w1" | "w2" | "w3" | "w4" | "w5" | "w6" | "w7" | "lifecycle") => vec![w],
        other => return Err(format!("unknown workload `{other}`\n{USAGE}").into()),
    };
    prepare_scratch(&args.dir)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let ctx = Ctx {
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()?,
        days: args.days,
        commits: args.commits,
    };
    let mut results = Map::new();
    let mut forecast = None;
    for name in selected {
        let started = std::time::Instant::now();
        let report = match name {
            "w1" => {
                let (report, f) = w1::run(&ctx, &args.dir.join("w1"))?;
                forecast = Some(f);
                report
            }
            "w2" => {
                let f = match forecast.take() {
                    Some(f) => f,
                    None => {
                        println!("W2 runs on W1's repository: running W1 first");
                        let (w1_report, f) = w1::run(&ctx, &args.dir.join("w1"))?;
                        w1_report.print();
                        f
                    }
                };
                let mut report = w2::run(&ctx, &f)?;
                if args.workload == "w2" {
                    report.note("W1 was run first in this process to build the repository");
                }
                report
            }
            "w3" => w3::run(&ctx, &args.dir.join("w3"))?,
            "w4" => w4::run(&ctx, &args.dir.join("w4"), args.refs)?,
            "w5" => w5::run(&ctx, &args.dir.join("w5"))?,
            "w6" => w6::run(&ctx, &args.dir.join("w6"))?,
            "w7" => w7::run(&ctx, &args.dir.join("w7"))?,
            "lifecycle" => {
                let mut reports = lifecycle::run(&ctx, &args.dir.join("lifecycle"))?;
                let last = reports.pop().ok_or("no lifecycle report")?;
                for report in reports {
                    report.print();
                    let (key, value) = report.into_json();
                    results.insert(key, value);
                }
                last
            }
            _ => unreachable!("filtered above"),
        };
        report.print();
        println!("  ({name} took {:.1} s)", started.elapsed().as_secs_f64());
        let (key, value) = report.into_json();
        results.insert(key, value);
    }
    Ok(results)
}

/// The hidden child-process entry points of W5, if the first argument names one.
fn child_process() -> Option<Res<()>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--w5-writer") => Some(w5::writer_main(&args[1..])),
        Some("--w5-append") => Some(w5::appender_main(&args[1..])),
        Some("--w4-writer") => Some(w4::writer_main(&args[1..])),
        Some("--w4-reader") => Some(w4::reader_main(&args[1..])),
        _ => None,
    }
}

fn main() -> ExitCode {
    if let Some(outcome) = child_process() {
        return match outcome {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args).and_then(|results| {
        let text = serde_json::to_string_pretty(&Value::Object(results))?;
        std::fs::write(&args.out, text + "\n")?;
        Ok(())
    }) {
        Ok(()) => {
            println!("\nresults written to {}", args.out.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
