//! History: the log (order, content, limits), as-of lookups, ancestry, and how many objects
//! reading history and committing cost on long histories (counted by a storage decorator).

mod common;

use chrono::Duration;
use common::counting::counted;
use common::{filled, history, int32_array, memory_repo, memory_repo_with, p};
use floe::{Error, NodePath, Repository, RepositorySettings, SnapshotId, VersionSpec};
use serde_json::{json, Map};

// ---- history ------------------------------------------------------------------------------

#[tokio::test]
async fn log_is_newest_first_with_times_messages_and_metadata() {
    let (repo, _) = memory_repo().await;
    let s = repo.writable_session("main").await.unwrap();
    let long_message = "m".repeat(2000);
    let mut ids = Vec::new();
    for i in 0..70u64 {
        s.create_group(&p(&format!("g{i}")), Map::new())
            .await
            .unwrap();
        let mut meta = Map::new();
        meta.insert("day".into(), json!(i));
        meta.insert("by".into(), json!("cron"));
        let message = if i % 10 == 3 {
            long_message.clone()
        } else {
            format!("day {i}")
        };
        ids.push(s.commit(&message, Some(meta)).await.unwrap());
    }
    let tip = repo.branch_tip("main").await.unwrap();
    let log = repo.log_from(tip, usize::MAX).await.unwrap();
    assert_eq!(log.len(), 71);
    for (k, entry) in log.iter().take(70).enumerate() {
        let i = 69 - k as u64;
        assert_eq!(entry.id, ids[i as usize]);
        assert_eq!(entry.generation, i + 1);
        let want = if i % 10 == 3 {
            long_message.clone()
        } else {
            format!("day {i}")
        };
        assert_eq!(entry.message, want);
        assert_eq!(entry.metadata["day"], json!(i));
        assert_eq!(entry.metadata["by"], json!("cron"));
        assert!(
            entry.committed_at > log[k + 1].committed_at,
            "times strictly decrease"
        );
        assert_eq!(repo.snapshot_entry(entry.id).await.unwrap(), *entry);
    }
    assert_eq!(log[70].message, "Repository initialized");
    assert_eq!(log[70].generation, 0);
    assert!(log[70].metadata.is_empty());

    // Limits, and logs starting anywhere in the history.
    assert!(repo.log_from(tip, 0).await.unwrap().is_empty());
    assert_eq!(repo.log_from(tip, 1).await.unwrap(), log[..1].to_vec());
    assert_eq!(repo.log_from(tip, 33).await.unwrap(), log[..33].to_vec());
    assert_eq!(repo.log_from(tip, 40).await.unwrap(), log[..40].to_vec());
    assert_eq!(
        repo.log_from(ids[10], usize::MAX).await.unwrap(),
        log[59..].to_vec()
    );
    let fresh = Repository::open(repo.storage().clone(), RepositorySettings::default())
        .await
        .unwrap();
    assert_eq!(fresh.log_from(tip, usize::MAX).await.unwrap(), log);
}

#[tokio::test]
async fn as_of_is_exact_on_a_long_history() {
    let (repo, _) = memory_repo().await;
    let ids = history(&repo, 300).await;
    let tip = ids[299];
    let log = repo.log_from(tip, usize::MAX).await.unwrap();
    assert_eq!(log.len(), 301);
    // Fresh handle: every lookup goes through the history index in storage.
    let fresh = Repository::open(repo.storage().clone(), RepositorySettings::default())
        .await
        .unwrap();
    for (k, entry) in log.iter().enumerate() {
        let t = entry.committed_at;
        assert_eq!(
            fresh.snapshot_as_of(tip, t).await.unwrap(),
            Some(entry.id),
            "at commit {k}"
        );
        let before = fresh
            .snapshot_as_of(tip, t - Duration::microseconds(1))
            .await
            .unwrap();
        assert_eq!(
            before,
            log.get(k + 1).map(|e| e.id),
            "just before commit {k}"
        );
        assert_eq!(
            fresh
                .ancestor_at_generation(tip, entry.generation)
                .await
                .unwrap(),
            Some(entry.id)
        );
    }
    assert_eq!(
        fresh.snapshot_as_of(tip, chrono::Utc::now()).await.unwrap(),
        Some(tip)
    );
    assert_eq!(fresh.ancestor_at_generation(tip, 301).await.unwrap(), None);
    // From a tip in the middle, later commits are invisible.
    let mid = ids[150];
    assert_eq!(
        fresh
            .snapshot_as_of(mid, log[0].committed_at)
            .await
            .unwrap(),
        Some(mid)
    );
}

