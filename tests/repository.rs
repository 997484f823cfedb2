//! Repository behaviour: branches, tags, version resolution, and creating and opening
//! repositories. History and request counts are in `history.rs`, session rules in
//! `sessions.rs`.

mod common;

use bytes::Bytes;
use chrono::Duration;
use common::{history, memory_repo};
use floe::{Error, Repository, SnapshotId, VersionSpec};
use serde_json::{json, Value};

// ---- branches -----------------------------------------------------------------------------

#[tokio::test]
async fn branches_create_list_reset_delete() {
    let (repo, _) = memory_repo().await;
    let ids = history(&repo, 3).await;
    let root = repo.log_from(ids[0], 2).await.unwrap()[1].id;
    let names = |b: Vec<floe::BranchInfo>| {
        b.into_iter()
            .map(|b| (b.name, b.snapshot))
            .collect::<Vec<_>>()
    };

    assert_eq!(
        names(repo.list_branches().await.unwrap()),
        vec![("main".to_string(), ids[2])]
    );
    repo.create_branch("dev", ids[0]).await.unwrap();
    repo.create_branch("a-first", root).await.unwrap();
    assert_eq!(
        names(repo.list_branches().await.unwrap()),
        vec![
            ("a-first".to_string(), root),
            ("dev".to_string(), ids[0]),
            ("main".to_string(), ids[2])
        ]
    );
    assert!(matches!(
        repo.create_branch("dev", ids[1]).await,
        Err(Error::BranchExists { .. })
    ));
    assert!(matches!(
        repo.create_branch("ghost", SnapshotId::of_bytes(b"nope"))
            .await,
        Err(Error::SnapshotNotFound { .. })
    ));

    // Reset moves the branch anywhere, and a writable session follows it.
    repo.reset_branch("dev", ids[2]).await.unwrap();
    assert_eq!(repo.branch_tip("dev").await.unwrap(), ids[2]);
    repo.reset_branch("dev", root).await.unwrap();
    assert_eq!(repo.branch_tip("dev").await.unwrap(), root);
    let dev = repo.writable_session("dev").await.unwrap();
    assert_eq!(dev.snapshot_id(), root);
    assert!(dev.list_nodes().unwrap().is_empty());
    assert!(matches!(
        repo.reset_branch("nobody", root).await,
        Err(Error::BranchNotFound { .. })
    ));

    // Delete, then reuse the name; main is protected.
    repo.delete_branch("dev").await.unwrap();
    assert!(matches!(
        repo.branch_tip("dev").await,
        Err(Error::BranchNotFound { .. })
    ));
    assert!(matches!(
        repo.delete_branch("dev").await,
        Err(Error::BranchNotFound { .. })
    ));
    assert!(matches!(
        repo.writable_session("dev").await,
        Err(Error::BranchNotFound { .. })
    ));
    assert_eq!(names(repo.list_branches().await.unwrap()).len(), 2);
    repo.create_branch("dev", ids[1]).await.unwrap();
    assert_eq!(repo.branch_tip("dev").await.unwrap(), ids[1]);
    let dev = repo
        .list_branches()
        .await
        .unwrap()
        .into_iter()
        .find(|b| b.name == "dev")
        .unwrap();
    assert_eq!(dev.seq, 4, "create, two resets, delete, create again");
    assert!(matches!(
        repo.delete_branch("main").await,
        Err(Error::ProtectedBranch { .. })
    ));
    assert_eq!(repo.branch_tip("main").await.unwrap(), ids[2]);

    // History stays readable by id after the branch is deleted.
    repo.delete_branch("a-first").await.unwrap();
    assert!(repo.session_at_snapshot(root).await.is_ok());
}

