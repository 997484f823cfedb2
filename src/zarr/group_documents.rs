//! The rendered consolidated group documents of one read-only view, so repeated requests for a
//! group's `zarr.json` cost a lookup instead of a rendering.
//!
//! A rendering costs O(log n + k) for a group with k descendants
//! ([`crate::Session::list_descendants`]), which for the root (or a group holding most of the
//! hierarchy) is the whole snapshot. Documents are kept per view, and a read-only view serves
//! one snapshot, so they never go stale:
//!
//! - the root document is kept once rendered (one entry, the behaviour floe always had);
//! - other groups' documents are kept in a byte-bounded cache whose budget is
//!   [`BUDGET_PER_METADATA_BYTE`] times the snapshot's stored metadata, at least
//!   [`MIN_BUDGET_BYTES`]. A node's entry appears in the document of each of its ancestors, so
//!   all the documents of one depth together weigh about the snapshot's metadata: the budget
//!   holds the documents of the top levels of the hierarchy whatever its number of groups, and
//!   memory stays proportional to what the loaded snapshot holds anyway. A repository with
//!   thousands of groups evicts the least useful deep documents instead of growing without
//!   bound. A document over the budget is rendered for each request and not kept.

use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use quick_cache::sync::Cache;
use quick_cache::{OptionsBuilder, Weighter};

use crate::error::Result;
use crate::format::path::NodePath;
use crate::repo::{lock, Session};

/// The smallest byte budget of the non-root group documents of one view.
pub const MIN_BUDGET_BYTES: u64 = 1 << 20;

/// The byte budget of the non-root group documents per byte of stored metadata.
pub const BUDGET_PER_METADATA_BYTE: u64 = 4;

/// Bookkeeping bytes charged per cached document on top of its text and path.
const ENTRY_OVERHEAD: u64 = 64;

/// Expected number of cached documents (quick_cache sizes its tables from it).
const ESTIMATED_DOCUMENTS: usize = 256;

#[derive(Clone, Debug)]
struct DocumentWeighter;

impl Weighter<NodePath, Bytes> for DocumentWeighter {
    fn weight(&self, path: &NodePath, document: &Bytes) -> u64 {
        ENTRY_OVERHEAD + path.as_str().len() as u64 + document.len() as u64
    }
}

/// Rendered consolidated documents of the groups of one snapshot (see the module docs).
///
/// Belongs to one read-only view: its documents are only valid for that view's snapshot and
/// rendering (stored or rechunked metadata). Writable sessions, whose hierarchy changes, must
/// not use one.
#[derive(Default)]
pub(crate) struct GroupDocuments {
    root: Mutex<Option<Bytes>>,
    /// Created at the first non-root document, sized from the snapshot.
    groups: OnceLock<Cache<NodePath, Bytes, DocumentWeighter>>,
}

impl std::fmt::Debug for GroupDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let root = lock(&self.root).as_ref().map(Bytes::len);
        let groups = self.groups.get();
        f.debug_struct("GroupDocuments")
            .field("root_bytes", &root)
            .field("groups", &groups.map(Cache::len))
            .field("group_bytes", &groups.map(Cache::weight))
            .finish()
    }
}

impl GroupDocuments {
    /// The document of the group at `path` of `session`'s snapshot: the kept one, or the one
    /// `render` produces (then kept, within the budget). Two concurrent requests for the same
    /// missing non-root document render it once. A failed rendering is not kept.
    pub(crate) fn get_or_render(
        &self,
        session: &Session,
        path: &NodePath,
        render: impl FnOnce() -> Result<Bytes>,
    ) -> Result<Bytes> {
        if path.is_root() {
            if let Some(bytes) = lock(&self.root).as_ref() {
                return Ok(bytes.clone());
            }
            let bytes = render()?;
            *lock(&self.root) = Some(bytes.clone());
            return Ok(bytes);
        }
        let groups = self.groups.get_or_init(|| {
            let budget = session
                .base_metadata_len()
                .saturating_mul(BUDGET_PER_METADATA_BYTE)
                .max(MIN_BUDGET_BYTES);
            new_cache(budget)
        });
        groups.get_or_insert_with(path, render)
    }

    /// The number of kept non-root documents and their weight in bytes.
    #[cfg(test)]
    fn kept(&self) -> (usize, u64) {
        self.groups
            .get()
            .map_or((0, 0), |groups| (groups.len(), groups.weight()))
    }
}

