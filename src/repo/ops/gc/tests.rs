//! GC behaviour only reachable from inside the crate: a ref move that raced the run that
//! condemned its snapshot (written without the guard, as a move that read the GC record just
//! before the run wrote it would be), and a squash that raced expiry and GC (its steps
//! written out one by one, with the expiry and the GC run between its check and its writes).

use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use super::GcOptions;
use crate::format::lifecycle::GcObject;
use crate::format::snapshot::Snapshot;
use crate::repo::commits::rewrite::{child_snapshot, replacing_snapshot, Content};
use crate::repo::history::refs::AdvanceOutcome;
use crate::repo::read::loaded::LoadedSnapshot;
use crate::repo::{Repository, RepositorySettings};
use crate::storage::open_storage;
use crate::NodePath;
use crate::{Error, ExpireBefore, ExpireOptions, SnapshotId};

fn path(p: &str) -> NodePath {
    NodePath::new(p).unwrap()
}

/// A repository in memory (every chunk an object, `delta_max_entries` as given) and a session
/// on `main` that created the root group and a `uint8` array `a` of 8 in chunks of 4.
async fn repo_with_array(delta_max_entries: usize) -> (Repository, crate::Session) {
    let settings = RepositorySettings {
        inline_threshold: 0,
        single_object_threshold: 0,
        delta_max_entries,
        ..RepositorySettings::default()
    };
    let repo = Repository::init(open_storage("memory://", &vec![]).unwrap(), settings)
        .await
        .unwrap();
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Default::default())
        .await
        .unwrap();
    let metadata = json!({
        "zarr_format": 3, "node_type": "array", "shape": [8], "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [4]}},
        "chunk_key_encoding": {"name": "default"}, "fill_value": 0,
        "codecs": [{"name": "bytes"}]
    });
    s.create_array(&path("a"), metadata).await.unwrap();
    (repo, s)
}

