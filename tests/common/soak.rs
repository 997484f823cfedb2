//! The lifecycle soak: writers committing, ref movers creating, resetting and deleting
//! branches and tags at old snapshots, merging, squashing and amending, and expiry plus GC
//! running with a short grace period,
//! all at once, round after round; after every round a fresh handle reads every retained
//! version back against the model and fsck finds nothing missing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use floe::{
    DynStorage, Error, ExpireBefore, ExpireOptions, GcOptions, MergeOptions, MergeStrategy,
    Repository, RepositorySettings, SnapshotId, VersionSpec,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{p, uint8_array};

/// Writers committing concurrently.
pub const WRITERS: u64 = 8;

/// The content of every snapshot the test made: chunk coordinate -> bytes.
type Model = Arc<Mutex<HashMap<SnapshotId, BTreeMap<u64, Bytes>>>>;

fn settings() -> RepositorySettings {
    RepositorySettings {
        inline_threshold: 0,
        single_object_threshold: 0,
        delta_max_entries: 3,
        max_commit_attempts: 200,
        ..RepositorySettings::default()
    }
}

fn payload(writer: u64, round: u64) -> Bytes {
    let mut bytes = vec![writer as u8; 8];
    bytes.extend_from_slice(&round.to_le_bytes());
    Bytes::from(bytes)
}

/// What a finished soak saw, to assert on.
#[derive(Debug, Default)]
pub struct SoakSummary {
    pub commits: u64,
    pub ref_moves: u64,
    pub refused_moves: u64,
    pub deleted_objects: u64,
    pub versions_checked: u64,
    /// Merge commits published.
    pub merges: u64,
    /// Squashes and amends published.
    pub rewrites: u64,
}

/// History edits published, counted across tasks.
#[derive(Default)]
struct Edits {
    merges: AtomicU64,
    rewrites: AtomicU64,
}

async fn read_content(repo: &Repository, id: SnapshotId) -> floe::Result<BTreeMap<u64, Bytes>> {
    let session = repo.session_at_snapshot(id).await?;
    let mut out = BTreeMap::new();
    for coord in 0..WRITERS {
        if let Some(bytes) = session.get_chunk(&p("a"), &[coord]).await? {
            out.insert(coord, bytes);
        }
    }
    Ok(out)
}

/// One writer's commit of round `round`: its chunk, then the content of the new snapshot read
/// back at once (the model of that snapshot).
/// A merge into `main` that rewrote the writer's chunk meanwhile makes its commit conflict:
/// it starts again from the new tip, as a writer would.
async fn write_round(repo: &Repository, model: &Model, writer: u64, round: u64) {
    let mut attempts = 0;
    let id = loop {
        attempts += 1;
        let session = repo.writable_session("main").await.unwrap();
        session
            .set_chunk(&p("a"), &[writer], payload(writer, round))
            .await
            .unwrap();
        match session.commit(&format!("w{writer} r{round}"), None).await {
            Ok(id) => break id,
            Err(Error::Conflict { .. }) if attempts < 20 => continue,
            Err(e) => panic!("writer {writer}, round {round}: {e}"),
        }
    };
    let content = read_content(repo, id).await.unwrap();
    assert_eq!(content.get(&writer), Some(&payload(writer, round)));
    model.lock().unwrap().insert(id, content);
}

/// A ref move at a random snapshot the test made; `false` when it was refused because GC
/// condemned or deleted that snapshot (the only acceptable refusal).
async fn move_refs(
    repo: &Repository,
    rng: &mut StdRng,
    model: &Model,
    edits: &Edits,
    mover: u64,
    round: u64,
) -> bool {
    let target = {
        let model = model.lock().unwrap();
        let mut ids: Vec<SnapshotId> = model.keys().copied().collect();
        ids.sort();
        ids[rng.random_range(0..ids.len())]
    };
    let result = if mover == 0 {
        let name = format!("b{}", rng.random_range(0..3));
        // Side branches start from recent history half of the time, so that merges and
        // rewrites find live history to work on.
        let recent = recent_main_commit(repo, rng).await;
        let start = if rng.random_bool(0.5) { recent } else { target };
        match rng.random_range(0..8) {
            0 => match repo.create_branch(&name, start).await {
                Err(Error::BranchExists { .. }) => repo.reset_branch(&name, start).await,
                other => other,
            },
            1 => match repo.reset_branch(&name, start).await {
                Err(Error::BranchNotFound { .. }) => Ok(()),
                other => other,
            },
            2 => match repo.delete_branch(&name).await {
                Err(Error::BranchNotFound { .. }) => Ok(()),
                other => other,
            },
            3 | 4 => merge_into(repo, model, edits, start, &name, round).await,
            5 => match repo.branch_tip(&name).await {
                Ok(tip) => merge_into(repo, model, edits, tip, "main", round).await,
                Err(Error::BranchNotFound { .. }) => Ok(()),
                Err(e) => Err(e),
            },
            _ => rewrite(repo, rng, model, edits, &name, round).await,
        }
    } else if rng.random_bool(0.7) {
        repo.create_tag(&format!("t{round}"), target).await
    } else {
        let tags = repo.list_tags().await.unwrap();
        match tags.first() {
            Some(tag) => repo.delete_tag(&tag.name).await,
            None => Ok(()),
        }
    };
    match result {
        Ok(()) => true,
        Err(Error::SnapshotCondemned { .. }) | Err(Error::SnapshotExpired { .. }) => false,
        Err(e) => panic!("ref move failed: {e}"),
    }
}

