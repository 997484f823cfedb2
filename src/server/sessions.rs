//! Resolving version segments to stores, with a small bounded cache of open read-only stores
//! by snapshot id so consecutive requests for the same version reuse one session (and its
//! rendered consolidated group documents), and a small bounded cache of rechunked views by
//! snapshot id and view tag (canonical request text; the default view holds the regular-grid
//! views of rectilinear arrays), all sharing one [`DecodedChunkCache`].

use quick_cache::sync::Cache;

use crate::error::Result;
use crate::id::SnapshotId;
use crate::repo::{Repository, VersionSpec};
use crate::zarr::rechunk::{DecodedChunkCache, RechunkedStore};
use crate::zarr::store::ZarrStore;

use super::view::{ByteSource, View};

/// How many snapshots keep an open store.
pub const OPEN_SNAPSHOTS: usize = 32;

/// How many rechunked views (snapshot and request) are kept open.
pub const OPEN_VIEWS: usize = 32;

/// The repository being served, its open stores and views.
#[derive(Debug)]
pub struct Versions {
    repo: Repository,
    stores: Cache<SnapshotId, ZarrStore>,
    /// By snapshot and [`View::tag`]; `None` when the view changes nothing (the default view
    /// of a version without rectilinear arrays).
    views: Cache<(SnapshotId, String), Option<RechunkedStore>>,
    decoded: DecodedChunkCache,
}

impl Versions {
    /// Serves `repo`, keeping up to `decoded_cache_bytes` of decoded stored chunks for
    /// rechunked views (0 keeps none).
    pub fn new(repo: Repository, decoded_cache_bytes: u64) -> Self {
        Versions {
            repo,
            stores: Cache::new(OPEN_SNAPSHOTS),
            views: Cache::new(OPEN_VIEWS),
            decoded: DecodedChunkCache::new(decoded_cache_bytes),
        }
    }

    /// The snapshot `spec` names now and the bytes `view` shows of it.
    ///
    /// Errors as [`Versions::open`], and with [`crate::Error::InvalidRechunk`] when the view
    /// cannot be built for this snapshot (see [`RechunkedStore::new`]).
    pub async fn open_view(
        &self,
        spec: &VersionSpec,
        view: &View,
    ) -> Result<(SnapshotId, ByteSource)> {
        let (id, store) = self.open(spec).await?;
        let (request, regular_grids) = match view {
            View::Native(None) => return Ok((id, ByteSource::Stored(store))),
            View::Native(Some(request)) => (Some(request), false),
            View::Stored => (None, true),
            View::Rechunked(request) => (Some(request), true),
        };
        let built = self
            .views
            .get_or_insert_async(&(id, view.tag()), async {
                let cache = self.decoded.clone();
                match request {
                    Some(request) if !regular_grids => {
                        RechunkedStore::new(store.clone(), request, cache).map(Some)
                    }
                    _ => RechunkedStore::with_regular_grids(store.clone(), request, cache),
                }
            })
            .await?;
        Ok((
            id,
            match built {
                Some(view) => ByteSource::Rechunked(view),
                None => ByteSource::Stored(store),
            },
        ))
    }

    /// The repository being served.
    pub fn repository(&self) -> &Repository {
        &self.repo
    }

    /// The snapshot `spec` names now and its read-only store (consolidated group metadata on).
    pub async fn open(&self, spec: &VersionSpec) -> Result<(SnapshotId, ZarrStore)> {
        let id = self.repo.resolve(spec).await?;
        let store = self
            .stores
            .get_or_insert_async(&id, async {
                let session = self.repo.session_at_snapshot(id).await?;
                Ok::<_, crate::Error>(ZarrStore::new(session).with_consolidated(true))
            })
            .await?;
        Ok((id, store))
    }
}
