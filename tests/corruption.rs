//! Damaged repository objects: snapshots, manifests, transaction logs and chunk objects that
//! were flipped, truncated, overwritten or deleted on disk. Every read of a damaged object
//! fails with a precise error (never a panic, never wrong data from a verified object), and
//! every version that does not need the damaged object stays readable. Damaged refs are in
//! `corruption_refs.rs`; the fixture is in `common/damaged_repo.rs`.

mod common;

use bytes::Bytes;
use common::damaged_repo::{chunk, damage, files, fixture, new_file, settings, Damage};
use common::{memory_repo_with, p, uint8_array};
use floe::{Error, Repository, VersionSpec};
use serde_json::Map;

const DAMAGES: [Damage; 10] = [
    Damage::FlipByte(0),
    Damage::FlipByte(5),
    Damage::FlipByte(6),
    Damage::FlipByte(12),
    Damage::FlipByte(40),
    Damage::FlipLastByte,
    Damage::Truncate(0),
    Damage::Truncate(20),
    Damage::TruncateLastByte,
    Damage::Garbage,
];

fn is_integrity_error(err: &Error, key_part: &str) -> bool {
    match err {
        Error::DigestMismatch { key, .. }
        | Error::CorruptObject { key, .. }
        | Error::ObjectMissing { key } => key.contains(key_part),
        Error::SnapshotNotFound { id } => key_part.ends_with(id.as_str()),
        _ => false,
    }
}

#[tokio::test]
async fn damaged_snapshot() {
    let f = fixture().await;
    f.all_readable().await;
    let file = f.snapshot_file(f.c2);
    let c2_key = format!("snapshots/{}", f.c2);
    for how in DAMAGES.into_iter().chain([Damage::Delete]) {
        let original = damage(&file, how);
        let repo = f.fresh().await;
        let err = repo.session_at_snapshot(f.c2).await.unwrap_err();
        match how {
            Damage::Delete => assert!(
                matches!(&err, Error::SnapshotNotFound { id } if *id == f.c2.to_string()),
                "{err:?}"
            ),
            _ => assert!(
                matches!(&err, Error::DigestMismatch { key, .. } if *key == c2_key),
                "{how:?}: {err:?}"
            ),
        }
        let err = repo
            .readonly_session(&VersionSpec::Name("dev".into()))
            .await
            .unwrap_err();
        assert!(is_integrity_error(&err, &c2_key), "{how:?}: {err:?}");
        // The versions before and after it do not need it.
        f.read_back(&repo, f.c1).await.unwrap();
        f.read_back(&repo, f.c3).await.unwrap();
        assert_eq!(
            repo.resolve(&VersionSpec::Tag("v1".into())).await.unwrap(),
            f.c1
        );
        // The log of c3 carries c2's entry, so listing it does not read c2.
        let log = repo.log_from(f.c3, usize::MAX).await.unwrap();
        assert_eq!(
            log.iter().map(|e| e.message.as_str()).collect::<Vec<_>>()[..3],
            ["c3", "c2", "c1"]
        );
        // As-of finds c2 in c3's history index without reading it; opening c2 fails cleanly.
        let time = log[1].committed_at;
        assert_eq!(repo.snapshot_as_of(f.c3, time).await.unwrap(), Some(f.c2));
        let err = repo
            .readonly_session(&VersionSpec::AsOf {
                branch: "main".into(),
                time,
            })
            .await
            .unwrap_err();
        assert!(is_integrity_error(&err, &c2_key), "{how:?}: {err:?}");
        // Committing on top of c3 does not need c2 either.
        let s = repo.writable_session("main").await.unwrap();
        s.set_chunk(&p("b"), &[7], Bytes::from_static(b"new"))
            .await
            .unwrap();
        let c4 = s.commit("c4", None).await.unwrap();
        repo.reset_branch("main", f.c3).await.unwrap();
        std::fs::write(&file, original).unwrap();
        assert!(f.fresh().await.is_ancestor(f.c2, c4).await.unwrap());
    }
    f.all_readable().await;
}