/// One of the 16 newest commits of `main`.
async fn recent_main_commit(repo: &Repository, rng: &mut StdRng) -> SnapshotId {
    let (tip, log) = repo
        .log(&VersionSpec::Branch("main".into()), 16)
        .await
        .unwrap();
    log.get(rng.random_range(0..log.len().max(1)))
        .map_or(tip, |e| e.id)
}

/// The content a merge of `source` into `target` from `base` must have, chunk by chunk
/// (chunks both sides changed are the source's: the merges use the `theirs` strategy).
fn merged_content(
    base: &BTreeMap<u64, Bytes>,
    target: &BTreeMap<u64, Bytes>,
    source: &BTreeMap<u64, Bytes>,
) -> BTreeMap<u64, Bytes> {
    let mut out = BTreeMap::new();
    for coord in 0..WRITERS {
        let (b, t, s) = (base.get(&coord), target.get(&coord), source.get(&coord));
        let pick = if s == b { t } else { s };
        if let Some(bytes) = pick {
            out.insert(coord, bytes.clone());
        }
    }
    out
}

/// Merges `source` into `branch` (`Ok` when the branch does not exist) and checks the merge
/// commit against the model of the three versions before adding it.
async fn merge_into(
    repo: &Repository,
    model: &Model,
    edits: &Edits,
    source: SnapshotId,
    branch: &str,
    round: u64,
) -> floe::Result<()> {
    let options = MergeOptions {
        strategy: MergeStrategy::Theirs,
        message: Some(format!("merge r{round}")),
        ..MergeOptions::default()
    };
    let report = match repo.merge(source, branch, &options).await {
        Err(Error::BranchNotFound { .. }) | Err(Error::InvalidHistoryEdit { .. }) => return Ok(()),
        other => other?,
    };
    let Some(id) = report.snapshot else {
        return Ok(());
    };
    // A writer's commit lands before its content enters the model: read those.
    let mut sides = Vec::new();
    for id in [report.base, report.parent, source] {
        let known = model.lock().unwrap().get(&id).cloned();
        sides.push(match known {
            Some(content) => content,
            None => read_content(repo, id).await?,
        });
    }
    let expected = merged_content(&sides[0], &sides[1], &sides[2]);
    let got = read_content(repo, id).await?;
    assert_eq!(
        got, expected,
        "round {round}: merge {id} of {source} into {branch}"
    );
    model.lock().unwrap().insert(id, got);
    edits.merges.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Squashes part of a side branch's history, or amends its tip with a chunk of its own, and
/// adds the new commits to the model (`Ok` when there is no such branch or nothing to do).
async fn rewrite(
    repo: &Repository,
    rng: &mut StdRng,
    model: &Model,
    edits: &Edits,
    branch: &str,
    round: u64,
) -> floe::Result<()> {
    let log = match repo.log(&VersionSpec::Branch(branch.into()), 8).await {
        Ok((_, log)) => log,
        Err(Error::BranchNotFound { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    // Commits the test made, newest first, above the setup commit (generation 1): rewriting
    // that one would leave the branch sharing no history with `main` but the empty root, and
    // merges between them would conflict over the whole dataset.
    let known: Vec<SnapshotId> = {
        let model = model.lock().unwrap();
        log.iter()
            .take_while(|e| model.contains_key(&e.id) && e.generation >= 2)
            .map(|e| e.id)
            .collect()
    };
    if known.len() >= 2 && rng.random_bool(0.5) {
        let last = rng.random_range(0..known.len() - 1);
        let first = rng.random_range(last + 1..known.len());
        let report = match repo
            .squash(branch, known[first], known[last], &Default::default())
            .await
        {
            Err(Error::InvalidHistoryEdit { .. }) => return Ok(()),
            other => other?,
        };
        edits.rewrites.fetch_add(1, Ordering::Relaxed);
        let mut model = model.lock().unwrap();
        let squashed = model[&known[last]].clone();
        model.insert(report.snapshot, squashed);
        for (original, copy) in report.replayed {
            let content = model[&original].clone();
            model.insert(copy, content);
        }
        return Ok(());
    }
    if known.is_empty() {
        return Ok(());
    }
    let session = match repo.writable_session(branch).await {
        Ok(session) => session,
        Err(Error::BranchNotFound { .. }) => return Ok(()),
        Err(e) => return Err(e),
    };
    let base = session.snapshot_id();
    let coord = rng.random_range(0..WRITERS);
    let bytes = payload(100 + coord, round);
    session.set_chunk(&p("a"), &[coord], bytes.clone()).await?;
    let id = match session
        .amend(Some(&format!("amended r{round}")), None)
        .await
    {
        Err(Error::InvalidHistoryEdit { .. }) => return Ok(()),
        other => other?,
    };
    let mut content = read_content(repo, id).await?;
    assert_eq!(
        content.remove(&coord),
        Some(bytes),
        "round {round}: amend {id}"
    );
    let mut model = model.lock().unwrap();
    if let Some(before) = model.get(&base) {
        let mut others = before.clone();
        others.remove(&coord);
        assert_eq!(content, others, "round {round}: amend {id} of {base}");
    }
    content.insert(coord, payload(100 + coord, round));
    model.insert(id, content);
    edits.rewrites.fetch_add(1, Ordering::Relaxed);
    Ok(())
}

/// Every version a branch or tag reaches (the history of each down to its expiry cut), read
/// from a fresh handle and compared with the model; then fsck.
async fn check_round(storage: &DynStorage, model: &Model, round: u64) -> u64 {
    let repo = Repository::open(storage.clone(), settings()).await.unwrap();
    let mut versions: Vec<SnapshotId> = Vec::new();
    for branch in repo.list_branches().await.unwrap() {
        let (_, log) = repo
            .log(&VersionSpec::Branch(branch.name.clone()), usize::MAX)
            .await
            .unwrap_or_else(|e| panic!("round {round}: log of {}: {e}", branch.name));
        versions.extend(log.iter().map(|e| e.id));
    }
    for tag in repo.list_tags().await.unwrap() {
        versions.push(tag.snapshot);
    }
    versions.sort();
    versions.dedup();
    let expected: Vec<(SnapshotId, BTreeMap<u64, Bytes>)> = {
        let model = model.lock().unwrap();
        versions
            .iter()
            .filter_map(|id| model.get(id).map(|c| (*id, c.clone())))
            .collect()
    };
    for (id, content) in &expected {
        let got = read_content(&repo, *id)
            .await
            .unwrap_or_else(|e| panic!("round {round}: retained {id} unreadable: {e}"));
        assert_eq!(&got, content, "round {round}: retained {id}");
    }
    let fsck = repo.fsck(Default::default()).await.unwrap();
    assert!(fsck.is_clean(), "round {round}: {:?}", fsck.problems);
    expected.len() as u64
}

/// Runs the soak on an empty storage for `rounds` rounds, GC with `grace` (which must exceed
/// the longest commit: 8 writers racing on a slow store take seconds).
pub async fn soak(storage: DynStorage, rounds: u64, seed: u64, grace: Duration) -> SoakSummary {
    let repo = Repository::init(storage.clone(), settings()).await.unwrap();
    let setup = repo.writable_session("main").await.unwrap();
    setup
        .create_group(&p("/"), Default::default())
        .await
        .unwrap();
    setup
        .create_array(&p("a"), uint8_array(&[WRITERS * 16], &[16]))
        .await
        .unwrap();
    let first = setup.commit("setup", None).await.unwrap();
    let model: Model = Arc::default();
    model.lock().unwrap().insert(first, BTreeMap::new());
    let mut rng = StdRng::seed_from_u64(seed);
    let mut summary = SoakSummary::default();
    let edits = Arc::new(Edits::default());
    let gc = GcOptions {
        grace,
        ..GcOptions::default()
    };
    for round in 0..rounds {
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let (repo, model) = (repo.clone(), model.clone());
            tasks.push(tokio::spawn(async move {
                write_round(&repo, &model, writer, round).await;
                (0, 0, 0)
            }));
        }
        for mover in 0..2 {
            let (repo, model, edits) = (repo.clone(), model.clone(), edits.clone());
            let mut rng = StdRng::seed_from_u64(rng.random());
            tasks.push(tokio::spawn(async move {
                let landed = move_refs(&repo, &mut rng, &model, &edits, mover, round).await;
                (1, u64::from(!landed), 0)
            }));
        }
        {
            let repo = repo.clone();
            let gc = GcOptions {
                full: round % 10 == 9,
                ..gc.clone()
            };
            let keep_last = rng.random_range(1..6);
            tasks.push(tokio::spawn(async move {
                let expire = ExpireOptions {
                    keep_last,
                    ..ExpireOptions::older_than(ExpireBefore::Age(Duration::ZERO))
                };
                repo.expire(&expire).await.unwrap();
                let report = repo.gc(&gc).await.unwrap();
                (0, 0, report.deleted.len() as u64)
            }));
        }
        for task in tasks {
            let (moves, refused, deleted) = task.await.unwrap();
            summary.ref_moves += moves;
            summary.refused_moves += refused;
            summary.deleted_objects += deleted;
        }
        summary.commits += WRITERS;
        summary.versions_checked += check_round(&storage, &model, round).await;
    }
    summary.merges = edits.merges.load(Ordering::Relaxed);
    summary.rewrites = edits.rewrites.load(Ordering::Relaxed);
    summary
}
