//! Frozen, sorted runs of chunk edits: how a session keeps millions of edits in little memory.
//!
//! A run is a sorted list of settled edits (coordinates with a stored reference or a deletion)
//! cut into blocks of up to [`BLOCK_ENTRIES`] entries. Each block is the MessagePack encoding of
//! a [`ManifestColumns`] (a few bytes per entry for neighbouring chunks), held in memory or,
//! once the session's edits outgrow their memory budget, in a local spill file. Only block
//! boundaries stay in memory, so a lookup decodes one block and iteration one block at a time.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::changes::spool_error;
use crate::format::manifest::{ChunkCoord, ChunkRef, ManifestColumns, ManifestEntry};

/// Entries per block.
pub(crate) const BLOCK_ENTRIES: usize = 4096;

/// An append-only local file holding spilled blocks; deleted when the last run using it goes.
#[derive(Debug)]
pub(crate) struct SpillFile {
    file: Mutex<tempfile::NamedTempFile>,
}

impl SpillFile {
    /// A new spill file in `dir` (the system temporary directory when `None`).
    pub(crate) fn create(dir: Option<&Path>) -> Result<Arc<Self>> {
        let builder = {
            let mut b = tempfile::Builder::new();
            b.prefix("floe-edits-");
            b
        };
        let file = match dir {
            Some(dir) => builder.tempfile_in(dir),
            None => builder.tempfile(),
        }
        .map_err(spool_error)?;
        Ok(Arc::new(SpillFile {
            file: Mutex::new(file),
        }))
    }

    fn append(&self, bytes: &[u8]) -> Result<u64> {
        let mut file = self.file.lock().map_err(|_| poisoned())?;
        let f: &mut File = file.as_file_mut();
        let offset = f.seek(SeekFrom::End(0)).map_err(spool_error)?;
        f.write_all(bytes).map_err(spool_error)?;
        Ok(offset)
    }

    fn read(&self, offset: u64, len: u64) -> Result<Vec<u8>> {
        let mut file = self.file.lock().map_err(|_| poisoned())?;
        let f: &mut File = file.as_file_mut();
        f.seek(SeekFrom::Start(offset)).map_err(spool_error)?;
        let mut out = vec![0u8; len as usize];
        f.read_exact(&mut out).map_err(spool_error)?;
        Ok(out)
    }
}

fn poisoned() -> Error {
    Error::Spool {
        reason: "a spill file lock was poisoned by a panic".into(),
    }
}

#[derive(Clone, Debug)]
enum BlockData {
    Memory(Bytes),
    Spilled {
        file: Arc<SpillFile>,
        offset: u64,
        len: u64,
    },
}

#[derive(Clone, Debug)]
struct Block {
    first: ChunkCoord,
    last: ChunkCoord,
    data: BlockData,
}

impl Block {
    fn encode(entries: &[ManifestEntry]) -> Result<Block> {
        let columns = ManifestColumns::encode(entries)?;
        let bytes = rmp_serde::to_vec_named(&columns).map_err(|e| Error::Spool {
            reason: format!("cannot encode a block of chunk edits: {e}"),
        })?;
        Ok(Block {
            first: entries.first().map(|(c, _)| c.clone()).unwrap_or_default(),
            last: entries.last().map(|(c, _)| c.clone()).unwrap_or_default(),
            data: BlockData::Memory(Bytes::from(bytes)),
        })
    }

    fn decode(&self) -> Result<Vec<ManifestEntry>> {
        let bytes = match &self.data {
            BlockData::Memory(b) => b.to_vec(),
            BlockData::Spilled { file, offset, len } => file.read(*offset, *len)?,
        };
        let columns: ManifestColumns = rmp_serde::from_slice(&bytes)
            .map_err(|e| Error::corrupt("<spilled chunk edits>", e.to_string()))?;
        columns.decode()
    }

    fn memory_bytes(&self) -> u64 {
        let coords = (self.first.capacity() + self.last.capacity()) * 8 + 64;
        coords as u64
            + match &self.data {
                BlockData::Memory(b) => b.len() as u64,
                BlockData::Spilled { .. } => 0,
            }
    }
}

/// A sorted run of settled edits (`None` = deleted), unique coordinates.
#[derive(Clone, Debug, Default)]
pub(crate) struct Run {
    blocks: Vec<Block>,
    entries: u64,
}

