//! The listing part of a full GC run (spec/algorithms.md §14, step 10): everything every
//! retained snapshot references, then every object storage holds under floe's directories
//! that parses exactly as a floe key, is not referenced and is older than the grace period:
//! orphans of crashed commits, aborted uploads and commits that lost their race. Also the
//! live bytes of every chunk object, to report sparse packs.

use std::collections::{HashMap, HashSet};

use futures::stream::{self, StreamExt};

use super::graph::Graph;
use crate::error::{Error, Result};
use crate::format::envelope::{self, ObjectKind};
use crate::format::lifecycle::GcObject;
use crate::format::manifest::{ChunkRef, ManifestColumns};
use crate::format::snapshot::{NodeKind, TxLogRef};
use crate::id::{ChunkObjectId, ManifestId, SnapshotId};
use crate::repo::read::repository::Repository;
use crate::storage::{layout, ListedObject};

const IN_FLIGHT: usize = 32;

/// One pack (or chunk object) whose live bytes are a small part of its size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SparsePack {
    /// The chunk object.
    pub object: ChunkObjectId,
    /// Its size in bytes.
    pub size: u64,
    /// Bytes of it that retained snapshots still reference.
    pub live_bytes: u64,
}

/// What a full run found by listing.
pub(super) struct Listing {
    /// Unreferenced objects older than the grace period, with their sizes.
    pub(super) orphans: Vec<(GcObject, u64)>,
    /// Unreferenced objects younger than the grace period, left alone.
    pub(super) too_young: u64,
    /// Chunk objects below the live-bytes threshold.
    pub(super) sparse_packs: Vec<SparsePack>,
    /// Snapshots read to mark.
    pub(super) snapshots_read: u64,
    /// Manifests read to mark.
    pub(super) manifests_read: u64,
}

/// A native chunk reference: object, offset, length.
type NativeRef = (ChunkObjectId, u64, u64);

/// Collects the native chunk references of some manifest columns (distinct references, so a
/// chunk carried by many snapshots counts once).
fn collect_refs(columns: &ManifestColumns, refs: &mut HashSet<NativeRef>) -> Result<()> {
    for (_, chunk) in columns.decode()? {
        if let Some(ChunkRef::Native {
            object,
            offset,
            length,
        }) = chunk
        {
            refs.insert((object, offset, length));
        }
    }
    Ok(())
}

impl Repository {
    /// Marks everything the retained snapshots reference, then lists storage.
    pub(super) async fn gc_full_listing(
        &self,
        graph: &Graph,
        now_us: i64,
        grace_us: i64,
        sparse_threshold: f64,
    ) -> Result<Listing> {
        let mut live: HashSet<GcObject> = HashSet::new();
        let mut refs: HashSet<NativeRef> = HashSet::new();
        let mut bases: HashSet<ManifestId> = HashSet::new();
        let ids: Vec<SnapshotId> = graph.retained.keys().copied().collect();
        let loads = ids.iter().map(|id| async move {
            match graph.loaded.get(id) {
                Some(loaded) => Ok(Some(loaded.clone())),
                None => match self.load_snapshot(id).await {
                    Ok(loaded) => Ok(Some(loaded)),
                    Err(Error::SnapshotNotFound { .. }) => Ok(None),
                    Err(e) => Err(e),
                },
            }
        });
        let loaded: Vec<Result<_>> = stream::iter(loads.collect::<Vec<_>>())
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mut snapshots_read = 0;
        for snapshot in loaded {
            let Some(snapshot) = snapshot? else { continue };
            snapshots_read += 1;
            live.insert(GcObject::Snapshot(snapshot.id));
            if let TxLogRef::Object(txlog) = &snapshot.snapshot.txlog {
                live.insert(GcObject::TxLog(*txlog));
            }
            for node in &snapshot.snapshot.nodes {
                let NodeKind::Array(manifest) = &node.kind else {
                    continue;
                };
                for shard in &manifest.shards {
                    if let Some(base) = shard.base {
                        bases.insert(base);
                    }
                    if let Some(delta) = &shard.delta {
                        live.extend(delta.objects.iter().map(|o| GcObject::Chunks(*o)));
                        collect_refs(delta, &mut refs)?;
                    }
                }
            }
        }
        let reads = bases.iter().map(|id| async move {
            let key = layout::manifest_key(id);
            let bytes = self.get_verified(&key, id.as_bytes()).await?;
            let columns: ManifestColumns = envelope::decode(&key, &bytes, ObjectKind::Manifest)?;
            Ok::<_, Error>(columns)
        });
        let columns: Vec<Result<_>> = stream::iter(reads.collect::<Vec<_>>())
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let manifests_read = columns.len() as u64;
        for c in columns {
            let c = c?;
            live.extend(c.objects.iter().map(|o| GcObject::Chunks(*o)));
            collect_refs(&c, &mut refs)?;
        }
        live.extend(bases.iter().map(|b| GcObject::Manifest(*b)));
        let mut live_bytes: HashMap<ChunkObjectId, u64> = HashMap::new();
        for (object, _, length) in refs {
            *live_bytes.entry(object).or_default() += length;
        }

        let mut listed: Vec<ListedObject> = Vec::new();
        for dir in [
            layout::SNAPSHOTS_DIR,
            layout::TXLOGS_DIR,
            layout::MANIFESTS_DIR,
            layout::CHUNKS_DIR,
        ] {
            listed.extend(self.storage().list(dir).await?);
        }
        let mut orphans = Vec::new();
        let mut too_young = 0;
        let mut sparse_packs = Vec::new();
        for object in listed {
            // Only keys that parse exactly as floe's; anything else is not ours to touch.
            let Some(parsed) = layout::gc_object_of_key(&object.key) else {
                continue;
            };
            if live.contains(&parsed) {
                if let GcObject::Chunks(id) = parsed {
                    let used = live_bytes.get(&id).copied().unwrap_or(0);
                    if object.size > 0 && (used as f64) < sparse_threshold * object.size as f64 {
                        sparse_packs.push(SparsePack {
                            object: id,
                            size: object.size,
                            live_bytes: used,
                        });
                    }
                }
                continue;
            }
            if object.last_modified_us.saturating_add(grace_us) <= now_us {
                orphans.push((parsed, object.size));
            } else {
                too_young += 1;
            }
        }
        sparse_packs.sort_by_key(|e| e.object);
        Ok(Listing {
            orphans,
            too_young,
            sparse_packs,
            snapshots_read,
            manifests_read,
        })
    }
}
