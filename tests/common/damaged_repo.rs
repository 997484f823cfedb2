//! A small local repository with known objects, and ways to damage its files on disk: the
//! fixture of `corruption.rs` (objects) and `corruption_refs.rs` (refs).

use std::path::{Path, PathBuf};

use bytes::Bytes;
use floe::{NodePath, Repository, RepositorySettings, SnapshotId};
use serde_json::Map;

use super::{p, tempdir_repo, uint8_array};

/// The settings of the fixture repository: small inline threshold, deltas of at most two
/// entries, every transaction log an object of its own.
pub fn settings() -> RepositorySettings {
    RepositorySettings {
        inline_threshold: 16,
        delta_max_entries: 2,
        txlog_inline_max_bytes: 0,
        ..Default::default()
    }
}

/// The bytes of chunk `i` of the fixture's array number `array` (1 = `a`, 2 = `b`).
pub fn chunk(array: u8, i: u64) -> Bytes {
    // Even chunks inline, odd ones packed.
    let len = if i % 2 == 0 { 5 } else { 300 };
    Bytes::from(vec![array.wrapping_mul(16).wrapping_add(i as u8); len])
}

/// A local repository with three commits on `main`:
/// c1 writes array `a` (chunks 0..5, compacted into manifest `a_manifest`),
/// c2 writes array `b` (chunks 0..5, manifest `b_manifest`), c3 adds chunk 6 of `a` (delta).
/// Tag `v1` names c1 and branch `dev` names c2.
pub struct Fixture {
    pub _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub c1: SnapshotId,
    pub c2: SnapshotId,
    pub c3: SnapshotId,
    pub a_manifest: PathBuf,
    pub b_manifest: PathBuf,
    pub c1_pack: PathBuf,
}

/// The files of `dir`, sorted (none when it does not exist).
pub fn files(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(entries) => {
            let mut out: Vec<PathBuf> = entries.map(|e| e.unwrap().path()).collect();
            out.sort();
            out
        }
        Err(_) => vec![],
    }
}

/// The one file of `after` that is not in `before`; panics unless there is exactly one.
pub fn new_file(before: &[PathBuf], after: &[PathBuf]) -> PathBuf {
    let new: Vec<&PathBuf> = after.iter().filter(|f| !before.contains(f)).collect();
    assert_eq!(new.len(), 1, "{new:?}");
    new[0].clone()
}

/// Builds the repository described at [`Fixture`].
pub async fn fixture() -> Fixture {
    let (dir, repo) = tempdir_repo(settings()).await;
    let root = dir.path().to_path_buf();
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&NodePath::root(), Map::new()).await.unwrap();
    s.create_array(&p("a"), uint8_array(&[8], &[1]))
        .await
        .unwrap();
    for i in 0..5 {
        s.set_chunk(&p("a"), &[i], chunk(1, i)).await.unwrap();
    }
    let chunks_before = files(&root.join("chunks"));
    let c1 = s.commit("c1", None).await.unwrap();
    let c1_pack = new_file(&chunks_before, &files(&root.join("chunks")));
    let a_manifest = new_file(&[], &files(&root.join("manifests")));
    s.create_array(&p("b"), uint8_array(&[8], &[1]))
        .await
        .unwrap();
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
    pub async fn fresh(&self) -> Repository {
        let storage = floe::open_storage(self.root.to_str().unwrap(), &vec![]).unwrap();
        Repository::open(storage, settings()).await.unwrap()
    }

    /// The file of snapshot `id`.
    pub fn snapshot_file(&self, id: SnapshotId) -> PathBuf {
        self.root.join("snapshots").join(id.to_string())
    }

    /// The file of record `seq` of `branch`.
    pub fn record_file(&self, branch: &str, seq: u64) -> PathBuf {
        self.root
            .join("refs")
            .join(format!("branch.{branch}"))
            .join(format!("{seq:020}"))
    }

    /// What a version should contain: (array, chunk index, bytes) for every chunk.
    pub fn expected(&self, id: SnapshotId) -> Vec<(&'static str, u64, Bytes)> {
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
    pub async fn read_back(&self, repo: &Repository, id: SnapshotId) -> floe::Result<()> {
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

    /// Asserts that every version reads back exactly and `main` points at c3.
    pub async fn all_readable(&self) {
        let repo = self.fresh().await;
        for id in [self.c1, self.c2, self.c3] {
            self.read_back(&repo, id).await.unwrap();
        }
        assert_eq!(repo.branch_tip("main").await.unwrap(), self.c3);
    }
}

/// The ways a file gets damaged.
#[derive(Clone, Copy, Debug)]
pub enum Damage {
    FlipByte(usize),
    FlipLastByte,
    Truncate(usize),
    TruncateLastByte,
    Garbage,
    Delete,
}

/// Damages a file and returns its original bytes.
pub fn damage(file: &Path, how: Damage) -> Vec<u8> {
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
