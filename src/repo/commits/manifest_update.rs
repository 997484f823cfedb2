//! Applying chunk edits to an array's sharded manifest at commit time.
//!
//! Only the shards an edit touches are rewritten; the rest are reused by reference. A touched
//! shard keeps its base object and carries its changed entries as an inline delta in the
//! snapshot until the delta grows past the configured limits, when base and delta are
//! compacted into a new base object.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Result;
use crate::format::manifest::{ChunkCoord, ChunkRef, ManifestColumns, ManifestEntry};
use crate::format::snapshot::{ArrayManifest, ShardRef};
use crate::repo::read::loaded::{shard_of, ShardIndex};
use crate::repo::read::repository::Repository;
use crate::repo::read::shard_counts::ShardCounts;
use crate::repo::write::change_set::{within_grid, ArrayEdits};
use crate::repo::write::pending_chunk::settled;
use crate::zarr::metadata::ArrayGeometry;

/// Chooses the shard shape of an array from its chunk grid: inner dimensions take up to the
/// next power of two of their extent, the first dimension (usually the one that grows) takes
/// the rest of the `target` reference budget.
pub(crate) fn choose_shard_shape(grid: &[u64], target: u64) -> Vec<u64> {
    let n = grid.len();
    let mut shape = vec![1u64; n];
    let mut budget = target.max(1);
    for d in (1..n).rev() {
        let want = grid[d]
            .max(1)
            .checked_next_power_of_two()
            .unwrap_or(u64::MAX);
        shape[d] = want.min(budget).max(1);
        budget = (budget / shape[d]).max(1);
    }
    if n > 0 {
        shape[0] = budget;
    }
    shape
}

/// Applies `edits` (and a shrink from `old` to `new` geometry) to `manifest`.
///
/// `clip` is the smallest chunk grid the array had in the session (see
/// `ChangeSet::clips`): existing entries outside it are dropped before `edits` apply, so an
/// array shrunk and grown again in one session does not get its old chunks back.
pub(crate) async fn update_array_manifest(
    repo: &Repository,
    manifest: &mut ArrayManifest,
    old: Option<&ArrayGeometry>,
    new: &ArrayGeometry,
    clip: Option<&ChunkCoord>,
    edits: &ArrayEdits,
) -> Result<()> {
    let mut grid = new.grid_shape();
    if let Some(clip) = clip.filter(|c| c.len() == grid.len()) {
        for (g, c) in grid.iter_mut().zip(clip) {
            *g = (*g).min(*c);
        }
    }
    if manifest.shard_shape.len() != grid.len() {
        manifest.shard_shape = choose_shard_shape(&grid, repo.settings().shard_target_refs);
        manifest.shards.clear();
    }
    let shard_shape = manifest.shard_shape.clone();
    let shrunk = old.is_some_and(|o| o.grid_shape().iter().zip(&grid).any(|(a, b)| b < a));
    let needs_trim = |shard: &ShardRef| {
        shrunk
            && shard
                .coord
                .iter()
                .zip(&shard_shape)
                .zip(&grid)
                .any(|((s, size), g)| s.saturating_add(1).saturating_mul(*size) > *g)
    };
    let mut shards: BTreeMap<ChunkCoord, ShardRef> = manifest
        .shards
        .drain(..)
        .map(|s| (s.coord.clone(), s))
        .collect();
    let mut trim: BTreeSet<ChunkCoord> = shards
        .values()
        .filter(|s| needs_trim(s))
        .map(|s| s.coord.clone())
        .collect();
    // Edits arrive in coordinate order, so every shard of one slab arrives before the next
    // slab starts and one slab is held at a time. A slab is the set of shards sharing their
    // coordinates up to the first dimension a shard spans more than one chunk of (see
    // `slab_depth`): along the dimensions before it the coordinate order equals the shard
    // order, so slabs stay about one shard large even when the first shard extent is 1.
    let depth = slab_depth(&shard_shape);
    let mut slab: BTreeMap<ChunkCoord, Vec<ManifestEntry>> = BTreeMap::new();
    let mut updated = BTreeMap::new();
    for edit in edits.iter() {
        let (coord, chunk) = edit?;
        if !new.contains_chunk(&coord) {
            continue;
        }
        let shard = shard_of(&coord, &shard_shape);
        if slab
            .keys()
            .next()
            .is_some_and(|s| s[..depth] != shard[..depth])
        {
            flush_slab(repo, &mut slab, &mut shards, &mut updated, &mut trim, &grid).await?;
        }
        slab.entry(shard)
            .or_default()
            .push((coord, settled(chunk.as_ref())?));
    }
    flush_slab(repo, &mut slab, &mut shards, &mut updated, &mut trim, &grid).await?;
    for coord in trim {
        slab.insert(coord, Vec::new());
    }
    flush_slab(
        repo,
        &mut slab,
        &mut shards,
        &mut updated,
        &mut BTreeSet::new(),
        &grid,
    )
    .await?;
    shards.append(&mut updated);
    manifest.shards = shards.into_values().collect();
    Ok(())
}

