//! floe on S3 for real: the storage conformance suite (also run against memory and a local
//! directory), a repository's life, and concurrent writers racing on one branch, against an
//! S3-compatible server.
//!
//! `scripts/check` installs and starts the server (moto, on 127.0.0.1) and sets
//! `FLOE_TEST_S3_ENDPOINT`, `FLOE_TEST_S3_BUCKET` (an existing bucket) and the usual `AWS_*`
//! credentials. Without `FLOE_TEST_S3_ENDPOINT` the S3 tests print why and pass without
//! running, so a plain `cargo test` works without a server. Each test works under a prefix of
//! its own, so reruns against a long-lived server never collide.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use common::{filled, p, uint8_array};
use floe::{
    DynStorage, Error, FsckOptions, NodePath, PutOutcome, Repository, RepositorySettings,
    SnapshotId, StorageOptions, VersionSpec,
};
use serde_json::Map;

/// Where a test's S3 data lives: `s3://bucket/<test>-<unique>` and the options to reach the
/// server, or `None` (after saying so) when no server is configured.
fn s3_location(test: &str) -> Option<(String, StorageOptions)> {
    let Ok(endpoint) = std::env::var("FLOE_TEST_S3_ENDPOINT") else {
        println!(
            "skipping {test}: FLOE_TEST_S3_ENDPOINT is not set \
             (scripts/check starts a local S3 server and sets it)"
        );
        return None;
    };
    let bucket = std::env::var("FLOE_TEST_S3_BUCKET").unwrap_or_else(|_| "floe-test".into());
    let unique = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let location = format!("s3://{bucket}/{test}-{}-{unique}", std::process::id());
    // Endpoint and transport come from options; credentials from the AWS_* variables.
    let options = vec![
        ("aws_endpoint".to_string(), endpoint),
        ("aws_allow_http".to_string(), "true".to_string()),
        ("aws_region".to_string(), "us-east-1".to_string()),
    ];
    Some((location, options))
}

fn s3_storage(test: &str) -> Option<DynStorage> {
    let (location, options) = s3_location(test)?;
    Some(floe::open_storage(&location, &options).unwrap())
}

// ---------------------------------------------------------------------------------------------
// Storage conformance: the same suite against every backend.

/// The storage contract of `floe::Storage`, checked on an empty storage.
async fn conformance(storage: DynStorage) {
    let s = storage.as_ref();
    assert!(matches!(
        s.get("a/b").await,
        Err(Error::ObjectMissing { .. })
    ));
    assert!(matches!(
        s.get_range("a/b", 0..1).await,
        Err(Error::ObjectMissing { .. })
    ));
    assert_eq!(s.head("a/b").await.unwrap(), None);

    let body: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    s.put("a/b", Bytes::from(body.clone())).await.unwrap();
    assert_eq!(s.get("a/b").await.unwrap(), Bytes::from(body.clone()));
    assert_eq!(s.head("a/b").await.unwrap(), Some(100_000));
    assert_eq!(
        s.get_range("a/b", 1000..1010).await.unwrap(),
        body[1000..1010]
    );
    assert_eq!(s.get_range("a/b", 7..7).await.unwrap(), Bytes::new());
    let ranges = [0..5, 10..20, 50_000..60_000, 99_990..100_000];
    let parts = s.get_ranges("a/b", &ranges).await.unwrap();
    assert_eq!(parts.len(), ranges.len());
    for (part, range) in parts.iter().zip(&ranges) {
        assert_eq!(part, &body[range.start as usize..range.end as usize]);
    }
    s.put("a/b", Bytes::from_static(b"replaced")).await.unwrap();
    assert_eq!(s.get("a/b").await.unwrap(), Bytes::from_static(b"replaced"));

    assert_eq!(
        s.put_if_absent("a/c", Bytes::from_static(b"1"))
            .await
            .unwrap(),
        PutOutcome::Created
    );
    assert_eq!(
        s.put_if_absent("a/c", Bytes::from_static(b"2"))
            .await
            .unwrap(),
        PutOutcome::AlreadyExists
    );
    assert_eq!(s.get("a/c").await.unwrap(), Bytes::from_static(b"1"));

    for key in ["a/d/e", "a/d/f", "a/g/h/i", "ab/x"] {
        s.put(key, Bytes::from_static(b"xy")).await.unwrap();
    }
    let mut listed: Vec<(String, u64)> = s
        .list("a")
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    listed.sort();
    let expected: Vec<(String, u64)> = [
        ("a/b", 8),
        ("a/c", 1),
        ("a/d/e", 2),
        ("a/d/f", 2),
        ("a/g/h/i", 2),
    ]
    .iter()
    .map(|(k, n)| (k.to_string(), *n))
    .collect();
    assert_eq!(listed, expected, "a listing of `a` excludes `ab`");
    // Every listed object carries the store's last-modified time (GC's clock): a recent time,
    // and a rewrite moves it forward.
    let host_now = chrono::Utc::now().timestamp_micros();
    let stamped = s.list("a").await.unwrap();
    for o in &stamped {
        assert!(
            (o.last_modified_us - host_now).abs() < 15 * 60 * 1_000_000,
            "{} stamped {} (host {host_now})",
            o.key,
            o.last_modified_us
        );
    }
    let before = stamped
        .iter()
        .find(|o| o.key == "a/d/e")
        .unwrap()
        .last_modified_us;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    s.put("a/d/e", Bytes::from_static(b"xy")).await.unwrap();
    let after = s.list("a/d").await.unwrap();
    let after = after
        .iter()
        .find(|o| o.key == "a/d/e")
        .unwrap()
        .last_modified_us;
    assert!(after > before, "{after} after {before}");
    assert_eq!(s.list("").await.unwrap().len(), 6);
    let dir = s.list_dir("a").await.unwrap();
    let mut prefixes = dir.prefixes.clone();
    prefixes.sort();
    assert_eq!(prefixes, vec!["a/d".to_string(), "a/g".to_string()]);
    let mut objects: Vec<String> = dir.objects.into_iter().map(|o| o.key).collect();
    objects.sort();
    assert_eq!(objects, vec!["a/b".to_string(), "a/c".to_string()]);

    s.delete("a/b").await.unwrap();
    s.delete("a/b").await.unwrap();
    assert_eq!(s.head("a/b").await.unwrap(), None);
    assert!(matches!(
        s.get("a/b").await,
        Err(Error::ObjectMissing { .. })
    ));
    assert_eq!(
        s.put_if_absent("a/b", Bytes::from_static(b"again"))
            .await
            .unwrap(),
        PutOutcome::Created,
        "a deleted key can be created again"
    );
}

