//! [`ArrayEdits`]: the uncommitted chunk edits of one array, kept compact at any size.
//!
//! New edits go to a small ordered map. When it holds [`FREEZE_AT`] edits, those that are
//! settled (stored inline, in a written object, or deletions) are frozen into a sorted run of
//! encoded blocks (`edit_runs.rs`): a few bytes per edit instead of a hundred. Runs merge
//! like a binary counter, so a session holds O(log n) of them, and runs of a writer that
//! proceeds in order are joined without decoding. Clones share the runs, so taking a copy of
//! the edits for a commit costs only the small map.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::edit_runs::{Run, SpillFile};
use super::packs::Packs;
use super::pending_chunk::PendingChunk;
use crate::error::Result;
use crate::format::manifest::{ChunkCoord, ChunkRef, ManifestEntry};

/// Edits held in the ordered map before they are frozen into a run.
pub(crate) const FREEZE_AT: usize = 32 * 1024;

/// The chunk edits of one array: `Some(chunk)` writes, `None` deletes.
#[derive(Clone, Debug, Default)]
pub(crate) struct ArrayEdits {
    /// Rank of the coordinates held (edits of another rank replace them all: they could only
    /// come from a change of the array's rank, which makes the old ones unreachable).
    ndim: Option<usize>,
    /// Newest edits, including those that are not settled yet (chunks in unwritten packs).
    recent: BTreeMap<ChunkCoord, Option<PendingChunk>>,
    /// Frozen runs, oldest first; newer runs win.
    runs: Vec<Arc<Run>>,
    /// Coordinates whose edit was withdrawn while a run held it (they read as "no edit").
    unset: BTreeSet<ChunkCoord>,
    /// The ordered map is frozen again once it holds this many edits (at least
    /// [`FREEZE_AT`]): edits of chunks in unwritten packs stay in the map, so the next
    /// attempt waits for [`FREEZE_AT`] new edits rather than rescanning on every insert.
    next_freeze: usize,
}

impl ArrayEdits {
    /// The edit at `coord`: `None` when there is none, `Some(None)` for a deletion.
    pub(crate) fn get(&self, coord: &[u64]) -> Result<Option<Option<PendingChunk>>> {
        if let Some(edit) = self.recent.get(coord) {
            return Ok(Some(edit.clone()));
        }
        if self.runs.is_empty() || self.unset.contains(coord) {
            return Ok(None);
        }
        for run in self.runs.iter().rev() {
            if let Some(edit) = run.get(coord)? {
                return Ok(Some(edit.map(PendingChunk::Ready)));
            }
        }
        Ok(None)
    }

    /// True when an edit (write or deletion) is recorded at `coord`.
    pub(crate) fn contains(&self, coord: &[u64]) -> Result<bool> {
        Ok(self.get(coord)?.is_some())
    }

    /// Records an edit.
    pub(crate) fn insert(&mut self, coord: ChunkCoord, edit: Option<PendingChunk>) {
        if self.ndim.is_some_and(|n| n != coord.len()) {
            *self = ArrayEdits::default();
        }
        self.ndim = Some(coord.len());
        if !self.unset.is_empty() {
            self.unset.remove(&coord);
        }
        self.recent.insert(coord, edit);
    }

    /// Withdraws the edit at `coord` (the chunk reads as in the base snapshot again).
    pub(crate) fn remove(&mut self, coord: &[u64]) -> Result<()> {
        self.recent.remove(coord);
        for run in &self.runs {
            if run.get(coord)?.is_some() {
                self.unset.insert(coord.to_vec());
                break;
            }
        }
        Ok(())
    }

    /// True when no edit is recorded.
    pub(crate) fn is_empty(&self) -> bool {
        if !self.recent.is_empty() {
            return false;
        }
        if self.unset.is_empty() {
            return self.runs.is_empty();
        }
        // Withdrawn edits may cover every run entry: look for one that is not.
        self.iter().next().is_none()
    }