#[tokio::test]
async fn ancestry_follows_parents_across_branches() {
    let (repo, _) = memory_repo().await;
    let ids = history(&repo, 40).await;
    repo.create_branch("dev", ids[20]).await.unwrap();
    let dev = repo.writable_session("dev").await.unwrap();
    dev.create_group(&p("dev-only"), Map::new()).await.unwrap();
    let dev_tip = dev.commit("on dev", None).await.unwrap();
    for (a, b, want) in [
        (ids[0], ids[39], true),
        (ids[39], ids[0], false),
        (ids[17], ids[17], true),
        (ids[20], dev_tip, true),
        (ids[19], dev_tip, true),
        (ids[21], dev_tip, false),
        (dev_tip, ids[39], false),
    ] {
        assert_eq!(
            repo.is_ancestor(a, b).await.unwrap(),
            want,
            "{a:?} ancestor of {b:?}"
        );
    }
    assert!(matches!(
        repo.is_ancestor(SnapshotId::of_bytes(b"?"), ids[3]).await,
        Err(Error::SnapshotNotFound { .. })
    ));
}

// ---- request counts -----------------------------------------------------------------------

#[tokio::test]
async fn as_of_and_log_read_few_snapshots_on_a_long_history() {
    let (repo, storage) = memory_repo().await;
    let ids = history(&repo, 1000).await;
    let tip = ids[999];
    let log = repo.log_from(tip, usize::MAX).await.unwrap();
    assert_eq!(log.len(), 1001);
    for k in [
        0usize, 1, 2, 31, 32, 33, 64, 333, 500, 511, 512, 777, 998, 999, 1000,
    ] {
        let (fresh, counter) = counted(&storage, RepositorySettings::default()).await;
        let found = fresh
            .snapshot_as_of(tip, log[k].committed_at)
            .await
            .unwrap();
        assert_eq!(found, Some(log[k].id));
        let seen = counter.take();
        let snapshots = seen.gets_under("snapshots/");
        assert!(
            snapshots <= 3,
            "as-of of entry {k} read {snapshots} snapshots"
        );
        // Besides snapshots, only the expiry horizon's hint (record 0 is asked with a head).
        assert_eq!(
            seen.gets.len(),
            snapshots + 1,
            "as-of reads only snapshots and the expiry hint: {:?}",
            seen.gets
        );
        assert_eq!(seen.gets_under("config/expiry/"), 1, "{:?}", seen.gets);
        assert_eq!(seen.lists, 0);
    }
    // Resolving `main@time` adds only the branch lookup.
    let (fresh, counter) = counted(&storage, RepositorySettings::default()).await;
    let spec = VersionSpec::AsOf {
        branch: "main".into(),
        time: log[700].committed_at,
    };
    assert_eq!(fresh.resolve(&spec).await.unwrap(), log[700].id);
    let seen = counter.take();
    assert!(seen.gets_under("snapshots/") <= 3, "{:?}", seen.gets);
    // The hint and one window of branch records (algorithms.md §3), fetched together; the
    // only existence check is the expiry horizon's (algorithms.md §13).
    assert!(
        seen.gets_under("refs/") <= 10
            && seen
                .heads
                .iter()
                .all(|k| k.as_str() == "config/expiry/00000000000000000000"),
        "{:?} {:?}",
        seen.gets,
        seen.heads
    );
    assert_eq!(seen.lists, 0);

    // The first 50 log entries come from the tip and one ancestor's recent-entries list.
    let (fresh, counter) = counted(&storage, RepositorySettings::default()).await;
    let first50 = fresh.log_from(tip, 50).await.unwrap();
    assert_eq!(first50, log[..50].to_vec());
    let seen = counter.take();
    assert!(seen.gets_under("snapshots/") <= 3, "{:?}", seen.gets);
    // The whole log costs about one read per 32 entries.
    let (fresh, counter) = counted(&storage, RepositorySettings::default()).await;
    assert_eq!(fresh.log_from(tip, usize::MAX).await.unwrap(), log);
    let seen = counter.take();
    assert!(
        seen.gets_under("snapshots/") <= 1001 / 32 + 2,
        "{}",
        seen.gets.len()
    );
    // Ancestry checks are O(log n) too.
    let (fresh, counter) = counted(&storage, RepositorySettings::default()).await;
    assert!(fresh.is_ancestor(ids[3], tip).await.unwrap());
    assert!(counter.take().gets_under("snapshots/") <= 3);
}

