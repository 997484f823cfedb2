//! The main floe job: a daily forecast appended by a cron job, then read back as of any day.
//!
//! ```text
//! cargo run --release --example daily_forecast -- [--dir DIR] [--days N]
//! ```
//!
//! 1. Creates a repository in `DIR` (default `./daily_forecast_repo`) holding, written by
//!    zarrs, a CF-1.10 dataset as a forecast provider publishes it: `t2m` (float32, time x
//!    181 lat x 360 lon, zstd, with units and standard name), `time` (int64 seconds with CF
//!    units and calendar, so xarray decodes dates), the coordinates `lat` and `lon` (float64,
//!    written once), dimension names on every array, global attributes (`Conventions`,
//!    `title`, ...) and no attribute naming the writing software (zarrs' `_zarrs` is turned
//!    off). See `workloads/cf.rs`.
//! 2. Runs the daily job N times (default 60): open the repository, start a session on
//!    `main`, grow `t2m` and `time` by one day, write the day's field and timestamp, commit.
//! 3. Tags the middle day (`day-<N/2>`).
//! 4. Reopens an older version by time (`main@<RFC 3339 time>` between two daily commits)
//!    and by tag, and checks every value read (coordinates included) against the
//!    regenerated data.
//! 5. Prints a short report, ending with the commands that open the tagged version in
//!    xarray through `floe serve`.
//!
//! `DIR` must be new, empty, or a repository made by an earlier run of this example (the
//! metadata of every commit it makes carries `"created_by": "floe daily_forecast example"`,
//! and so did the root group's attributes before the dataset followed CF): such a repository
//! is deleted and the run starts afresh. Anything else is refused, so the example never
//! deletes data it did not create.
//!
//! The field of day d is WORKLOADS.md's W1 field, so this is W1 at a smaller scale.

#[allow(dead_code)]
#[path = "workloads/cf.rs"]
mod cf;
#[allow(dead_code)]
#[path = "workloads/data.rs"]
mod data;
#[allow(dead_code)]
#[path = "workloads/report.rs"]
mod report;
#[allow(dead_code)]
#[path = "workloads/zarr_io.rs"]
mod zarr_io;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use floe::{NodePath, Repository, SnapshotId, StorageOptions, VersionSpec};
use report::{mismatch, ms_since, percentile, Res};
use tokio::runtime::Runtime;

const CREATED_BY: &str = "floe daily_forecast example";

struct Args {
    dir: PathBuf,
    days: u64,
}

fn parse_args() -> Res<Args> {
    let usage = "usage: daily_forecast [--dir DIR] [--days N]";
    let mut parsed = Args {
        dir: PathBuf::from("daily_forecast_repo"),
        days: 60,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || {
            args.next()
                .ok_or_else(|| format!("{flag} needs a value\n{usage}"))
        };
        match flag.as_str() {
            "--dir" => parsed.dir = PathBuf::from(value()?),
            "--days" => parsed.days = value()?.parse().map_err(|e| format!("--days: {e}"))?,
            "-h" | "--help" => return Err(usage.into()),
            other => return Err(format!("unknown argument `{other}`\n{usage}").into()),
        }
    }
    if parsed.days < 4 {
        return Err("--days must be at least 4".into());
    }
    Ok(parsed)
}

/// Makes `dir` ready for a fresh repository: new, empty, or this example's previous output.
fn prepare_dir(rt: &Runtime, dir: &Path) -> Res<()> {
    if !dir.exists() || std::fs::read_dir(dir)?.next().is_none() {
        return Ok(());
    }
    let location = dir.to_str().ok_or("the directory path is not UTF-8")?;
    let refuse = |why: &str| -> Res<()> {
        Err(format!(
            "{} {why}; choose another --dir (this example only replaces its own earlier output)",
            dir.display()
        )
        .into())
    };
    let repo = match rt.block_on(Repository::open_location(
        location,
        &StorageOptions::default(),
    )) {
        Ok(repo) => repo,
        Err(_) => return refuse("is not empty and is not a floe repository"),
    };
    let tip = rt.block_on(repo.branch_tip(floe::DEFAULT_BRANCH))?;
    let marked = |attributes: &serde_json::Map<String, serde_json::Value>| {
        attributes.get("created_by").and_then(|v| v.as_str()) == Some(CREATED_BY)
    };
    let by_commit = marked(&rt.block_on(repo.snapshot_entry(tip))?.metadata);
    let main = rt.block_on(repo.session_at_snapshot(tip))?;
    let by_attribute = main
        .node(&NodePath::root())?
        .is_some_and(|root| marked(&root.metadata.attributes()));
    if !by_commit && !by_attribute {
        return refuse("is a floe repository that this example did not create");
    }
    println!(
        "replacing the repository of an earlier run in {}",
        dir.display()
    );
    std::fs::remove_dir_all(dir)?;
    Ok(())
}

