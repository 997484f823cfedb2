//! W1: daily forecast appends. Each day is a cron job: open the repository, start a session on
//! `main`, grow both arrays by one along time, write the day's field and timestamp, commit.

use std::path::Path;
use std::time::Instant;

use floe::{SnapshotId, VersionSpec};

use super::report::{dir_usage, mean, mismatch, ms_since, percentile, Report, Res};
use super::{data, zarr_io, Ctx};

/// What later workloads need from W1.
pub struct Forecast {
    /// The repository location.
    pub location: String,
    /// Days appended.
    pub days: u64,
    /// Snapshot of each day's commit.
    pub day_snapshots: Vec<SnapshotId>,
}

/// Creates the repository with the forecast dataset (empty along time; its `lat` and `lon`
/// coordinates written) in one setup commit.
pub fn create_repository(ctx: &Ctx, location: &str) -> Res<()> {
    let repo = ctx.init(location)?;
    let session = ctx
        .rt
        .block_on(repo.writable_session(floe::DEFAULT_BRANCH))?;
    let store = zarr_io::store_of(&session, &ctx.rt)?;
    zarr_io::create_forecast(&store)?;
    ctx.rt
        .block_on(session.commit("create the forecast dataset", None))?;
    Ok(())
}

/// Times of one daily job.
pub struct AppendTiming {
    /// The whole job: open, session, grow, write, commit.
    pub append_ms: f64,
    /// The commit call alone.
    pub commit_ms: f64,
    /// The new snapshot.
    pub snapshot: SnapshotId,
}

/// One daily job, exactly as cron would run it (fresh repository handle).
pub fn append_one_day(ctx: &Ctx, location: &str, day: u64, field: &[f32]) -> Res<AppendTiming> {
    let start = Instant::now();
    let repo = ctx.open(location)?;
    let session = ctx
        .rt
        .block_on(repo.writable_session(floe::DEFAULT_BRANCH))?;
    let store = zarr_io::store_of(&session, &ctx.rt)?;
    zarr_io::append_day(&store, day, field)?;
    let commit_start = Instant::now();
    let snapshot = ctx
        .rt
        .block_on(session.commit(&format!("append day {day}"), None))?;
    Ok(AppendTiming {
        commit_ms: ms_since(commit_start),
        append_ms: ms_since(start),
        snapshot,
    })
}

