//! Expiry and garbage collection on a real local repository: what is kept reads back
//! bit-exact, what was dropped is deleted only a grace period after it was condemned, expired
//! history reads as expired (never as damage), and GC never touches keys that are not floe's.

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use common::cli::ok;
use common::{int32_array, lifecycle_settings, p, tempdir_repo};
use floe::{
    Error, ExpireBefore, ExpireOptions, GcObject, GcOptions, GcReason, Repository,
    RepositorySettings, SnapshotId, VersionSpec,
};

fn settings() -> RepositorySettings {
    lifecycle_settings()
}

fn chunk(v: u8) -> Bytes {
    Bytes::from(vec![v; 16])
}

fn gc_options() -> GcOptions {
    GcOptions {
        grace: Duration::from_secs(1),
        ..GcOptions::default()
    }
}

/// Waits until objects condemned now are past the 1 s grace period by the store's clock.
async fn past_grace() {
    tokio::time::sleep(Duration::from_millis(1100)).await;
}

type Model = BTreeMap<u64, Bytes>;

/// Array `a` (100 elements, chunks of 4) and `n` commits, each writing chunk `i % 5`.
async fn history(repo: &Repository, n: u8) -> Vec<(SnapshotId, Model)> {
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&p("/"), Default::default()).await.unwrap();
    s.create_array(&p("a"), int32_array(&[100], &[4]))
        .await
        .unwrap();
    let mut model = Model::new();
    let mut out = Vec::new();
    for i in 0..n {
        let coord = u64::from(i % 5);
        s.set_chunk(&p("a"), &[coord], chunk(i)).await.unwrap();
        model.insert(coord, chunk(i));
        out.push((
            s.commit(&format!("c{i}"), None).await.unwrap(),
            model.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    out
}

async fn committed_at(repo: &Repository, id: SnapshotId) -> chrono::DateTime<Utc> {
    repo.snapshot_entry(id).await.unwrap().committed_at
}

async fn reads_back(repo: &Repository, id: SnapshotId, model: &Model) {
    let s = repo.session_at_snapshot(id).await.unwrap();
    for coord in 0..25u64 {
        let got = s.get_chunk(&p("a"), &[coord]).await.unwrap();
        assert_eq!(
            got.as_ref(),
            model.get(&coord),
            "snapshot {id}, chunk {coord}"
        );
    }
}

fn files_under(dir: &Path, sub: &str) -> usize {
    std::fs::read_dir(dir.join(sub)).map_or(0, |d| d.count())
}

#[tokio::test]
async fn expired_history_is_collected_and_reads_as_expired() {
    let (dir, repo) = tempdir_repo(settings()).await;
    let commits = history(&repo, 12).await;
    let horizon = committed_at(&repo, commits[8].0).await;
    let before_horizon = committed_at(&repo, commits[4].0).await;
    repo.create_tag("keep", commits[2].0).await.unwrap();

    // A dry run records nothing and says what GC would then free.
    let dry = repo
        .expire(&ExpireOptions {
            dry_run: true,
            ..ExpireOptions::older_than(ExpireBefore::Time(horizon))
        })
        .await
        .unwrap();
    assert!(dry.record.is_none());
    let would_free = dry.would_free.unwrap();
    let report = repo
        .expire(&ExpireOptions::older_than(ExpireBefore::Time(horizon)))
        .await
        .unwrap();
    assert_eq!(report.record, Some(0));
    let edges = |r: &floe::ExpireReport| -> Vec<(SnapshotId, SnapshotId)> {
        r.new_cuts.iter().map(|c| (c.child, c.parent)).collect()
    };
    assert_eq!(edges(&report), edges(&dry));
    let main = &report.branches[0];
    assert_eq!(main.oldest_kept, commits[8].0);
    assert_eq!((main.kept, main.newly_expired), (4, 8));
    assert_eq!(report.tags_cut, vec!["keep".to_string()]);
    // Expiring again with the same threshold changes nothing.
    let again = repo
        .expire(&ExpireOptions::older_than(ExpireBefore::Time(horizon)))
        .await
        .unwrap();
    assert!(again.new_cuts.is_empty() && again.record.is_none());

    // History stops at the cut; as-of before it is expired, not missing or corrupt.
    let (_, log) = repo
        .log(&VersionSpec::Branch("main".into()), usize::MAX)
        .await
        .unwrap();
    let logged: Vec<SnapshotId> = log.iter().map(|e| e.id).collect();
    let kept: Vec<SnapshotId> = commits[8..].iter().rev().map(|c| c.0).collect();
    assert_eq!(logged, kept);
    let (_, tag_log) = repo
        .log(&VersionSpec::Tag("keep".into()), usize::MAX)
        .await
        .unwrap();
    assert_eq!(tag_log.len(), 1);
    let as_of = VersionSpec::AsOf {
        branch: "main".into(),
        time: before_horizon,
    };
    assert!(matches!(
        repo.resolve(&as_of).await,
        Err(Error::HistoryExpired { .. })
    ));
    assert_eq!(
        repo.resolve(&VersionSpec::AsOf {
            branch: "main".into(),
            time: horizon,
        })
        .await
        .unwrap(),
        commits[8].0
    );
    // Until GC runs, an expired snapshot still reads by id.
    reads_back(&repo, commits[1].0, &commits[1].1).await;

    let snapshots_before = files_under(dir.path(), "snapshots");
    let first = repo.gc(&gc_options()).await.unwrap();
    assert_eq!(first.run, Some(0));
    assert!(first.deleted.is_empty(), "the first run only condemns");
    assert_eq!(
        would_free,
        (
            first.condemned.len() as u64,
            floe::GcReport::bytes(&first.condemned)
        )
    );
    let condemned_snapshots: Vec<SnapshotId> = first
        .condemned
        .iter()
        .filter_map(|e| match e.object {
            GcObject::Snapshot(id) => Some(id),
            _ => None,
        })
        .collect();
    let mut expected: Vec<SnapshotId> = [0, 1, 3, 4, 5, 6, 7]
        .iter()
        .map(|&i| commits[i].0)
        .collect();
    expected.sort();
    assert_eq!(condemned_snapshots, expected);
    assert!(first
        .condemned
        .iter()
        .all(|e| e.reason == GcReason::Expired));
    // Chunk 3 was written by c3 and rewritten by c8: only expired history holds its first
    // object (chunks 0-2 of c0-c2 stay with the tag, the others with c8).
    assert_eq!(
        first
            .condemned
            .iter()
            .filter(|e| matches!(e.object, GcObject::Chunks(_)))
            .count(),
        1
    );
    assert_eq!(files_under(dir.path(), "snapshots"), snapshots_before);

    past_grace().await;
    let second = repo.gc(&gc_options()).await.unwrap();
    assert_eq!(second.deleted.len(), first.condemned.len());
    assert!(second.condemned.is_empty());
    assert_eq!(files_under(dir.path(), "snapshots"), snapshots_before - 7);

    // A fresh handle: every retained version reads back bit-exact; expired ones are gone.
    let fresh = Repository::open(repo.storage().clone(), settings())
        .await
        .unwrap();
    for (id, model) in commits[8..].iter().chain([&commits[2]]) {
        reads_back(&fresh, *id, model).await;
    }
    match fresh.resolve(&VersionSpec::Snapshot(commits[1].0)).await {
        Err(Error::SnapshotExpired { run, .. }) => assert_eq!(run, 1),
        other => panic!("{other:?}"),
    }
    let fsck = fresh.fsck(Default::default()).await.unwrap();
    assert!(fsck.is_clean(), "{:?}", fsck.problems);
    // Nothing new: an incremental run reads only the previous record and the refs.
    let third = fresh.gc(&gc_options()).await.unwrap();
    assert!(
        third.condemned.is_empty() && third.deleted.is_empty(),
        "{:?} {:?}",
        third.condemned,
        third.deleted
    );
    assert_eq!(third.snapshots_read, 0);

    // The command line and its JSON.
    let doc = ok(dir.path(), &["gc", "--grace", "1s", "--json", "--dry-run"]).json();
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["retained_snapshots"], 6);
    let text = ok(
        dir.path(),
        &["expire", "--older-than", "30d", "--keep-last", "3"],
    )
    .text();
    assert!(text.contains("nothing new to expire"), "{text}");
    // du's bytes only old versions hold are what an expiry's dry run says GC would free.
    let dry = fresh
        .expire(&ExpireOptions {
            dry_run: true,
            ..ExpireOptions::older_than(ExpireBefore::Age(Duration::ZERO))
        })
        .await
        .unwrap();
    let (objects, bytes) = dry.would_free.unwrap();
    assert!(objects > 0 && bytes > 0);
    let doc = ok(dir.path(), &["du", "--old-versions", "0s", "--json"]).json();
    assert_eq!(doc["old_versions"]["objects"], objects);
    assert_eq!(doc["old_versions"]["bytes"], bytes);
    let text = ok(dir.path(), &["du", "--old-versions", "1h"]).text();
    assert!(text.contains("only older history holds"), "{text}");
}

#[tokio::test]
async fn commits_reset_away_are_condemned_then_deleted_and_cannot_be_revived() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let commits = history(&repo, 3).await;
    let base = commits[2].0;
    repo.create_branch("dev", base).await.unwrap();
    let dev = repo.writable_session("dev").await.unwrap();
    dev.set_chunk(&p("a"), &[20], chunk(200)).await.unwrap();
    let d1 = dev.commit("d1", None).await.unwrap();
    dev.set_chunk(&p("a"), &[21], chunk(201)).await.unwrap();
    let d2 = dev.commit("d2", None).await.unwrap();
    repo.reset_branch("dev", base).await.unwrap();

    let first = repo.gc(&gc_options()).await.unwrap();
    let snapshots: Vec<(SnapshotId, GcReason)> = first
        .condemned
        .iter()
        .filter_map(|e| match e.object {
            GcObject::Snapshot(id) => Some((id, e.reason)),
            _ => None,
        })
        .collect();
    let mut expected = vec![(d1, GcReason::Unreferenced), (d2, GcReason::Unreferenced)];
    expected.sort();
    assert_eq!(snapshots, expected);
    // Two chunk objects only d1 and d2 wrote.
    assert_eq!(
        first
            .condemned
            .iter()
            .filter(|e| matches!(e.object, GcObject::Chunks(_)))
            .count(),
        2
    );
    // A condemned snapshot cannot be named again.
    assert!(matches!(
        repo.create_branch("revive", d2).await,
        Err(Error::SnapshotCondemned { run: 0, .. })
    ));
    assert!(matches!(
        repo.create_tag("revive", d1).await,
        Err(Error::SnapshotCondemned { .. })
    ));
    past_grace().await;
    let second = repo.gc(&gc_options()).await.unwrap();
    assert_eq!(second.deleted.len(), first.condemned.len());
    for (id, model) in &commits {
        reads_back(&repo, *id, model).await;
    }
    match repo.create_branch("revive", d2).await {
        Err(Error::SnapshotExpired { run: 1, .. }) => {}
        other => panic!("{other:?}"),
    }
    // The reflog still names it.
    let reflog = repo.reflog("dev", usize::MAX).await.unwrap();
    assert!(reflog.iter().any(|e| e.snapshot == Some(d2)));
    assert!(repo.fsck(Default::default()).await.unwrap().is_clean());
}

