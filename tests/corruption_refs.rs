//! Damaged refs: branch records, the branch hint, tags and the repository marker, flipped,
//! truncated, overwritten or deleted on disk. A damaged ref is a clear error (never another
//! snapshot), other refs are unaffected, and a damaged hint is ignored. Damaged objects are in
//! `corruption.rs`; the fixture is in `common/damaged_repo.rs`.

mod common;

use common::damaged_repo::{damage, fixture, settings, Damage};
use common::p;
use floe::{Error, Repository, VersionSpec};
use serde_json::Map;

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
    let written = std::fs::read_to_string(&hint).unwrap();
    let lines: Vec<&str> = written.lines().collect();
    assert_eq!(lines[0], "8");
    assert!(
        lines[1].starts_with(&format!("snapshot {last} ")),
        "{written}"
    );
    assert_eq!(f.fresh().await.branch_tip("main").await.unwrap(), last);

    // Hints whose snapshot lines name other snapshots, missing ones or snapshots that are no
    // pages: history queries fetch them ahead for nothing and still answer from the tip.
    let main = VersionSpec::Branch("main".into());
    let expected: Vec<_> = f
        .fresh()
        .await
        .log(&main, usize::MAX)
        .await
        .unwrap()
        .1
        .iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(expected.len(), 9);
    assert_eq!(expected[0], last);
    let missing = floe::SnapshotId::of_bytes(b"not a snapshot");
    for bad in [
        format!("8\nsnapshot {missing} 8\npage 3 {missing}\n"),
        format!("8\nsnapshot {} 1\npage 1 {}\n", f.c1, f.c2),
        format!(
            "3\nsnapshot {} 99\npage 96 {}\npage 64 {missing}\n",
            f.c3, f.c1
        ),
        format!("8\nsnapshot {last} 8\nextra"),
    ] {
        std::fs::write(&hint, &bad).unwrap();
        let repo = f.fresh().await;
        let (tip, log) = repo.log(&main, usize::MAX).await.unwrap();
        assert_eq!(tip, last, "hint {bad:?}");
        let ids: Vec<_> = log.iter().map(|e| e.id).collect();
        assert_eq!(ids, expected, "hint {bad:?}");
        let newest_two = f.fresh().await.log(&main, 2).await.unwrap().1;
        assert_eq!(newest_two, log[..2].to_vec(), "hint {bad:?}");
        let as_of = VersionSpec::AsOf {
            branch: "main".into(),
            time: log[4].committed_at,
        };
        assert_eq!(f.fresh().await.resolve(&as_of).await.unwrap(), log[4].id);
    }
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
