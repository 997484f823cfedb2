//! Virtual chunks against a hostile repository or a replaced source: repository options never
//! steer sources the reader did not trust, options redirecting credentials are refused even in
//! hand-written records, symbolic links stay inside the narrowest authorized prefix, a source
//! with an older modification time or a response without an ETag reads as changed.
//!
//! Uses the fixture of `virtual_refs.rs`: `data/src.bin`, 100 chunks of 100 bytes, chunk `i`
//! filled with byte `i`, referenced by array `a`.

mod common;
#[path = "virtual_refs/fixture.rs"]
#[allow(dead_code)]
mod fixture;

use std::time::Duration;

use fixture::*;
use floe::{Error, SourceChecksum, VirtualAccess, VirtualContainer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A minimal HTTP server answering every ranged GET with the fixture's bytes (chunk `i` filled
/// with byte `i`), ignoring conditional headers, and sending `etag` when given. Returns its
/// base URL (`http://127.0.0.1:PORT/`).
async fn plain_http_server(etag: Option<&'static str>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let body: Vec<u8> = (0..CHUNKS)
                    .flat_map(|i| std::iter::repeat_n(i as u8, CHUNK as usize))
                    .collect();
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => request.extend_from_slice(&buf[..n]),
                        }
                    }
                    let end = request.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                    request.drain(..end);
                    let range = head
                        .lines()
                        .find_map(|l| l.strip_prefix("range: bytes="))
                        .and_then(|r| r.trim().split_once('-'))
                        .map(|(a, b)| (a.parse::<usize>().unwrap(), b.parse::<usize>().unwrap()));
                    let (status, from, to) = match range {
                        Some((a, b)) => ("206 Partial Content", a, b + 1),
                        None => ("200 OK", 0, body.len()),
                    };
                    let mut response = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Range: bytes {}-{}/{}\r\n",
                        to - from,
                        from,
                        to - 1,
                        body.len()
                    );
                    if let Some(tag) = etag {
                        response.push_str(&format!("ETag: {tag}\r\n"));
                    }
                    response.push_str("\r\n");
                    let mut bytes = response.into_bytes();
                    if !head.starts_with("head ") {
                        bytes.extend_from_slice(&body[from..to]);
                    }
                    if socket.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    base
}