#[tokio::test]
async fn bad_names_are_refused() {
    let (repo, _) = memory_repo().await;
    let tip = repo.branch_tip("main").await.unwrap();
    for bad in [
        "", "a/b", "..", ".hidden", "-x", "a..b", "sp ace", "x@y", "ünï",
    ] {
        assert!(
            matches!(
                repo.create_branch(bad, tip).await,
                Err(Error::InvalidRefName { kind: "branch", .. })
            ),
            "branch {bad:?}"
        );
        assert!(
            matches!(
                repo.create_tag(bad, tip).await,
                Err(Error::InvalidRefName { kind: "tag", .. })
            ),
            "tag {bad:?}"
        );
    }
    assert!(matches!(
        repo.branch_tip("a/b").await,
        Err(Error::InvalidRefName { .. })
    ));
    assert!(matches!(
        repo.tag("a/b").await,
        Err(Error::InvalidRefName { .. })
    ));
    let long = "x".repeat(129);
    assert!(matches!(
        repo.create_branch(&long, tip).await,
        Err(Error::InvalidRefName { .. })
    ));
    repo.create_branch(&"x".repeat(128), tip).await.unwrap();
}

// ---- tags ---------------------------------------------------------------------------------

#[tokio::test]
async fn tags_are_immutable_and_never_reused() {
    let (repo, _) = memory_repo().await;
    let ids = history(&repo, 2).await;
    repo.create_tag("v1", ids[0]).await.unwrap();
    repo.create_tag("v2", ids[1]).await.unwrap();
    let tags: Vec<(String, SnapshotId)> = repo
        .list_tags()
        .await
        .unwrap()
        .into_iter()
        .map(|t| (t.name, t.snapshot))
        .collect();
    assert_eq!(
        tags,
        vec![("v1".to_string(), ids[0]), ("v2".to_string(), ids[1])]
    );
    let v1 = repo.tag("v1").await.unwrap();
    assert!(v1.created_at <= chrono::Utc::now());
    assert!(matches!(
        repo.create_tag("v1", ids[1]).await,
        Err(Error::TagExists { .. })
    ));
    assert_eq!(
        repo.tag("v1").await.unwrap().snapshot,
        ids[0],
        "a tag never moves"
    );
    assert!(matches!(
        repo.tag("v3").await,
        Err(Error::TagNotFound { .. })
    ));
    assert!(matches!(
        repo.delete_tag("v3").await,
        Err(Error::TagNotFound { .. })
    ));
    assert!(matches!(
        repo.create_tag("v3", SnapshotId::of_bytes(b"x")).await,
        Err(Error::SnapshotNotFound { .. })
    ));

    repo.delete_tag("v1").await.unwrap();
    assert!(matches!(
        repo.tag("v1").await,
        Err(Error::TagDeleted { .. })
    ));
    assert!(matches!(
        repo.delete_tag("v1").await,
        Err(Error::TagDeleted { .. })
    ));
    assert!(matches!(
        repo.create_tag("v1", ids[0]).await,
        Err(Error::TagExists { .. })
    ));
    assert!(matches!(
        repo.resolve(&VersionSpec::Tag("v1".into())).await,
        Err(Error::TagDeleted { .. })
    ));
    let names: Vec<String> = repo
        .list_tags()
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["v2"]);
    // The tagged snapshot itself is still there.
    assert!(repo.session_at_snapshot(ids[0]).await.is_ok());
}

// ---- resolving versions -------------------------------------------------------------------

