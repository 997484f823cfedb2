//! Damaged repositories: snapshots, manifests, transaction logs, chunk objects and refs that
//! were flipped, truncated, overwritten or deleted on disk. Every read of a damaged object
//! fails with a precise error (never a panic, never wrong data from a verified object), and
//! every version that does not need the damaged object stays readable.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use floe::{Error, NodePath, Repository, RepositorySettings, SnapshotId, VersionSpec};
use serde_json::{json, Map, Value};

fn array_json(n: u64) -> Value {
    json!({
        "zarr_format": 3, "node_type": "array", "shape": [n], "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}},
        "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
        "fill_value": 0, "codecs": [{"name": "bytes"}]
    })
}

fn p(path: &str) -> NodePath {
    NodePath::new(path).unwrap()
}

fn settings() -> RepositorySettings {
    RepositorySettings {
        inline_threshold: 16,
        delta_max_entries: 2,
        txlog_inline_max_bytes: 0,
        ..Default::default()
    }
}

fn chunk(array: u8, i: u64) -> Bytes {
    // Even chunks inline, odd ones packed.
    let len = if i % 2 == 0 { 5 } else { 300 };
    Bytes::from(vec![array.wrapping_mul(16).wrapping_add(i as u8); len])
}

/// A local repository with three commits on `main`:
/// c1 writes array `a` (chunks 0..5, compacted into manifest `a_manifest`),
/// c2 writes array `b` (chunks 0..5, manifest `b_manifest`), c3 adds chunk 6 of `a` (delta).
/// Tag `v1` names c1 and branch `dev` names c2.
struct Fixture {
    _dir: tempfile::TempDir,
    root: PathBuf,
    c1: SnapshotId,
    c2: SnapshotId,
    c3: SnapshotId,
    a_manifest: PathBuf,
    b_manifest: PathBuf,
    c1_pack: PathBuf,
}

fn files(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut out: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
            out.sort();
            out
        }
        Err(_) => vec![],
    }
}

fn new_file(before: &[PathBuf], after: &[PathBuf]) -> PathBuf {
    let new: Vec<&PathBuf> = after.iter().filter(|f| !before.contains(f)).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    new[0].clone()
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let storage = floe::open_storage(root.to_str().unwrap(), &vec![]).unwrap();
    let repo = Repository::init(storage, settings()).await.unwrap();
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_array(&p("a"), array_json(8)).await.unwrap();
    for i in 0..5 {
        s.set_chunk(&p("a"), &[i], chunk(1, i)).await.unwrap();
    }
    let chunks_before = files(&root.join("chunks"));
    let c1 = s.commit("c1", None).await.unwrap();
    let c1_pack = new_file(&chunks_before, &files(&root.join("chunks")));
    let a_manifest = new_file(&[], &files(&root.join("manifests")));
    s.create_array(&p("b"), array_json(8)).await.unwrap();
    for i in 0..5 {
        s.set_chunk(&p("b"), &[i], chunk(2, i)).await.unwrap();
    }
    let before = files(&root.join("manifests"));
    let c2 = s.commit("c2", None).await.unwrap();
    let b_manifest = new_file(&before, &files(&root.join("manifests")));
    s.set_chunk(&p("a"), &[6], chunk(1, 6)).await.unwrap();
    let before = files(&root.join("manifests"));
    let c3 = s.commit("c3", None).await.unwrap();
    assert_eq!(
        files(&root.join("manifests")),
        before,
        "c3 keeps a's change in a delta"
    );
    repo.create_tag("v1", c1).await.unwrap();
    repo.create_branch("dev", c2).await.unwrap();
    Fixture {
        _dir: dir,
        root,
        c1,
        c2,
        c3,
        a_manifest,
        b_manifest,
        c1_pack,
    }
}

impl Fixture {
    /// A handle with cold caches, so every object is read from disk again.
    async fn fresh(&self) -> Repository {
        let storage = floe::open_storage(self.root.to_str().unwrap(), &vec![]).unwrap();
        Repository::open(storage, settings()).await.unwrap()
    }

    fn snapshot_file(&self, id: SnapshotId) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    fn record_file(&self, branch: &str, seq: u64) -> PathBuf {
        self.root
            .join("refs")
            .join(format!("branch.{branch}"))
            .join(format!("{seq:020}"))
    }

