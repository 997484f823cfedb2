//! fsck of arrays: shard lists, manifest bases, inline deltas, shard statistics and the fit of
//! every shard in its shard and in the array's grid.

use std::sync::Arc;

use super::{cell, BaseSummary, Checker, Counted, Fetched, FsckProblem, ShardCounts};
use crate::error::{Error, Result};
use crate::format::envelope::{self, ObjectKind};
use crate::format::manifest::{ManifestColumns, ManifestEntry};
use crate::format::path::NodePath;
use crate::format::snapshot::{ArrayManifest, ShardRef};
use crate::id::ManifestId;
use crate::repo::read::loaded::{lock, shard_of, ShardIndex};
use crate::repo::read::repository::retarget;
use crate::storage::layout;
use crate::zarr::metadata::ArrayGeometry;

/// One shard of one array of one snapshot, to check.
pub(super) struct ShardJob<'s> {
    key: &'s str,
    path: &'s NodePath,
    shard_shape: &'s [u64],
    shard: &'s ShardRef,
    grid: Option<Vec<u64>>,
}

/// The per-dimension maximum of a set of chunk coordinates.
enum Extent {
    Empty,
    Max(Vec<u64>),
    MixedRank,
}

impl Extent {
    fn of<'c>(coords: impl Iterator<Item = &'c [u64]>) -> Self {
        let mut out = Extent::Empty;
        for c in coords {
            out = match out {
                Extent::Empty => Extent::Max(c.to_vec()),
                Extent::Max(mut max) if max.len() == c.len() => {
                    for (m, v) in max.iter_mut().zip(c) {
                        *m = (*m).max(*v);
                    }
                    Extent::Max(max)
                }
                _ => return Extent::MixedRank,
            };
        }
        out
    }

    fn merge(self, other: Extent) -> Extent {
        match (self, other) {
            (Extent::Empty, x) | (x, Extent::Empty) => x,
            (Extent::Max(a), Extent::Max(b)) if a.len() == b.len() => {
                Extent::Max(a.iter().zip(&b).map(|(x, y)| *x.max(y)).collect())
            }
            _ => Extent::MixedRank,
        }
    }

    fn into_option(self) -> Option<Vec<u64>> {
        match self {
            Extent::Max(v) => Some(v),
            Extent::Empty | Extent::MixedRank => None,
        }
    }
}

fn is_sorted_unique(entries: &[ManifestEntry]) -> bool {
    entries.windows(2).all(|p| p[0].0 < p[1].0)
}

fn reason_of(error: Error) -> String {
    match error {
        Error::CorruptObject { reason, .. } => reason,
        other => other.to_string(),
    }
}

fn decode_base(key: &str, bytes: &[u8]) -> Result<Vec<ManifestEntry>> {
    let columns: ManifestColumns = envelope::decode(key, bytes, ObjectKind::Manifest)?;
    columns.decode().map_err(|e| retarget(e, key))
}

/// Identity of a shard's content check: everything it depends on.
fn shard_digest(shard_shape: &[u64], shard: &ShardRef) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    let mut words = |values: &[u64]| {
        h.update(&(values.len() as u64).to_le_bytes());
        for v in values {
            h.update(&v.to_le_bytes());
        }
    };
    words(shard_shape);
    words(&shard.coord);
    words(&[
        shard.chunk_count,
        shard.chunk_bytes,
        shard.inline_count,
        shard.virtual_count,
    ]);
    match &shard.base_box {
        Some((lo, hi)) => {
            words(&[1]);
            words(lo);
            words(hi);
        }
        None => words(&[0]),
    }
    match &shard.base {
        Some(id) => {
            h.update(&[1]);
            h.update(id.as_bytes());
        }
        None => {
            h.update(&[0]);
        }
    }
    if let Some(d) = &shard.delta {
        h.update(&[1]);
        h.update(&d.ndim.to_le_bytes());
        h.update(&d.count.to_le_bytes());
        for column in [
            &d.coords,
            &d.kinds,
            &d.object_index,
            &d.offsets,
            &d.lengths,
            &d.inline_data,
        ] {
            h.update(&(column.len() as u64).to_le_bytes());
            h.update(column);
        }
        h.update(&(d.objects.len() as u64).to_le_bytes());
        for object in &d.objects {
            h.update(object.as_bytes());
        }
    }
    *h.finalize().as_bytes()
}