#[tokio::test]
async fn repository_options_are_ignored_for_sources_trusted_only_through_an_explicit_prefix() {
    let base = plain_http_server(None).await;
    let (fx, repo) = Fixture::new().await;
    // The repository declares the server with an option the reader never agreed to (here one
    // no client accepts, so using it is visible as a refusal).
    let declared =
        VirtualContainer::new(&base, vec![("x_planted_option".into(), "1".into())]).unwrap();
    repo.declare_virtual_containers(&[declared]).await.unwrap();
    commit_refs(&repo, &source(&format!("{base}src.bin"), None), None).await;

    let explicit = fx
        .open(VirtualAccess::deny_all().allow_undeclared(&base).unwrap())
        .await;
    assert_eq!(read(&explicit, 12).await.unwrap(), Some(expected_chunk(12)));

    // Trusting the declared container takes its options, and so fails on the planted one.
    for trusted in [
        VirtualAccess::deny_all().allow_declared(),
        VirtualAccess::deny_all().allow(&base).unwrap(),
    ] {
        match read(&fx.open(trusted).await, 12).await {
            Err(Error::VirtualLocationRefused { reason, .. }) => {
                assert!(reason.contains("x_planted_option"), "{reason}")
            }
            other => panic!("expected the declared option to be used, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn options_redirecting_credentials_are_refused_at_declaration_and_in_stored_records() {
    for (key, value) in [
        ("proxy_url", "http://attacker:3128"),
        ("allow_invalid_certificates", "true"),
        ("aws_metadata_endpoint", "http://attacker"),
        ("aws_container_credentials_relative_uri", "/creds"),
        ("azure_msi_endpoint", "http://attacker"),
        ("azure_federated_token_file", "/tmp/token"),
        ("aws_endpoint", "https://user:pass@minio.example"),
    ] {
        let refused = VirtualContainer::new("s3://bucket/data", vec![(key.into(), value.into())]);
        assert!(
            matches!(refused, Err(Error::VirtualLocationRefused { .. })),
            "{key}"
        );
    }
    let endpoint = vec![(
        "aws_endpoint".to_string(),
        "https://minio.example".to_string(),
    )];
    VirtualContainer::new("s3://bucket/data", endpoint).unwrap();

    // A record written by hand (or by an older version) is checked again when read.
    let (fx, repo) = Fixture::new().await;
    let record = serde_json::json!({
        "seq": 0,
        "written_at_us": 0,
        "containers": [{"prefix": fx.prefix(), "options": [["proxy_url", "http://attacker"]]}],
    });
    let dir = fx.repo_path().join("config/containers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{:020}", 0)),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    match repo.virtual_containers().await {
        Err(Error::VirtualLocationRefused { location, reason }) => {
            assert_eq!(location, fx.prefix());
            assert!(reason.contains("proxy_url"), "{reason}");
        }
        other => panic!("expected the stored record to be refused, got {other:?}"),
    }
    // Declaring the prefix again with acceptable options replaces the refused container.
    repo.declare_virtual_containers(&[VirtualContainer::new(&fx.prefix(), vec![]).unwrap()])
        .await
        .unwrap();
    let fresh = fx.open(VirtualAccess::deny_all()).await;
    assert_eq!(
        fresh.virtual_containers().await.unwrap(),
        vec![VirtualContainer::new(&fx.prefix(), vec![]).unwrap()]
    );
}

#[tokio::test]
async fn a_stored_prefix_without_trailing_slash_does_not_hold_its_siblings() {
    let (fx, repo) = Fixture::new().await;
    let sibling = fx.dir.path().join("data-other");
    std::fs::create_dir(&sibling).unwrap();
    std::fs::copy(fx.source_path(), sibling.join("src.bin")).unwrap();
    let unnormalised = fx.prefix().trim_end_matches('/').to_string();
    let record = serde_json::json!({
        "seq": 0,
        "written_at_us": 0,
        "containers": [{"prefix": unnormalised, "options": []}],
    });
    let dir = fx.repo_path().join("config/containers");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(format!("{:020}", 0)),
        serde_json::to_vec(&record).unwrap(),
    )
    .unwrap();
    let url = url::Url::from_file_path(sibling.join("src.bin")).unwrap();
    commit_refs(&repo, &source(url.as_str(), None), None).await;
    let reader = fx.open(VirtualAccess::deny_all().allow_declared()).await;
    assert!(matches!(
        read(&reader, 3).await,
        Err(Error::VirtualSourceNotAuthorized { .. })
    ));
    assert_eq!(
        reader.virtual_containers().await.unwrap()[0].prefix,
        fx.prefix()
    );
}

#[tokio::test]
async fn symbolic_links_stay_inside_the_narrowest_authorized_prefix() {
    let (fx, repo) = Fixture::new().await;
    let secret = fx.dir.path().join("secret.bin");
    std::fs::copy(fx.source_path(), &secret).unwrap();
    std::os::unix::fs::symlink(&secret, fx.data_dir().join("link.bin")).unwrap();
    // The repository declares the whole parent directory; the reader only trusts `data/`.
    let parent = url::Url::from_directory_path(fx.dir.path()).unwrap();
    repo.declare_virtual_containers(&[VirtualContainer::new(parent.as_str(), vec![]).unwrap()])
        .await
        .unwrap();
    let link = format!("{}link.bin", fx.prefix());
    commit_refs(&repo, &source(&link, None), None).await;
    for access in [
        VirtualAccess::deny_all().allow(&fx.prefix()).unwrap(),
        VirtualAccess::deny_all()
            .allow_undeclared(&fx.prefix())
            .unwrap(),
    ] {
        match read(&fx.open(access).await, 3).await {
            Err(Error::VirtualLocationRefused { reason, .. }) => {
                assert!(reason.contains("symbolic link"), "{reason}")
            }
            other => panic!("expected the link to be refused, got {other:?}"),
        }
    }
    // Trusting the whole declared container lets the link be read.
    let trusting = fx.open(VirtualAccess::deny_all().allow_declared()).await;
    assert_eq!(read(&trusting, 3).await.unwrap(), Some(expected_chunk(3)));
}

#[tokio::test]
async fn a_source_replaced_by_an_older_file_reads_as_changed() {
    let (fx, _) = Fixture::new().await;
    let recorded = modified_secs(&fx.source_path());
    let repo = fx.open(VirtualAccess::deny_all().allow_declared()).await;
    commit_refs(
        &repo,
        &source(
            &fx.source_url(),
            Some(SourceChecksum::LastModified(recorded)),
        ),
        Some(&fx.prefix()),
    )
    .await;
    assert_eq!(read(&repo, 3).await.unwrap(), Some(expected_chunk(3)));
    // Other bytes, same size, modification time an hour older (a restored backup).
    fx.write_source(9);
    let file = std::fs::File::options()
        .write(true)
        .open(fx.source_path())
        .unwrap();
    let older = std::time::UNIX_EPOCH + Duration::from_secs((recorded - 3600) as u64);
    file.set_modified(older).unwrap();
    assert!(matches!(
        read(&repo, 3).await,
        Err(Error::VirtualSourceChanged { .. })
    ));
}

#[tokio::test]
async fn an_etag_reference_is_not_served_by_a_server_that_drops_the_etag() {
    for (etag, expect_ok) in [
        (None, false),
        (Some("\"v1\""), true),
        (Some("W/\"v1\""), false),
    ] {
        let base = plain_http_server(etag).await;
        let (fx, repo) = Fixture::new().await;
        let src = source(
            &format!("{base}src.bin"),
            Some(SourceChecksum::ETag("\"v1\"".into())),
        );
        commit_refs(&repo, &src, None).await;
        let reader = fx
            .open(VirtualAccess::deny_all().allow_undeclared(&base).unwrap())
            .await;
        match read(&reader, 5).await {
            Ok(found) if expect_ok => assert_eq!(found, Some(expected_chunk(5))),
            Err(Error::VirtualSourceChanged { .. }) if !expect_ok => {}
            other => panic!("etag {etag:?}: got {other:?}"),
        }
    }
}