/// A cache of `budget` bytes in one shard, so that one document may take (nearly) the whole
/// budget: quick_cache splits the budget between shards and refuses an entry larger than its
/// shard's part.
fn new_cache(budget: u64) -> Cache<NodePath, Bytes, DocumentWeighter> {
    let mut options = OptionsBuilder::new();
    options
        .estimated_items_capacity(ESTIMATED_DOCUMENTS)
        .weight_capacity(budget)
        .shards(1);
    match options.build() {
        Ok(options) => Cache::with_options(
            options,
            DocumentWeighter,
            Default::default(),
            Default::default(),
        ),
        // Unreachable: both required options are set above.
        Err(_) => Cache::with_weighter(ESTIMATED_DOCUMENTS, budget, DocumentWeighter),
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;
    use crate::repo::{Repository, RepositorySettings};
    use crate::storage::open_storage;

    /// A read-only session of a repository whose only node is an empty root group.
    async fn session() -> Session {
        session_with_groups(0, 0).await
    }

    /// A read-only session of a repository with a root group and `groups` groups below it,
    /// each with an attribute of `attribute_len` bytes.
    async fn session_with_groups(groups: usize, attribute_len: usize) -> Session {
        let storage = open_storage("memory://", &vec![]).unwrap();
        let repo = Repository::init(storage, RepositorySettings::default())
            .await
            .unwrap();
        let s = repo.writable_session("main").await.unwrap();
        s.create_group(&NodePath::root(), Default::default())
            .await
            .unwrap();
        for i in 0..groups {
            let mut attributes = serde_json::Map::new();
            attributes.insert("text".into(), "a".repeat(attribute_len).into());
            s.create_group(&path(&format!("g{i}")), attributes)
                .await
                .unwrap();
        }
        let id = s.commit("groups", None).await.unwrap();
        repo.session_at_snapshot(id).await.unwrap()
    }

    fn path(p: &str) -> NodePath {
        NodePath::new(p).unwrap()
    }

    /// Gets `path` through `documents`, counting renderings in `renders`.
    fn get(
        documents: &GroupDocuments,
        session: &Session,
        p: &str,
        len: usize,
        renders: &Cell<u32>,
    ) -> Bytes {
        documents
            .get_or_render(session, &path(p), || {
                renders.set(renders.get() + 1);
                Ok(Bytes::from(vec![b'x'; len]))
            })
            .unwrap()
    }

    #[tokio::test]
    async fn documents_are_rendered_once() {
        let session = session().await;
        let documents = GroupDocuments::default();
        let renders = Cell::new(0);
        for _ in 0..3 {
            assert_eq!(get(&documents, &session, "", 10, &renders).len(), 10);
            assert_eq!(get(&documents, &session, "a/b", 20, &renders).len(), 20);
        }
        assert_eq!(renders.get(), 2);
        assert_eq!(documents.kept().0, 1, "the root is kept apart");
    }

    #[tokio::test]
    async fn failed_renderings_are_not_kept() {
        let session = session().await;
        let documents = GroupDocuments::default();
        for p in ["", "a"] {
            let failed = documents.get_or_render(&session, &path(p), || {
                Err(crate::Error::NodeNotFound { path: p.into() })
            });
            assert!(failed.is_err());
            let renders = Cell::new(0);
            get(&documents, &session, p, 5, &renders);
            assert_eq!(renders.get(), 1, "{p:?}");
        }
    }

    #[tokio::test]
    async fn group_documents_stay_within_the_budget() {
        // A tiny snapshot: the budget is the minimum.
        let session = session().await;
        assert!(session.base_metadata_len() * BUDGET_PER_METADATA_BYTE < MIN_BUDGET_BYTES);
        let documents = GroupDocuments::default();
        let renders = Cell::new(0);
        // Larger than the budget: rendered at every request, never kept.
        let huge = MIN_BUDGET_BYTES as usize + 1;
        get(&documents, &session, "huge", huge, &renders);
        get(&documents, &session, "huge", huge, &renders);
        assert_eq!(renders.get(), 2);
        assert_eq!(documents.kept(), (0, 0));
        // Most of the budget in one document: kept (one shard holds the whole budget).
        renders.set(0);
        let large = MIN_BUDGET_BYTES as usize * 9 / 10;
        get(&documents, &session, "large", large, &renders);
        get(&documents, &session, "large", large, &renders);
        assert_eq!(renders.get(), 1);
        // Many documents: older ones are evicted, the weight never exceeds the budget.
        for i in 0..100 {
            get(&documents, &session, &format!("g{i}"), 64 << 10, &renders);
        }
        let (kept, weight) = documents.kept();
        assert!(kept < 100, "{kept}");
        assert!(weight <= MIN_BUDGET_BYTES, "{weight}");
        // The root is kept whatever its size.
        renders.set(0);
        get(&documents, &session, "", huge, &renders);
        get(&documents, &session, "", huge, &renders);
        assert_eq!(renders.get(), 1);
    }

    #[tokio::test]
    async fn the_budget_follows_the_snapshot_metadata() {
        let session = session_with_groups(300, 1000).await;
        let metadata = session.base_metadata_len();
        assert!(metadata > 300_000, "{metadata}");
        let documents = GroupDocuments::default();
        let renders = Cell::new(0);
        // Over the minimum budget, within four times the metadata: kept.
        let len = (MIN_BUDGET_BYTES + (1 << 16)) as usize;
        get(&documents, &session, "g0", len, &renders);
        get(&documents, &session, "g0", len, &renders);
        assert_eq!(renders.get(), 1);
        assert_eq!(documents.kept().0, 1);
    }
}
