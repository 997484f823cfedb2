//! W6: long history. 10,000 commits on `main`, commit i writing element i (one 4-byte chunk) of
//! an int32 array of shape (10000,) chunked (1,), each in a new session on one repository
//! handle; then as-of and log lookups on fresh handles.

use std::path::Path;
use std::time::Instant;

use floe::{Repository, StorageOptions, VersionSpec};

use super::report::{
    dir_usage, mean, median, mismatch, ms_since, peak_rss_mib, reset_peak_rss, Report, Res,
};
use super::{data, zarr_io, Ctx};

const RUNS: usize = 5;

fn expected_counter(len: u64, written: u64) -> Vec<i32> {
    (0..len)
        .map(|i| {
            if i < written {
                data::long_history_value(i)
            } else {
                0
            }
        })
        .collect()
}

/// Runs W6 in `dir`.
pub fn run(ctx: &Ctx, dir: &Path) -> Res<Report> {
    let commits = ctx.commits;
    let len = commits.max(1);
    let location = dir.to_str().ok_or("scratch path is not UTF-8")?.to_string();
    println!("W6: {commits} commits of one 4-byte chunk into {location}");
    let options = StorageOptions::default();
    let repo = ctx
        .rt
        .block_on(Repository::init_location(&location, &options))?;
    {
        let session = ctx
            .rt
            .block_on(repo.writable_session(floe::DEFAULT_BRANCH))?;
        let store = zarr_io::store_of(&session, &ctx.rt)?;
        zarr_io::create_root_group(&store, Default::default())?;
        zarr_io::create_counter_array(&store, len)?;
        ctx.rt.block_on(session.commit("create counter", None))?;
    }
    let rss_reset = reset_peak_rss();
    let mut commit_ms = Vec::with_capacity(commits as usize);
    let mut ids = Vec::with_capacity(commits as usize);
    let progress_every = (commits / 10).max(1);
    for i in 0..commits {
        let session = ctx
            .rt
            .block_on(repo.writable_session(floe::DEFAULT_BRANCH))?;
        let store = zarr_io::store_of(&session, &ctx.rt)?;
        zarr_io::write_counter(&store, i, data::long_history_value(i))?;
        let start = Instant::now();
        ids.push(ctx.rt.block_on(session.commit(&format!("set {i}"), None))?);
        commit_ms.push(ms_since(start));
        if (i + 1) % progress_every == 0 {
            println!(
                "  {} commits, last commit {:.2} ms",
                i + 1,
                commit_ms[i as usize]
            );
        }
    }
    let writer_peak = peak_rss_mib().unwrap_or(f64::NAN);
    drop(repo);

    // as-of a time near the start: the commit time of commit 10 (or the first).
    let early = (10.min(commits.saturating_sub(1))) as usize;
    let fresh = || -> Res<Repository> {
        Ok(ctx
            .rt
            .block_on(Repository::open_location(&location, &options))?)
    };
    let mut as_of_times = Vec::new();
    let mut log50_times = Vec::new();
    let mut log_all_times = Vec::new();
    if commits > 0 {
        let early_time = ctx
            .rt
            .block_on(fresh()?.snapshot_entry(ids[early]))?
            .committed_at;
        let spec = VersionSpec::AsOf {
            branch: floe::DEFAULT_BRANCH.into(),
            time: early_time,
        };
        for _ in 0..RUNS {
            let start = Instant::now();
            let repo = fresh()?;
            let session = ctx
                .rt
                .block_on(floe::with_inline_io(repo.readonly_session(&spec)))?;
            as_of_times.push(ms_since(start));
            if session.snapshot_id() != ids[early] {
                return Err(mismatch(format!(
                    "W6: as-of resolved to {}, expected commit {early}",
                    session.snapshot_id()
                )));
            }
        }
        let session = ctx.rt.block_on(fresh()?.readonly_session(&spec))?;
        let got = zarr_io::read_counter(&zarr_io::store_of(&session, &ctx.rt)?)?;
        if got != expected_counter(len, early as u64 + 1) {
            return Err(mismatch(format!(
                "W6: the array as of commit {early} differs"
            )));
        }
    }
    for _ in 0..RUNS {
        let start = Instant::now();
        let repo = fresh()?;
        let tip = ctx.rt.block_on(repo.branch_tip(floe::DEFAULT_BRANCH))?;
        let log = ctx
            .rt
            .block_on(floe::with_inline_io(repo.log_from(tip, 50)))?;
        log50_times.push(ms_since(start));
        let want = 50.min(commits as usize + 2);
        if log.len() != want || (commits > 0 && log[0].message != format!("set {}", commits - 1)) {
            return Err(mismatch("W6: the last 50 log entries are wrong"));
        }
    }
    for _ in 0..RUNS {
        let start = Instant::now();
        let repo = fresh()?;
        let tip = ctx.rt.block_on(repo.branch_tip(floe::DEFAULT_BRANCH))?;
        let log = ctx
            .rt
            .block_on(floe::with_inline_io(repo.log_from(tip, usize::MAX)))?;
        log_all_times.push(ms_since(start));
        let listed: Vec<_> = log.iter().take(commits as usize).map(|e| e.id).collect();
        let mut written = ids.clone();
        written.reverse();
        if log.len() as u64 != commits + 2 || listed != written {
            return Err(mismatch(format!(
                "W6: full log has {} entries, expected {}",
                log.len(),
                commits + 2
            )));
        }
    }
    let session = ctx
        .rt
        .block_on(fresh()?.readonly_session(&VersionSpec::Branch(floe::DEFAULT_BRANCH.into())))?;
    if zarr_io::read_counter(&zarr_io::store_of(&session, &ctx.rt)?)?
        != expected_counter(len, commits)
    {
        return Err(mismatch(
            "W6: the array at main differs from the values committed",
        ));
    }
    let (repo_bytes, repo_objects) = dir_usage(dir)?;

    let full = commits == 10_000;
    let first100 = mean(&commit_ms[..commit_ms.len().min(100)]);
    let last100 = mean(&commit_ms[commit_ms.len().saturating_sub(100)..]);
    let mut report = Report::new("w6");
    report.figure("commit_ms_first100", first100, Some(2.7), "ms");
    report.figure("commit_ms_last100", last100, full.then_some(17.1), "ms");
    report.figure(
        "open_as_of_ms",
        median(&as_of_times),
        full.then_some(2800.0),
        "ms",
    );
    report.figure("log_50_ms", median(&log50_times), Some(18.0), "ms");
    report.figure(
        "log_all_ms",
        median(&log_all_times),
        full.then_some(3200.0),
        "ms",
    );
    report.figure(
        "repo_bytes",
        repo_bytes as f64,
        full.then_some(418e6),
        "bytes",
    );
    report.figure(
        "writer_peak_rss_mib",
        writer_peak,
        Some(1.73e9 / 1048576.0),
        "MiB",
    );
    // Icechunk 2.3.0 (WORKLOADS.md).
    report.newest("commit_ms_first100", 2.9);
    report.newest("log_50_ms", 8.9);
    if full {
        report.newest("commit_ms_last100", 15.3);
        report.newest("open_as_of_ms", 10.1);
        report.newest("log_all_ms", 18.5);
        report.newest("repo_bytes", 2.24e9);
        report.newest("writer_peak_rss_mib", 1.41e9 / 1048576.0);
    }
    report.note(
        "history queries run under floe::with_inline_io (this runner blocks on them, as the CLI \
         and the Python package do): local reads skip tokio's blocking pool",
    );
    report.extra("commits", commits.into());
    report.extra("repo_objects", repo_objects.into());
    report.extra(
        "commit_ms_p50",
        super::report::percentile(&commit_ms, 50.0).into(),
    );
    report.note(format!(
        "commit last100/first100 = {:.2}",
        last100 / first100
    ));
    if !rss_reset {
        report.note("could not reset the peak RSS: writer_peak_rss_mib includes earlier workloads");
    } else {
        report.note(
            "peak RSS reset (/proc/self/clear_refs) before the commits: earlier workloads excluded",
        );
    }
    if !full {
        report.note(format!(
            "{commits} commits instead of 10,000: history-size references omitted"
        ));
    }
    Ok(report)
}
