//! W5: concurrent writers. Eight writer processes (this binary re-executed with `--w5-writer`)
//! start together on a file barrier and commit 50 times each to `main` of one local directory
//! repository, commit i of writer w writing element w * 50 + i of an int32 array of one-element
//! chunks. Then ten rounds of two appender processes (`--w5-append`) that each grow one array
//! along time and write their own day, both prepared on the same base before committing.
//!
//! Every process reports the snapshot ids it got acknowledged on stdout (one JSON line); the
//! runner then checks that each of them is in main's log, that the history is linear and
//! complete, and that every element reads back the value written.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use floe::{Repository, Session, SnapshotId, StorageOptions, VersionSpec};
use serde_json::{json, Value};
use zarrs::array::{data_type, Array, ArrayBuilder, ArraySubset};
use zarrs::storage::ReadableWritableListableStorage;

use super::report::{mismatch, ms_since, percentile, Report, Res};
use super::{zarr_io, Ctx};

const WRITERS: u64 = 8;
const COMMITS: u64 = 50;
const APPEND_ROUNDS: u64 = 10;

/// The value writer `w`'s commit `i` writes.
fn writer_value(index: u64) -> i32 {
    (index as i32).wrapping_mul(104_729) ^ 0x0f0f
}

/// The value the appender of day `day` writes.
fn day_value(day: u64) -> i32 {
    (day as i32).wrapping_mul(31) + 1000
}

fn location_of(dir: &Path) -> Res<String> {
    Ok(dir.to_str().ok_or("scratch path is not UTF-8")?.to_string())
}