/// How many leading shard coordinates identify a slab: up to and including the first
/// dimension along which a shard spans more than one chunk (all of them when none does).
fn slab_depth(shard_shape: &[u64]) -> usize {
    shard_shape
        .iter()
        .position(|&s| s > 1)
        .map_or(shard_shape.len(), |d| d + 1)
}

/// Applies the edits of one slab to its shards (moving them from `shards` to `updated`).
async fn flush_slab(
    repo: &Repository,
    slab: &mut BTreeMap<ChunkCoord, Vec<ManifestEntry>>,
    shards: &mut BTreeMap<ChunkCoord, ShardRef>,
    updated: &mut BTreeMap<ChunkCoord, ShardRef>,
    trim: &mut BTreeSet<ChunkCoord>,
    grid: &[u64],
) -> Result<()> {
    for (shard_coord, shard_edits) in std::mem::take(slab) {
        trim.remove(&shard_coord);
        let old_shard = shards.remove(&shard_coord);
        if let Some(shard) = update_shard(repo, shard_coord, old_shard, shard_edits, grid).await? {
            updated.insert(shard.coord.clone(), shard);
        }
    }
    Ok(())
}

/// Applies `edits` to one shard (`old`, absent for a new one), dropping entries outside the
/// chunk grid `keep`; `None` when the shard ends up empty. Reads the base only when an edit may
/// replace one of its entries.
pub(crate) async fn update_shard(
    repo: &Repository,
    coord: ChunkCoord,
    old: Option<ShardRef>,
    edits: Vec<ManifestEntry>,
    keep: &[u64],
) -> Result<Option<ShardRef>> {
    let (base_id, old_box, old_delta) = match &old {
        Some(s) => (
            s.base,
            s.base_box.clone(),
            s.delta.as_ref().map(|d| d.decode()).transpose()?,
        ),
        None => (None, None, None),
    };
    // The base is read only when an edit may replace one of its entries or a shrink may cut
    // some of them off; appends beyond the base's bounding box never read it.
    let may_hold = |c: &[u64]| match &old_box {
        Some((lo, hi)) => {
            c.len() == lo.len() && c.iter().zip(lo).zip(hi).all(|((c, l), h)| l <= c && c <= h)
        }
        None => true,
    };
    let may_be_cut = match &old_box {
        Some((_, hi)) => !within_grid(hi, keep),
        None => true,
    };
    let needs_base = base_id.is_some() && (may_be_cut || edits.iter().any(|(c, _)| may_hold(c)));
    let mut base = match (&base_id, needs_base) {
        (Some(id), true) => Some(repo.load_manifest(id).await?),
        _ => None,
    };
    let mut stats = old
        .as_ref()
        .map_or(ShardCounts::default(), |s| ShardCounts {
            chunk_count: s.chunk_count,
            chunk_bytes: s.chunk_bytes,
            inline_count: s.inline_count,
            virtual_count: s.virtual_count,
        });
    let mut delta: BTreeMap<ChunkCoord, Option<ChunkRef>> =
        old_delta.unwrap_or_default().into_iter().collect();
    // Drop what lies outside the kept grid (after a shrink), before this commit's edits.
    let outside: Vec<ManifestEntry> = base
        .iter()
        .flat_map(|b| b.coords())
        .chain(delta.keys().map(Vec::as_slice))
        .filter(|c| !within_grid(c, keep))
        .map(|c| (c.to_vec(), None))
        .collect();
    // Statistics move by the difference between each edited chunk's old and new reference,
    // so an edit costs O(log n) whatever the shard size.
    let in_base =
        |base: &Option<std::sync::Arc<ShardIndex>>, c: &[u64]| base.as_ref().and_then(|b| b.get(c));
    for (c, r) in outside.into_iter().chain(edits) {
        let previous = match delta.get(&c) {
            Some(current) => current.clone(),
            None => in_base(&base, &c),
        };
        if let Some(previous) = &previous {
            stats.remove(previous);
        }
        if let Some(r) = &r {
            stats.add(r);
        }
        delta.insert(c, r);
    }
    // Tombstones only matter for entries the base holds. Without the base loaded, keep those
    // inside its box (earlier commits checked them); none outside it can matter.
    delta.retain(|c, r| {
        r.is_some()
            || match &base {
                Some(b) => b.contains(c),
                None => base_id.is_some() && may_hold(c),
            }
    });
    if stats.chunk_count == 0 {
        return Ok(None);
    }
    let delta: Vec<ManifestEntry> = delta.into_iter().collect();
    let settings = repo.settings();
    // A delta over the entry limit is compacted whatever its size: skip encoding it.
    let delta_columns = if delta.len() > settings.delta_max_entries {
        None
    } else {
        Some(ManifestColumns::encode(&delta)?)
    };
    let compact = match &delta_columns {
        None => true,
        Some(c) => {
            let bytes = c.coords.len()
                + c.lengths.len()
                + c.offsets.len()
                + c.inline_data.len()
                + c.objects.len() * 32;
            bytes > settings.delta_max_bytes
        }
    };
    let (base_id, base_box, delta) = if compact {
        if let (None, Some(id)) = (&base, &base_id) {
            base = Some(repo.load_manifest(id).await?);
        }
        // Without a base, the delta (tombstones dropped above) is the new base as it is.
        let entries: Vec<ManifestEntry> = if base.is_none() {
            delta
        } else {
            let merged = ShardIndex::overlay(base.as_deref(), &delta)?;
            merged.iter().map(|(c, r)| (c.to_vec(), Some(r))).collect()
        };
        let bounds = bounding_box(entries.iter().map(|(c, _)| c.as_slice()));
        let id = repo
            .write_manifest(&ManifestColumns::encode(&entries)?)
            .await?;
        (Some(id), bounds, None)
    } else if delta.is_empty() {
        (base_id, old_box, None)
    } else {
        (base_id, old_box, delta_columns)
    };
    Ok(Some(ShardRef {
        coord,
        base: base_id,
        base_box,
        delta,
        chunk_count: stats.chunk_count,
        chunk_bytes: stats.chunk_bytes,
        inline_count: stats.inline_count,
        virtual_count: stats.virtual_count,
    }))
}

