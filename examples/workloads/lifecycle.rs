//! Lifecycle figures (issue 11) on W6's and W1's repositories: expire + GC time, requests and
//! bytes freed; an incremental run after 10 more commits; a full run; diff of neighbouring
//! commits and of the first and last kept ones; merging a one-chunk fix made on a branch
//! before those 10 commits, and squashing the 10 commits. Builds the repositories with W6 and W1 first
//! (under `--dir`), then works on fresh handles whose storage counts requests.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use floe::{
    DiffOptions, ExpireBefore, ExpireOptions, GcOptions, GcReport, MergeOptions, MeteredStorage,
    Repository, RepositorySettings, SnapshotId, VersionSpec,
};

use super::report::{dir_usage, ms_since, Report, Res};
use super::{data, w1, w6, zarr_io, Ctx};

/// Commits kept by expiry on each repository.
const KEEP_LAST: u64 = 30;

/// A fresh handle whose storage counts requests.
fn metered(ctx: &Ctx, location: &str) -> Res<(Repository, Arc<floe::Meter>)> {
    let storage = floe::open_storage(location, &Default::default())?;
    let metered = MeteredStorage::new(storage);
    let meter = metered.meter();
    let repo = ctx.rt.block_on(Repository::open(
        Arc::new(metered),
        RepositorySettings::default(),
    ))?;
    meter.take();
    Ok((repo, meter))
}

fn gc_figures(report: &mut Report, prefix: &str, gc: &GcReport, ms: f64, requests: usize) {
    report.extra(&format!("{prefix}_ms"), ms.into());
    report.extra(&format!("{prefix}_requests"), requests.into());
    report.extra(&format!("{prefix}_condemned"), gc.condemned.len().into());
    report.extra(
        &format!("{prefix}_condemned_bytes"),
        GcReport::bytes(&gc.condemned).into(),
    );
    report.extra(&format!("{prefix}_deleted"), gc.deleted.len().into());
    report.extra(
        &format!("{prefix}_deleted_bytes"),
        GcReport::bytes(&gc.deleted).into(),
    );
    report.extra(
        &format!("{prefix}_snapshots_read"),
        gc.snapshots_read.into(),
    );
    report.extra(
        &format!("{prefix}_manifests_read"),
        gc.manifests_read.into(),
    );
    println!(
        "  {prefix}: {ms:.1} ms, {requests} requests, condemned {} ({} B), deleted {} ({} B), read {} snapshots {} manifests",
        gc.condemned.len(),
        GcReport::bytes(&gc.condemned),
        gc.deleted.len(),
        GcReport::bytes(&gc.deleted),
        gc.snapshots_read,
        gc.manifests_read
    );
}