/// Waits until `file` exists (the start barrier).
fn wait_for(file: &Path) -> Res<()> {
    let deadline = Instant::now() + Duration::from_secs(300);
    while !file.exists() {
        if Instant::now() > deadline {
            return Err(format!("{} never appeared", file.display()).into());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

fn store_of(
    session: &Session,
    rt: &tokio::runtime::Runtime,
) -> Res<ReadableWritableListableStorage> {
    zarr_io::store_of(session, rt)
}

/// The parent of snapshot `id`.
fn parent_of(rt: &tokio::runtime::Runtime, repo: &Repository, id: SnapshotId) -> Res<SnapshotId> {
    let log = rt.block_on(repo.log_from(id, 2))?;
    Ok(log.get(1).ok_or("a commit without parent")?.id)
}

/// The hidden writer subcommand: `--w5-writer <repo> <signals dir> <writer> <commits>`. Prints
/// one JSON line: acknowledged ids, rebased commits, commit latencies, errors.
pub fn writer_main(args: &[String]) -> Res<()> {
    let [location, signals, writer, commits] = args else {
        return Err("--w5-writer <repo> <signals dir> <writer> <commits>".into());
    };
    let (writer, commits): (u64, u64) = (writer.parse()?, commits.parse()?);
    let signals = PathBuf::from(signals);
    let rt = tokio::runtime::Runtime::new()?;
    let repo = rt.block_on(Repository::open_location(
        location,
        &StorageOptions::default(),
    ))?;
    std::fs::write(signals.join(format!("ready-{writer}")), b"")?;
    wait_for(&signals.join("start"))?;
    let mut acknowledged = Vec::new();
    let mut rebased = 0u64;
    let mut latencies = Vec::new();
    let mut errors = Vec::new();
    for i in 0..commits {
        let index = writer * commits + i;
        let result = (|| -> Res<()> {
            let session = rt.block_on(repo.writable_session(floe::DEFAULT_BRANCH))?;
            let base = session.snapshot_id();
            let store = store_of(&session, &rt)?;
            let array = Array::open(store, "/w5")?;
            array.store_chunk(&[index], &[writer_value(index)][..])?;
            let start = Instant::now();
            let id = rt.block_on(session.commit(&format!("writer {writer} commit {i}"), None))?;
            latencies.push(ms_since(start));
            acknowledged.push(id.to_string());
            if parent_of(&rt, &repo, id)? != base {
                rebased += 1;
            }
            Ok(())
        })();
        if let Err(e) = result {
            errors.push(format!("commit {i}: {e}"));
        }
    }
    let line = json!({
        "writer": writer,
        "acknowledged": acknowledged,
        "rebased": rebased,
        "commit_ms": latencies,
        "errors": errors,
    });
    println!("{line}");
    Ok(())
}

/// The hidden appender subcommand: `--w5-append <repo> <signals dir> <name> <day>`. Prepares
/// the append of `day` (grow `/series` to hold it, write it), waits for the start signal,
/// commits, and prints one JSON line.
pub fn appender_main(args: &[String]) -> Res<()> {
    let [location, signals, name, day] = args else {
        return Err("--w5-append <repo> <signals dir> <name> <day>".into());
    };
    let day: u64 = day.parse()?;
    let signals = PathBuf::from(signals);
    let rt = tokio::runtime::Runtime::new()?;
    let repo = rt.block_on(Repository::open_location(
        location,
        &StorageOptions::default(),
    ))?;
    let session = rt.block_on(repo.writable_session(floe::DEFAULT_BRANCH))?;
    let base = session.snapshot_id();
    let mut array = Array::open(store_of(&session, &rt)?, "/series")?;
    let len = array.shape()[0].max(day + 1);
    array.set_shape(vec![len])?;
    array.store_metadata()?;
    array.store_chunk(&[day], &[day_value(day)][..])?;
    std::fs::write(signals.join(format!("ready-{name}")), b"")?;
    wait_for(&signals.join("start"))?;
    let line = match rt.block_on(session.commit(&format!("append day {day}"), None)) {
        Ok(id) => json!({
            "acknowledged": [id.to_string()],
            "rebased": u64::from(parent_of(&rt, &repo, id)? != base),
            "errors": [],
        }),
        Err(e) => json!({"acknowledged": [], "rebased": 0, "errors": [e.to_string()]}),
    };
    println!("{line}");
    Ok(())
}

/// What one child process reported.
struct ChildReport {
    acknowledged: Vec<SnapshotId>,
    rebased: u64,
    commit_ms: Vec<f64>,
    errors: Vec<String>,
}

/// Starts children with `args`, waits until each wrote its ready file, releases them all at
/// once, and collects their reports. Returns the reports and the time from release to the
/// last exit.
fn race(signals: &Path, children: Vec<(String, Vec<String>)>) -> Res<(Vec<ChildReport>, f64)> {
    std::fs::create_dir_all(signals)?;
    let exe = std::env::current_exe()?;
    let mut running: Vec<Child> = Vec::new();
    for (_, args) in &children {
        running.push(
            Command::new(&exe)
                .args(args)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?,
        );
    }
    for (name, _) in &children {
        wait_for(&signals.join(format!("ready-{name}")))?;
    }
    let start = Instant::now();
    std::fs::write(signals.join("start"), b"")?;
    let mut reports = Vec::new();
    for child in running {
        let out = child.wait_with_output()?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            return Err(mismatch(format!(
                "W5: a child process failed: {}{}",
                stdout,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let value: Value = serde_json::from_str(stdout.trim())?;
        let strings = |key: &str| -> Vec<String> {
            value[key]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default()
        };
        reports.push(ChildReport {
            acknowledged: strings("acknowledged")
                .iter()
                .map(|s| s.parse())
                .collect::<Result<_, _>>()?,
            rebased: value["rebased"].as_u64().unwrap_or(0),
            commit_ms: value["commit_ms"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_f64).collect())
                .unwrap_or_default(),
            errors: strings("errors"),
        });
    }
    Ok((reports, ms_since(start) / 1e3))
}

/// main's log from the tip, checked linear (consecutive generations).
fn linear_log(ctx: &Ctx, repo: &Repository) -> Res<Vec<floe::LogEntry>> {
    let tip = ctx.rt.block_on(repo.branch_tip(floe::DEFAULT_BRANCH))?;
    let log = ctx.rt.block_on(repo.log_from(tip, usize::MAX))?;
    for (k, entry) in log.iter().enumerate() {
        if entry.generation != (log.len() - 1 - k) as u64 {
            return Err(mismatch("W5: main's history is not linear"));
        }
    }
    Ok(log)
}

fn read_all(ctx: &Ctx, repo: &Repository, path: &str) -> Res<Vec<i32>> {
    let session = ctx
        .rt
        .block_on(repo.readonly_session(&VersionSpec::Branch(floe::DEFAULT_BRANCH.into())))?;
    let array = Array::open(store_of(&session, &ctx.rt)?, path)?;
    let subset = ArraySubset::new_with_shape(array.shape().to_vec());
    Ok(array.retrieve_array_subset::<Vec<i32>>(&subset)?)
}

/// Acknowledged ids of `reports` that are not in `log`.
fn lost(reports: &[ChildReport], log: &[floe::LogEntry]) -> usize {
    let in_log: BTreeSet<SnapshotId> = log.iter().map(|e| e.id).collect();
    reports
        .iter()
        .flat_map(|r| &r.acknowledged)
        .filter(|id| !in_log.contains(id))
        .count()
}

/// Runs W5 in `dir`.
pub fn run(ctx: &Ctx, dir: &Path) -> Res<Report> {
    let location = location_of(&dir.join("repo"))?;
    std::fs::create_dir_all(dir.join("repo"))?;
    println!("W5: {WRITERS} writer processes x {COMMITS} commits into {location}");
    let repo = ctx.init(&location)?;
    let setup = {
        let session = ctx
            .rt
            .block_on(repo.writable_session(floe::DEFAULT_BRANCH))?;
        let store = store_of(&session, &ctx.rt)?;
        zarr_io::create_root_group(&store, Default::default())?;
        ArrayBuilder::new(vec![WRITERS * COMMITS], vec![1], data_type::int32(), 0i32)
            .build(store.clone(), "/w5")?
            .store_metadata()?;
        ArrayBuilder::new(vec![0], vec![1], data_type::int32(), 0i32)
            .dimension_names(Some(["time"]))
            .build(store, "/series")?
            .store_metadata()?;
        ctx.rt.block_on(session.commit("create arrays", None))?
    };
    let writers = (0..WRITERS)
        .map(|w| {
            let args = vec![
                "--w5-writer".to_string(),
                location.clone(),
                location_of(&dir.join("signals"))?,
                w.to_string(),
                COMMITS.to_string(),
            ];
            Ok((w.to_string(), args))
        })
        .collect::<Res<Vec<_>>>()?;
    let (reports, race_s) = race(&dir.join("signals"), writers)?;
    let repo = ctx.open(&location)?;
    let log = linear_log(ctx, &repo)?;
    let setup_at = log
        .iter()
        .position(|e| e.id == setup)
        .ok_or_else(|| mismatch("W5: the setup commit left main"))?;
    let landed = setup_at as u64;
    let lost_commits = lost(&reports, &log);
    let acknowledged: usize = reports.iter().map(|r| r.acknowledged.len()).sum();
    let distinct: BTreeSet<_> = log[..setup_at].iter().map(|e| e.id).collect();
    let rebases: u64 = reports.iter().map(|r| r.rebased).sum();
    let latencies: Vec<f64> = reports.iter().flat_map(|r| r.commit_ms.clone()).collect();
    let errors: Vec<String> = reports.iter().flat_map(|r| r.errors.clone()).collect();
    let values = read_all(ctx, &repo, "/w5")?;
    let wrong_values = (0..WRITERS * COMMITS)
        .filter(|&i| values.get(i as usize) != Some(&writer_value(i)))
        .count();
    println!(
        "  race: {landed} commits landed in {race_s:.2} s, {rebases} rebased, {} errors",
        errors.len()
    );

    // Two appenders per round, both prepared on the same base.
    let mut appenders_landed = 0u64;
    let mut append_rebases = 0u64;
    let mut rounds_complete = 0u64;
    let mut append_errors = Vec::new();
    let mut append_lost = 0usize;
    for round in 0..APPEND_ROUNDS {
        let signals = dir.join(format!("append-signals-{round}"));
        let appenders = (0..2u64)
            .map(|k| {
                let name = format!("a{k}");
                let args = vec![
                    "--w5-append".to_string(),
                    location.clone(),
                    location_of(&signals)?,
                    name.clone(),
                    (2 * round + k).to_string(),
                ];
                Ok((name, args))
            })
            .collect::<Res<Vec<_>>>()?;
        let (reports, _) = race(&signals, appenders)?;
        let log = linear_log(ctx, &repo)?;
        let lost_now = lost(&reports, &log);
        let acked: usize = reports.iter().map(|r| r.acknowledged.len()).sum();
        append_lost += lost_now;
        let landed_now = (acked - lost_now) as u64;
        appenders_landed += landed_now;
        rounds_complete += u64::from(landed_now == 2);
        append_rebases += reports.iter().map(|r| r.rebased).sum::<u64>();
        append_errors.extend(reports.into_iter().flat_map(|r| r.errors));
    }
    let series = read_all(ctx, &repo, "/series")?;
    let expected_series: Vec<i32> = (0..2 * APPEND_ROUNDS).map(day_value).collect();
    let series_ok = series == expected_series;

    let total = (WRITERS * COMMITS) as f64;
    let mut report = Report::new("w5");
    report.figure("commits_landed", landed as f64, None, "commits");
    report.figure(
        "lost_commits",
        lost_commits as f64,
        Some(0.17 * total),
        "commits",
    );
    report.figure(
        "commits_per_s",
        landed as f64 / race_s,
        Some(60.0),
        "commits/s",
    );
    // Icechunk 2.3.0 (WORKLOADS.md): 24-37 % of acknowledged commits lost (midpoint).
    report.newest("lost_commits", 0.305 * total);
    report.newest("commits_per_s", 88.0);
    report.figure("rebases", rebases as f64, None, "commits");
    report.figure(
        "commit_ms_p90",
        percentile(&latencies, 90.0),
        Some(232.0),
        "ms",
    );
    report.figure(
        "appenders_landed",
        appenders_landed as f64,
        Some(APPEND_ROUNDS as f64),
        "appends",
    );
    report.extra("writers", WRITERS.into());
    report.extra("commits_per_writer", COMMITS.into());
    report.extra("acknowledged", acknowledged.into());
    report.extra("race_s", race_s.into());
    report.extra("commit_ms_p50", percentile(&latencies, 50.0).into());
    report.extra("append_rounds", APPEND_ROUNDS.into());
    report.extra("append_rebases", append_rebases.into());
    report.extra("append_lost", append_lost.into());
    report.extra("errors", Value::from(errors.clone()));
    report.extra("append_errors", Value::from(append_errors.clone()));
    report.note("icechunk 1.1.21 (WORKLOADS.md): 13-21% of acknowledged commits lost (reference = 17% of 400), ~60 commits/s, p90 latency 175-290 ms (reference = midpoint); appenders: about half fail (reference = half of 20), 1-4 acknowledged appends lost per run");
    report.note("rebases = commits whose parent is not the tip their session started from; commit_ms = the commit call only");
    let all_landed = landed == WRITERS * COMMITS && acknowledged == landed as usize;
    report.target(
        format!("{landed} of 400 commits landed, history linear and complete"),
        all_landed && distinct.len() == landed as usize && errors.is_empty(),
    );
    report.target(
        format!("{lost_commits} acknowledged commits lost"),
        lost_commits == 0,
    );
    report.target(
        format!("{wrong_values} elements read back wrong"),
        wrong_values == 0,
    );
    report.target(
        format!(
            "both appenders landed in {rounds_complete} of {APPEND_ROUNDS} rounds, series reads back {}",
            if series_ok { "exact" } else { "WRONG" }
        ),
        rounds_complete == APPEND_ROUNDS && series_ok && append_lost == 0,
    );
    if !errors.is_empty() || !append_errors.is_empty() {
        let mut first: HashMap<&str, usize> = HashMap::new();
        for e in errors.iter().chain(&append_errors) {
            *first.entry(e.as_str()).or_default() += 1;
        }
        report.note(format!("errors: {first:?}"));
    }
    if !all_landed
        || lost_commits > 0
        || wrong_values > 0
        || rounds_complete != APPEND_ROUNDS
        || !series_ok
        || append_lost > 0
    {
        report.print();
        return Err(mismatch(
            "W5: commits lost, missing or wrong (see the table above)",
        ));
    }
    Ok(report)
}