#[tokio::test]
async fn an_append_after_500_commits_costs_what_the_first_did() {
    let (repo, storage) = memory_repo().await;
    let s = repo.writable_session("main").await.unwrap();
    let a = p("t2m");
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_array(&a, int32_array(&[0, 8], &[1, 8]))
        .await
        .unwrap();
    s.commit("create", None).await.unwrap();
    let day = |d: u64| filled(4 * 8, d as u8);
    let mut costs = Vec::new();
    for d in 0..501u64 {
        let measured = d == 1 || d == 500;
        let (repo, counter) = if measured {
            let (r, c) = counted(&storage, RepositorySettings::default()).await;
            (r, Some(c))
        } else {
            (repo.clone(), None)
        };
        let s = repo.writable_session("main").await.unwrap();
        s.resize_array(&a, &[d + 1, 8]).await.unwrap();
        s.set_chunk(&a, &[d, 0], day(d)).await.unwrap();
        if let Some(c) = &counter {
            c.take();
        }
        s.commit(&format!("day {d}"), None).await.unwrap();
        if let Some(c) = counter {
            let seen = c.take();
            assert!(seen.puts.len() <= 4, "day {d}: puts {:?}", seen.puts);
            assert!(
                seen.puts.iter().filter(|k| !k.ends_with("/hint")).count() <= 3,
                "day {d}: {:?}",
                seen.puts
            );
            assert!(seen.gets.len() <= 2, "day {d}: gets {:?}", seen.gets);
            assert!(seen.heads.len() <= 2, "day {d}: heads {:?}", seen.heads);
            assert_eq!(seen.lists, 0);
            costs.push((seen.puts.len(), seen.gets.len(), seen.heads.len()));
        }
    }
    assert_eq!(costs[0], costs[1], "commit 500 costs what commit 1 did");
    let r = repo
        .readonly_session(&VersionSpec::Name("main".into()))
        .await
        .unwrap();
    for d in [0u64, 250, 500] {
        assert_eq!(r.get_chunk(&a, &[d, 0]).await.unwrap().unwrap(), day(d));
    }
}

#[tokio::test]
async fn appends_never_read_the_compacted_base_manifest() {
    // Small deltas: the shard is compacted into a base manifest every few days, yet an append
    // (edits beyond the base's bounding box) must not read that base, and every day must still
    // read back with exact statistics.
    let settings = RepositorySettings {
        delta_max_entries: 4,
        ..RepositorySettings::default()
    };
    let (repo, storage) = memory_repo_with(settings.clone()).await;
    let a = p("t2m");
    let s = repo.writable_session("main").await.unwrap();
    s.create_array(&a, int32_array(&[0, 8], &[1, 8]))
        .await
        .unwrap();
    s.commit("create", None).await.unwrap();
    let day = |d: u64| filled(600, d as u8);
    let mut manifest_gets = Vec::new();
    for d in 0..40u64 {
        let (fresh, counter) = counted(&storage, settings.clone()).await;
        let s = fresh.writable_session("main").await.unwrap();
        s.resize_array(&a, &[d + 1, 8]).await.unwrap();
        s.set_chunk(&a, &[d, 0], day(d)).await.unwrap();
        counter.take();
        s.commit(&format!("day {d}"), None).await.unwrap();
        let seen = counter.take();
        let compacted = seen.puts.iter().any(|k| k.starts_with("manifests/"));
        // Only a compaction (which merges base and delta into a new base) may read the base.
        if !compacted {
            manifest_gets.push(seen.gets_under("manifests/"));
        }
        let stats = s.array_stats(&a).await.unwrap();
        assert_eq!(stats.chunks_initialized, d + 1);
        assert_eq!(stats.bytes_stored, 600 * (d + 1));
    }
    assert!(manifest_gets.len() >= 30, "most commits did not compact");
    assert!(manifest_gets.iter().all(|&n| n == 0), "{manifest_gets:?}");
    let listed = storage.list("manifests").await.unwrap();
    assert!(listed.len() >= 5, "the shard was compacted: {listed:?}");
    // Overwriting an old day does read the base (it may replace a base entry) and stays exact.
    let s = repo.writable_session("main").await.unwrap();
    s.set_chunk(&a, &[3, 0], filled(700, 9)).await.unwrap();
    s.commit("fix day 3", None).await.unwrap();
    let stats = s.array_stats(&a).await.unwrap();
    assert_eq!(stats.chunks_initialized, 40);
    assert_eq!(stats.bytes_stored, 600 * 39 + 700);
    let r = repo
        .readonly_session(&VersionSpec::Name("main".into()))
        .await
        .unwrap();
    for d in 0..40u64 {
        let expected = if d == 3 { filled(700, 9) } else { day(d) };
        assert_eq!(r.get_chunk(&a, &[d, 0]).await.unwrap().unwrap(), expected);
    }
}