#[tokio::test]
async fn full_runs_find_orphans_and_never_touch_foreign_keys() {
    let (dir, repo) = tempdir_repo(settings()).await;
    let commits = history(&repo, 4).await;
    repo.create_branch("dev", commits[3].0).await.unwrap();
    let dev = repo.writable_session("dev").await.unwrap();
    dev.set_chunk(&p("a"), &[10], chunk(100)).await.unwrap();
    dev.commit("d", None).await.unwrap();
    repo.delete_branch("dev").await.unwrap();
    // A session that uploads and never commits (its chunk object is an orphan).
    let idle = repo.writable_session("main").await.unwrap();
    idle.set_chunk(&p("a"), &[11], chunk(111)).await.unwrap();
    idle.set_chunk(&p("a"), &[12], chunk(112)).await.unwrap();
    // Keys that are not floe's, under every prefix.
    let hex = "A".repeat(64);
    let foreign = [
        "snapshots/README.txt".to_string(),
        format!("chunks/{hex}"),
        format!("manifests/{}", "0".repeat(63)),
        format!("txlogs/{}.tmp", "1".repeat(64)),
        "gc/notes.txt".to_string(),
        "refs/notes".to_string(),
        "elsewhere/x".to_string(),
    ];
    for key in &foreign {
        repo.storage()
            .put(key, Bytes::from_static(b"not floe's"))
            .await
            .unwrap();
    }
    past_grace().await;

    let dry = |full: bool| GcOptions {
        full,
        dry_run: true,
        ..gc_options()
    };
    let incremental = repo.gc(&dry(false)).await.unwrap();
    let full = repo.gc(&dry(true)).await.unwrap();
    let objects =
        |r: &floe::GcReport| -> Vec<GcObject> { r.condemned.iter().map(|e| e.object).collect() };
    let (inc, all) = (objects(&incremental), objects(&full));
    assert!(!inc.is_empty());
    assert!(
        inc.iter().all(|o| all.contains(o)),
        "{inc:?} not within {all:?}"
    );
    let orphans = full
        .condemned
        .iter()
        .filter(|e| e.reason == GcReason::Orphan)
        .count();
    assert_eq!(orphans, 2, "{:?}", full.condemned);
    assert!(incremental.run.is_none() && full.run.is_none());
    assert!(repo.gc(&dry(false)).await.unwrap().condemned.len() == inc.len());

    let full_run = GcOptions {
        full: true,
        ..gc_options()
    };
    let condemning = repo.gc(&full_run).await.unwrap();
    assert_eq!(objects(&condemning), all);
    // The idle session's uploads were condemned: its commit is refused, nothing lost.
    match idle.commit("late", None).await {
        Err(Error::SessionObjectsCollected { count, .. }) => assert_eq!(count, 2),
        other => panic!("{other:?}"),
    }
    past_grace().await;
    let deleting = repo.gc(&full_run).await.unwrap();
    assert_eq!(deleting.deleted.len(), all.len());
    for key in &foreign {
        assert!(
            repo.storage().head(key).await.unwrap().is_some(),
            "{key} was deleted"
        );
    }
    for (id, model) in &commits {
        reads_back(&repo, *id, model).await;
    }
    assert!(repo.fsck(Default::default()).await.unwrap().is_clean());
    let _ = dir;
}