/// The metadata of every commit this example makes: the mark `prepare_dir` recognises.
fn commit_metadata() -> serde_json::Map<String, serde_json::Value> {
    let mut metadata = serde_json::Map::new();
    metadata.insert("created_by".into(), CREATED_BY.into());
    metadata
}

/// One day of the cron job. Returns (whole job ms, snapshot).
fn daily_job(rt: &Runtime, location: &str, day: u64, field: &[f32]) -> Res<(f64, SnapshotId)> {
    let start = Instant::now();
    let repo = rt.block_on(Repository::open_location(
        location,
        &StorageOptions::default(),
    ))?;
    let session = rt.block_on(repo.writable_session(floe::DEFAULT_BRANCH))?;
    zarr_io::append_day(&zarr_io::store_of(&session, rt)?, day, field)?;
    let mut metadata = commit_metadata();
    metadata.insert("day".into(), day.into());
    let id = rt.block_on(session.commit(&format!("append day {day}"), Some(metadata)))?;
    Ok((ms_since(start), id))
}

/// Opens `spec` and checks that it holds exactly days `0..=last_day`, every timestamp and the
/// fields of `check_days`. Returns the snapshot and the number of values compared.
fn verify_version(
    rt: &Runtime,
    location: &str,
    spec: &VersionSpec,
    last_day: u64,
    check_days: &[u64],
) -> Res<(SnapshotId, u64)> {
    let repo = rt.block_on(Repository::open_location(
        location,
        &StorageOptions::default(),
    ))?;
    let session = rt.block_on(repo.readonly_session(spec))?;
    let store = zarr_io::store_of(&session, rt)?;
    let held = zarr_io::forecast_days(&store)?;
    if held != last_day + 1 {
        return Err(mismatch(format!(
            "{spec} holds {held} days, expected {}",
            last_day + 1
        )));
    }
    let times = zarr_io::read_time(&store)?;
    if times != (0..=last_day).map(data::day_timestamp).collect::<Vec<_>>() {
        return Err(mismatch(format!("{spec}: the time array differs")));
    }
    let mut checked = times.len() as u64;
    for (name, expected) in [("lat", data::latitudes()), ("lon", data::longitudes())] {
        if zarr_io::read_coordinate(&store, name)? != expected {
            return Err(mismatch(format!("{spec}: the {name} coordinate differs")));
        }
        checked += expected.len() as u64;
    }
    for &day in check_days {
        zarr_io::verify_days(
            &zarr_io::read_t2m(&store, day, 1)?,
            day,
            1,
            &spec.to_string(),
        )?;
        checked += data::DAY_ELEMENTS as u64;
    }
    Ok((session.snapshot_id(), checked))
}

