//! The core API end to end on a local repository: commits, reads of every version, history.

mod common;

use common::{filled, int32_array, p, tempdir_repo};
use floe::{NodePath, Repository, RepositorySettings, VersionSpec};

#[tokio::test]
async fn commit_read_history() {
    let (dir, repo) = tempdir_repo(RepositorySettings::default()).await;
    let s = repo.writable_session("main").await.unwrap();
    let a = p("a");
    s.create_group(&NodePath::root(), Default::default())
        .await
        .unwrap();
    s.create_array(&a, int32_array(&[0], &[1])).await.unwrap();
    let mut ids = vec![];
    for d in 0..100u64 {
        s.resize_array(&a, &[d + 1]).await.unwrap();
        let data = if d % 2 == 0 {
            filled(4, d as u8)
        } else {
            filled(4000, d as u8)
        };
        s.set_chunk(&a, &[d], data).await.unwrap();
        ids.push(s.commit(&format!("day {d}"), None).await.unwrap());
    }
    let repo2 = Repository::open_location(dir.path().to_str().unwrap(), &vec![])
        .await
        .unwrap();
    let log = repo2
        .log_from(repo2.branch_tip("main").await.unwrap(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(log.len(), 101);
    assert_eq!(log[0].message, "day 99");
    assert_eq!(log[100].message, "Repository initialized");
    for (i, e) in log.iter().take(100).enumerate() {
        assert_eq!(e.id, ids[99 - i]);
    }
    let r = repo2
        .readonly_session(&VersionSpec::Snapshot(ids[10]))
        .await
        .unwrap();
    assert_eq!(
        r.get_chunk(&a, &[10]).await.unwrap().unwrap(),
        filled(4, 10)
    );
    assert_eq!(r.get_chunk(&a, &[11]).await.unwrap(), None);
    let main = repo2
        .readonly_session(&VersionSpec::Name("main".into()))
        .await
        .unwrap();
    for d in 0..100u64 {
        let got = main.get_chunk(&a, &[d]).await.unwrap().unwrap();
        assert_eq!(got[0], d as u8);
    }
    let t = log[50].committed_at;
    let as_of = repo2.snapshot_as_of(ids[99], t).await.unwrap().unwrap();
    assert_eq!(as_of, log[50].id);
    let before = repo2
        .snapshot_as_of(ids[99], t - chrono::Duration::microseconds(1))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(before, log[51].id);
    assert!(repo2.is_ancestor(ids[3], ids[90]).await.unwrap());
    assert!(!repo2.is_ancestor(ids[90], ids[3]).await.unwrap());
    // objects per commit
    let n = std::fs::read_dir(dir.path().join("chunks"))
        .unwrap()
        .count();
    assert_eq!(n, 50);
}
