//! `Repository::reflog` and `floe reflog`: every move of a branch from its records, newest
//! first, on a real local repository.

mod common;

use common::cli::{floe, ok};
use common::{p, tempdir_repo};
use floe::{BranchMove, Repository, RepositorySettings, SnapshotId};
use serde_json::json;

/// The root snapshot of `main` and two commits on it.
async fn root_and_two_commits(repo: &Repository) -> (SnapshotId, SnapshotId, SnapshotId) {
    let root = repo.branch_tip("main").await.unwrap();
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&p("/"), Default::default()).await.unwrap();
    let c1 = s.commit("c1", None).await.unwrap();
    s.create_group(&p("g"), Default::default()).await.unwrap();
    let c2 = s.commit("c2", None).await.unwrap();
    (root, c1, c2)
}

#[tokio::test]
async fn every_move_of_a_branch() {
    let (dir, repo) = tempdir_repo(RepositorySettings::default()).await;
    let (root, c1, c2) = root_and_two_commits(&repo).await;
    repo.create_branch("dev", c1).await.unwrap();
    repo.reset_branch("dev", root).await.unwrap();
    let d = repo.writable_session("dev").await.unwrap();
    d.create_group(&p("/"), Default::default()).await.unwrap();
    let d1 = d.commit("d1", None).await.unwrap();
    repo.delete_branch("dev").await.unwrap();
    repo.create_branch("dev", c2).await.unwrap();

    let main = repo.reflog("main", usize::MAX).await.unwrap();
    let seen: Vec<_> = main.iter().map(|e| (e.seq, e.snapshot, e.kind)).collect();
    assert_eq!(
        seen,
        vec![
            (2, Some(c2), BranchMove::Commit),
            (1, Some(c1), BranchMove::Commit),
            (0, Some(root), BranchMove::Created),
        ]
    );
    let dev = repo.reflog("dev", usize::MAX).await.unwrap();
    let seen: Vec<_> = dev.iter().map(|e| (e.seq, e.snapshot, e.kind)).collect();
    assert_eq!(
        seen,
        vec![
            (4, Some(c2), BranchMove::Created),
            (3, None, BranchMove::Deleted),
            (2, Some(d1), BranchMove::Commit),
            (1, Some(root), BranchMove::Reset),
            (0, Some(c1), BranchMove::Created),
        ]
    );
    // The newest records only: the oldest listed is still classified against the one before.
    let newest = repo.reflog("dev", 3).await.unwrap();
    assert_eq!(newest, dev[..3].to_vec());
    assert_eq!(
        repo.reflog("dev", 4).await.unwrap()[3].kind,
        BranchMove::Reset
    );
    assert!(repo.reflog("dev", 0).await.unwrap().is_empty());
    assert!(matches!(
        repo.reflog("nope", 5).await,
        Err(floe::Error::BranchNotFound { .. })
    ));
    assert!(dev.windows(2).all(|w| w[0].written_at >= w[1].written_at));

    let doc = ok(dir.path(), &["reflog", "dev", "--json", "-n", "2"]).json();
    assert_eq!(doc["branch"], "dev");
    assert_eq!(
        doc["records"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["seq"].clone(), r["kind"].clone(), r["snapshot"].clone()))
            .collect::<Vec<_>>(),
        vec![
            (json!(4), json!("created"), json!(c2.to_string())),
            (json!(3), json!("deleted"), json!(null)),
        ]
    );
    let text = ok(dir.path(), &["reflog"]).text();
    assert!(
        text.contains("commit") && text.contains("created"),
        "{text}"
    );
    floe(dir.path(), &["reflog", "nope"]).assert_error(3, "nope");
}

#[tokio::test]
async fn a_reset_that_expects_a_tip_moves_nothing_when_the_branch_moved() {
    let (dir, repo) = tempdir_repo(RepositorySettings::default()).await;
    // Somebody looked at c1; another writer committed c2 since.
    let (root, c1, c2) = root_and_two_commits(&repo).await;
    let err = repo
        .reset_branch_expecting("main", root, c1)
        .await
        .unwrap_err();
    match &err {
        floe::Error::BranchMoved {
            name,
            expected,
            found,
        } => {
            assert_eq!(
                (name.as_str(), expected.clone(), found.clone()),
                ("main", c1.to_string(), c2.to_string())
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(repo.branch_tip("main").await.unwrap(), c2);
    assert_eq!(repo.reflog("main", usize::MAX).await.unwrap().len(), 3);
    repo.reset_branch_expecting("main", c1, c2).await.unwrap();
    assert_eq!(repo.branch_tip("main").await.unwrap(), c1);
    assert_eq!(
        repo.reflog("main", 1).await.unwrap()[0].kind,
        BranchMove::Reset
    );

    // The same from the command line; exit code 4 (refused) when the branch moved.
    let c1s = c1.to_string();
    let c2s = c2.to_string();
    floe(
        dir.path(),
        &["branch", "reset", "main", &c2s, "--expect", &c2s],
    )
    .assert_error(4, "moved since you looked");
    assert_eq!(repo.branch_tip("main").await.unwrap(), c1);
    ok(
        dir.path(),
        &["branch", "reset", "main", &c2s, "--expect", &c1s],
    );
    assert_eq!(repo.branch_tip("main").await.unwrap(), c2);
}
