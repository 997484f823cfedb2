//! The lifecycle soak: writers committing, ref movers creating, resetting and deleting
//! branches and tags at old snapshots, and expiry plus GC running with a short grace period,
//! all at once, round after round; after every round a fresh handle reads every retained
//! version back against the model and fsck finds nothing missing.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use floe::{
    DynStorage, Error, ExpireBefore, ExpireOptions, GcOptions, Repository, RepositorySettings,
    SnapshotId, VersionSpec,
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
async fn write_round(repo: &Repository, model: &Model, writer: u64, round: u64) {
    let session = repo.writable_session("main").await.unwrap();
    session
        .set_chunk(&p("a"), &[writer], payload(writer, round))
        .await
        .unwrap();
    let id = session
        .commit(&format!("w{writer} r{round}"), None)
        .await
        .unwrap();
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
        match rng.random_range(0..3) {
            0 => match repo.create_branch(&name, target).await {
                Err(Error::BranchExists { .. }) => repo.reset_branch(&name, target).await,
                other => other,
            },
            1 => match repo.reset_branch(&name, target).await {
                Err(Error::BranchNotFound { .. }) => Ok(()),
                other => other,
            },
            _ => match repo.delete_branch(&name).await {
                Err(Error::BranchNotFound { .. }) => Ok(()),
                other => other,
            },
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
            let (repo, model) = (repo.clone(), model.clone());
            let mut rng = StdRng::seed_from_u64(rng.random());
            tasks.push(tokio::spawn(async move {
                let landed = move_refs(&repo, &mut rng, &model, mover, round).await;
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
    summary
}
