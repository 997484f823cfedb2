//! A commit whose branch-record write lands but whose answer is lost (and whose read-back
//! fails too) reports an unknown outcome; retrying the commit must recognise its own landed
//! record instead of reporting a conflict with itself, and must not commit twice.

use std::sync::Arc;

use bytes::Bytes;
use floe::{
    Error, Fault, FaultRule, FaultyStorage, NodePath, Repository, RepositorySettings, StorageOp,
    VersionSpec,
};

/// The next create of a `main` branch record lands but answers with an error, and the next
/// read of a `main` record (the writer's read-back of that record) fails too: the writer
/// cannot know the outcome.
fn lose_next_create(storage: &FaultyStorage) {
    storage.add_rule(
        FaultRule::new(Fault::ErrorAfter)
            .ops(&[StorageOp::PutIfAbsent])
            .prefix("refs/branch.main/0")
            .nth(1),
    );
    storage.add_rule(
        FaultRule::new(Fault::ErrorBefore)
            .ops(&[StorageOp::Get])
            .prefix("refs/branch.main/0")
            .nth(1),
    );
}

fn array_json() -> serde_json::Value {
    serde_json::json!({
        "zarr_format": 3, "node_type": "array", "shape": [8], "data_type": "uint8",
        "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [1]}},
        "chunk_key_encoding": {"name": "default"}, "fill_value": 0,
        "codecs": [{"name": "bytes"}]
    })
}

async fn setup() -> (Repository, Arc<FaultyStorage>, NodePath) {
    let storage = Arc::new(FaultyStorage::new(
        floe::open_storage("memory://", &vec![]).unwrap(),
        0,
    ));
    let repo = Repository::init(storage.clone(), RepositorySettings::default())
        .await
        .unwrap();
    let a = NodePath::new("a").unwrap();
    let s = repo.writable_session("main").await.unwrap();
    s.create_array(&a, array_json()).await.unwrap();
    s.commit("create", None).await.unwrap();
    (repo, storage, a)
}

#[tokio::test]
async fn retrying_a_commit_whose_answer_was_lost_returns_the_landed_snapshot() {
    let (repo, storage, a) = setup().await;
    let s = repo.writable_session("main").await.unwrap();
    s.set_chunk(&a, &[1], Bytes::from_static(b"one"))
        .await
        .unwrap();
    lose_next_create(&storage);
    let err = s.commit("c1", None).await.unwrap_err();
    let Error::CommitOutcomeUnknown { snapshot, .. } = &err else {
        panic!("expected an unknown outcome, got {err:?}");
    };
    assert!(err.to_string().contains("floe log"), "{err}");
    // It did land.
    let tip = repo.branch_tip("main").await.unwrap();
    assert_eq!(&tip.to_string(), snapshot);
    // The retry recognises it: same id, no new commit, no conflict.
    let again = s.commit("c1", None).await.unwrap();
    assert_eq!(again, tip);
    assert_eq!(repo.log_from(tip, 10).await.unwrap().len(), 3);
    assert!(!s.has_changes());
    // The session goes on normally afterwards.
    s.set_chunk(&a, &[2], Bytes::from_static(b"two"))
        .await
        .unwrap();
    let c2 = s.commit("c2", None).await.unwrap();
    let log = repo.log_from(c2, 10).await.unwrap();
    assert_eq!(log.len(), 4);
    assert_eq!(log[1].id, tip);
    let r = repo
        .readonly_session(&VersionSpec::Name("main".into()))
        .await
        .unwrap();
    assert_eq!(
        r.get_chunk(&a, &[1]).await.unwrap().unwrap(),
        Bytes::from_static(b"one")
    );
    assert_eq!(
        r.get_chunk(&a, &[2]).await.unwrap().unwrap(),
        Bytes::from_static(b"two")
    );
}

#[tokio::test]
async fn an_unsettled_commit_blocks_changes_until_it_is_settled() {
    let (repo, storage, a) = setup().await;
    let s = repo.writable_session("main").await.unwrap();
    s.set_chunk(&a, &[1], Bytes::from_static(b"one"))
        .await
        .unwrap();
    lose_next_create(&storage);
    assert!(matches!(
        s.commit("c1", None).await,
        Err(Error::CommitOutcomeUnknown { .. })
    ));
    let landed = repo.branch_tip("main").await.unwrap();
    // No change may be mixed into a commit whose outcome is unknown.
    let err = s
        .set_chunk(&a, &[3], Bytes::from_static(b"three"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::UnsettledCommit { snapshot } if *snapshot == landed.to_string()),
        "{err:?}"
    );
    assert!(err.to_string().contains("commit() again"), "{err}");
    assert!(matches!(
        s.delete_node(&a).await,
        Err(Error::UnsettledCommit { .. })
    ));
    // Settling returns the landed snapshot; then the session takes changes again.
    assert_eq!(s.commit("c1", None).await.unwrap(), landed);
    s.set_chunk(&a, &[3], Bytes::from_static(b"three"))
        .await
        .unwrap();
    let c2 = s.commit("c2", None).await.unwrap();
    let log = repo.log_from(c2, 10).await.unwrap();
    assert_eq!(log.len(), 4, "init, create, c1, c2");
    assert_eq!(log[1].id, landed);
    let r = repo.session_at_snapshot(c2).await.unwrap();
    assert_eq!(
        r.get_chunk(&a, &[1]).await.unwrap().unwrap(),
        Bytes::from_static(b"one")
    );
    assert_eq!(
        r.get_chunk(&a, &[3]).await.unwrap().unwrap(),
        Bytes::from_static(b"three")
    );
}

#[tokio::test]
async fn discarding_an_unsettled_commit_unblocks_the_session() {
    let (repo, storage, a) = setup().await;
    let s = repo.writable_session("main").await.unwrap();
    s.set_chunk(&a, &[1], Bytes::from_static(b"one"))
        .await
        .unwrap();
    lose_next_create(&storage);
    assert!(s.commit("c1", None).await.is_err());
    let landed = repo.branch_tip("main").await.unwrap();
    s.discard().await;
    // The session is still based on the snapshot before c1; its next commit rebases over
    // c1 (its own landed attempt) without a false conflict, even on the same chunk.
    s.set_chunk(&a, &[1], Bytes::from_static(b"uno"))
        .await
        .unwrap();
    let c2 = s.commit("c2", None).await.unwrap();
    let log = repo.log_from(c2, 10).await.unwrap();
    assert_eq!(log[1].id, landed);
    let r = repo.session_at_snapshot(c2).await.unwrap();
    assert_eq!(
        r.get_chunk(&a, &[1]).await.unwrap().unwrap(),
        Bytes::from_static(b"uno")
    );
}
