//! Chunk packing: small chunks written in one session share pack objects.

use bytes::{Bytes, BytesMut};

use crate::format::envelope::chunk_object_header;
use crate::id::ChunkObjectId;

/// A new pack starts with room for this many bytes (or the pack target, if smaller), so
/// filling it does not copy the buffer over and over.
const INITIAL_PACK_CAPACITY: usize = 8 << 20;

/// State of one pack of a session.
#[derive(Debug)]
pub(crate) enum PackState {
    /// Still accepting chunks (always the last pack).
    Open(BytesMut),
    /// Complete, not yet written.
    Sealed(Bytes),
    /// Complete, being written by one caller (others leave it alone).
    Writing(Bytes),
    /// Written under this id.
    Written(ChunkObjectId),
}

/// The packs of one session.
#[derive(Debug, Default)]
pub(crate) struct Packs {
    pub(crate) packs: Vec<PackState>,
}

impl Packs {
    /// Appends a chunk, returning `(pack, offset)`, and sealing the open pack first when the
    /// chunk would take it past `target` bytes.
    pub(crate) fn append(&mut self, data: &[u8], target: usize) -> (usize, u64) {
        let needs_new = match self.packs.last() {
            Some(PackState::Open(buf)) => {
                buf.len() + data.len() > target && buf.len() > chunk_object_header().len()
            }
            _ => true,
        };
        if needs_new {
            self.seal_open();
            let mut buf =
                BytesMut::with_capacity(target.clamp(1, INITIAL_PACK_CAPACITY) + data.len());
            buf.extend_from_slice(&chunk_object_header());
            self.packs.push(PackState::Open(buf));
        }
        let index = self.packs.len() - 1;
        let Some(PackState::Open(buf)) = self.packs.last_mut() else {
            unreachable!("an open pack was just ensured")
        };
        let offset = buf.len() as u64;
        buf.extend_from_slice(data);
        (index, offset)
    }

    /// Seals the open pack, if any.
    pub(crate) fn seal_open(&mut self) {
        if let Some(last) = self.packs.last_mut() {
            if let PackState::Open(buf) = last {
                let bytes = std::mem::take(buf).freeze();
                *last = PackState::Sealed(bytes);
            }
        }
    }

    /// Claims the sealed packs for writing: each is returned to exactly one caller, which
    /// then calls [`Packs::mark_written`] or, on failure, [`Packs::release`].
    pub(crate) fn claim_sealed(&mut self) -> Vec<(usize, Bytes)> {
        let mut claimed = Vec::new();
        for (i, slot) in self.packs.iter_mut().enumerate() {
            if let PackState::Sealed(bytes) = slot {
                let bytes = bytes.clone();
                *slot = PackState::Writing(bytes.clone());
                claimed.push((i, bytes));
            }
        }
        claimed
    }

    /// Gives back packs whose writer vanished (a write future dropped mid-way). Only called
    /// when no write can be in flight (a commit holds the session exclusively).
    pub(crate) fn reclaim_abandoned(&mut self) {
        for slot in &mut self.packs {
            if let PackState::Writing(bytes) = slot {
                *slot = PackState::Sealed(bytes.clone());
            }
        }
    }

    /// Gives a claimed pack back after a failed write, so a later call (or the commit)
    /// writes it.
    pub(crate) fn release(&mut self, index: usize) {
        if let Some(slot) = self.packs.get_mut(index) {
            if let PackState::Writing(bytes) = slot {
                *slot = PackState::Sealed(bytes.clone());
            }
        }
    }

    /// Records that pack `index` was written as `id`.
    pub(crate) fn mark_written(&mut self, index: usize, id: ChunkObjectId) {
        if let Some(slot) = self.packs.get_mut(index) {
            *slot = PackState::Written(id);
        }
    }

    /// Bytes of a chunk still in memory, or the object id to read it from.
    pub(crate) fn locate(
        &self,
        pack: usize,
        offset: u64,
        length: u64,
    ) -> Option<Result<Bytes, ChunkObjectId>> {
        let range = offset as usize..(offset + length) as usize;
        match self.packs.get(pack)? {
            PackState::Open(buf) => buf.get(range).map(|s| Ok(Bytes::copy_from_slice(s))),
            PackState::Sealed(bytes) | PackState::Writing(bytes) => {
                (range.end <= bytes.len()).then(|| Ok(bytes.slice(range)))
            }
            PackState::Written(id) => Some(Err(*id)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_fill_seal_and_locate() {
        let mut packs = Packs::default();
        let (p0, o0) = packs.append(b"hello", 40);
        assert_eq!((p0, o0), (0, 24));
        let (p1, o1) = packs.append(b"world!", 40);
        assert_eq!((p1, o1), (0, 29));
        let (p2, _) = packs.append(b"0123456789", 40);
        assert_eq!(p2, 1, "would overflow the target");
        assert_eq!(packs.claim_sealed().len(), 1);
        assert!(
            packs.claim_sealed().is_empty(),
            "a claimed pack is handed out once"
        );
        assert_eq!(
            packs.locate(0, 29, 6).unwrap().unwrap(),
            Bytes::from_static(b"world!")
        );
        assert_eq!(
            packs.locate(1, 24, 10).unwrap().unwrap(),
            Bytes::from_static(b"0123456789")
        );
        let id = ChunkObjectId::of_bytes(b"x");
        packs.mark_written(0, id);
        assert_eq!(packs.locate(0, 24, 5).unwrap(), Err(id));
        assert!(packs.locate(5, 0, 1).is_none());
        // A chunk larger than the target still gets a pack of its own.
        let (p3, _) = packs.append(&[0u8; 100], 40);
        assert_eq!(p3, 2);
    }
}