impl Run {
    /// Builds a run from entries sorted by coordinates without duplicates.
    pub(crate) fn from_sorted(entries: impl IntoIterator<Item = ManifestEntry>) -> Result<Run> {
        let mut run = Run::default();
        let mut block = Vec::with_capacity(BLOCK_ENTRIES);
        for entry in entries {
            block.push(entry);
            if block.len() == BLOCK_ENTRIES {
                run.push_block(&block)?;
                block.clear();
            }
        }
        if !block.is_empty() {
            run.push_block(&block)?;
        }
        Ok(run)
    }

    fn push_block(&mut self, entries: &[ManifestEntry]) -> Result<()> {
        self.entries += entries.len() as u64;
        self.blocks.push(Block::encode(entries)?);
        Ok(())
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> u64 {
        self.entries
    }

    /// Smallest and largest coordinates.
    fn bounds(&self) -> Option<(&ChunkCoord, &ChunkCoord)> {
        Some((&self.blocks.first()?.first, &self.blocks.last()?.last))
    }

    /// The edit stored for `coord`: `Some(None)` for a deletion, `None` when the run has none.
    pub(crate) fn get(&self, coord: &[u64]) -> Result<Option<Option<ChunkRef>>> {
        let i = self.blocks.partition_point(|b| b.last.as_slice() < coord);
        let Some(block) = self.blocks.get(i) else {
            return Ok(None);
        };
        if block.first.as_slice() > coord {
            return Ok(None);
        }
        let entries = block.decode()?;
        Ok(entries
            .binary_search_by(|(c, _)| c.as_slice().cmp(coord))
            .ok()
            .map(|k| entries[k].1.clone()))
    }

    /// The entries in order, decoding one block at a time.
    pub(crate) fn iter(&self) -> RunIter<'_> {
        RunIter {
            run: self,
            next_block: 0,
            current: Vec::new().into_iter(),
        }
    }

    /// Bytes of memory the run holds.
    pub(crate) fn memory_bytes(&self) -> u64 {
        self.blocks.iter().map(Block::memory_bytes).sum::<u64>() + 48
    }

    /// Moves every in-memory block to `file`; returns the bytes moved.
    pub(crate) fn spill(&mut self, file: &Arc<SpillFile>) -> Result<u64> {
        let mut moved = 0;
        for block in &mut self.blocks {
            if let BlockData::Memory(bytes) = &block.data {
                let offset = file.append(bytes)?;
                moved += bytes.len() as u64;
                block.data = BlockData::Spilled {
                    file: file.clone(),
                    offset,
                    len: bytes.len() as u64,
                };
            }
        }
        Ok(moved)
    }

    /// Merges an older and a newer run (the newer one's entry wins on equal coordinates).
    /// Runs whose coordinate ranges do not interleave are joined without decoding.
    pub(crate) fn merge(older: &Run, newer: &Run) -> Result<Run> {
        match (older.bounds(), newer.bounds()) {
            (None, _) => return Ok(newer.clone()),
            (_, None) => return Ok(older.clone()),
            (Some((_, older_last)), Some((newer_first, _))) if older_last < newer_first => {
                return Ok(Run {
                    blocks: older.blocks.iter().chain(&newer.blocks).cloned().collect(),
                    entries: older.entries + newer.entries,
                })
            }
            (Some((older_first, _)), Some((_, newer_last))) if newer_last < older_first => {
                return Ok(Run {
                    blocks: newer.blocks.iter().chain(&older.blocks).cloned().collect(),
                    entries: older.entries + newer.entries,
                })
            }
            _ => {}
        }
        let mut merged = Vec::new();
        let mut out = Run::default();
        let (mut a, mut b) = (older.iter(), newer.iter());
        let (mut head_a, mut head_b) = (a.next().transpose()?, b.next().transpose()?);
        loop {
            let entry = match (head_a.take(), head_b.take()) {
                (None, None) => break,
                (Some(x), None) => {
                    head_a = a.next().transpose()?;
                    x
                }
                (None, Some(y)) => {
                    head_b = b.next().transpose()?;
                    y
                }
                (Some(x), Some(y)) => match x.0.cmp(&y.0) {
                    std::cmp::Ordering::Less => {
                        head_b = Some(y);
                        head_a = a.next().transpose()?;
                        x
                    }
                    std::cmp::Ordering::Greater => {
                        head_a = Some(x);
                        head_b = b.next().transpose()?;
                        y
                    }
                    std::cmp::Ordering::Equal => {
                        head_a = a.next().transpose()?;
                        head_b = b.next().transpose()?;
                        y
                    }
                },
            };
            merged.push(entry);
            if merged.len() == BLOCK_ENTRIES {
                out.push_block(&merged)?;
                merged.clear();
            }
        }
        if !merged.is_empty() {
            out.push_block(&merged)?;
        }
        Ok(out)
    }