    /// What a version should contain: (array, chunk index, bytes) for every chunk.
    fn expected(&self, id: SnapshotId) -> Vec<(&'static str, u64, Bytes)> {
        let mut out: Vec<(&'static str, u64, Bytes)> =
            (0..5).map(|i| ("a", i, chunk(1, i))).collect();
        if id != self.c1 {
            out.extend((0..5).map(|i| ("b", i, chunk(2, i))));
        }
        if id == self.c3 {
            out.push(("a", 6, chunk(1, 6)));
        }
        out
    }

    /// Reads every node and chunk of a version and compares them with what was written.
    async fn read_back(&self, repo: &Repository, id: SnapshotId) -> floe::Result<()> {
        let s = repo.session_at_snapshot(id).await?;
        let arrays: Vec<String> = s
            .list_nodes()?
            .into_iter()
            .skip(1)
            .map(|n| n.path.as_str().to_string())
            .collect();
        let expected = self.expected(id);
        let mut want_arrays: Vec<&str> = expected.iter().map(|(a, _, _)| *a).collect();
        want_arrays.sort();
        want_arrays.dedup();
        assert_eq!(arrays, want_arrays);
        for (array, i, bytes) in expected {
            assert_eq!(
                s.get_chunk(&p(array), &[i]).await?,
                Some(bytes),
                "{array}[{i}] of {id:?}"
            );
        }
        Ok(())
    }

    async fn all_readable(&self) {
        let repo = self.fresh().await;
        for id in [self.c1, self.c2, self.c3] {
            self.read_back(&repo, id).await.unwrap();
        }
        assert_eq!(repo.branch_tip("main").await.unwrap(), self.c3);
    }
}

/// The ways a file gets damaged.
#[derive(Clone, Copy, Debug)]
enum Damage {
    FlipByte(usize),
    FlipLastByte,
    Truncate(usize),
    TruncateLastByte,
    Garbage,
    Delete,
}

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

/// Damages a file and returns its original bytes.
fn damage(file: &Path, how: Damage) -> Vec<u8> {
    let original = std::fs::read(file).unwrap();
    let mut bytes = original.clone();
    match how {
        Damage::FlipByte(i) => {
            let i = i.min(bytes.len() - 1);
            bytes[i] ^= 0xff;
        }
        Damage::FlipLastByte => *bytes.last_mut().unwrap() ^= 0x01,
        Damage::Truncate(n) => bytes.truncate(n),
        Damage::TruncateLastByte => {
            bytes.pop();
        }
        Damage::Garbage => bytes = (0..original.len()).map(|i| (i * 7 + 3) as u8).collect(),
        Damage::Delete => {
            std::fs::remove_file(file).unwrap();
            return original;
        }
    }
    std::fs::write(file, bytes).unwrap();
    original
}

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
        // Walking to c2 fails cleanly.
        let time = log[1].committed_at;
        let err = repo.snapshot_as_of(f.c3, time).await.unwrap_err();
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

#[tokio::test]
async fn damaged_branch_record() {
    let f = fixture().await;
    let tip_record = f.record_file("main", 3);
    let original = std::fs::read(&tip_record).unwrap();
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    // Every single-byte flip of the tip record: either harmless (the nonce or the write time)
    // or a clear error; never another snapshot.
    for i in 0..original.len() {
        damage(&tip_record, Damage::FlipByte(i));
        let repo = f.fresh().await;
        let outcome = match repo
            .readonly_session(&VersionSpec::Branch("main".into()))
            .await
        {
            Ok(s) => {
                assert_eq!(s.snapshot_id(), f.c3, "byte {i}");
                "same tip".to_string()
            }
            Err(e @ (Error::CorruptObject { .. } | Error::UnsupportedFormatVersion { .. })) => {
                assert!(
                    matches!(&e, Error::UnsupportedFormatVersion { .. })
                        || e.to_string().contains("refs/branch.main/"),
                    "byte {i}: {e}"
                );
                format!("{:?}", std::mem::discriminant(&e))
            }
            Err(e @ Error::SnapshotNotFound { .. }) => format!("{:?}", std::mem::discriminant(&e)),
            Err(e) => panic!("byte {i}: unexpected {e:?}"),
        };
        *seen.entry(outcome).or_default() += 1;
        // Other refs are unaffected.
        assert_eq!(repo.branch_tip("dev").await.unwrap(), f.c2);
        assert_eq!(repo.tag("v1").await.unwrap().snapshot, f.c1);
        std::fs::write(&tip_record, &original).unwrap();
    }
    assert!(
        seen.len() >= 3,
        "flips hit the header, the payload and the snapshot id: {seen:?}"
    );
    for how in [
        Damage::Truncate(0),
        Damage::Truncate(20),
        Damage::TruncateLastByte,
        Damage::Garbage,
    ] {
        damage(&tip_record, how);
        let repo = f.fresh().await;
        let err = repo.writable_session("main").await.unwrap_err();
        assert!(
            matches!(&err, Error::CorruptObject { key, .. } if key.ends_with("00000000000000000003")),
            "{how:?}: {err:?}"
        );
        assert!(matches!(
            repo.list_branches().await,
            Err(Error::CorruptObject { .. })
        ));
        assert_eq!(repo.branch_tip("dev").await.unwrap(), f.c2);
        std::fs::write(&tip_record, &original).unwrap();
    }
    f.all_readable().await;

    // Deleting the newest record is indistinguishable from that commit never having moved
    // the branch: the previous record is the tip, and the snapshot stays readable by id.
    std::fs::remove_file(&tip_record).unwrap();
    let repo = f.fresh().await;
    assert_eq!(repo.branch_tip("main").await.unwrap(), f.c2);
    f.read_back(&repo, f.c3).await.unwrap();
    std::fs::write(&tip_record, &original).unwrap();

    // A branch whose records are all gone does not exist; the others are untouched.
    let dev_dir = f.root.join("refs").join("branch.dev");
    std::fs::remove_dir_all(&dev_dir).unwrap();
    let repo = f.fresh().await;
    assert!(matches!(
        repo.branch_tip("dev").await,
        Err(Error::BranchNotFound { .. })
    ));
    assert!(matches!(
        repo.writable_session("dev").await,
        Err(Error::BranchNotFound { .. })
    ));
    assert_eq!(repo.list_branches().await.unwrap().len(), 1);
    f.all_readable().await;
}

#[tokio::test]
async fn damaged_branch_hint_is_ignored() {
    let f = fixture().await;
    let hint = f.root.join("refs").join("branch.main").join("hint");
    for bad in [
        &b"garbage"[..],
        b"",
        b"99999999",
        b"0",
        b"2",
        b"18446744073709551615",
        &[0xff, 0xfe],
    ] {
        std::fs::write(&hint, bad).unwrap();
        let repo = f.fresh().await;
        assert_eq!(repo.branch_tip("main").await.unwrap(), f.c3, "hint {bad:?}");
    }
    std::fs::remove_file(&hint).unwrap();
    let repo = f.fresh().await;
    assert_eq!(repo.branch_tip("main").await.unwrap(), f.c3);
    // Commits still go to the next record; the hint is rewritten at every 8th record.
    let s = repo.writable_session("main").await.unwrap();
    let mut last = f.c3;
    for seq in 4..=8u64 {
        s.create_group(&p(&format!("g{seq}")), Map::new())
            .await
            .unwrap();
        last = s.commit(&format!("c{seq}"), None).await.unwrap();
        assert!(f.record_file("main", seq).exists());
        assert_eq!(hint.exists(), seq == 8, "record {seq}");
        assert_eq!(f.fresh().await.branch_tip("main").await.unwrap(), last);
    }
    assert_eq!(std::fs::read_to_string(&hint).unwrap().trim(), "8");
    assert_eq!(f.fresh().await.branch_tip("main").await.unwrap(), last);
}

#[tokio::test]
async fn damaged_tag_and_marker() {
    let f = fixture().await;
    let tag = f.root.join("refs").join("tag.v1").join("ref");
    for how in [Damage::FlipByte(0), Damage::Truncate(3), Damage::Garbage] {
        let original = damage(&tag, how);
        let repo = f.fresh().await;
        let err = repo.tag("v1").await.unwrap_err();
        assert!(
            matches!(&err, Error::CorruptObject { key, .. } if key.contains("tag.v1")),
            "{how:?}: {err:?}"
        );
        // A damaged tag is an error, not a reason to try the name as something else.
        assert!(matches!(
            repo.resolve(&VersionSpec::Name("v1".into())).await,
            Err(Error::CorruptObject { .. })
        ));
        assert!(matches!(
            repo.list_tags().await,
            Err(Error::CorruptObject { .. })
        ));
        std::fs::write(&tag, original).unwrap();
    }
    std::fs::remove_file(&tag).unwrap();
    assert!(matches!(
        f.fresh().await.tag("v1").await,
        Err(Error::TagNotFound { .. })
    ));

    let marker = f.root.join("floe.json");
    std::fs::remove_file(&marker).unwrap();
    let storage = floe::open_storage(f.root.to_str().unwrap(), &vec![]).unwrap();
    assert!(matches!(
        Repository::open(storage, settings()).await,
        Err(Error::RepositoryNotFound { .. })
    ));
}

/// Backends that answer a range past the end with fewer bytes (the in-memory store clamps)
/// must not turn a truncated object into a short chunk.
#[tokio::test]
async fn truncated_object_in_memory_is_corrupt_not_short() {
    let storage = floe::open_storage("memory://", &vec![]).unwrap();
    let repo = Repository::init(storage.clone(), settings()).await.unwrap();
    let s = repo.writable_session("main").await.unwrap();
    s.create_array(&p("a"), array_json(4)).await.unwrap();
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