#[tokio::test]
async fn a_ref_move_that_raced_the_condemning_run_spares_what_it_reaches() {
    let (repo, s) = repo_with_array(RepositorySettings::default().delta_max_entries).await;
    s.set_chunk(&path("a"), &[0], Bytes::from_static(b"mainmain"))
        .await
        .unwrap();
    let c1 = s.commit("c1", None).await.unwrap();
    repo.create_branch("dev", c1).await.unwrap();
    let dev = repo.writable_session("dev").await.unwrap();
    dev.set_chunk(&path("a"), &[1], Bytes::from_static(b"dev-only"))
        .await
        .unwrap();
    let d1 = dev.commit("d1", None).await.unwrap();
    repo.reset_branch("dev", c1).await.unwrap();

    let grace = GcOptions {
        grace: Duration::from_secs(1),
        ..GcOptions::default()
    };
    let first = repo.gc(&grace).await.unwrap();
    let condemned: Vec<GcObject> = first.condemned.iter().map(|e| e.object).collect();
    assert!(condemned.contains(&GcObject::Snapshot(d1)));
    assert_eq!(
        condemned
            .iter()
            .filter(|o| matches!(o, GcObject::Chunks(_)))
            .count(),
        1
    );
    // The move that raced the run: written as if its check had read the record before it.
    assert!(matches!(
        repo.try_advance_branch("late", 0, Some(d1), None)
            .await
            .unwrap(),
        AdvanceOutcome::Landed
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = repo.gc(&grace).await.unwrap();
    assert!(second.deleted.is_empty(), "{:?}", second.deleted);
    let spared: Vec<GcObject> = second.spared.iter().map(|e| e.object).collect();
    assert_eq!(spared.len(), condemned.len(), "{spared:?}");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let third = repo.gc(&grace).await.unwrap();
    assert!(third.deleted.is_empty() && third.condemned.is_empty());
    let fresh = Repository::open(repo.storage().clone(), RepositorySettings::default())
        .await
        .unwrap();
    let late = fresh.session_at_snapshot(d1).await.unwrap();
    assert_eq!(
        late.get_chunk(&path("a"), &[1]).await.unwrap(),
        Some(Bytes::from_static(b"dev-only"))
    );
    assert!(fresh.fsck(Default::default()).await.unwrap().is_clean());
}

/// What `original` holds, as the content of a copy that stands for it.
fn copy_of(original: &Snapshot, id: SnapshotId) -> Content {
    Content {
        committed_at_us: original.committed_at_us,
        message: format!("copy of {}", original.message),
        metadata_json: original.metadata_json.clone(),
        nodes: original.nodes.clone(),
        txlog: original.txlog.clone(),
        merged: None,
        rewritten_from: Some(id),
    }
}

#[tokio::test]
async fn copies_a_squash_wrote_below_a_cut_go_no_later_than_what_they_name() {
    // Every commit writes a new manifest base: the squash copy then names a base that only
    // expired history shares.
    let (repo, s) = repo_with_array(0).await;
    s.commit("setup", None).await.unwrap();
    let mut commits = Vec::new();
    for (n, chunk) in [(1u8, 0u64), (2, 0), (3, 0), (4, 1)] {
        let s = repo.writable_session("main").await.unwrap();
        s.set_chunk(&path("a"), &[chunk], Bytes::from(vec![n; 4]))
            .await
            .unwrap();
        commits.push(s.commit(&format!("c{n}"), None).await.unwrap());
    }
    let [_, c2, c3, c4] = commits[..] else {
        unreachable!()
    };
    let grace = GcOptions {
        grace: Duration::from_secs(1),
        ..GcOptions::default()
    };
    assert!(repo.gc(&grace).await.unwrap().condemned.is_empty());

    // A squash of c2..c3 passed its check; then expiry cut c4 from c3 and a GC run condemned
    // the expired commits with c3's manifest base (c4 has its own).
    repo.expire(&ExpireOptions::older_than(ExpireBefore::Age(
        Duration::ZERO,
    )))
    .await
    .unwrap();
    let first = repo.gc(&grace).await.unwrap();
    let c3_base = {
        let loaded = repo.load_snapshot(&c3).await.unwrap();
        let crate::format::snapshot::NodeKind::Array(manifest) = &loaded.snapshot.nodes[1].kind
        else {
            panic!("`a` is an array")
        };
        manifest.shards[0].base.unwrap()
    };
    let condemned: Vec<GcObject> = first.condemned.iter().map(|e| e.object).collect();
    assert!(condemned.contains(&GcObject::Snapshot(c3)), "{condemned:?}");
    assert!(condemned.contains(&GcObject::Manifest(c3_base)));

    // The squash's writes: its commit holding c3's content, c4's copy, the cut carried to the
    // copy, the branch moved.
    let (seq, _) = repo.branch_head("main").await.unwrap();
    let (o2, o3, o4) = futures::try_join!(
        repo.load_snapshot(&c2),
        repo.load_snapshot(&c3),
        repo.load_snapshot(&c4)
    )
    .unwrap();
    let squash = replacing_snapshot(&o2.snapshot, copy_of(&o3.snapshot, c3));
    let squash_id = repo.write_snapshot(&squash).await.unwrap();
    let squash_loaded = LoadedSnapshot::new(squash_id, squash.clone());
    let copy = child_snapshot(&squash_loaded, copy_of(&o4.snapshot, c4));
    let copy_id = repo.write_snapshot(&copy).await.unwrap();
    let cut = repo
        .carry_cuts(&[(c2, &squash, squash_id), (c4, &copy, copy_id)])
        .await
        .unwrap();
    assert!(cut.contains(&copy_id), "c4's cut is carried to its copy");
    assert!(matches!(
        repo.try_advance_branch(
            "main",
            seq + 1,
            Some(copy_id),
            Some((copy.generation, &copy.pages))
        )
        .await
        .unwrap(),
        AdvanceOutcome::Landed
    ));

    // No ref ever reached the squash commit, yet the next run finds it below the cut: it is
    // expired history, deleted with (not after) c3's base, which it names.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = repo.gc(&grace).await.unwrap();
    let deleted: Vec<GcObject> = second.deleted.iter().map(|e| e.object).collect();
    assert!(
        deleted.contains(&GcObject::Manifest(c3_base)),
        "{deleted:?}"
    );
    assert!(
        deleted.contains(&GcObject::Snapshot(squash_id)),
        "{deleted:?}"
    );
    assert!(!deleted.contains(&GcObject::Snapshot(copy_id)));

    let fresh = Repository::open(repo.storage().clone(), RepositorySettings::default())
        .await
        .unwrap();
    let fsck = fresh.fsck(Default::default()).await.unwrap();
    assert!(fsck.is_clean(), "{:?}", fsck.problems);
    let tip = fresh
        .readonly_session(&crate::VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    assert_eq!(
        tip.get_chunk(&path("a"), &[0]).await.unwrap(),
        Some(Bytes::from(vec![3u8; 4]))
    );
    assert_eq!(
        tip.get_chunk(&path("a"), &[1]).await.unwrap(),
        Some(Bytes::from(vec![4u8; 4]))
    );
    assert!(matches!(
        fresh.session_at_snapshot(squash_id).await,
        Err(Error::SnapshotExpired { .. })
    ));
}