#[tokio::test]
async fn damaged_tip_snapshot() {
    let f = fixture().await;
    let file = f.snapshot_file(f.c3);
    let key = format!("snapshots/{}", f.c3);
    for how in [Damage::FlipByte(30), Damage::Truncate(10), Damage::Delete] {
        let original = damage(&file, how);
        let repo = f.fresh().await;
        let err = repo.writable_session("main").await.unwrap_err();
        assert!(is_integrity_error(&err, &key), "{how:?}: {err:?}");
        let err = repo.log_from(f.c3, 10).await.unwrap_err();
        assert!(is_integrity_error(&err, &key), "{how:?}: {err:?}");
        let err = repo
            .resolve(&VersionSpec::AsOf {
                branch: "main".into(),
                time: chrono::Utc::now(),
            })
            .await
            .unwrap_err();
        assert!(is_integrity_error(&err, &key), "{how:?}: {err:?}");
        f.read_back(&repo, f.c2).await.unwrap();
        // Another branch can still be written.
        let s = repo.writable_session("dev").await.unwrap();
        s.create_group(&p("d"), Map::new()).await.unwrap();
        s.commit("on dev", None).await.unwrap();
        std::fs::write(&file, original).unwrap();
    }
    f.all_readable().await;
}

#[tokio::test]
async fn damaged_manifest() {
    let f = fixture().await;
    let a_key = format!(
        "manifests/{}",
        f.a_manifest.file_name().unwrap().to_str().unwrap()
    );
    for how in DAMAGES.into_iter().chain([Damage::Delete]) {
        let original = damage(&f.a_manifest, how);
        let repo = f.fresh().await;
        for id in [f.c1, f.c2, f.c3] {
            // The snapshot opens, nodes list, and `b` reads; `a`'s chunks fail clearly.
            let s = repo.session_at_snapshot(id).await.unwrap();
            assert_eq!(
                s.list_nodes().unwrap().len(),
                if id == f.c1 { 2 } else { 3 }
            );
            let err = s.get_chunk(&p("a"), &[1]).await.unwrap_err();
            match how {
                Damage::Delete => assert!(
                    matches!(&err, Error::ObjectMissing { key } if *key == a_key),
                    "{err:?}"
                ),
                _ => assert!(
                    matches!(&err, Error::DigestMismatch { key, .. } if *key == a_key),
                    "{how:?}: {err:?}"
                ),
            }
            assert!(s.list_chunks(&p("a")).await.is_err());
            if id != f.c1 {
                for i in 0..5 {
                    assert_eq!(s.get_chunk(&p("b"), &[i]).await.unwrap(), Some(chunk(2, i)));
                }
            }
        }
        // A commit that may replace an entry of a's base (chunk 2 lies inside the base's
        // bounding box) must read the base: it fails and moves nothing.
        let s = repo.writable_session("main").await.unwrap();
        s.set_chunk(&p("a"), &[2], Bytes::from_static(b"x"))
            .await
            .unwrap();
        let err = s.commit("needs a's manifest", None).await.unwrap_err();
        assert!(is_integrity_error(&err, &a_key), "{how:?}: {err:?}");
        assert_eq!(repo.branch_tip("main").await.unwrap(), f.c3);
        // An append beyond the base's box never reads the base, so it lands; the new snapshot
        // references the same (damaged) base as its parent and is no more damaged than it.
        s.discard().await;
        s.set_chunk(&p("a"), &[7], Bytes::from_static(b"x"))
            .await
            .unwrap();
        s.commit("append to a", None).await.unwrap();
        assert!(s.get_chunk(&p("a"), &[2]).await.is_err());
        assert_eq!(
            s.get_chunk(&p("a"), &[7]).await.unwrap().unwrap(),
            Bytes::from_static(b"x")
        );
        repo.reset_branch("main", f.c3).await.unwrap();
        // A commit that does not touch `a` goes through.
        let s = repo.writable_session("main").await.unwrap();
        s.set_chunk(&p("b"), &[7], Bytes::from_static(b"y"))
            .await
            .unwrap();
        s.commit("b only", None).await.unwrap();
        repo.reset_branch("main", f.c3).await.unwrap();
        std::fs::write(&f.a_manifest, original).unwrap();
    }
    f.all_readable().await;
    // Damage to b's manifest leaves `a` readable everywhere.
    damage(&f.b_manifest, Damage::Garbage);
    let repo = f.fresh().await;
    f.read_back(&repo, f.c1).await.unwrap();
    let s = repo.session_at_snapshot(f.c3).await.unwrap();
    assert_eq!(s.get_chunk(&p("a"), &[6]).await.unwrap(), Some(chunk(1, 6)));
    assert!(matches!(
        s.get_chunk(&p("b"), &[0]).await,
        Err(Error::DigestMismatch { .. })
    ));
}