/// Runs W1 in `dir`; returns its report and what W2 needs.
pub fn run(ctx: &Ctx, dir: &Path) -> Res<(Report, Forecast)> {
    let location = dir.to_str().ok_or("scratch path is not UTF-8")?.to_string();
    let days = ctx.days;
    println!("W1: {days} daily appends into {location}");
    create_repository(ctx, &location)?;
    let (_, objects_before) = dir_usage(dir)?;
    let mut append = Vec::with_capacity(days as usize);
    let mut commit = Vec::with_capacity(days as usize);
    let mut day_snapshots = Vec::with_capacity(days as usize);
    for day in 0..days {
        // The field is the job's input (it arrives from the model run): not timed.
        let field = data::day_field(day);
        let timing = append_one_day(ctx, &location, day, &field)?;
        append.push(timing.append_ms);
        commit.push(timing.commit_ms);
        day_snapshots.push(timing.snapshot);
    }
    let (repo_bytes, repo_objects) = dir_usage(dir)?;
    verify(ctx, &location, days, &day_snapshots)?;

    let mut report = Report::new("w1");
    report.figure("append_ms_p50", percentile(&append, 50.0), Some(13.9), "ms");
    report.figure("append_ms_p90", percentile(&append, 90.0), Some(17.1), "ms");
    report.figure("append_ms_max", percentile(&append, 100.0), None, "ms");
    report.figure("commit_ms_p50", percentile(&commit, 50.0), Some(2.9), "ms");
    let first10 = mean(&commit[..commit.len().min(10)]);
    let last10 = mean(&commit[commit.len().saturating_sub(10)..]);
    report.figure("commit_ms_first10", first10, Some(3.0), "ms");
    report.figure("commit_ms_last10", last10, Some(3.6), "ms");
    let full_year = days == 365;
    report.figure(
        "repo_bytes",
        repo_bytes as f64,
        full_year.then_some(78.6e6),
        "bytes",
    );
    report.figure(
        "repo_objects",
        repo_objects as f64,
        full_year.then_some(1829.0),
        "objects",
    );
    // Icechunk 2.3.0 (WORKLOADS.md).
    report.newest("append_ms_p50", 13.8);
    report.newest("append_ms_p90", 16.9);
    report.newest("commit_ms_p50", 4.2);
    report.newest("commit_ms_first10", 2.0);
    report.newest("commit_ms_last10", 5.7);
    if full_year {
        report.newest("repo_bytes", 83.5e6);
        report.newest("repo_objects", 2196.0);
    }
    let per_append = (repo_objects - objects_before) as f64 / days.max(1) as f64;
    report.extra("days", days.into());
    // Mean commit time per fifth of the run: shows whether commits get dearer with history.
    let block = (commit.len() / 5).max(1);
    let by_block: Vec<f64> = commit
        .chunks(block)
        .map(|c| (mean(c) * 1000.0).round() / 1000.0)
        .collect();
    report.extra("commit_ms_by_fifth", by_block.into());
    report.extra("objects_per_append", per_append.into());
    report.extra(
        "logical_bytes",
        (days * data::DAY_ELEMENTS as u64 * 4 + days * 8).into(),
    );
    report.target(
        "append p50 <= 1/3 of Icechunk's 13.9 ms",
        percentile(&append, 50.0) <= 13.9 / 3.0,
    );
    report.target(
        format!("commit last10/first10 <= 1.1 (got {:.2})", last10 / first10),
        last10 / first10 <= 1.1,
    );
    report.target(
        format!("<= 3 objects per append (got {per_append:.2})"),
        per_append <= 3.0,
    );
    if !full_year {
        report.note(format!(
            "{days} days instead of 365: size references omitted"
        ));
    }
    Ok((
        report,
        Forecast {
            location,
            days,
            day_snapshots,
        },
    ))
}

/// Reads back through a fresh handle: every timestamp, both coordinates, and the fields of
/// the first, middle and last day at `main`, plus the middle day at its own snapshot.
fn verify(ctx: &Ctx, location: &str, days: u64, snapshots: &[SnapshotId]) -> Res<()> {
    let repo = ctx.open(location)?;
    let main = ctx
        .rt
        .block_on(repo.readonly_session(&VersionSpec::Branch(floe::DEFAULT_BRANCH.into())))?;
    let store = zarr_io::store_of(&main, &ctx.rt)?;
    let times = zarr_io::read_time(&store)?;
    let expected: Vec<i64> = (0..days).map(data::day_timestamp).collect();
    if times != expected {
        return Err(mismatch(
            "W1: the time array differs from the timestamps written",
        ));
    }
    for (name, expected) in [("lat", data::latitudes()), ("lon", data::longitudes())] {
        if zarr_io::read_coordinate(&store, name)? != expected {
            return Err(mismatch(format!("W1: the {name} coordinate differs")));
        }
    }
    for day in [0, days / 2, days.saturating_sub(1)] {
        if day < days {
            zarr_io::verify_days(&zarr_io::read_t2m(&store, day, 1)?, day, 1, "W1 at main")?;
        }
    }
    if let Some(mid) = snapshots.get(days as usize / 2) {
        let old = ctx
            .rt
            .block_on(repo.readonly_session(&VersionSpec::Snapshot(*mid)))?;
        let old_store = zarr_io::store_of(&old, &ctx.rt)?;
        let held = zarr_io::forecast_days(&old_store)?;
        if held != days / 2 + 1 {
            return Err(mismatch(format!(
                "W1: day {}'s snapshot holds {held} days",
                days / 2
            )));
        }
        zarr_io::verify_days(
            &zarr_io::read_t2m(&old_store, days / 2, 1)?,
            days / 2,
            1,
            "W1 at its snapshot",
        )?;
    }
    Ok(())
}
