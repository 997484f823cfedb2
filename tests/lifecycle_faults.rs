//! GC under faults (spec/algorithms.md §14): an error, a lost response or a kill at each
//! storage call of a run, then a clean run, ends where two clean runs end, with every retained
//! version intact; listings that lag their writes; the host's clock ten minutes off the
//! store's.

mod common;

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use common::{int32_array, lifecycle_settings, p};
use floe::{
    DirListing, DynStorage, Error, Fault, FaultRule, FaultyStorage, GcObject, GcOptions, GcReason,
    ListedObject, PutOutcome, Repository, RepositorySettings, SnapshotId, Storage,
};

fn settings() -> RepositorySettings {
    lifecycle_settings()
}

fn grace() -> GcOptions {
    GcOptions {
        grace: Duration::from_secs(1),
        ..GcOptions::default()
    }
}

fn chunk(v: u8) -> Bytes {
    Bytes::from(vec![v; 16])
}

/// Commits on `main` and a branch `dev` with two commits later reset away; returns the
/// retained commits of `main`.
async fn build(repo: &Repository, tag: u8) -> Vec<SnapshotId> {
    let s = repo.writable_session("main").await.unwrap();
    if tag == 0 {
        s.create_group(&p("/"), Default::default()).await.unwrap();
        s.create_array(&p("a"), int32_array(&[100], &[4]))
            .await
            .unwrap();
    }
    let mut out = Vec::new();
    for i in 0..4u8 {
        s.set_chunk(&p("a"), &[u64::from(i % 2)], chunk(tag * 10 + i))
            .await
            .unwrap();
        out.push(s.commit("c", None).await.unwrap());
    }
    let dev = format!("dev{tag}");
    repo.create_branch(&dev, out[3]).await.unwrap();
    let d = repo.writable_session(&dev).await.unwrap();
    for i in 0..2u8 {
        d.set_chunk(&p("a"), &[5 + u64::from(i)], chunk(100 + tag * 10 + i))
            .await
            .unwrap();
        d.commit("d", None).await.unwrap();
    }
    repo.reset_branch(&dev, out[0]).await.unwrap();
    out
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The object keys of a repository directory (GC records and markers excluded).
fn object_keys(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for sub in ["snapshots", "manifests", "txlogs", "chunks"] {
        if let Ok(entries) = std::fs::read_dir(dir.join(sub)) {
            for e in entries {
                out.insert(format!(
                    "{sub}/{}",
                    e.unwrap().file_name().to_string_lossy()
                ));
            }
        }
    }
    out
}

fn open(dir: &Path) -> DynStorage {
    floe::open_storage(dir.to_str().unwrap(), &vec![]).unwrap()
}

async fn all_retained_read(repo: &Repository) {
    for branch in repo.list_branches().await.unwrap() {
        let s = repo
            .readonly_session(&floe::VersionSpec::Branch(branch.name.clone()))
            .await
            .unwrap();
        for coord in 0..8 {
            s.get_chunk(&p("a"), &[coord]).await.unwrap();
        }
    }
    let fsck = repo.fsck(Default::default()).await.unwrap();
    assert!(fsck.is_clean(), "{:?}", fsck.problems);
}

/// A state where the next run both deletes (what the first run condemned, past its grace) and
/// condemns (what became unreachable since).
async fn prepared() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(open(dir.path()), settings())
        .await
        .unwrap();
    build(&repo, 0).await;
    let first = repo.gc(&grace()).await.unwrap();
    assert!(!first.condemned.is_empty());
    build(&repo, 1).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fault_at_any_call_of_a_run_converges_after_a_clean_run() {
    let base = prepared().await;
    // The reference: two clean runs.
    let reference = tempfile::tempdir().unwrap();
    copy_dir(base.path(), reference.path());
    let faulty = Arc::new(FaultyStorage::new(open(reference.path()), 1));
    faulty.start_recording();
    let repo = Repository::open(faulty.clone(), settings()).await.unwrap();
    let run = repo.gc(&grace()).await.unwrap();
    assert!(!run.deleted.is_empty() && !run.condemned.is_empty());
    let calls = faulty.take_recording().len();
    repo.gc(&grace()).await.unwrap();
    let expected = object_keys(reference.path());
    assert!(calls > 10, "{calls} calls");

    for fault in [Fault::ErrorBefore, Fault::ErrorAfter, Fault::Hang] {
        for n in 1..=calls as u64 {
            let copy = tempfile::tempdir().unwrap();
            copy_dir(base.path(), copy.path());
            let faulty = Arc::new(FaultyStorage::new(open(copy.path()), n));
            let repo = Repository::open(faulty.clone(), settings()).await.unwrap();
            faulty.add_rule(FaultRule::new(fault).nth(n));
            // A hang is a kill: the run is dropped where it stands.
            let _ = tokio::time::timeout(Duration::from_millis(300), repo.gc(&grace())).await;
            faulty.clear_rules();
            let fresh = Repository::open(open(copy.path()), settings())
                .await
                .unwrap();
            fresh.gc(&grace()).await.unwrap();
            assert_eq!(
                object_keys(copy.path()),
                expected,
                "{fault:?} at call {n} of {calls}"
            );
            all_retained_read(&fresh).await;
        }
    }
}

/// A storage whose listings and clock are shifted: `skew_us` is added to every last-modified
/// time, and objects modified less than `hide_fresh_us` ago (by the shifted clock) are
/// missing from listings outside `show_prefix`.
#[derive(Debug)]
struct Shifted {
    inner: DynStorage,
    skew_us: i64,
    hide_fresh_us: i64,
    show_prefix: &'static str,
}

impl Shifted {
    fn adjust(&self, objects: Vec<ListedObject>) -> Vec<ListedObject> {
        let now = chrono::Utc::now().timestamp_micros() + self.skew_us;
        objects
            .into_iter()
            .map(|mut o| {
                o.last_modified_us += self.skew_us;
                o
            })
            .filter(|o| {
                o.key.starts_with(self.show_prefix)
                    || now - o.last_modified_us >= self.hide_fresh_us
            })
            .collect()
    }
}

#[async_trait]
impl Storage for Shifted {
    async fn get(&self, key: &str) -> floe::Result<Bytes> {
        self.inner.get(key).await
    }
    async fn get_range(&self, key: &str, range: Range<u64>) -> floe::Result<Bytes> {
        self.inner.get_range(key, range).await
    }
    async fn get_ranges(&self, key: &str, ranges: &[Range<u64>]) -> floe::Result<Vec<Bytes>> {
        self.inner.get_ranges(key, ranges).await
    }
    async fn head(&self, key: &str) -> floe::Result<Option<u64>> {
        self.inner.head(key).await
    }
    async fn put(&self, key: &str, bytes: Bytes) -> floe::Result<()> {
        self.inner.put(key, bytes).await
    }
    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> floe::Result<PutOutcome> {
        self.inner.put_if_absent(key, bytes).await
    }
    async fn list(&self, prefix: &str) -> floe::Result<Vec<ListedObject>> {
        Ok(self.adjust(self.inner.list(prefix).await?))
    }
    async fn list_dir(&self, prefix: &str) -> floe::Result<DirListing> {
        let mut listing = self.inner.list_dir(prefix).await?;
        listing.objects = self.adjust(listing.objects);
        Ok(listing)
    }
    async fn delete(&self, key: &str) -> floe::Result<()> {
        self.inner.delete(key).await
    }
    fn location(&self) -> &str {
        self.inner.location()
    }
}

#[tokio::test]
async fn the_store_clock_decides_whatever_the_host_clock_says() {
    for skew_minutes in [-10i64, 10] {
        let dir = tempfile::tempdir().unwrap();
        let storage: DynStorage = Arc::new(Shifted {
            inner: open(dir.path()),
            skew_us: skew_minutes * 60_000_000,
            hide_fresh_us: 0,
            show_prefix: "",
        });
        let repo = Repository::init(storage, settings()).await.unwrap();
        build(&repo, 0).await;
        // A session that uploaded a moment ago and has not committed yet.
        let open_session = repo.writable_session("main").await.unwrap();
        open_session
            .set_chunk(&p("a"), &[9], chunk(99))
            .await
            .unwrap();
        let options = GcOptions {
            grace: Duration::from_secs(300),
            full: true,
            ..GcOptions::default()
        };
        let report = repo.gc(&options).await.unwrap();
        // By the store's clock the upload is seconds old, not ten minutes: left alone.
        assert!(
            report
                .condemned
                .iter()
                .all(|e| e.reason != GcReason::Orphan),
            "skew {skew_minutes} min: {:?}",
            report.condemned
        );
        assert!(report.too_young >= 1);
        let skewed = (report.store_time - chrono::Utc::now()).num_minutes();
        assert!(
            (skewed - skew_minutes).abs() <= 1,
            "{skewed} vs {skew_minutes}"
        );
        open_session.commit("late", None).await.unwrap();
        all_retained_read(&repo).await;
    }
}

#[tokio::test]
async fn listings_that_lag_their_writes() {
    // Even the clock probe is missing from its listing: the run stops, nothing changes.
    let dir = tempfile::tempdir().unwrap();
    let lagging: DynStorage = Arc::new(Shifted {
        inner: open(dir.path()),
        skew_us: 0,
        hide_fresh_us: 60_000_000,
        show_prefix: "\u{0}",
    });
    let repo = Repository::init(lagging, settings()).await.unwrap();
    build(&repo, 0).await;
    let before = object_keys(dir.path());
    assert!(matches!(
        repo.gc(&grace()).await,
        Err(Error::StoreClockUnreadable { .. })
    ));
    assert_eq!(object_keys(dir.path()), before);

    // Fresh objects missing from listings elsewhere: a full run neither sees nor condemns
    // them, and whatever it deletes was unreachable.
    let dir = tempfile::tempdir().unwrap();
    let lagging: DynStorage = Arc::new(Shifted {
        inner: open(dir.path()),
        skew_us: 0,
        hide_fresh_us: 60_000_000,
        show_prefix: "gc/",
    });
    let repo = Repository::init(lagging, settings()).await.unwrap();
    build(&repo, 0).await;
    let full = GcOptions {
        full: true,
        ..grace()
    };
    let first = repo.gc(&full).await.unwrap();
    assert!(first.condemned.iter().all(|e| e.reason != GcReason::Orphan));
    assert!(first
        .condemned
        .iter()
        .any(|e| matches!(e.object, GcObject::Snapshot(_))));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = repo.gc(&full).await.unwrap();
    assert_eq!(second.deleted.len(), first.condemned.len());
    all_retained_read(&repo).await;
}