#[tokio::test]
async fn version_specs_resolve() {
    let (repo, storage) = memory_repo().await;
    let ids = history(&repo, 3).await;
    repo.create_branch("dev", ids[0]).await.unwrap();
    repo.create_tag("release", ids[1]).await.unwrap();
    repo.create_tag("dev", ids[2]).await.unwrap();
    let resolve = |spec: VersionSpec| {
        let repo = repo.clone();
        async move { repo.resolve(&spec).await }
    };
    assert_eq!(
        resolve(VersionSpec::Branch("main".into())).await.unwrap(),
        ids[2]
    );
    assert_eq!(
        resolve(VersionSpec::Tag("release".into())).await.unwrap(),
        ids[1]
    );
    assert_eq!(
        resolve(VersionSpec::Snapshot(ids[0])).await.unwrap(),
        ids[0]
    );
    assert_eq!(
        resolve(VersionSpec::Name("release".into())).await.unwrap(),
        ids[1]
    );
    assert_eq!(
        resolve(VersionSpec::Name("dev".into())).await.unwrap(),
        ids[0],
        "branches come first"
    );
    assert_eq!(
        resolve(VersionSpec::Tag("dev".into())).await.unwrap(),
        ids[2]
    );
    let full = ids[1].to_string();
    assert_eq!(
        resolve(VersionSpec::Name(full.clone())).await.unwrap(),
        ids[1]
    );
    assert_eq!(
        resolve(VersionSpec::Name(full.to_uppercase()))
            .await
            .unwrap(),
        ids[1]
    );
    assert_eq!(
        resolve(VersionSpec::parse(&full[..10]).unwrap())
            .await
            .unwrap(),
        ids[1]
    );

    // An unknown snapshot id, a prefix that matches nothing, and too short a prefix.
    let missing = SnapshotId::of_bytes(b"missing");
    assert!(matches!(
        resolve(VersionSpec::Snapshot(missing)).await,
        Err(Error::SnapshotNotFound { .. })
    ));
    assert!(matches!(
        resolve(VersionSpec::Name(missing.to_string())).await,
        Err(Error::SnapshotNotFound { .. })
    ));
    let root = repo.log_from(ids[0], 2).await.unwrap()[1].id;
    let unused_prefix = (0..=0xffffu32)
        .map(|n| format!("{n:04x}"))
        .find(|pre| {
            !ids.iter()
                .chain([&root])
                .any(|id| id.to_string().starts_with(pre.as_str()))
        })
        .unwrap();
    assert!(matches!(
        resolve(VersionSpec::Name(unused_prefix)).await,
        Err(Error::SnapshotNotFound { .. })
    ));
    assert!(matches!(
        resolve(VersionSpec::Name("abc".into())).await,
        Err(Error::InvalidVersion { .. })
    ));
    assert!(matches!(
        resolve(VersionSpec::Name("no-such-thing".into())).await,
        Err(Error::InvalidVersion { .. })
    ));
    assert!(matches!(
        resolve(VersionSpec::Branch("nope".into())).await,
        Err(Error::BranchNotFound { .. })
    ));
    assert!(matches!(
        resolve(VersionSpec::Tag("nope".into())).await,
        Err(Error::TagNotFound { .. })
    ));

    // An ambiguous prefix: plant a second object whose id shares 8 characters with ids[1].
    let mut twin = full.clone().into_bytes();
    twin[63] = if twin[63] == b'0' { b'1' } else { b'0' };
    let twin = String::from_utf8(twin).unwrap();
    storage
        .put(&format!("snapshots/{twin}"), Bytes::from_static(b"x"))
        .await
        .unwrap();
    match resolve(VersionSpec::Name(full[..8].to_string())).await {
        Err(Error::AmbiguousSnapshotPrefix { prefix, count }) => {
            assert_eq!(prefix, full[..8]);
            assert_eq!(count, 2);
        }
        other => panic!("expected an ambiguous prefix, got {other:?}"),
    }
    assert_eq!(
        resolve(VersionSpec::Name(full.clone())).await.unwrap(),
        ids[1],
        "the full id still works"
    );

    // Parsing the command-line forms.
    assert!(matches!(
        VersionSpec::parse("main@yesterday"),
        Err(Error::InvalidVersion { .. })
    ));
    assert!(matches!(
        VersionSpec::parse(""),
        Err(Error::InvalidVersion { .. })
    ));
    assert!(matches!(
        VersionSpec::parse("main@2020-01-01T00:00:00Z").unwrap(),
        VersionSpec::AsOf { .. }
    ));
}

