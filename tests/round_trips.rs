//! Round trips ("waves", see `floe::MeteredStorage`) of the operations that matter on object
//! storage, pinned: a change that makes any of them wait for one more answer fails here.
//!
//! Each operation runs on a fresh repository handle over an in-memory store that answers every
//! request after 3 ms, so the requests an operation sends together overlap and count as one
//! wave. The repositories are built beforehand through a handle without latency.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{history, int32_array, p};
use floe::{
    DynStorage, Fault, FaultRule, FaultyStorage, Meter, MeterReading, MeteredStorage, Repository,
    RepositorySettings, SnapshotId, VersionSpec,
};

/// A repository with `commits` commits on `main` (array `a`, one chunk each, then one large
/// chunk `big/c/0` in the last commit), reachable without latency (`setup`) and through a
/// metered, slow storage (`slow`, `meter`).
struct Fixture {
    setup: Repository,
    slow: DynStorage,
    meter: Arc<Meter>,
    ids: Vec<SnapshotId>,
    commit_times: Vec<chrono::DateTime<chrono::Utc>>,
}

async fn fixture(commits: u64) -> Fixture {
    let inner = floe::open_storage("memory://", &vec![]).unwrap();
    let setup = Repository::init(inner.clone(), RepositorySettings::default())
        .await
        .unwrap();
    let ids = history(&setup, commits).await;
    let session = setup.writable_session("main").await.unwrap();
    session
        .create_array(&p("big"), int32_array(&[4096], &[4096]))
        .await
        .unwrap();
    session
        .set_chunk(&p("big"), &[0], Bytes::from(vec![7u8; 16384]))
        .await
        .unwrap();
    session.commit("a large chunk", None).await.unwrap();
    let mut commit_times = Vec::new();
    for id in &ids {
        commit_times.push(setup.snapshot_entry(*id).await.unwrap().committed_at);
    }
    let faulty = FaultyStorage::new(inner, 1);
    faulty.add_rule(FaultRule::new(Fault::Latency(Duration::from_millis(3))));
    let metered = MeteredStorage::new(Arc::new(faulty));
    let meter = metered.meter();
    Fixture {
        setup,
        slow: Arc::new(metered),
        meter,
        ids,
        commit_times,
    }
}

impl Fixture {
    /// A fresh handle on the slow storage, counting from before it opens.
    async fn open(&self) -> Repository {
        self.meter.reset();
        Repository::open(self.slow.clone(), RepositorySettings::default())
            .await
            .unwrap()
    }

    fn take(&self) -> MeterReading {
        self.meter.take()
    }
}

/// Prints what an operation cost (shown with `--nocapture`).
fn show(what: &str, reading: &MeterReading) {
    eprintln!("{what}: {reading}");
}