#[tokio::test]
async fn a_short_grace_is_refused_and_keep_last_must_keep_the_tip() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let short = GcOptions {
        grace: Duration::from_millis(500),
        ..GcOptions::default()
    };
    assert!(matches!(
        repo.gc(&short).await,
        Err(Error::InvalidLifecycleOption { .. })
    ));
    let mut options = ExpireOptions::older_than(ExpireBefore::Age(Duration::from_secs(1)));
    options.keep_last = 0;
    assert!(matches!(
        repo.expire(&options).await,
        Err(Error::InvalidLifecycleOption { .. })
    ));
    // keep_last wins over age: everything is older than "now", three commits stay.
    let commits = history(&repo, 6).await;
    let options = ExpireOptions {
        keep_last: 3,
        ..ExpireOptions::older_than(ExpireBefore::Time(Utc::now()))
    };
    let report = repo.expire(&options).await.unwrap();
    assert_eq!(report.branches[0].oldest_kept, commits[3].0);
    assert_eq!(report.branches[0].kept, 3);
}

#[tokio::test]
async fn floe_serve_answers_410_gone_for_expired_versions() {
    let (_dir, repo) = tempdir_repo(settings()).await;
    let commits = history(&repo, 6).await;
    let horizon = committed_at(&repo, commits[4].0).await;
    let before = committed_at(&repo, commits[1].0).await;
    repo.expire(&ExpireOptions::older_than(ExpireBefore::Time(horizon)))
        .await
        .unwrap();
    repo.gc(&gc_options()).await.unwrap();
    past_grace().await;
    repo.gc(&gc_options()).await.unwrap();

    let fresh = Repository::open(repo.storage().clone(), settings())
        .await
        .unwrap();
    let server = common::http::TestServer::start(fresh).await;
    let gone = common::http::get(&server, &format!("/{}/zarr.json", commits[1].0), &[]).await;
    assert_eq!(gone.status.as_u16(), 410, "{}", gone.text());
    assert!(
        gone.text().contains("garbage collection run 1"),
        "{}",
        gone.text()
    );
    let as_of = format!("/main@{}/zarr.json", before.to_rfc3339());
    let expired = common::http::get(&server, &as_of, &[]).await;
    assert_eq!(expired.status.as_u16(), 410, "{}", expired.text());
    assert!(expired.text().contains("expired"), "{}", expired.text());
    let kept = format!("/main@{}/a/zarr.json", horizon.to_rfc3339());
    assert_eq!(
        common::http::get(&server, &kept, &[]).await.status.as_u16(),
        200
    );
    let tip = common::http::get(&server, "/main/a/c/0", &[]).await;
    assert_eq!(tip.body, commits[5].1[&0]);
    server.stop().await;
}