/// Expire to the newest [`KEEP_LAST`] commits, GC twice a grace period apart, `more` commits,
/// an incremental and a full run, then diffs; all on `location`.
fn measure(
    ctx: &Ctx,
    name: &'static str,
    location: &str,
    dir: &Path,
    more: &dyn Fn() -> Res<()>,
) -> Res<Report> {
    let mut report = Report::new(name);
    let grace = GcOptions {
        grace: Duration::from_secs(1),
        ..GcOptions::default()
    };
    let (bytes_before, objects_before) = dir_usage(dir)?;
    let (repo, meter) = metered(ctx, location)?;
    let start = Instant::now();
    let expired = ctx.rt.block_on(repo.expire(&ExpireOptions {
        keep_last: KEEP_LAST,
        ..ExpireOptions::older_than(ExpireBefore::Age(Duration::ZERO))
    }))?;
    report.figure("expire_ms", ms_since(start), None, "ms");
    report.extra("expire_requests", meter.take().requests().into());
    report.extra(
        "expired_commits",
        expired
            .branches
            .iter()
            .map(|b| b.newly_expired)
            .sum::<u64>()
            .into(),
    );

    let (repo, meter) = metered(ctx, location)?;
    let start = Instant::now();
    let condemn = ctx.rt.block_on(repo.gc(&grace))?;
    let ms = ms_since(start);
    report.figure("gc_condemn_ms", ms, None, "ms");
    gc_figures(
        &mut report,
        "gc_condemn",
        &condemn,
        ms,
        meter.take().requests(),
    );
    std::thread::sleep(Duration::from_millis(1100));

    let (repo, meter) = metered(ctx, location)?;
    let start = Instant::now();
    let delete = ctx.rt.block_on(repo.gc(&grace))?;
    let ms = ms_since(start);
    report.figure("gc_delete_ms", ms, None, "ms");
    gc_figures(
        &mut report,
        "gc_delete",
        &delete,
        ms,
        meter.take().requests(),
    );
    let (bytes_after, objects_after) = dir_usage(dir)?;
    report.figure("repo_bytes_before", bytes_before as f64, None, "bytes");
    report.figure("repo_bytes_after", bytes_after as f64, None, "bytes");
    report.extra("repo_objects_before", objects_before.into());
    report.extra("repo_objects_after", objects_after.into());

    let tip_before = ctx.rt.block_on(repo.branch_tip(floe::DEFAULT_BRANCH))?;
    ctx.rt.block_on(repo.create_branch("fix", tip_before))?;
    more()?;
    let (repo, meter) = metered(ctx, location)?;
    let start = Instant::now();
    let incremental = ctx.rt.block_on(repo.gc(&grace))?;
    let ms = ms_since(start);
    report.figure("gc_after_10_commits_ms", ms, None, "ms");
    gc_figures(
        &mut report,
        "gc_after_10_commits",
        &incremental,
        ms,
        meter.take().requests(),
    );

    let (repo, meter) = metered(ctx, location)?;
    let start = Instant::now();
    let full = ctx.rt.block_on(repo.gc(&GcOptions {
        full: true,
        dry_run: true,
        ..grace
    }))?;
    let ms = ms_since(start);
    report.figure("gc_full_dry_ms", ms, None, "ms");
    gc_figures(
        &mut report,
        "gc_full_dry",
        &full,
        ms,
        meter.take().requests(),
    );

    let (repo, meter) = metered(ctx, location)?;
    let (tip, log) = ctx
        .rt
        .block_on(repo.log(&VersionSpec::Branch("main".into()), usize::MAX))?;
    meter.take();
    let parent: SnapshotId = log.get(1).map_or(tip, |e| e.id);
    let oldest: SnapshotId = log.last().map_or(tip, |e| e.id);
    let start = Instant::now();
    ctx.rt
        .block_on(repo.diff(parent, tip, &DiffOptions::default()))?;
    report.figure("diff_neighbours_ms", ms_since(start), None, "ms");
    report.extra("diff_neighbours_requests", meter.take().requests().into());
    let start = Instant::now();
    ctx.rt
        .block_on(repo.diff(oldest, tip, &DiffOptions::default()))?;
    report.figure("diff_first_last_kept_ms", ms_since(start), None, "ms");
    report.extra(
        "diff_first_last_kept_requests",
        meter.take().requests().into(),
    );
    report.extra("kept_commits", log.len().into());
    fix_one_chunk(ctx, &repo)?;
    merge_figures(ctx, &mut report, location)?;
    report.note(format!(
        "expire keeps the newest {KEEP_LAST} commits; GC grace 1 s (the second run deletes what the first condemned); \
         Icechunk's GC lists every object of the repository on every run"
    ));
    Ok(report)
}

/// Commits on branch `fix` a new copy of the first chunk of the array with the most chunks (a
/// stored chunk, not one small enough to sit inline in the manifest, where equal bytes would
/// change nothing).
fn fix_one_chunk(ctx: &Ctx, repo: &Repository) -> Res<()> {
    let session = ctx.rt.block_on(repo.writable_session("fix"))?;
    let mut largest = None;
    for node in session.list_nodes()? {
        if node.metadata.geometry().is_none() {
            continue;
        }
        let chunks = ctx.rt.block_on(session.list_chunks(&node.path))?;
        if largest.as_ref().is_none_or(|(_, n, _)| chunks.len() > *n) {
            if let Some(coord) = chunks.first() {
                largest = Some((node.path.clone(), chunks.len(), coord.clone()));
            }
        }
    }
    let (path, _, coord) = largest.ok_or("no array with chunks to fix")?;
    let bytes = ctx
        .rt
        .block_on(session.get_chunk(&path, &coord))?
        .ok_or("a listed chunk is missing")?;
    ctx.rt.block_on(session.set_chunk(&path, &coord, bytes))?;
    ctx.rt.block_on(session.commit("fix one chunk", None))?;
    Ok(())
}