#[tokio::test]
async fn branch_at_time_resolves_and_refuses_times_before_history() {
    let (repo, _) = memory_repo().await;
    let first = repo.branch_tip("main").await.unwrap();
    let ids = history(&repo, 5).await;
    let log = repo.log_from(ids[4], usize::MAX).await.unwrap();
    assert_eq!(log.len(), 6);
    let root_time = log[5].committed_at;
    assert_eq!(log[5].id, first);
    let at = |time| VersionSpec::AsOf {
        branch: "main".into(),
        time,
    };
    assert_eq!(repo.resolve(&at(root_time)).await.unwrap(), first);
    match repo
        .resolve(&at(root_time - Duration::microseconds(1)))
        .await
    {
        Err(Error::NoCommitAsOf { branch, .. }) => assert_eq!(branch, "main"),
        other => panic!("expected NoCommitAsOf, got {other:?}"),
    }
    let spec = VersionSpec::parse(&format!("main@{}", log[2].committed_at.to_rfc3339())).unwrap();
    assert_eq!(repo.resolve(&spec).await.unwrap(), log[2].id);
    assert_eq!(repo.resolve(&at(chrono::Utc::now())).await.unwrap(), ids[4]);
    assert!(matches!(
        repo.resolve(&VersionSpec::AsOf {
            branch: "nope".into(),
            time: chrono::Utc::now()
        })
        .await,
        Err(Error::BranchNotFound { .. })
    ));
    let old = repo
        .readonly_session(&at(log[3].committed_at))
        .await
        .unwrap();
    assert_eq!(old.snapshot_id(), log[3].id);
}

// ---- creating and opening -----------------------------------------------------------------

#[tokio::test]
async fn init_open_and_format_version() {
    let dir = tempfile::tempdir().unwrap();
    let location = dir.path().to_str().unwrap();
    let empty = tempfile::tempdir().unwrap();
    match Repository::open_location(empty.path().to_str().unwrap(), &vec![]).await {
        Err(Error::RepositoryNotFound { location }) => {
            assert!(location.contains(empty.path().to_str().unwrap()))
        }
        other => panic!("expected RepositoryNotFound, got {other:?}"),
    }
    // Opening a directory that does not exist fails and creates nothing.
    let missing = empty.path().join("not-yet");
    assert!(matches!(
        Repository::open_location(missing.to_str().unwrap(), &vec![]).await,
        Err(Error::RepositoryNotFound { .. } | Error::InvalidLocation { .. })
    ));
    assert!(!missing.exists());

    let repo = Repository::init_location(location, &vec![]).await.unwrap();
    let tip = repo.branch_tip("main").await.unwrap();
    assert!(matches!(
        Repository::init_location(location, &vec![]).await,
        Err(Error::RepositoryExists { .. })
    ));
    assert_eq!(
        repo.branch_tip("main").await.unwrap(),
        tip,
        "a refused init changes nothing"
    );
    let opened = Repository::open_location(location, &vec![]).await.unwrap();
    assert_eq!(opened.branch_tip("main").await.unwrap(), tip);
    assert_eq!(opened.log_from(tip, 10).await.unwrap().len(), 1);

    let marker = dir.path().join("floe.json");
    let mut info: Value = serde_json::from_slice(&std::fs::read(&marker).unwrap()).unwrap();
    info["floe_format"] = json!(99);
    std::fs::write(&marker, serde_json::to_vec(&info).unwrap()).unwrap();
    match Repository::open_location(location, &vec![]).await {
        Err(Error::UnsupportedFormatVersion { found, supported }) => {
            assert_eq!(found, 99);
            assert_eq!(supported, floe::REPOSITORY_FORMAT);
        }
        other => panic!("expected UnsupportedFormatVersion, got {other:?}"),
    }
    std::fs::write(&marker, b"{ not json").unwrap();
    assert!(matches!(
        Repository::open_location(location, &vec![]).await,
        Err(Error::CorruptObject { .. })
    ));
    assert!(matches!(
        floe::open_storage("ftp://x/y", &vec![]),
        Err(Error::InvalidLocation { .. })
    ));
}