fn run(args: &Args) -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    prepare_dir(&rt, &args.dir)?;
    std::fs::create_dir_all(&args.dir)?;
    let location = args.dir.to_str().ok_or("the directory path is not UTF-8")?;
    let total = Instant::now();

    // 1. The repository, with the empty arrays in a first commit.
    let repo = rt.block_on(Repository::init_location(
        location,
        &StorageOptions::default(),
    ))?;
    let session = rt.block_on(repo.writable_session(floe::DEFAULT_BRANCH))?;
    let store = zarr_io::store_of(&session, &rt)?;
    zarr_io::create_forecast(&store)?;
    rt.block_on(session.commit("create the forecast dataset", Some(commit_metadata())))?;

    // 2. The daily job.
    let mut append_ms = Vec::new();
    let mut snapshots = Vec::new();
    for day in 0..args.days {
        let field = data::day_field(day);
        let (ms, id) = daily_job(&rt, location, day, &field)?;
        append_ms.push(ms);
        snapshots.push(id);
    }

    // 3. A tag on the middle day.
    let tag_day = args.days / 2;
    let tag = format!("day-{tag_day}");
    rt.block_on(repo.create_tag(&tag, snapshots[tag_day as usize]))?;

    // 4. Older versions by time and by tag, and main.
    let as_of_day = args.days / 4;
    let committed = |day: u64| -> Res<chrono::DateTime<chrono::Utc>> {
        Ok(rt
            .block_on(repo.snapshot_entry(snapshots[day as usize]))?
            .committed_at)
    };
    let (t0, t1) = (committed(as_of_day)?, committed(as_of_day + 1)?);
    let between = t0 + (t1 - t0) / 2;
    let as_of = VersionSpec::parse(&format!(
        "main@{}",
        between.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
    ))?;
    let (as_of_id, checked_as_of) =
        verify_version(&rt, location, &as_of, as_of_day, &[0, as_of_day])?;
    if as_of_id != snapshots[as_of_day as usize] {
        return Err(mismatch(format!(
            "{as_of} resolved to {as_of_id}, expected day {as_of_day}'s commit"
        )));
    }
    let by_tag = VersionSpec::Tag(tag.clone());
    let (tag_id, checked_tag) = verify_version(&rt, location, &by_tag, tag_day, &[1, tag_day])?;
    if tag_id != snapshots[tag_day as usize] {
        return Err(mismatch(format!("tag {tag} resolved to {tag_id}")));
    }
    let last = args.days - 1;
    let (_, checked_main) = verify_version(
        &rt,
        location,
        &VersionSpec::Branch(floe::DEFAULT_BRANCH.into()),
        last,
        &[last],
    )?;
    let log = rt.block_on(repo.log_from(
        rt.block_on(repo.branch_tip(floe::DEFAULT_BRANCH))?,
        usize::MAX,
    ))?;
    if log.len() as u64 != args.days + 2 {
        return Err(mismatch(format!(
            "main's log has {} entries, expected {}",
            log.len(),
            args.days + 2
        )));
    }

    // 5. Report.
    let (bytes, objects) = report::dir_usage(&args.dir)?;
    println!(
        "daily_forecast: {} days appended to {}",
        args.days,
        args.dir.display()
    );
    println!(
        "  append (open + session + grow + write + commit): p50 {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        percentile(&append_ms, 50.0),
        percentile(&append_ms, 90.0),
        percentile(&append_ms, 100.0)
    );
    println!(
        "  repository: {:.1} MB in {objects} objects ({:.1} MB of data written)",
        bytes as f64 / 1e6,
        args.days as f64 * (data::DAY_ELEMENTS * 4 + 8) as f64 / 1e6
    );
    println!(
        "  snapshots: day 0 {}, day {last} {} ({} log entries)",
        snapshots[0].short(),
        snapshots[last as usize].short(),
        log.len()
    );
    println!(
        "  by time: {as_of} -> {} (day {as_of_day}), {checked_as_of} values checked",
        as_of_id.short()
    );
    println!(
        "  by tag:  {tag} -> {} (day {tag_day}), {checked_tag} values checked",
        tag_id.short()
    );
    println!(
        "  main:    {} days, {checked_main} values checked",
        args.days
    );
    println!(
        "  all values match; total {:.1} s",
        total.elapsed().as_secs_f64()
    );
    let dir = shell_word(location);
    println!("\nOpen {tag} in xarray. Serve the repository (cargo builds `floe` on first use;");
    println!("an installed `floe` takes the same arguments):");
    println!("  cargo run --release -- -r {dir} serve --addr {SERVE_ADDR}");
    println!("then, with zarr, xarray, fsspec and aiohttp installed:");
    println!(
        "  python3 -c 'import xarray; print(xarray.open_zarr(\"http://{SERVE_ADDR}/{tag}\"))'"
    );
    Ok(())
}

/// The address the printed `floe serve` command listens on.
const SERVE_ADDR: &str = "127.0.0.1:8080";

/// `text` as one POSIX shell word: as is when every character is one no shell treats
/// specially, else single-quoted.
fn shell_word(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "-_./:@%+=,".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