/// Of 16 concurrent `put_if_absent` calls on one key, exactly one creates it, and the object
/// holds that writer's bytes. Repeated on several keys.
async fn concurrent_put_if_absent(storage: DynStorage) {
    for round in 0..4 {
        let key = format!("race/{round}");
        let tasks: Vec<_> = (0..16u8)
            .map(|writer| {
                let s = storage.clone();
                let key = key.clone();
                tokio::spawn(async move {
                    let outcome = s.put_if_absent(&key, filled(3000, writer)).await;
                    (writer, outcome.unwrap())
                })
            })
            .collect();
        let mut winners = vec![];
        for t in tasks {
            let (writer, outcome) = t.await.unwrap();
            if outcome == PutOutcome::Created {
                winners.push(writer);
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        assert_eq!(storage.get(&key).await.unwrap(), filled(3000, winners[0]));
    }
}

#[tokio::test]
async fn conformance_memory() {
    conformance(floe::open_storage("memory://", &vec![]).unwrap()).await;
    concurrent_put_if_absent(floe::open_storage("memory://", &vec![]).unwrap()).await;
}

#[tokio::test]
async fn conformance_local_directory() {
    let dir = tempfile::tempdir().unwrap();
    conformance(floe::create_storage(dir.path().join("c").to_str().unwrap(), &vec![]).unwrap())
        .await;
    concurrent_put_if_absent(
        floe::create_storage(dir.path().join("r").to_str().unwrap(), &vec![]).unwrap(),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_s3() {
    let Some(storage) = s3_storage("conformance") else {
        return;
    };
    conformance(storage).await;
    let Some(storage) = s3_storage("put-if-absent-race") else {
        return;
    };
    concurrent_put_if_absent(storage).await;
}

/// floe enables S3 conditional writes itself (the suite above relies on it); switching them
/// off explicitly makes create-if-absent fail instead of silently overwriting.
#[tokio::test]
async fn create_if_absent_on_s3_fails_when_conditional_writes_are_disabled() {
    let Some((location, mut options)) = s3_location("conditional-put-disabled") else {
        return;
    };
    options.push(("aws_conditional_put".into(), "disabled".into()));
    let storage = floe::open_storage(&location, &options).unwrap();
    let err = storage
        .put_if_absent("k", Bytes::from_static(b"1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    assert_eq!(storage.head("k").await.unwrap(), None);
}

// ---------------------------------------------------------------------------------------------
// Repositories on S3.

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn repository_on_s3() {
    let Some((location, options)) = s3_location("repository") else {
        return;
    };
    let repo = Repository::init_location(&location, &options)
        .await
        .unwrap();
    assert!(
        Repository::init_location(&location, &options)
            .await
            .is_err(),
        "a second init on the same prefix fails"
    );
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_array(&p("a"), uint8_array(&[10], &[1]))
        .await
        .unwrap();
    let mut ids = vec![];
    for d in 0..10u64 {
        // Inline, packed and (above the threshold) single-object chunks.
        let len = [16, 4000, 2 << 20][d as usize % 3];
        s.set_chunk(&p("a"), &[d], filled(len, d as u8))
            .await
            .unwrap();
        ids.push(s.commit(&format!("day {d}"), None).await.unwrap());
    }
    repo.create_tag("v1", ids[4]).await.unwrap();
    repo.create_branch("dev", ids[6]).await.unwrap();
    let dev = repo.writable_session("dev").await.unwrap();
    dev.set_chunk(&p("a"), &[0], Bytes::from_static(b"dev"))
        .await
        .unwrap();
    let dev_tip = dev.commit("on dev", None).await.unwrap();

    let reopened = Repository::open_location(&location, &options)
        .await
        .unwrap();
    let mut branches: Vec<String> = reopened
        .list_branches()
        .await
        .unwrap()
        .into_iter()
        .map(|b| b.name)
        .collect();
    branches.sort();
    assert_eq!(branches, vec!["dev".to_string(), "main".to_string()]);
    assert_eq!(reopened.tag("v1").await.unwrap().snapshot, ids[4]);
    assert_eq!(reopened.branch_tip("dev").await.unwrap(), dev_tip);
    assert_eq!(reopened.branch_tip("main").await.unwrap(), ids[9]);

    let main = reopened
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    for d in 0..10u64 {
        let len = [16, 4000, 2 << 20][d as usize % 3];
        assert_eq!(
            main.get_chunk(&p("a"), &[d]).await.unwrap().unwrap(),
            filled(len, d as u8),
            "chunk {d}"
        );
    }
    assert_eq!(
        main.get_chunk_range(&p("a"), &[2], 100..110)
            .await
            .unwrap()
            .unwrap(),
        filled(10, 2)
    );
    let tagged = reopened
        .readonly_session(&VersionSpec::Tag("v1".into()))
        .await
        .unwrap();
    assert!(tagged.get_chunk(&p("a"), &[4]).await.unwrap().is_some());
    assert_eq!(tagged.get_chunk(&p("a"), &[5]).await.unwrap(), None);
    let on_dev = reopened
        .readonly_session(&VersionSpec::Branch("dev".into()))
        .await
        .unwrap();
    assert_eq!(
        on_dev.get_chunk(&p("a"), &[0]).await.unwrap().unwrap(),
        Bytes::from_static(b"dev")
    );
    assert_eq!(on_dev.get_chunk(&p("a"), &[7]).await.unwrap(), None);

    let log = reopened.log_from(ids[9], usize::MAX).await.unwrap();
    let messages: Vec<&str> = log.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(log.len(), 11, "{messages:?}");
    assert_eq!(messages[0], "day 9");
    assert_eq!(messages[9], "day 0");
    assert_eq!(messages[10], "Repository initialized");
    let as_of = VersionSpec::AsOf {
        branch: "main".into(),
        time: log[5].committed_at,
    };
    assert_eq!(reopened.resolve(&as_of).await.unwrap(), ids[4]);

    let report = reopened.fsck(FsckOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.branches, 2);
    assert_eq!(report.tags, 1);
}

const CHILD_LOCATION: &str = "FLOE_S3_RACE_LOCATION";
const CHILD_WRITER: &str = "FLOE_S3_RACE_WRITER";
const CHILD_COMMITS: &str = "FLOE_S3_RACE_COMMITS";
const CHILD_SIGNALS: &str = "FLOE_S3_RACE_SIGNALS";

/// Settings of the racing writers: eight writers on one branch may lose many rounds in a row.
fn race_settings() -> RepositorySettings {
    RepositorySettings {
        max_commit_attempts: 1000,
        commit_backoff_max: Duration::from_millis(200),
        ..RepositorySettings::default()
    }
}

/// Entry point of one racing writer process (does nothing unless started by `race`): opens
/// the repository, waits for the start signal, commits its chunks one by one and prints an
/// `ack <commit> <snapshot id>` line for each acknowledged commit.
#[test]
#[ignore = "helper: run by eight_writers_race_on_s3_and_lose_nothing"]
fn s3_race_writer_child() {
    let (Ok(location), Ok(w), Ok(commits), Ok(signals)) = (
        std::env::var(CHILD_LOCATION),
        std::env::var(CHILD_WRITER),
        std::env::var(CHILD_COMMITS),
        std::env::var(CHILD_SIGNALS),
    ) else {
        return;
    };
    let (w, commits): (u64, u64) = (w.parse().unwrap(), commits.parse().unwrap());
    let (_, options) = s3_location("child").unwrap();
    let signals = std::path::PathBuf::from(signals);
    common::runtime().block_on(async {
        let storage = floe::open_storage(&location, &options).unwrap();
        let repo = Repository::open(storage, race_settings()).await.unwrap();
        let s = repo.writable_session("main").await.unwrap();
        std::fs::write(signals.join(format!("ready-{w}")), b"").unwrap();
        while !signals.join("start").exists() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        for c in 0..commits {
            s.set_chunk(&p("a"), &[w, c], race_chunk(w, c))
                .await
                .unwrap();
            let id = s
                .commit(&format!("writer {w} commit {c}"), None)
                .await
                .unwrap();
            println!("ack {c} {id}");
        }
    });
}

/// `writers` processes, each with its own repository handle, commit `commits` chunks each to
/// `main` at the same time. Returns every acknowledged snapshot id with its (writer, commit).
async fn race(location: &str, writers: u64, commits: u64) -> BTreeMap<SnapshotId, (u64, u64)> {
    let signals = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..writers)
        .map(|w| {
            std::process::Command::new(&exe)
                .args([
                    "s3_race_writer_child",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                ])
                .args(["--test-threads=1", "--quiet"])
                .env(CHILD_LOCATION, location)
                .env(CHILD_WRITER, w.to_string())
                .env(CHILD_COMMITS, commits.to_string())
                .env(CHILD_SIGNALS, signals.path())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for w in 0..writers {
        while !signals.path().join(format!("ready-{w}")).exists() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    std::fs::write(signals.path().join("start"), b"").unwrap();
    let started = std::time::Instant::now();
    let mut all = BTreeMap::new();
    for (w, child) in children.into_iter().enumerate() {
        let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
            .await
            .unwrap();
        assert!(out.status.success(), "writer {w} failed");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let Some(rest) = line.strip_prefix("ack ") else {
                continue;
            };
            let (c, id) = rest.split_once(' ').unwrap();
            let id: SnapshotId = id.parse().unwrap();
            let who = (w as u64, c.parse().unwrap());
            assert!(
                all.insert(id, who).is_none(),
                "snapshot {id} acknowledged twice"
            );
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "S3 race: {} commits acknowledged by {writers} processes in {seconds:.2} s ({:.1} commits/s)",
        all.len(),
        all.len() as f64 / seconds
    );
    all
}

/// The chunk writer `w` writes in its commit `c`: inline or packed, distinct per writer.
fn race_chunk(w: u64, c: u64) -> Bytes {
    let len = if c % 2 == 0 { 24 } else { 1500 };
    let mut bytes = vec![w as u8; len];
    bytes[0] = c as u8;
    Bytes::from(bytes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn eight_writers_race_on_s3_and_lose_nothing() {
    let Some((location, options)) = s3_location("race") else {
        return;
    };
    let (writers, commits) = (8u64, 20u64);
    let repo = Repository::init_location(&location, &options)
        .await
        .unwrap();
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_array(&p("a"), uint8_array(&[writers, commits], &[1, 1]))
        .await
        .unwrap();
    s.commit("setup", None).await.unwrap();

    let acknowledged = race(&location, writers, commits).await;
    assert_eq!(acknowledged.len() as u64, writers * commits);

    let repo = Repository::open_location(&location, &options)
        .await
        .unwrap();
    let log = common::linear_history(&repo).await;
    assert_eq!(
        log.len() as u64,
        writers * commits + 2,
        "init + setup + all"
    );
    let in_log: std::collections::BTreeSet<SnapshotId> = log.iter().map(|e| e.id).collect();
    let lost: Vec<_> = acknowledged
        .iter()
        .filter(|(id, _)| !in_log.contains(id))
        .collect();
    assert!(lost.is_empty(), "acknowledged but not in the log: {lost:?}");
    for entry in &log[..log.len() - 2] {
        let (w, c) = acknowledged[&entry.id];
        assert_eq!(entry.message, format!("writer {w} commit {c}"));
    }

    let main = repo
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    for w in 0..writers {
        for c in 0..commits {
            assert_eq!(
                main.get_chunk(&p("a"), &[w, c]).await.unwrap().unwrap(),
                race_chunk(w, c),
                "chunk [{w}, {c}]"
            );
        }
    }
    let report = repo.fsck(FsckOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
    assert_eq!(report.snapshots, writers * commits + 2);
}

/// The lifecycle soak (tests/common/soak.rs) on S3: writers, ref movers, expiry and GC at once;
/// fewer rounds than on a local directory, and a longer grace period (commits of 8 writers
/// racing on the test server take seconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lifecycle_soak_on_s3() {
    let Some(storage) = s3_storage("lifecycle-soak") else {
        return;
    };
    let summary = common::soak::soak(storage, 40, 5, Duration::from_secs(5)).await;
    println!("{summary:?}");
    assert!(summary.deleted_objects > 0, "{summary:?}");
}