    /// The run without the entries `keep` rejects (`None` when nothing was dropped).
    pub(crate) fn filtered(&self, keep: &dyn Fn(&[u64]) -> bool) -> Result<Option<Run>> {
        let mut dropped = false;
        let mut kept = Vec::new();
        for entry in self.iter() {
            let entry = entry?;
            if keep(&entry.0) {
                kept.push(entry);
            } else {
                dropped = true;
            }
        }
        if !dropped {
            return Ok(None);
        }
        Run::from_sorted(kept).map(Some)
    }
}

/// Iterator over a run's entries.
pub(crate) struct RunIter<'a> {
    run: &'a Run,
    next_block: usize,
    current: std::vec::IntoIter<ManifestEntry>,
}

impl Iterator for RunIter<'_> {
    type Item = Result<ManifestEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(entry) = self.current.next() {
                return Some(Ok(entry));
            }
            let block = self.run.blocks.get(self.next_block)?;
            self.next_block += 1;
            match block.decode() {
                Ok(entries) => self.current = entries.into_iter(),
                Err(e) => {
                    self.next_block = self.run.blocks.len();
                    return Some(Err(e));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(i: u64) -> Option<ChunkRef> {
        Some(ChunkRef::Inline(Bytes::from(i.to_le_bytes().to_vec())))
    }

    fn run_of(coords: impl IntoIterator<Item = u64>, tag: u64) -> Run {
        Run::from_sorted(coords.into_iter().map(|c| {
            let r = if c % 7 == 0 {
                None
            } else {
                inline(c * 1000 + tag)
            };
            (vec![c / 100, c % 100], r)
        }))
        .unwrap()
    }

    #[test]
    fn lookups_iteration_merge_filter_and_spill() {
        let older = run_of((0..10_000).step_by(2), 1);
        let newer = run_of((0..10_000).step_by(3), 2);
        assert_eq!(older.len(), 5000);
        assert_eq!(older.get(&[0, 4]).unwrap(), Some(inline(4001)));
        assert_eq!(older.get(&[0, 7]).unwrap(), None, "odd coordinates absent");
        assert_eq!(older.get(&[0, 14]).unwrap(), Some(None), "a deletion");
        let merged = Run::merge(&older, &newer).unwrap();
        let all: Vec<ManifestEntry> = merged.iter().map(Result::unwrap).collect();
        let expected: Vec<u64> = (0..10_000).filter(|c| c % 2 == 0 || c % 3 == 0).collect();
        assert_eq!(all.len(), expected.len());
        for ((coord, r), c) in all.iter().zip(&expected) {
            assert_eq!(coord, &vec![c / 100, c % 100]);
            let tag = if c % 3 == 0 { 2 } else { 1 };
            let want = if c % 7 == 0 {
                None
            } else {
                inline(c * 1000 + tag)
            };
            assert_eq!(r, &want, "coordinate {c}");
        }
        // Disjoint runs are joined without decoding.
        let low = run_of(0..5000, 1);
        let high = run_of(5000..9000, 1);
        let joined = Run::merge(&high, &low).unwrap();
        assert_eq!(joined.len(), 9000);
        let coords: Vec<ChunkCoord> = joined.iter().map(|e| e.unwrap().0).collect();
        assert!(coords.windows(2).all(|w| w[0] < w[1]));
        // Filtering.
        let kept = merged.filtered(&|c: &[u64]| c[0] < 10).unwrap().unwrap();
        assert!(kept.iter().all(|e| e.unwrap().0[0] < 10));
        assert!(merged.filtered(&|_: &[u64]| true).unwrap().is_none());
        // Spilling keeps every answer and frees the memory.
        let mut spilled = merged.clone();
        let before = spilled.memory_bytes();
        let file = SpillFile::create(None).unwrap();
        assert!(spilled.spill(&file).unwrap() > 0);
        assert!(spilled.memory_bytes() < before / 4);
        assert_eq!(
            spilled.get(&[30, 6]).unwrap(),
            merged.get(&[30, 6]).unwrap()
        );
        let again: Vec<ManifestEntry> = spilled.iter().map(Result::unwrap).collect();
        assert_eq!(again, all);
    }
}
