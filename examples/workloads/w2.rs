//! W2: open historical versions of W1's repository and read them. Every figure is the median
//! of 5 runs, each with a fresh repository handle (no cache shared between runs).

use std::time::Instant;

use floe::{Session, VersionSpec};

use super::report::{median, mismatch, ms_since, Report, Res};
use super::w1::Forecast;
use super::{data, zarr_io, Ctx};

const RUNS: usize = 5;

/// The day W1's references use for `day` (100 or 200) when W1 ran for fewer than 365 days.
fn scaled_day(day: u64, days: u64) -> u64 {
    if days >= 365 {
        day
    } else {
        (day * days / 365).min(days.saturating_sub(1))
    }
}

fn open(ctx: &Ctx, location: &str, spec: &VersionSpec) -> Res<Session> {
    let repo = ctx.open(location)?;
    Ok(ctx.rt.block_on(repo.readonly_session(spec))?)
}

/// Median time of `RUNS` calls of `f`.
fn timed(mut f: impl FnMut() -> Res<()>) -> Res<f64> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        f()?;
        times.push(ms_since(start));
    }
    Ok(median(&times))
}

/// Runs W2 on W1's repository.
pub fn run(ctx: &Ctx, forecast: &Forecast) -> Res<Report> {
    let location = forecast.location.as_str();
    let days = forecast.days;
    if days == 0 {
        return Err("W2 needs at least one day in W1's repository".into());
    }
    let snapshot_day = scaled_day(100, days);
    let as_of_day = scaled_day(200, days);
    let snapshot_id = forecast.day_snapshots[snapshot_day as usize];
    let as_of_id = forecast.day_snapshots[as_of_day as usize];
    let as_of_time = {
        let repo = ctx.open(location)?;
        ctx.rt.block_on(repo.snapshot_entry(as_of_id))?.committed_at
    };
    println!(
        "W2: reopening W1's repository (snapshot of day {snapshot_day}, as of day {as_of_day})"
    );
    let main = VersionSpec::Branch(floe::DEFAULT_BRANCH.into());
    let by_id = VersionSpec::Snapshot(snapshot_id);
    let as_of = VersionSpec::AsOf {
        branch: floe::DEFAULT_BRANCH.into(),
        time: as_of_time,
    };

    // Expected values, regenerated once (not timed).
    let mut expected_all = Vec::with_capacity(days as usize * data::DAY_ELEMENTS);
    for day in 0..days {
        expected_all.extend(data::day_field(day));
    }
    let expected_as_of = &expected_all[..(as_of_day as usize + 1) * data::DAY_ELEMENTS];
    let check = |got: &[f32], want: &[f32], what: &str| -> Res<()> {
        match data::first_mismatch_f32(got, want) {
            None => Ok(()),
            Some(at) => Err(mismatch(format!(
                "W2 {what}: element {at} differs (read {} values, expected {})",
                got.len(),
                want.len()
            ))),
        }
    };

    let open_main_ms = timed(|| open(ctx, location, &main).map(drop))?;
    let open_snapshot_ms = timed(|| {
        let s = open(ctx, location, &by_id)?;
        if s.snapshot_id() != snapshot_id {
            return Err(mismatch("W2: opened the wrong snapshot by id"));
        }
        Ok(())
    })?;
    let open_as_of_ms = timed(|| {
        let s = open(ctx, location, &as_of)?;
        if s.snapshot_id() != as_of_id {
            return Err(mismatch(format!(
                "W2: as-of resolved to {}, expected day {as_of_day}'s {as_of_id}",
                s.snapshot_id()
            )));
        }
        Ok(())
    })?;
    let mut verify_ms = Vec::new();
    let read_all_main_ms = timed_read(
        &mut verify_ms,
        || {
            let s = open(ctx, location, &main)?;
            zarr_io::read_t2m(&zarr_io::store_of(&s, &ctx.rt)?, 0, days)
        },
        |got| check(&got, &expected_all, "read all at main"),
    )?;
    let read_as_of_ms = timed_read(
        &mut verify_ms,
        || {
            let s = open(ctx, location, &as_of)?;
            let store = zarr_io::store_of(&s, &ctx.rt)?;
            let held = zarr_io::forecast_days(&store)?;
            if held != as_of_day + 1 {
                return Err(mismatch(format!(
                    "W2: as of day {as_of_day}, t2m holds {held} days"
                )));
            }
            zarr_io::read_t2m(&store, 0, held)
        },
        |got| check(&got, expected_as_of, "read as of"),
    )?;
    let log_all_ms = timed(|| {
        let repo = ctx.open(location)?;
        let tip = ctx.rt.block_on(repo.branch_tip(floe::DEFAULT_BRANCH))?;
        let log = ctx.rt.block_on(repo.log_from(tip, usize::MAX))?;
        // init + setup commit + one per day
        if log.len() as u64 != days + 2 {
            return Err(mismatch(format!(
                "W2: log lists {} entries, expected {}",
                log.len(),
                days + 2
            )));
        }
        Ok(())
    })?;

    let full = days == 365;
    let mut report = Report::new("w2");
    report.figure("open_main_ms", open_main_ms, Some(1.5), "ms");
    report.figure("open_snapshot_ms", open_snapshot_ms, Some(0.6), "ms");
    report.figure("open_as_of_ms", open_as_of_ms, Some(44.0), "ms");
    report.figure(
        "read_all_main_ms",
        read_all_main_ms,
        full.then_some(421.0),
        "ms",
    );
    report.figure("read_as_of_ms", read_as_of_ms, None, "ms");
    report.figure("log_all_ms", log_all_ms, full.then_some(114.0), "ms");
    // Icechunk 2.3.0 (WORKLOADS.md).
    report.newest("open_main_ms", 1.64);
    report.newest("open_snapshot_ms", 1.85);
    report.newest("open_as_of_ms", 1.51);
    if full {
        report.newest("read_all_main_ms", 370.0);
        report.newest("log_all_ms", 1.69);
    }
    let bytes = days as f64 * data::DAY_ELEMENTS as f64 * 4.0;
    report.extra(
        "read_all_main_mbps",
        (bytes / 1e6 / (read_all_main_ms / 1e3)).into(),
    );
    report.extra("snapshot_day", snapshot_day.into());
    report.extra("as_of_day", as_of_day.into());
    report.target(
        "as-of open <= 1/10 of Icechunk's 44 ms",
        open_as_of_ms <= 4.4,
    );
    report.target("full log <= 1/10 of Icechunk's 114 ms", log_all_ms <= 11.4);
    report.note(format!("each open = Repository::open + read-only session; reads via zarrs, verified (verification not timed, {:.0} ms)", verify_ms.iter().sum::<f64>()));
    if !full {
        report.note(format!(
            "W1 ran {days} days instead of 365: days {snapshot_day}/{as_of_day} stand for 100/200"
        ));
    }
    Ok(report)
}

/// Median time of `RUNS` reads; each result is verified outside the timed part.
fn timed_read(
    verify_ms: &mut Vec<f64>,
    mut read: impl FnMut() -> Res<Vec<f32>>,
    verify: impl Fn(Vec<f32>) -> Res<()>,
) -> Res<f64> {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let got = read()?;
        times.push(ms_since(start));
        let start = Instant::now();
        verify(got)?;
        verify_ms.push(ms_since(start));
    }
    Ok(median(&times))
}
