//! Large chunks are stored in the background (write-behind, `src/repo/write/uploads.rs`): the session
//! reads them back at once, many uploads run together, and a commit waits for all of them,
//! retrying a failed upload and refusing to publish while one keeps failing, without losing
//! anything.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{int32_array, p};
use floe::{
    Error, Fault, FaultRule, FaultyStorage, Repository, RepositorySettings, StorageOp, VersionSpec,
};

/// A chunk of `len` bytes that says which one it is.
fn chunk(i: u64, len: usize) -> Bytes {
    let mut out = vec![(i % 251) as u8; len];
    out[..8].copy_from_slice(&i.to_le_bytes());
    Bytes::from(out)
}

const BIG: usize = 2 << 20;

async fn repo_over(faulty: &Arc<FaultyStorage>) -> Repository {
    Repository::init(faulty.clone(), RepositorySettings::default())
        .await
        .unwrap()
}

/// A fresh handle on `storage` and a read-only session at `main`.
async fn read_main(storage: &Arc<FaultyStorage>) -> (Repository, floe::Session) {
    let fresh = Repository::open(storage.clone(), RepositorySettings::default())
        .await
        .unwrap();
    let reader = fresh
        .readonly_session(&VersionSpec::Branch("main".into()))
        .await
        .unwrap();
    (fresh, reader)
}

/// A writable session on `main` with array `a` of `chunks` chunks of `BIG` bytes.
async fn session_with_array(repo: &Repository, chunks: u64) -> floe::Session {
    let session = repo.writable_session("main").await.unwrap();
    let chunk_len = BIG as u64 / 4;
    session
        .create_array(&p("a"), int32_array(&[chunks * chunk_len], &[chunk_len]))
        .await
        .unwrap();
    session
}

fn faulty() -> Arc<FaultyStorage> {
    Arc::new(FaultyStorage::new(
        floe::open_storage("memory://", &vec![]).unwrap(),
        7,
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_chunks_upload_together_and_read_back_before_and_after_commit() {
    let storage = faulty();
    let repo = repo_over(&storage).await;
    // Every chunk upload takes 50 ms: one after another, 16 would take 800 ms.
    storage.add_rule(
        FaultRule::new(Fault::Latency(Duration::from_millis(50)))
            .ops(&[StorageOp::Put])
            .prefix("chunks/"),
    );
    let session = session_with_array(&repo, 16).await;
    let start = Instant::now();
    for i in 0..16u64 {
        session
            .set_chunk(&p("a"), &[i], chunk(i, BIG))
            .await
            .unwrap();
        // Read back at once, whether or not its upload finished.
        assert_eq!(
            session.get_chunk(&p("a"), &[i]).await.unwrap(),
            Some(chunk(i, BIG))
        );
        let range = session
            .get_chunk_range(&p("a"), &[i], 4..12)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(range, chunk(i, BIG).slice(4..12));
        // Several ranges at once (zarrs' partial reads, shard indexes).
        let ranges = session
            .get_chunk_ranges(&p("a"), &[i], |_| Ok(vec![0..8, 100..164]))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            ranges,
            vec![chunk(i, BIG).slice(0..8), chunk(i, BIG).slice(100..164)]
        );
    }
    session.commit("sixteen large chunks", None).await.unwrap();
    let elapsed = start.elapsed();
    assert!(
        elapsed < Duration::from_millis(600),
        "16 uploads of 50 ms each took {elapsed:?}: they did not overlap"
    );
    storage.clear_rules();
    let (fresh, reader) = read_main(&storage).await;
    for i in 0..16u64 {
        assert_eq!(
            reader.get_chunk(&p("a"), &[i]).await.unwrap(),
            Some(chunk(i, BIG))
        );
    }
    assert!(fresh
        .fsck(Default::default())
        .await
        .unwrap()
        .problems
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_upload_is_retried_by_the_commit_or_blocks_it_without_loss() {
    let storage = faulty();
    let repo = repo_over(&storage).await;
    let session = session_with_array(&repo, 8).await;
    session.commit("array", None).await.unwrap();
    let tip = repo.branch_tip("main").await.unwrap();

    // The first background upload fails once: the commit stores it again and lands.
    storage.add_rule(
        FaultRule::new(Fault::ErrorBefore)
            .ops(&[StorageOp::Put])
            .prefix("chunks/")
            .nth(1),
    );
    session
        .set_chunk(&p("a"), &[0], chunk(0, BIG))
        .await
        .unwrap();
    session
        .set_chunk(&p("a"), &[1], chunk(1, BIG))
        .await
        .unwrap();
    session.commit("retried", None).await.unwrap();
    storage.clear_rules();
    let (_, reader) = read_main(&storage).await;
    assert_eq!(
        reader.get_chunk(&p("a"), &[0]).await.unwrap(),
        Some(chunk(0, BIG))
    );
    assert_eq!(
        reader.get_chunk(&p("a"), &[1]).await.unwrap(),
        Some(chunk(1, BIG))
    );

    // Uploads that keep failing: the commit is refused, main does not move, the session
    // still reads its chunk, and commits once the store recovers.
    let before = repo.branch_tip("main").await.unwrap();
    assert_ne!(before, tip);
    storage.add_rule(
        FaultRule::new(Fault::ErrorBefore)
            .ops(&[StorageOp::Put])
            .prefix("chunks/"),
    );
    session
        .set_chunk(&p("a"), &[2], chunk(2, BIG))
        .await
        .unwrap();
    let err = session.commit("blocked", None).await.unwrap_err();
    assert!(matches!(err, Error::Storage { .. }), "{err:?}");
    assert_eq!(repo.branch_tip("main").await.unwrap(), before);
    assert_eq!(
        session.get_chunk(&p("a"), &[2]).await.unwrap(),
        Some(chunk(2, BIG))
    );
    storage.clear_rules();
    session.commit("recovered", None).await.unwrap();

    // Objects of discarded edits are neither waited for nor retried: a store that refuses
    // them does not block the next commit.
    storage.add_rule(
        FaultRule::new(Fault::ErrorBefore)
            .ops(&[StorageOp::Put])
            .prefix("chunks/"),
    );
    storage.start_recording();
    session
        .set_chunk(&p("a"), &[3], chunk(3, BIG))
        .await
        .unwrap();
    session.discard().await;
    // Give the background upload of chunk 3 time to be attempted (and refused), to learn
    // its key.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = storage.take_recording();
    let (_, refused_key) = refused
        .into_iter()
        .find(|(op, key)| *op == StorageOp::Put && key.starts_with("chunks/"))
        .expect("the upload of chunk 3 was attempted");
    storage.clear_rules();
    session
        .set_chunk(&p("a"), &[4], chunk(4, BIG))
        .await
        .unwrap();
    storage.start_recording();
    session.commit("after a discard", None).await.unwrap();
    let during_commit = storage.take_recording();
    assert!(
        !during_commit.iter().any(|(_, key)| *key == refused_key),
        "the commit stored an object of discarded edits: {during_commit:?}"
    );
    let (fresh, reader) = read_main(&storage).await;
    assert_eq!(
        reader.get_chunk(&p("a"), &[2]).await.unwrap(),
        Some(chunk(2, BIG))
    );
    assert_eq!(reader.get_chunk(&p("a"), &[3]).await.unwrap(), None);
    assert_eq!(
        reader.get_chunk(&p("a"), &[4]).await.unwrap(),
        Some(chunk(4, BIG))
    );
    assert!(fresh
        .fsck(Default::default())
        .await
        .unwrap()
        .problems
        .is_empty());
}
