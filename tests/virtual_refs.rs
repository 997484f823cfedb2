//! Virtual chunks: containers declared in the repository, authorization (deny by default),
//! refused locations, conditional reads of changed sources, missing sources, coalesced
//! batch reads, racing declarations, S3 sources (when a test server is configured) and the
//! CLI flags.
//!
//! Sources are local files written by the tests: a file `data/src.bin` of 100 chunks of 100
//! bytes, chunk `i` filled with byte `i`, referenced by array `a` (uint8, shape [10000],
//! chunks [100], so a chunk's encoded bytes are its 100 raw bytes).

mod common;
#[path = "virtual_refs/fixture.rs"]
mod fixture;

use bytes::Bytes;
use common::{p, uint8_array};
use fixture::*;
use floe::{
    Error, FsckOptions, SourceChecksum, VirtualAccess, VirtualChunkRef, VirtualContainer, ZarrStore,
};
use object_store::ObjectStoreExt;

#[tokio::test]
async fn virtual_chunks_read_whole_and_in_ranges_after_commit_and_in_a_fresh_handle() {
    let (fx, repo) = Fixture::new().await;
    let etag = etag_of(&fx.source_path()).await;
    let src = source(&fx.source_url(), Some(SourceChecksum::ETag(etag)));
    commit_refs(&repo, &src, Some(&fx.prefix())).await;

    // Uncommitted reads in a writable session of an authorized handle.
    let writer = repo
        .clone()
        .with_virtual_access(VirtualAccess::deny_all().allow(&fx.prefix()).unwrap());
    let s = writer.writable_session("main").await.unwrap();
    s.set_virtual_chunk(&p("a"), &[0], chunk_ref(&src, 3))
        .await
        .unwrap();
    assert_eq!(
        s.get_chunk(&p("a"), &[0]).await.unwrap(),
        Some(expected_chunk(3))
    );

    let fresh = fx
        .open(VirtualAccess::deny_all().allow(&fx.prefix()).unwrap())
        .await;
    let session = fresh.readonly_session(&main()).await.unwrap();
    for i in [0, 1, 42, 99] {
        assert_eq!(
            session.get_chunk(&p("a"), &[i]).await.unwrap(),
            Some(expected_chunk(i))
        );
    }
    let part = session
        .get_chunk_range(&p("a"), &[7], 10..25)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(part, Bytes::from(vec![7u8; 15]));
    assert!(matches!(
        session.get_chunk_range(&p("a"), &[7], 10..101).await,
        Err(Error::InvalidByteRange { .. })
    ));

    let store = ZarrStore::new(session.clone());
    assert_eq!(store.get("a/c/5").await.unwrap(), Some(expected_chunk(5)));
    let range = floe::ByteRange::Bounded {
        start: 90,
        end: 100,
    };
    assert_eq!(
        store.get_range("a/c/6", range).await.unwrap(),
        Some(Bytes::from(vec![6u8; 10]))
    );
    let parts = store
        .get_ranges(
            "a/c/8",
            &[floe::ByteRange::Suffix(5), floe::ByteRange::FromOffset(98)],
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        parts,
        vec![Bytes::from(vec![8u8; 5]), Bytes::from(vec![8u8; 2])]
    );

    // Virtual chunks are counted where inline chunks are, and fsck accepts the counts.
    let stats = session.array_stats(&p("a")).await.unwrap();
    assert_eq!(
        (
            stats.virtual_chunks,
            stats.native_chunks,
            stats.inline_chunks
        ),
        (CHUNKS, 0, 0)
    );
    assert_eq!(stats.bytes_stored, CHUNK * CHUNKS);
    let report = fresh.fsck(FsckOptions::default()).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.problems);
}