/// Per-dimension minimum and maximum of a set of coordinates (`None` when empty).
pub(crate) fn bounding_box<'a>(
    coords: impl Iterator<Item = &'a [u64]>,
) -> Option<(ChunkCoord, ChunkCoord)> {
    let mut bounds: Option<(ChunkCoord, ChunkCoord)> = None;
    for c in coords {
        match &mut bounds {
            None => bounds = Some((c.to_vec(), c.to_vec())),
            Some((lo, hi)) => {
                for ((l, h), v) in lo.iter_mut().zip(hi.iter_mut()).zip(c) {
                    *l = (*l).min(*v);
                    *h = (*h).max(*v);
                }
            }
        }
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slabs_stop_at_the_first_dimension_a_shard_spans() {
        assert_eq!(slab_depth(&[16384]), 1);
        assert_eq!(slab_depth(&[1, 16384]), 2);
        assert_eq!(slab_depth(&[1, 16, 1024]), 2);
        assert_eq!(slab_depth(&[4096, 2, 2]), 1);
        assert_eq!(slab_depth(&[1, 1]), 2);
        assert_eq!(slab_depth(&[]), 0);
    }

    #[test]
    fn shard_shapes_fit_the_budget() {
        assert_eq!(choose_shard_shape(&[1, 1, 1], 16384), vec![16384, 1, 1]);
        assert_eq!(choose_shard_shape(&[10000], 16384), vec![16384]);
        assert_eq!(choose_shard_shape(&[16, 2, 2], 16384), vec![4096, 2, 2]);
        assert_eq!(
            choose_shard_shape(&[5, 1000, 1000], 16384),
            vec![1, 16, 1024]
        );
        assert_eq!(choose_shard_shape(&[], 16384), Vec::<u64>::new());
        assert_eq!(choose_shard_shape(&[0, 3], 16), vec![4, 4]);
    }
}