#[tokio::test]
async fn damaged_transaction_log_stops_a_rebase() {
    let f = fixture().await;
    let repo = f.fresh().await;
    let ours = repo.writable_session("main").await.unwrap();
    let theirs = repo.writable_session("main").await.unwrap();
    ours.set_chunk(&p("a"), &[7], Bytes::from_static(b"ours"))
        .await
        .unwrap();
    let before = files(&f.root.join("txlogs"));
    theirs
        .set_chunk(&p("b"), &[7], Bytes::from_static(b"theirs"))
        .await
        .unwrap();
    let their_id = theirs.commit("theirs", None).await.unwrap();
    let txlog = new_file(&before, &files(&f.root.join("txlogs")));
    let original = damage(&txlog, Damage::FlipByte(30));
    let err = ours.commit("ours", None).await.unwrap_err();
    assert!(
        matches!(&err, Error::DigestMismatch { key, .. } if key.starts_with("txlogs/")),
        "{err:?}"
    );
    assert_eq!(repo.branch_tip("main").await.unwrap(), their_id);
    assert!(ours.has_changes(), "the session keeps its changes");
    std::fs::write(&txlog, original).unwrap();
    let id = ours.commit("ours", None).await.unwrap();
    let s = f.fresh().await.session_at_snapshot(id).await.unwrap();
    assert_eq!(
        s.get_chunk(&p("a"), &[7]).await.unwrap(),
        Some(Bytes::from_static(b"ours"))
    );
    assert_eq!(
        s.get_chunk(&p("b"), &[7]).await.unwrap(),
        Some(Bytes::from_static(b"theirs"))
    );
}

#[tokio::test]
async fn damaged_chunk_objects() {
    let f = fixture().await;
    let pack_key = format!(
        "chunks/{}",
        f.c1_pack.file_name().unwrap().to_str().unwrap()
    );
    for how in [Damage::Delete, Damage::Truncate(100), Damage::Truncate(0)] {
        let original = damage(&f.c1_pack, how);
        let repo = f.fresh().await;
        let s = repo.session_at_snapshot(f.c3).await.unwrap();
        // Inline chunks live in the manifest and stay readable.
        assert_eq!(s.get_chunk(&p("a"), &[0]).await.unwrap(), Some(chunk(1, 0)));
        let err = s.get_chunk(&p("a"), &[3]).await.unwrap_err();
        assert!(
            matches!(&err, Error::ObjectMissing { key } | Error::CorruptObject { key, .. } if *key == pack_key),
            "{how:?}: {err:?}"
        );
        assert!(
            !err.is_retryable(),
            "{how:?}: damage is not transient: {err:?}"
        );
        assert_eq!(s.get_chunk(&p("b"), &[3]).await.unwrap(), Some(chunk(2, 3)));
        std::fs::write(&f.c1_pack, original).unwrap();
    }
    f.all_readable().await;
}

/// Backends that answer a range past the end with fewer bytes (the in-memory store clamps)
/// must not turn a truncated object into a short chunk.
#[tokio::test]
async fn truncated_object_in_memory_is_corrupt_not_short() {
    let (repo, storage) = memory_repo_with(settings()).await;
    let s = repo.writable_session("main").await.unwrap();
    s.create_array(&p("a"), uint8_array(&[4], &[1]))
        .await
        .unwrap();
    s.set_chunk(&p("a"), &[1], chunk(1, 1)).await.unwrap();
    s.set_chunk(&p("a"), &[3], chunk(1, 3)).await.unwrap();
    let id = s.commit("packed", None).await.unwrap();
    let objects = storage.list("chunks").await.unwrap();
    assert_eq!(objects.len(), 1, "both chunks share one pack");
    let key = objects[0].key.clone();
    let original = storage.get(&key).await.unwrap();
    storage
        .put(&key, original.slice(..original.len() - 10))
        .await
        .unwrap();
    let r = Repository::open(storage.clone(), settings())
        .await
        .unwrap()
        .session_at_snapshot(id)
        .await
        .unwrap();
    assert_eq!(
        r.get_chunk(&p("a"), &[1]).await.unwrap(),
        Some(chunk(1, 1)),
        "the first chunk is intact"
    );
    let err = r.get_chunk(&p("a"), &[3]).await.unwrap_err();
    assert!(
        matches!(&err, Error::CorruptObject { key: k, .. } if *k == key),
        "{err:?}"
    );
    assert!(
        r.get_chunk_range(&p("a"), &[3], 0..10)
            .await
            .unwrap()
            .is_some(),
        "bytes before the cut still read"
    );
}