#[tokio::test]
async fn reads_are_denied_by_default_with_a_hint_naming_the_container_and_the_flag() {
    let (fx, repo) = committed_fixture(None).await;
    for handle in [repo.clone(), fx.open(VirtualAccess::deny_all()).await] {
        match read(&handle, 0).await {
            Err(Error::VirtualSourceNotAuthorized { location, hint }) => {
                assert_eq!(location, fx.source_url());
                assert!(hint.contains(&fx.prefix()), "{hint}");
                assert!(hint.contains("--allow-virtual"), "{hint}");
                assert!(hint.contains("--allow-virtual-declared"), "{hint}");
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    // Without any declared container the hint says so.
    let (fx2, repo2) = Fixture::new().await;
    commit_refs(&repo2, &source(&fx2.source_url(), None), None).await;
    let handle = fx2
        .open(VirtualAccess::deny_all().allow(&fx2.prefix()).unwrap())
        .await;
    match read(&handle, 0).await {
        Err(Error::VirtualSourceNotAuthorized { hint, .. }) => {
            assert!(
                hint.contains("declares no virtual chunk container"),
                "{hint}"
            );
            assert!(hint.contains("container add"), "{hint}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Accepting the prefix explicitly reads it even though nothing is declared.
    let explicit = fx2
        .open(
            VirtualAccess::deny_all()
                .allow_undeclared(&fx2.prefix())
                .unwrap(),
        )
        .await;
    assert_eq!(read(&explicit, 9).await.unwrap(), Some(expected_chunk(9)));
}

#[tokio::test]
async fn allow_declared_and_explicit_prefixes_authorize_exactly_their_sources() {
    let (fx, _repo) = committed_fixture(None).await;
    let declared = fx.open(VirtualAccess::deny_all().allow_declared()).await;
    assert_eq!(read(&declared, 4).await.unwrap(), Some(expected_chunk(4)));

    let exact = fx
        .open(VirtualAccess::deny_all().allow(&fx.prefix()).unwrap())
        .await;
    assert_eq!(read(&exact, 4).await.unwrap(), Some(expected_chunk(4)));

    // A prefix that does not cover the source authorizes nothing.
    let other = format!("{}other/", fx.prefix());
    let elsewhere = fx
        .open(VirtualAccess::deny_all().allow(&other).unwrap())
        .await;
    assert!(matches!(
        read(&elsewhere, 4).await,
        Err(Error::VirtualSourceNotAuthorized { .. })
    ));
}

#[tokio::test]
async fn a_reference_outside_every_container_is_refused() {
    let (fx, repo) = Fixture::new().await;
    // A sibling directory whose name extends the container's: `data2` is not inside `data`,
    // even when the container is declared as a plain path without a trailing `/`.
    std::fs::create_dir(fx.dir.path().join("data2")).unwrap();
    let outside = fx.dir.path().join("data2").join("src.bin");
    std::fs::copy(fx.source_path(), &outside).unwrap();
    let src = source(url::Url::from_file_path(&outside).unwrap().as_str(), None);
    commit_refs(&repo, &src, Some(fx.data_dir().to_str().unwrap())).await;
    assert_eq!(
        repo.virtual_containers().await.unwrap()[0].prefix,
        fx.prefix()
    );
    let handle = fx
        .open(
            VirtualAccess::deny_all()
                .allow_declared()
                .allow(&fx.prefix())
                .unwrap(),
        )
        .await;
    match read(&handle, 0).await {
        Err(Error::VirtualSourceNotAuthorized { hint, .. }) => {
            assert!(
                hint.contains("no container declared in the repository holds it"),
                "{hint}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn traversal_forms_and_symlink_escapes_are_refused() {
    let (fx, repo) = Fixture::new().await;
    let secret = fx.dir.path().join("secret.bin");
    std::fs::copy(fx.source_path(), &secret).unwrap();
    std::os::unix::fs::symlink(&secret, fx.data_dir().join("link.bin")).unwrap();
    let prefix = fx.prefix();
    let forms = [
        format!("{prefix}../secret.bin"),
        format!("{prefix}%2e%2e/secret.bin"),
        format!("{prefix}.%2E/secret.bin"),
        format!("{prefix}sub%2F..%2Fsecret.bin"),
        format!("{}/../secret.bin", fx.data_dir().display()),
        "data/src.bin".to_string(),
        format!("{prefix}link.bin"),
    ];
    repo.declare_virtual_containers(&[VirtualContainer::new(&prefix, vec![]).unwrap()])
        .await
        .unwrap();
    let s = repo.writable_session("main").await.unwrap();
    s.create_group(&p(""), Default::default()).await.unwrap();
    s.create_array(&p("a"), uint8_array(&[CHUNK * CHUNKS], &[CHUNK]))
        .await
        .unwrap();
    for (i, form) in forms.iter().enumerate() {
        let r = chunk_ref(&source(form, None), 0);
        s.set_virtual_chunk(&p("a"), &[i as u64], r).await.unwrap();
    }
    s.commit("hostile refs", None).await.unwrap();
    let handle = fx
        .open(
            VirtualAccess::deny_all()
                .allow_declared()
                .allow_undeclared("/")
                .unwrap(),
        )
        .await;
    for (i, form) in forms.iter().enumerate() {
        match read(&handle, i as u64).await {
            Err(Error::VirtualLocationRefused { location, reason }) => {
                assert_eq!(&location, form);
                if form.ends_with("link.bin") {
                    assert!(reason.contains("symbolic link"), "{reason}");
                }
            }
            other => panic!("{form}: expected a refusal, got {other:?}"),
        }
    }
    // A symbolic link that stays inside the container is fine.
    std::os::unix::fs::symlink(fx.source_path(), fx.data_dir().join("inside.bin")).unwrap();
    let s = repo.writable_session("main").await.unwrap();
    let inside = source(&format!("{prefix}inside.bin"), None);
    s.set_virtual_chunk(&p("a"), &[50], chunk_ref(&inside, 50))
        .await
        .unwrap();
    s.commit("inside link", None).await.unwrap();
    assert_eq!(read(&handle, 50).await.unwrap(), Some(expected_chunk(50)));
}

#[tokio::test]
async fn a_source_rewritten_after_the_reference_fails_with_source_changed() {
    for by_etag in [true, false] {
        let (fx, _) = Fixture::new().await;
        let checksum = if by_etag {
            SourceChecksum::ETag(etag_of(&fx.source_path()).await)
        } else {
            SourceChecksum::LastModified(modified_secs(&fx.source_path()))
        };
        let repo = fx.open(VirtualAccess::deny_all().allow_declared()).await;
        commit_refs(
            &repo,
            &source(&fx.source_url(), Some(checksum)),
            Some(&fx.prefix()),
        )
        .await;
        assert_eq!(
            read(&repo, 3).await.unwrap(),
            Some(expected_chunk(3)),
            "etag {by_etag}"
        );
        fx.rewrite_source();
        match read(&repo, 3).await {
            Err(Error::VirtualSourceChanged { location }) => assert_eq!(location, fx.source_url()),
            other => panic!("etag {by_etag}: expected a change, got {other:?}"),
        }
        let err = read(&repo, 3).await.unwrap_err().to_string();
        assert!(err.contains("re-import"), "{err}");
    }
}

#[tokio::test]
async fn a_deleted_source_is_reported_as_missing() {
    let (fx, _) = committed_fixture(None).await;
    let repo = fx.open(VirtualAccess::deny_all().allow_declared()).await;
    assert!(read(&repo, 1).await.unwrap().is_some());
    std::fs::remove_file(fx.source_path()).unwrap();
    match read(&repo, 1).await {
        Err(Error::VirtualSourceMissing { location }) => assert_eq!(location, fx.source_url()),
        other => panic!("expected a missing source, got {other:?}"),
    }
    // A reference past the end of a (shortened) file is a changed source, not short bytes.
    std::fs::write(fx.source_path(), vec![0u8; 150]).unwrap();
    assert!(matches!(
        read(&repo, 1).await,
        Err(Error::VirtualSourceChanged { .. })
    ));
}

#[tokio::test]
async fn many_adjacent_chunks_are_read_by_one_request() {
    let (fx, _) = committed_fixture(None).await;
    let repo = fx.open(VirtualAccess::deny_all().allow_declared()).await;
    let session = repo.readonly_session(&main()).await.unwrap();
    let coords: Vec<Vec<u64>> = (0..CHUNKS).rev().map(|i| vec![i]).collect();
    let before = repo.virtual_read_stats();
    let chunks = session.get_chunks(&p("a"), &coords).await.unwrap();
    let after = repo.virtual_read_stats();
    assert_eq!(after.requests - before.requests, 1);
    assert_eq!(after.bytes - before.bytes, CHUNK * CHUNKS);
    for (coord, chunk) in coords.iter().zip(&chunks) {
        assert_eq!(chunk.as_ref(), Some(&expected_chunk(coord[0])));
    }

    // Native and missing chunks mix with virtual ones; ranges far apart are separate requests.
    let writer = repo.writable_session("main").await.unwrap();
    writer
        .set_chunk(&p("a"), &[50], Bytes::from(vec![0xee; CHUNK as usize]))
        .await
        .unwrap();
    writer.delete_chunk(&p("a"), &[51]).await.unwrap();
    let big = vec![1u8; 200_000];
    std::fs::write(fx.data_dir().join("big.bin"), &big).unwrap();
    let big_src = source(&format!("{}big.bin", fx.prefix()), None);
    writer
        .set_virtual_chunk(
            &p("a"),
            &[60],
            VirtualChunkRef {
                source: big_src.clone(),
                offset: 0,
                length: 10,
            },
        )
        .await
        .unwrap();
    writer
        .set_virtual_chunk(
            &p("a"),
            &[61],
            VirtualChunkRef {
                source: big_src,
                offset: 199_990,
                length: 10,
            },
        )
        .await
        .unwrap();
    let before = repo.virtual_read_stats();
    let coords: Vec<Vec<u64>> = [0, 50, 51, 1, 60, 61].iter().map(|i| vec![*i]).collect();
    let got = writer.get_chunks(&p("a"), &coords).await.unwrap();
    assert_eq!(repo.virtual_read_stats().requests - before.requests, 3);
    assert_eq!(got[0], Some(expected_chunk(0)));
    assert_eq!(got[1], Some(Bytes::from(vec![0xee; CHUNK as usize])));
    assert_eq!(got[2], None);
    assert_eq!(got[3], Some(expected_chunk(1)));
    assert_eq!(got[4], Some(Bytes::from(vec![1u8; 10])));
    assert_eq!(got[5], Some(Bytes::from(vec![1u8; 10])));
}

#[tokio::test]
async fn containers_declared_by_racing_handles_all_end_up_declared() {
    let (fx, _) = Fixture::new().await;
    let a = fx.open(VirtualAccess::deny_all()).await;
    let b = fx.open(VirtualAccess::deny_all()).await;
    let mut expected = Vec::new();
    for round in 0..6 {
        let pa = format!("s3://bucket-a/round-{round}/");
        let pb = format!("s3://bucket-b/round-{round}/");
        let ca = [
            VirtualContainer::new(&pa, vec![("aws_region".into(), "eu-west-1".into())]).unwrap(),
        ];
        let cb = [VirtualContainer::new(&pb, vec![]).unwrap()];
        let (ra, rb) = tokio::join!(
            a.declare_virtual_containers(&ca),
            b.declare_virtual_containers(&cb)
        );
        ra.unwrap();
        rb.unwrap();
        expected.extend([pa, pb]);
    }
    expected.sort();
    let fresh = fx.open(VirtualAccess::deny_all()).await;
    let found: Vec<String> = fresh
        .virtual_containers()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.prefix)
        .collect();
    assert_eq!(found, expected);
    // Declaring again is idempotent; credentials are refused.
    fresh
        .declare_virtual_containers(&[VirtualContainer::new(&expected[0], vec![]).unwrap()])
        .await
        .unwrap();
    assert_eq!(
        fresh.virtual_containers().await.unwrap().len(),
        expected.len()
    );
    let secret = VirtualContainer {
        prefix: "s3://x/".into(),
        options: vec![("aws_secret_access_key".into(), "s".into())],
    };
    assert!(fresh.declare_virtual_containers(&[secret]).await.is_err());
}

#[tokio::test]
async fn plain_local_paths_are_file_urls() {
    let (fx, repo) = Fixture::new().await;
    let src = source(fx.source_path().to_str().unwrap(), None);
    commit_refs(&repo, &src, Some(fx.data_dir().to_str().unwrap())).await;
    let handle = fx
        .open(
            VirtualAccess::deny_all()
                .allow(fx.data_dir().to_str().unwrap())
                .unwrap(),
        )
        .await;
    assert_eq!(read(&handle, 12).await.unwrap(), Some(expected_chunk(12)));
}

#[tokio::test]
async fn s3_sources_read_conditionally() {
    let Some((bucket, options, store)) =
        common::s3_sources::s3_sources("s3_sources_read_conditionally")
    else {
        return;
    };
    let key = format!("{}/src.bin", common::s3_sources::unique_prefix("virtual"));
    let path = object_store::path::Path::from(key.as_str());
    let bytes: Vec<u8> = (0..CHUNKS)
        .flat_map(|i| std::iter::repeat_n(i as u8, CHUNK as usize))
        .collect();
    store.put(&path, bytes.into()).await.unwrap();
    let etag = store.head(&path).await.unwrap().e_tag.unwrap();

    let (fx, _) = Fixture::new().await;
    let prefix = format!("s3://{bucket}/{}", key.trim_end_matches("src.bin"));
    let repo = fx
        .open(VirtualAccess::deny_all().allow(&prefix).unwrap())
        .await;
    repo.declare_virtual_containers(&[VirtualContainer::new(&prefix, options.clone()).unwrap()])
        .await
        .unwrap();
    let src = source(
        &format!("s3://{bucket}/{key}"),
        Some(SourceChecksum::ETag(etag)),
    );
    commit_refs(&repo, &src, None).await;
    let session = repo.readonly_session(&main()).await.unwrap();
    let coords: Vec<Vec<u64>> = (0..CHUNKS).map(|i| vec![i]).collect();
    let got = session.get_chunks(&p("a"), &coords).await.unwrap();
    assert_eq!(got[77], Some(expected_chunk(77)));
    assert_eq!(read(&repo, 5).await.unwrap(), Some(expected_chunk(5)));

    store
        .put(&path, vec![9u8; (CHUNK * CHUNKS) as usize].into())
        .await
        .unwrap();
    assert!(matches!(
        read(&repo, 5).await,
        Err(Error::VirtualSourceChanged { .. })
    ));
    store.delete(&path).await.unwrap();
    assert!(matches!(
        read(&repo, 5).await,
        Err(Error::VirtualSourceMissing { .. })
    ));
}

#[cfg(feature = "cli")]
#[tokio::test]
async fn cli_cat_needs_allow_virtual() {
    use common::cli::{floe, ok};
    let (fx, repo) = Fixture::new().await;
    commit_refs(&repo, &source(&fx.source_url(), None), None).await;
    let repo_path = fx.repo_path();
    let prefix = fx.prefix();
    floe(&repo_path, &["cat", "a/c/3"]).assert_error(4, "--allow-virtual");
    ok(
        &repo_path,
        &["container", "add", &prefix, "-O", "allow_http=true"],
    );
    let listed = ok(&repo_path, &["container", "list", "--json"]).json();
    assert_eq!(listed[0]["prefix"], prefix.as_str());
    assert_eq!(listed[0]["options"]["allow_http"], "true");
    floe(
        &repo_path,
        &[
            "container",
            "add",
            "s3://b/",
            "-O",
            "aws_secret_access_key=x",
        ],
    )
    .assert_error(2, "credential");
    let run = floe(&repo_path, &["cat", "a/c/3"]);
    run.assert_error(4, &format!("--allow-virtual {prefix}"));
    let run = ok(&repo_path, &["--allow-virtual", &prefix, "cat", "a/c/3"]);
    assert_eq!(run.stdout, expected_chunk(3).to_vec());
    let run = ok(&repo_path, &["cat", "--allow-virtual-declared", "a/c/4"]);
    assert_eq!(run.stdout, expected_chunk(4).to_vec());
    let other = format!("{prefix}elsewhere/");
    floe(&repo_path, &["--allow-virtual", &other, "cat", "a/c/3"])
        .assert_error(4, "not authorized");
}

/// An HTTP source: a chunk of another repository served by `floe serve`. That server sends
/// ETags but ignores `If-Match`, so a change is caught by comparing the ETag of the response.
#[cfg(feature = "server")]
#[tokio::test]
async fn http_sources_read_and_changes_are_caught_even_when_the_server_ignores_if_match() {
    use object_store::{GetOptions, GetRange, ObjectStore};
    let (_served_dir, served) = common::tempdir_repo(Default::default()).await;
    let whole = CHUNK * CHUNKS;
    let w = served.writable_session("main").await.unwrap();
    w.create_group(&p(""), Default::default()).await.unwrap();
    w.create_array(&p("s"), uint8_array(&[whole], &[whole]))
        .await
        .unwrap();
    let bytes: Vec<u8> = (0..CHUNKS)
        .flat_map(|i| std::iter::repeat_n(i as u8, CHUNK as usize))
        .collect();
    w.set_chunk(&p("s"), &[0], bytes.into()).await.unwrap();
    w.commit("source", None).await.unwrap();
    let server = common::http::TestServer::start(served.clone()).await;

    let base = server.url("/");
    let probe = object_store::http::HttpBuilder::new()
        .with_url(base.trim_end_matches('/'))
        .with_config(object_store::ClientConfigKey::AllowHttp, "true")
        .build()
        .unwrap();
    let options = GetOptions {
        range: Some(GetRange::Bounded(0..1)),
        ..Default::default()
    };
    let key = object_store::path::Path::from("main/s/c/0");
    let etag = probe
        .get_opts(&key, options)
        .await
        .unwrap()
        .meta
        .e_tag
        .unwrap();

    let (fx, repo) = Fixture::new().await;
    let src = source(&server.url("/main/s/c/0"), Some(SourceChecksum::ETag(etag)));
    commit_refs(&repo, &src, Some(&base)).await;
    let reader = fx
        .open(VirtualAccess::deny_all().allow(&base).unwrap())
        .await;
    assert_eq!(read(&reader, 33).await.unwrap(), Some(expected_chunk(33)));
    let session = reader.readonly_session(&main()).await.unwrap();
    let coords: Vec<Vec<u64>> = (0..CHUNKS).map(|i| vec![i]).collect();
    let before = reader.virtual_read_stats().requests;
    let got = session.get_chunks(&p("a"), &coords).await.unwrap();
    assert_eq!(reader.virtual_read_stats().requests - before, 1);
    assert_eq!(got[99], Some(expected_chunk(99)));

    w.set_chunk(&p("s"), &[0], vec![0xab; whole as usize].into())
        .await
        .unwrap();
    w.commit("source rewritten", None).await.unwrap();
    assert!(matches!(
        read(&reader, 33).await,
        Err(Error::VirtualSourceChanged { .. })
    ));
    server.stop().await;
}

#[tokio::test]
async fn verified_ranges_of_checksummed_sources_are_served_from_the_local_cache() {
    let (fx, _) = Fixture::new().await;
    let checksum = SourceChecksum::ETag(etag_of(&fx.source_path()).await);
    let setup = fx.open(VirtualAccess::deny_all().allow_declared()).await;
    commit_refs(
        &setup,
        &source(&fx.source_url(), Some(checksum)),
        Some(&fx.prefix()),
    )
    .await;
    let cache_dir = tempfile::tempdir().unwrap();
    let cache = std::sync::Arc::new(floe::LocalCache::open(cache_dir.path(), None).unwrap());
    let cached = fx
        .open(VirtualAccess::deny_all().allow_declared())
        .await
        .with_virtual_cache(cache.clone());
    assert_eq!(read(&cached, 4).await.unwrap(), Some(expected_chunk(4)));
    assert_eq!(cached.virtual_read_stats().requests, 1);
    // The second read of the same range does not touch the source.
    assert_eq!(read(&cached, 4).await.unwrap(), Some(expected_chunk(4)));
    assert_eq!(
        cached.virtual_read_stats().requests,
        1,
        "served by the cache"
    );
    assert!(cache.stats().unwrap().process.hits >= 1);
    // A fresh handle on the same cache hits too; authorization is still checked first.
    let denied = fx
        .open(VirtualAccess::deny_all())
        .await
        .with_virtual_cache(cache.clone());
    assert!(matches!(
        read(&denied, 4).await,
        Err(Error::VirtualSourceNotAuthorized { .. })
    ));
    let other = fx
        .open(VirtualAccess::deny_all().allow_declared())
        .await
        .with_virtual_cache(cache.clone());
    assert_eq!(read(&other, 4).await.unwrap(), Some(expected_chunk(4)));
    assert_eq!(other.virtual_read_stats().requests, 0);
    // A source without a checksum is never cached: it could change under the cache.
    let (plain, _) = committed_fixture(None).await;
    let uncached = plain
        .open(VirtualAccess::deny_all().allow_declared())
        .await
        .with_virtual_cache(cache);
    for _ in 0..2 {
        assert!(read(&uncached, 4).await.unwrap().is_some());
    }
    assert_eq!(uncached.virtual_read_stats().requests, 2);
}