    /// Every edit in coordinate order.
    pub(crate) fn iter(&self) -> EditIter<'_> {
        let mut sources: Vec<Source<'_>> = Vec::with_capacity(self.runs.len() + 1);
        sources.push(Source::Recent(self.recent.iter()));
        for run in self.runs.iter().rev() {
            sources.push(Source::Run(run.iter()));
        }
        let heads = (0..sources.len()).map(|_| None).collect();
        EditIter {
            sources,
            heads,
            primed: false,
            unset: &self.unset,
        }
    }

    /// Keeps only the edits whose coordinates `keep` accepts.
    pub(crate) fn retain(&mut self, keep: &dyn Fn(&[u64]) -> bool) -> Result<()> {
        self.recent.retain(|c, _| keep(c));
        self.unset.retain(|c| keep(c));
        for run in &mut self.runs {
            if let Some(filtered) = run.filtered(keep)? {
                *run = Arc::new(filtered);
            }
        }
        self.runs.retain(|r| r.len() > 0);
        Ok(())
    }

    /// Rewrites edits of chunks in written packs to their final locations.
    pub(crate) fn settle(&mut self, packs: &Packs) -> Result<()> {
        for edit in self.recent.values_mut() {
            if let Some(PendingChunk::Packed {
                pack,
                offset,
                length,
            }) = edit
            {
                match packs.locate(*pack, *offset, *length) {
                    Some(Err(object)) => {
                        *edit = Some(PendingChunk::Ready(ChunkRef::Native {
                            object,
                            offset: *offset,
                            length: *length,
                        }))
                    }
                    _ => {
                        return Err(crate::error::Error::corrupt(
                            "<session pack>",
                            "a pack was not written before commit",
                        ))
                    }
                }
            }
        }
        Ok(())
    }

    /// When the ordered map is full, freezes its settled edits (packed chunks whose pack is
    /// written count as settled) into a run, then merges runs of similar size.
    /// Returns whether a run was frozen.
    pub(crate) fn maybe_freeze(&mut self, packs: &Packs) -> Result<bool> {
        if self.recent.len() < FREEZE_AT.max(self.next_freeze) {
            return Ok(false);
        }
        self.freeze(packs)
    }

    /// Freezes the settled edits of the ordered map into a run whatever their number (so
    /// that clones share them rather than copy them), then merges runs of similar size.
    /// Returns whether a run was frozen.
    pub(crate) fn freeze(&mut self, packs: &Packs) -> Result<bool> {
        let mut frozen: Vec<ManifestEntry> = Vec::with_capacity(self.recent.len());
        let mut kept = 0usize;
        for (coord, edit) in &self.recent {
            let settled = match edit {
                None => None,
                Some(PendingChunk::Ready(r)) => Some(r.clone()),
                Some(PendingChunk::Packed {
                    pack,
                    offset,
                    length,
                }) => match packs.locate(*pack, *offset, *length) {
                    Some(Err(object)) => Some(ChunkRef::Native {
                        object,
                        offset: *offset,
                        length: *length,
                    }),
                    // In a pack not written yet: stays in the ordered map.
                    _ => {
                        kept += 1;
                        continue;
                    }
                },
            };
            frozen.push((coord.clone(), settled));
        }
        self.next_freeze = kept.saturating_add(FREEZE_AT);
        if frozen.is_empty() {
            return Ok(false);
        }
        // The run is built before anything leaves the map, so a failure loses no edit.
        let run = Run::from_sorted(frozen)?;
        self.recent.retain(|_, edit| {
            matches!(edit, Some(PendingChunk::Packed { pack, offset, length })
                if !matches!(packs.locate(*pack, *offset, *length), Some(Err(_))))
        });
        self.runs.push(Arc::new(run));
        while self.runs.len() >= 2 {
            let n = self.runs.len();
            let (older, newer) = (&self.runs[n - 2], &self.runs[n - 1]);
            if newer.len().saturating_mul(2) < older.len() {
                break;
            }
            let merged = Run::merge(older, newer)?;
            self.runs.truncate(n - 2);
            self.runs.push(Arc::new(merged));
        }
        Ok(true)
    }

    /// The first coordinate, in order, that `keep` accepts and where `self` and `other` hold
    /// different edits (an edit or none, a write or a deletion, another chunk). Cheap when one
    /// is a clone of the other that nothing changed since (they share their runs); otherwise
    /// both are read in full.
    pub(crate) fn first_difference(
        &self,
        other: &ArrayEdits,
        keep: &dyn Fn(&[u64]) -> bool,
    ) -> Result<Option<ChunkCoord>> {
        let shared_runs = self.runs.len() == other.runs.len()
            && self
                .runs
                .iter()
                .zip(&other.runs)
                .all(|(a, b)| Arc::ptr_eq(a, b));
        if shared_runs && self.recent == other.recent && self.unset == other.unset {
            return Ok(None);
        }
        let (mut mine, mut theirs) = (self.iter().peekable(), other.iter().peekable());
        loop {
            let order = match (mine.peek(), theirs.peek()) {
                (None, None) => return Ok(None),
                (Some(Err(_)), _) | (_, None) => std::cmp::Ordering::Less,
                (_, Some(Err(_))) | (None, _) => std::cmp::Ordering::Greater,
                (Some(Ok((a, _))), Some(Ok((b, _)))) => a.cmp(b),
            };
            let differing = match order {
                std::cmp::Ordering::Less => mine.next().map(|e| e.map(|(c, _)| Some(c))),
                std::cmp::Ordering::Greater => theirs.next().map(|e| e.map(|(c, _)| Some(c))),
                std::cmp::Ordering::Equal => match (mine.next(), theirs.next()) {
                    (Some(a), Some(b)) => {
                        let ((c, ea), (_, eb)) = (a?, b?);
                        Some(Ok((ea != eb).then_some(c)))
                    }
                    _ => None,
                },
            };
            match differing.transpose()? {
                Some(Some(c)) if keep(&c) => return Ok(Some(c)),
                Some(_) => {}
                None => return Ok(None),
            }
        }
    }

    /// Bytes of memory held by the frozen runs.
    pub(crate) fn run_memory_bytes(&self) -> u64 {
        self.runs.iter().map(|r| r.memory_bytes()).sum()
    }

    /// Moves the frozen runs' blocks to `file`; returns the bytes moved.
    pub(crate) fn spill(&mut self, file: &Arc<SpillFile>) -> Result<u64> {
        let mut moved = 0;
        for run in &mut self.runs {
            if run.memory_bytes() > 1024 {
                let mut spilled = (**run).clone();
                moved += spilled.spill(file)?;
                *run = Arc::new(spilled);
            }
        }
        Ok(moved)
    }
}