impl Checker<'_> {
    /// Checks the shard list of an array and returns the shards whose content can be checked.
    pub(super) fn shard_jobs<'s>(
        &self,
        key: &'s str,
        path: &'s NodePath,
        manifest: &'s ArrayManifest,
        geometry: Option<&ArrayGeometry>,
    ) -> Vec<ShardJob<'s>> {
        let shape = &manifest.shard_shape;
        if shape.contains(&0) {
            self.corrupt(
                key,
                format!("array {path}: shard shape {shape:?} has a zero extent"),
            );
            return Vec::new();
        }
        if let Some(g) = geometry {
            if g.shape.len() != shape.len() && !manifest.shards.is_empty() {
                self.corrupt(
                    key,
                    format!(
                        "array {path}: shards are listed but the shard shape {shape:?} does not have the array's rank {}",
                        g.shape.len()
                    ),
                );
                return Vec::new();
            }
        }
        if manifest.shards.windows(2).any(|p| p[0].coord >= p[1].coord) {
            self.corrupt(
                key,
                format!("array {path}: shards are not sorted and unique by coordinates"),
            );
        }
        let grid = geometry.map(ArrayGeometry::grid_shape);
        manifest
            .shards
            .iter()
            .filter(|shard| {
                let reason = if shard.coord.len() != shape.len() {
                    "its coordinates do not have the shard shape's rank"
                } else if shard.base.is_none() && shard.delta.is_none() {
                    "it has neither a base nor a delta"
                } else {
                    return true;
                };
                self.corrupt(
                    key,
                    format!("array {path}: shard {:?}: {reason}", shard.coord),
                );
                false
            })
            .map(|shard| ShardJob {
                key,
                path,
                shard_shape: shape,
                shard,
                grid: grid.clone(),
            })
            .collect()
    }

    /// Checks one shard: its content once per distinct shard value, its fit in the grid of
    /// this snapshot's array every time.
    pub(super) async fn check_shard(&self, job: ShardJob<'_>) -> Result<()> {
        let digest = shard_digest(job.shard_shape, job.shard);
        let extent = cell(&self.shards, &digest)
            .get_or_try_init(|| self.check_shard_content(&job))
            .await?
            .clone();
        if let (Some(extent), Some(grid)) = (extent, &job.grid) {
            let inside = extent.len() == grid.len() && extent.iter().zip(grid).all(|(e, g)| e < g);
            if !inside
                && lock(&self.state)
                    .grid_reports
                    .insert((digest, grid.clone()))
            {
                self.problem(FsckProblem::ChunksOutsideGrid {
                    key: job.key.to_string(),
                    path: job.path.clone(),
                    shard: job.shard.coord.clone(),
                    grid: grid.clone(),
                });
            }
        }
        Ok(())
    }

    /// Base, delta, regions and statistics of one shard. Returns the per-dimension maximum
    /// of the content's coordinates when the content could be formed.
    async fn check_shard_content(&self, job: &ShardJob<'_>) -> Result<Option<Vec<u64>>> {
        let mut sound = true;
        let mut base: Option<(BaseSummary, Arc<ShardIndex>)> = None;
        if let Some(id) = &job.shard.base {
            match self.base_summary(id, job.key).await? {
                None => sound = false,
                Some(summary) => match self.base_entries(id).await? {
                    None => sound = false,
                    Some(index) => {
                        self.check_base_region(id, job, &index);
                        self.check_base_box(job, &index);
                        base = Some((summary, index));
                    }
                },
            }
        }
        let delta = match &job.shard.delta {
            None => Vec::new(),
            Some(columns) => match self.check_delta(job, columns).await? {
                Some(entries) => entries,
                None => {
                    sound = false;
                    Vec::new()
                }
            },
        };
        if !sound {
            return Ok(None);
        }
        let index = base.as_ref().map(|(_, index)| index.as_ref());
        let mut actual = base.as_ref().map(|(s, _)| s.counts).unwrap_or_default();
        for (coord, new) in &delta {
            if let Some(old) = index.and_then(|i| i.get(coord)) {
                actual.remove(&old);
            }
            if let Some(new) = new {
                actual.add(new);
            }
        }
        let shard = job.shard;
        let recorded = ShardCounts {
            chunk_count: shard.chunk_count,
            chunk_bytes: shard.chunk_bytes,
            inline_count: shard.inline_count,
            virtual_count: shard.virtual_count,
        };
        if actual.chunk_count == 0 {
            self.corrupt(
                job.key,
                format!(
                    "shard {:?} of {} holds no chunks; empty shards must be removed",
                    shard.coord, job.path
                ),
            );
        } else if actual != recorded {
            self.problem(FsckProblem::StatsMismatch {
                key: job.key.to_string(),
                path: job.path.clone(),
                shard: shard.coord.clone(),
                recorded,
                actual,
            });
        }
        let extent = if delta.iter().any(|(_, r)| r.is_none()) {
            // Tombstones may remove base entries: form the content. Delta entries of another
            // rank than the base's, which the content leaves out, still mix the ranks.
            let content = ShardIndex::overlay(index, &delta)?;
            let other_rank = delta
                .iter()
                .filter(|(c, r)| r.is_some() && c.len() != content.ndim())
                .map(|(c, _)| c.as_slice());
            Extent::of(content.coords()).merge(Extent::of(other_rank))
        } else {
            let base_extent = match base.and_then(|(s, _)| s.extent) {
                Some(v) => Extent::Max(v),
                None => Extent::Empty,
            };
            base_extent.merge(Extent::of(delta.iter().map(|(c, _)| c.as_slice())))
        };
        Ok(extent.into_option())
    }

    /// A shard's `base_box` must contain every base entry: writers trust it to skip reading
    /// the base, so a box too small would corrupt later commits.
    fn check_base_box(&self, job: &ShardJob<'_>, index: &ShardIndex) {
        let Some((lo, hi)) = &job.shard.base_box else {
            return;
        };
        let rank = job.shard_shape.len();
        if lo.len() != rank || hi.len() != rank || lo.iter().zip(hi).any(|(l, h)| l > h) {
            self.corrupt(
                job.key,
                format!(
                    "shard {:?} of {}: malformed base box {lo:?}..={hi:?} for a rank-{rank} array",
                    job.shard.coord, job.path
                ),
            );
            return;
        }
        let outside = index.coords().find(|c| {
            c.len() != lo.len() || c.iter().zip(lo).zip(hi).any(|((c, l), h)| c < l || c > h)
        });
        if let Some(coord) = outside {
            self.corrupt(
                job.key,
                format!(
                    "shard {:?} of {}: base entry {coord:?} lies outside the recorded base box {lo:?}..={hi:?}",
                    job.shard.coord, job.path
                ),
            );
        }
    }

    fn check_base_region(&self, id: &ManifestId, job: &ShardJob<'_>, index: &ShardIndex) {
        let claim = (*id, job.shard.coord.clone(), job.shard_shape.to_vec());
        if !lock(&self.state).base_regions.insert(claim) {
            return;
        }
        for coord in index.coords() {
            if coord.len() != job.shard_shape.len()
                || shard_of(coord, job.shard_shape) != job.shard.coord
            {
                self.problem(FsckProblem::EntryOutsideShard {
                    key: layout::manifest_key(id),
                    path: job.path.clone(),
                    shard: job.shard.coord.clone(),
                    coord: coord.to_vec(),
                });
            }
        }
    }

    /// Decodes and checks an inline delta; `None` when it cannot be decoded (reported).
    async fn check_delta(
        &self,
        job: &ShardJob<'_>,
        columns: &ManifestColumns,
    ) -> Result<Option<Vec<ManifestEntry>>> {
        let context = format!(
            "inline delta of shard {:?} of {}",
            job.shard.coord, job.path
        );
        let entries = match columns.decode() {
            Ok(entries) => entries,
            Err(e) => {
                self.corrupt(job.key, format!("{context}: {}", reason_of(e)));
                return Ok(None);
            }
        };
        if !is_sorted_unique(&entries) {
            self.corrupt(
                job.key,
                format!("{context}: entries are not sorted and unique"),
            );
            return Ok(None);
        }
        for (coord, _) in &entries {
            if coord.len() != job.shard_shape.len()
                || shard_of(coord, job.shard_shape) != job.shard.coord
            {
                self.problem(FsckProblem::EntryOutsideShard {
                    key: job.key.to_string(),
                    path: job.path.clone(),
                    shard: job.shard.coord.clone(),
                    coord: coord.clone(),
                });
            }
        }
        let live = entries.iter().filter(|(_, r)| r.is_some()).count() as u64;
        self.count(|r| r.chunk_refs += live);
        self.check_ranges(job.key, &entries).await?;
        Ok(Some(entries))
    }

    // ---- manifest bases ---------------------------------------------------------------

    /// The summary of a verified base, checking it on first use; `None` when it is missing
    /// or damaged (reported once).
    async fn base_summary(&self, id: &ManifestId, referrer: &str) -> Result<Option<BaseSummary>> {
        Ok(cell(&self.manifests, id)
            .get_or_try_init(|| self.check_base(id, referrer))
            .await?
            .clone())
    }

    async fn check_base(&self, id: &ManifestId, referrer: &str) -> Result<Option<BaseSummary>> {
        let key = layout::manifest_key(id);
        let Some(bytes) = self
            .read_object(&key, id.as_bytes(), referrer, Counted::Manifest)
            .await?
        else {
            return Ok(None);
        };
        let entries = match decode_base(&key, &bytes) {
            Ok(entries) => entries,
            Err(e) => {
                self.absorb(e, &key, referrer)?;
                return Ok(None);
            }
        };
        if !is_sorted_unique(&entries) {
            self.corrupt(&key, "entries are not sorted and unique");
            return Ok(None);
        }
        let tombstones = entries.iter().filter(|(_, r)| r.is_none()).count();
        if tombstones > 0 {
            self.corrupt(
                &key,
                format!("{tombstones} tombstone entries; a base holds none"),
            );
        }
        self.check_ranges(&key, &entries).await?;
        let index = Arc::new(ShardIndex::from_base(entries)?);
        let mut counts = ShardCounts::default();
        for (_, r) in index.iter() {
            counts.add(&r);
        }
        self.count(|r| r.chunk_refs += counts.chunk_count);
        let summary = BaseSummary {
            counts,
            extent: Extent::of(index.coords()).into_option(),
        };
        self.bases.insert(*id, index);
        Ok(Some(summary))
    }

    /// The entries of a base already verified, from the cache or read again quietly.
    async fn base_entries(&self, id: &ManifestId) -> Result<Option<Arc<ShardIndex>>> {
        if let Some(found) = self.bases.get(id) {
            return Ok(Some(found));
        }
        let key = layout::manifest_key(id);
        let Fetched::Intact(bytes) = self.fetch(&key, id.as_bytes()).await? else {
            return Ok(None);
        };
        let Ok(entries) = decode_base(&key, &bytes) else {
            return Ok(None);
        };
        let index = Arc::new(ShardIndex::from_base(entries)?);
        self.bases.insert(*id, index.clone());
        Ok(Some(index))
    }
}
