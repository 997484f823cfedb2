//! A new repository written through zarrs: the setup the zarrs, rechunk and HTTP tests share.

use std::sync::Arc;

use floe::{AsyncZarrsStore, Repository, RepositorySettings, Session};

/// A new repository in a temporary directory, a writable session on `main` and a zarrs store
/// over it, with an empty group created (through zarrs) at each path of `groups`.
pub async fn zarrs_repo(
    groups: &[&str],
) -> (tempfile::TempDir, Repository, Session, Arc<AsyncZarrsStore>) {
    let (dir, repo) = super::tempdir_repo(RepositorySettings::default()).await;
    let session = repo.writable_session("main").await.unwrap();
    let store = Arc::new(AsyncZarrsStore::new(session.zarr()));
    for group in groups {
        zarrs::group::GroupBuilder::new()
            .build(store.clone(), group)
            .unwrap()
            .async_store_metadata()
            .await
            .unwrap();
    }
    (dir, repo, session, store)
}