enum Source<'a> {
    Recent(std::collections::btree_map::Iter<'a, ChunkCoord, Option<PendingChunk>>),
    Run(super::edit_runs::RunIter<'a>),
}

impl Source<'_> {
    fn next(&mut self) -> Option<Result<(ChunkCoord, Option<PendingChunk>)>> {
        match self {
            Source::Recent(it) => it.next().map(|(c, e)| Ok((c.clone(), e.clone()))),
            Source::Run(it) => it
                .next()
                .map(|r| r.map(|(c, e)| (c, e.map(PendingChunk::Ready)))),
        }
    }
}

/// Merged, ordered iteration over an array's edits: for each coordinate, the newest edit.
pub(crate) struct EditIter<'a> {
    /// Newest first: the ordered map, then runs from newest to oldest.
    sources: Vec<Source<'a>>,
    heads: Vec<Option<(ChunkCoord, Option<PendingChunk>)>>,
    primed: bool,
    unset: &'a BTreeSet<ChunkCoord>,
}

impl Iterator for EditIter<'_> {
    type Item = Result<(ChunkCoord, Option<PendingChunk>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if !self.primed {
            self.primed = true;
            for i in 0..self.sources.len() {
                match self.sources[i].next().transpose() {
                    Ok(head) => self.heads[i] = head,
                    Err(e) => return Some(Err(e)),
                }
            }
        }
        loop {
            // The smallest coordinate among the heads; on ties the newest source wins.
            let mut best: Option<usize> = None;
            for (i, head) in self.heads.iter().enumerate() {
                if let Some((c, _)) = head {
                    if best.is_none_or(|b| self.heads[b].as_ref().is_some_and(|(bc, _)| c < bc)) {
                        best = Some(i);
                    }
                }
            }
            let best = best?;
            let (coord, edit) = self.heads[best].take()?;
            // Advance every source positioned at the same coordinate.
            for i in 0..self.sources.len() {
                let at_same = i == best || self.heads[i].as_ref().is_some_and(|(c, _)| *c == coord);
                if at_same {
                    match self.sources[i].next().transpose() {
                        Ok(head) => self.heads[i] = head,
                        Err(e) => return Some(Err(e)),
                    }
                }
            }
            // A withdrawn edit hides run entries, never the ordered map's.
            if best != 0 && self.unset.contains(&coord) {
                continue;
            }
            return Some(Ok((coord, edit)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn chunk(i: u64) -> Option<PendingChunk> {
        Some(PendingChunk::Ready(ChunkRef::Inline(Bytes::from(
            i.to_le_bytes().to_vec(),
        ))))
    }

    /// Random writes, deletes and withdrawals against a plain map, across many freezes.
    #[test]
    fn behaves_like_an_ordered_map() {
        let mut edits = ArrayEdits::default();
        let mut model: BTreeMap<ChunkCoord, Option<PendingChunk>> = BTreeMap::new();
        let packs = Packs::default();
        let mut state = 12345u64;
        let mut rand = move |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 33) % n
        };
        for step in 0..(3 * FREEZE_AT as u64 + 1000) {
            let coord = vec![rand(300), rand(400)];
            match rand(10) {
                0 => {
                    edits.insert(coord.clone(), None);
                    model.insert(coord, None);
                }
                1 => {
                    edits.remove(&coord).unwrap();
                    model.remove(&coord);
                }
                _ => {
                    edits.insert(coord.clone(), chunk(step));
                    model.insert(coord, chunk(step));
                }
            }
            edits.maybe_freeze(&packs).unwrap();
        }
        assert!(!edits.runs.is_empty(), "runs were frozen");
        assert!(edits.runs.len() <= 8, "{} runs", edits.runs.len());
        let all: Vec<_> = edits.iter().map(Result::unwrap).collect();
        let expected: Vec<_> = model.clone().into_iter().collect();
        assert_eq!(all, expected);
        for c in (0..300).step_by(7) {
            for d in (0..400).step_by(11) {
                let coord = vec![c, d];
                assert_eq!(edits.get(&coord).unwrap(), model.get(&coord).cloned());
            }
        }
        edits.retain(&|c: &[u64]| c[0] < 100).unwrap();
        model.retain(|c, _| c[0] < 100);
        let all: Vec<_> = edits.iter().map(Result::unwrap).collect();
        assert_eq!(all, model.into_iter().collect::<Vec<_>>());
        let file = SpillFile::create(None).unwrap();
        let before: Vec<_> = edits.iter().map(Result::unwrap).collect();
        assert!(edits.spill(&file).unwrap() > 0);
        assert!(edits.run_memory_bytes() < 100_000);
        let after: Vec<_> = edits.iter().map(Result::unwrap).collect();
        assert_eq!(before, after);
    }

    #[test]
    fn edits_in_unwritten_packs_do_not_make_every_insert_rescan() {
        let mut edits = ArrayEdits::default();
        // No pack is written: every packed edit has to stay in the ordered map.
        let packs = Packs::default();
        for i in 0..FREEZE_AT as u64 {
            let packed = PendingChunk::Packed {
                pack: 0,
                offset: i,
                length: 1,
            };
            edits.insert(vec![i], Some(packed));
        }
        assert!(
            !edits.maybe_freeze(&packs).unwrap(),
            "nothing settled to freeze"
        );
        assert_eq!(edits.next_freeze, 2 * FREEZE_AT);
        edits.insert(vec![u64::MAX], None);
        assert!(!edits.maybe_freeze(&packs).unwrap());
        assert_eq!(
            edits.next_freeze,
            2 * FREEZE_AT,
            "no rescan below the raised threshold"
        );
        assert_eq!(edits.iter().count(), FREEZE_AT + 1);
    }

    #[test]
    fn first_difference_compares_clones_and_contents() {
        let packs = Packs::default();
        let mut edits = ArrayEdits::default();
        for i in 0..10 {
            edits.insert(vec![i], chunk(i));
        }
        edits.freeze(&packs).unwrap();
        let ticket = edits.clone();
        let all = |_: &[u64]| true;
        assert_eq!(edits.first_difference(&ticket, &all).unwrap(), None);
        edits.insert(vec![7], None);
        edits.insert(vec![12], chunk(12));
        assert_eq!(
            edits.first_difference(&ticket, &all).unwrap(),
            Some(vec![7])
        );
        assert_eq!(
            ticket
                .first_difference(&edits, &|c: &[u64]| c[0] > 7)
                .unwrap(),
            Some(vec![12])
        );
        // The same contents in another layout are no difference.
        edits.insert(vec![7], chunk(7));
        edits.remove(&[12]).unwrap();
        assert_eq!(edits.first_difference(&ticket, &all).unwrap(), None);
        edits.remove(&[3]).unwrap();
        assert_eq!(
            edits.first_difference(&ticket, &all).unwrap(),
            Some(vec![3])
        );
    }

    #[test]
    fn a_change_of_rank_drops_the_old_edits() {
        let mut edits = ArrayEdits::default();
        edits.insert(vec![1], chunk(1));
        edits.insert(vec![1, 2], chunk(2));
        assert_eq!(edits.get(&[1]).unwrap(), None);
        assert_eq!(edits.iter().count(), 1);
        let mut empty = ArrayEdits::default();
        assert!(empty.is_empty());
        empty.insert(vec![0], None);
        assert!(!empty.is_empty());
    }
}