/// Merges `fix` (one chunk changed, forked 10 commits ago) into `main`, then squashes the 10
/// commits made since the fork (the merge commit is replayed on top).
fn merge_figures(ctx: &Ctx, report: &mut Report, location: &str) -> Res<()> {
    let (repo, meter) = metered(ctx, location)?;
    let fix = ctx.rt.block_on(repo.branch_tip("fix"))?;
    let start = Instant::now();
    let merged =
        ctx.rt
            .block_on(repo.merge(fix, floe::DEFAULT_BRANCH, &MergeOptions::default()))?;
    report.figure("merge_ms", ms_since(start), None, "ms");
    report.extra("merge_requests", meter.take().requests().into());
    report.extra("merge_shards_reused", merged.counts.shards_reused.into());
    report.extra("merge_shards_merged", merged.counts.shards_merged.into());
    println!(
        "  merge of a one-chunk fix made 10 commits ago: {:.1} ms, {} shards reused, {} merged",
        ms_since(start),
        merged.counts.shards_reused,
        merged.counts.shards_merged
    );
    let (repo, meter) = metered(ctx, location)?;
    let (_, log) = ctx
        .rt
        .block_on(repo.log(&VersionSpec::Branch(floe::DEFAULT_BRANCH.into()), 12))?;
    meter.take();
    if log.len() < 12 {
        return Ok(());
    }
    let start = Instant::now();
    let squashed = ctx.rt.block_on(repo.squash(
        floe::DEFAULT_BRANCH,
        log[10].id,
        log[1].id,
        &Default::default(),
    ))?;
    report.figure("squash_10_ms", ms_since(start), None, "ms");
    report.extra("squash_10_requests", meter.take().requests().into());
    println!(
        "  squash of 10 commits ({} replayed): {:.1} ms",
        squashed.replayed.len(),
        ms_since(start)
    );
    Ok(())
}

/// Runs W6 and W1, then the lifecycle figures on both repositories.
pub fn run(ctx: &Ctx, dir: &Path) -> Res<Vec<Report>> {
    let w6_dir = dir.join("w6");
    let w6_report = w6::run(ctx, &w6_dir)?;
    w6_report.print();
    let w6_location = w6_dir
        .to_str()
        .ok_or("scratch path is not UTF-8")?
        .to_string();
    let commits = ctx.commits;
    let more_w6 = || -> Res<()> {
        let repo = ctx.open(&w6_location)?;
        for i in 0..10u64 {
            let session = ctx
                .rt
                .block_on(repo.writable_session(floe::DEFAULT_BRANCH))?;
            let store = zarr_io::store_of(&session, &ctx.rt)?;
            let index = (commits + i) % commits.max(1);
            zarr_io::write_counter(&store, index, data::long_history_value(index) + 1)?;
            ctx.rt.block_on(session.commit("after expiry", None))?;
        }
        Ok(())
    };
    println!("Lifecycle on W6's repository");
    let w6 = measure(ctx, "lifecycle_w6", &w6_location, &w6_dir, &more_w6)?;

    let w1_dir = dir.join("w1");
    let (w1_report, _) = w1::run(ctx, &w1_dir)?;
    w1_report.print();
    let w1_location = w1_dir
        .to_str()
        .ok_or("scratch path is not UTF-8")?
        .to_string();
    let days = ctx.days;
    let more_w1 = || -> Res<()> {
        for day in days..days + 10 {
            w1::append_one_day(ctx, &w1_location, day, &data::day_field(day))?;
        }
        Ok(())
    };
    println!("Lifecycle on W1's repository");
    let w1 = measure(ctx, "lifecycle_w1", &w1_location, &w1_dir, &more_w1)?;
    Ok(vec![w6, w1])
}