fn assert_waves(what: &str, reading: &MeterReading, most: usize) {
    show(what, reading);
    assert!(
        reading.waves <= most as u64,
        "{what} waited for {} round trips, at most {most} expected:\n{reading}",
        reading.waves
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_operation_waits_for_few_round_trips() {
    let f = fixture(100).await;

    let repo = f.open().await;
    assert_eq!(
        repo.branch_tip("main").await.unwrap(),
        f.setup.branch_tip("main").await.unwrap()
    );
    assert_waves("open + tip", &f.take(), 2);

    let repo = f.open().await;
    repo.writable_session("main").await.unwrap();
    assert_waves("open + session", &f.take(), 3);

    let repo = f.open().await;
    let time = f.commit_times[50];
    let found = repo
        .resolve(&VersionSpec::AsOf {
            branch: "main".into(),
            time,
        })
        .await
        .unwrap();
    assert_eq!(found, f.ids[50]);
    // floe.json and the hint; the head window with the hinted snapshot and its pages; the tip.
    assert_waves("open + as-of", &f.take(), 3);

    let main = VersionSpec::Branch("main".into());
    let repo = f.open().await;
    let (tip, log) = repo.log(&main, usize::MAX).await.unwrap();
    assert_eq!(log.len(), 102);
    assert_eq!(tip, f.setup.branch_tip("main").await.unwrap());
    assert_waves("open + whole log", &f.take(), 3);
    // The same through `resolve` then `log_from` takes a round trip more.
    let repo = f.open().await;
    let tip = repo.resolve(&main).await.unwrap();
    assert_eq!(repo.log_from(tip, usize::MAX).await.unwrap(), log);
    assert_waves("open + tip, then whole log", &f.take(), 4);

    let repo = f.open().await;
    let (_, newest) = repo.log(&main, 50).await.unwrap();
    assert_eq!(newest, log[..50].to_vec());
    let reading = f.take();
    assert_waves("open + newest 50 log entries", &reading, 3);
    // Only the pages the 50 entries need are fetched ahead: the hinted snapshot (generation 96,
    // itself a page) and the page of generation 64, not that of 32.
    f.open().await.log(&main, usize::MAX).await.unwrap();
    let whole = f.take();
    assert!(
        reading.requests() < whole.requests(),
        "newest 50: {reading}; whole log: {whole}"
    );

    let repo = f.open().await;
    let session = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    let chunk = session.zarr().get("big/c/0").await.unwrap().unwrap();
    assert_eq!(chunk, Bytes::from(vec![7u8; 16384]));
    assert_waves("open + cold chunk read", &f.take(), 4);

    let repo = f.open().await;
    let session = repo.writable_session("main").await.unwrap();
    f.take();
    session
        .set_chunk(&p("a"), &[3], Bytes::from(vec![1u8; 4]))
        .await
        .unwrap();
    session.commit("small", None).await.unwrap();
    assert_waves("small commit", &f.take(), 2);

    // A day appended as in W1: the array grows and a packed chunk is added.
    let session = repo.writable_session("main").await.unwrap();
    f.take();
    session.resize_array(&p("big"), &[8192]).await.unwrap();
    session
        .set_chunk(&p("big"), &[1], Bytes::from(vec![9u8; 16384]))
        .await
        .unwrap();
    session.commit("append", None).await.unwrap();
    assert_waves("append commit", &f.take(), 2);

    // Record 104 is a multiple of 8: the hint names the tip itself, and the whole log and
    // as-of need no round trip after the head window.
    session
        .set_chunk(&p("a"), &[4], Bytes::from(vec![2u8; 4]))
        .await
        .unwrap();
    let tip = session.commit("record 104", None).await.unwrap();
    let repo = f.open().await;
    let (found, log) = repo.log(&main, usize::MAX).await.unwrap();
    assert_eq!((found, log.len()), (tip, 105));
    assert_waves("open + whole log, tip hinted", &f.take(), 2);
    let repo = f.open().await;
    let as_of = VersionSpec::AsOf {
        branch: "main".into(),
        time: f.commit_times[50],
    };
    assert_eq!(repo.resolve(&as_of).await.unwrap(), f.ids[50]);
    assert_waves("open + as-of, tip hinted", &f.take(), 2);
}

/// Past 1024 commits the history has pages of two levels: whole-history queries take one more
/// round trip, and find exactly what following `parent` one snapshot at a time finds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_queries_stay_logarithmic_past_a_thousand_commits() {
    let f = fixture(1100).await;
    let repo = f.open().await;
    let tip = repo.branch_tip("main").await.unwrap();
    f.take();
    let log = repo.log_from(tip, usize::MAX).await.unwrap();
    assert_waves("whole log of 1102 entries", &f.take(), 3);
    let generations: Vec<u64> = log.iter().map(|e| e.generation).collect();
    assert_eq!(generations, (0..=1101u64).rev().collect::<Vec<_>>());
    let logged: Vec<_> = log.iter().map(|e| e.id).collect();
    assert_eq!(
        &logged[1..1101],
        &f.ids.iter().rev().copied().collect::<Vec<_>>()[..]
    );
    for (entry, id) in log[1..1101].iter().zip(f.ids.iter().rev()) {
        assert_eq!(entry.id, *id);
        assert_eq!(entry.message, format!("commit {}", entry.generation - 1));
    }

    for k in [0usize, 31, 32, 500, 1023, 1024, 1050, 1099] {
        let repo = f.open().await;
        f.take();
        let found = repo.snapshot_as_of(tip, f.commit_times[k]).await.unwrap();
        assert_eq!(found, Some(f.ids[k]), "as of commit {k}");
        assert_waves(&format!("as-of commit {k}"), &f.take(), 3);
    }

    let repo = f.open().await;
    f.take();
    let newest = repo.log_from(tip, 50).await.unwrap();
    assert_eq!(newest, log[..50].to_vec());
    assert_waves("newest 50 log entries", &f.take(), 2);

    // From a fresh handle by branch: floe.json and hint; head window with the hinted snapshot
    // and its pages; the tip; the level-1 pages of the page of generation 1024.
    let main = VersionSpec::Branch("main".into());
    let repo = f.open().await;
    assert_eq!(
        repo.log(&main, usize::MAX).await.unwrap(),
        (tip, log.clone())
    );
    assert_waves("open + whole log of 1102 entries", &f.take(), 4);
    let repo = f.open().await;
    assert_eq!(repo.log(&main, 50).await.unwrap().1, log[..50].to_vec());
    assert_waves("open + newest 50 of 1102 entries", &f.take(), 3);
    // As-of by branch fetches ahead only the one page above the answer: a handful of
    // snapshots besides the hint's window, whatever the history's length.
    for k in [0usize, 500, 1050, 1099] {
        let repo = f.open().await;
        let spec = VersionSpec::AsOf {
            branch: "main".into(),
            time: f.commit_times[k],
        };
        assert_eq!(repo.resolve(&spec).await.unwrap(), f.ids[k]);
        let reading = f.take();
        assert_waves(&format!("open + as-of commit {k} of main"), &reading, 4);
        // Plus the expiry horizon's hint and record 0, in the head's wave (algorithms.md §13).
        assert!(reading.requests() <= 2 + 9 + 5 + 2, "{reading}");
    }
}
