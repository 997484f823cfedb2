//! The change stream: how a session's uncommitted changes travel between processes (a fork
//! ticket sent to a worker, a worker's changes sent back to the coordinator).
//!
//! Layout: the 8-byte magic `FLOECHG1`, then frames, each a little-endian `u32` payload length
//! followed by a MessagePack (rmp-serde, named fields) [`Frame`]. The first frame is a
//! [`Frame::Header`], the last a [`Frame::End`] carrying the frame count and the blake3 digest
//! of every byte before it, so a truncated or altered stream is detected before anything of it
//! is applied. A frame holds at most [`MAX_FRAME_BYTES`] bytes; chunk entries come in frames
//! of up to [`CHUNKS_PER_FRAME`] entries, so a reader never holds more than one frame.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::manifest::{ChunkCoord, ChunkRef, VirtualChunkRef, VirtualSource};
use crate::format::path::NodePath;
use crate::id::{ChunkObjectId, SnapshotId};

/// First bytes of every change stream.
pub const CHANGE_STREAM_MAGIC: &[u8; 8] = b"FLOECHG1";
/// Version of the frame payloads written here.
pub const CHANGE_STREAM_VERSION: u16 = 1;
/// Largest frame payload accepted (a frame of 4096 inline chunks of 512 bytes fits easily).
pub const MAX_FRAME_BYTES: u32 = 64 << 20;
/// Chunk entries per [`Frame::Chunks`].
pub const CHUNKS_PER_FRAME: usize = 4096;

/// What a stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StreamKind {
    /// A fork ticket: the coordinator's changes at fork time (every `before` is unset).
    Ticket,
    /// A worker's changes: what it changed relative to its ticket.
    WorkerChanges,
}

/// The state of one node in a change set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireNode {
    /// No edit: the node is as in the base snapshot.
    Unchanged,
    /// The node has this `zarr.json`; `fresh` nodes do not inherit the base's chunks.
    Put {
        /// The node's metadata document.
        zarr_json: String,
        /// Created or replaced by a node of another kind in the change set.
        fresh: bool,
    },
    /// The node was deleted.
    Deleted,
}

/// The state of one chunk in a change set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WireChunk {
    /// No edit: the chunk is as in the base snapshot.
    Unchanged,
    /// The chunk was deleted.
    Deleted,
    /// Bytes stored inline.
    Inline(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A byte range of a chunk object already written to the repository.
    Native {
        /// The chunk object.
        object: ChunkObjectId,
        /// Offset of the chunk inside it.
        offset: u64,
        /// Length of the chunk.
        length: u64,
    },
    /// A byte range of a file outside the repository.
    Virtual {
        /// The file and its checksum.
        source: VirtualSource,
        /// Offset of the chunk inside it.
        offset: u64,
        /// Length of the chunk.
        length: u64,
    },
}

impl WireChunk {
    /// The wire form of a chunk edit (`None` deletes).
    pub fn from_edit(edit: Option<&ChunkRef>) -> Self {
        match edit {
            None => WireChunk::Deleted,
            Some(ChunkRef::Inline(b)) => WireChunk::Inline(b.to_vec()),
            Some(ChunkRef::Native {
                object,
                offset,
                length,
            }) => WireChunk::Native {
                object: *object,
                offset: *offset,
                length: *length,
            },
            Some(ChunkRef::Virtual(v)) => WireChunk::Virtual {
                source: (*v.source).clone(),
                offset: v.offset,
                length: v.length,
            },
        }
    }

    /// The chunk edit this state stands for: `None` when unchanged, `Some(None)` when deleted.
    pub fn to_edit(&self) -> Option<Option<ChunkRef>> {
        match self {
            WireChunk::Unchanged => None,
            WireChunk::Deleted => Some(None),
            WireChunk::Inline(b) => Some(Some(ChunkRef::Inline(bytes::Bytes::from(b.clone())))),
            WireChunk::Native {
                object,
                offset,
                length,
            } => Some(Some(ChunkRef::Native {
                object: *object,
                offset: *offset,
                length: *length,
            })),
            WireChunk::Virtual {
                source,
                offset,
                length,
            } => Some(Some(ChunkRef::Virtual(VirtualChunkRef {
                source: std::sync::Arc::new(source.clone()),
                offset: *offset,
                length: *length,
            }))),
        }
    }
}

/// One chunk whose state changed from `before` to `after`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkChange {
    /// Chunk grid coordinates.
    pub coord: ChunkCoord,
    /// State in the ticket the worker started from (always unset in a ticket).
    pub before: WireChunk,
    /// State now.
    pub after: WireChunk,
}

/// One frame of a change stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// Always first.
    Header {
        /// Payload version ([`CHANGE_STREAM_VERSION`]).
        version: u16,
        /// Ticket or worker changes.
        kind: StreamKind,
        /// Identifies the fork: a worker's changes name the ticket they answer.
        fork_id: u128,
        /// The branch the coordinator will commit to.
        branch: String,
        /// The snapshot every change is relative to.
        base: SnapshotId,
        /// Sequence number of the branch record naming `base`.
        base_seq: u64,
    },
    /// A node whose state changed.
    Node {
        /// The node.
        path: NodePath,
        /// State in the ticket.
        before: WireNode,
        /// State now.
        after: WireNode,
    },
    /// An array whose chunk grid shrank in the session: base chunks outside `after` are gone.
    Clip {
        /// The array.
        path: NodePath,
        /// Clip in the ticket, if any.
        before: Option<ChunkCoord>,
        /// Clip now, if any.
        after: Option<ChunkCoord>,
    },
    /// Chunk changes of one array, sorted by coordinates within the frame.
    Chunks {
        /// The array.
        path: NodePath,
        /// At most [`CHUNKS_PER_FRAME`] changes.
        changes: Vec<ChunkChange>,
    },
    /// Always last.
    End {
        /// Frames before this one, header included.
        frames: u64,
        /// blake3 of every stream byte before this frame's length prefix.
        digest: [u8; 32],
    },
}

/// Writes a change stream to any writer, frame by frame.
pub struct FrameWriter<W: Write> {
    out: W,
    hasher: blake3::Hasher,
    frames: u64,
}

impl<W: Write> FrameWriter<W> {
    /// Starts a stream: writes the magic.
    pub fn new(mut out: W) -> Result<Self> {
        out.write_all(CHANGE_STREAM_MAGIC).map_err(spool_error)?;
        let mut hasher = blake3::Hasher::new();
        hasher.update(CHANGE_STREAM_MAGIC);
        Ok(FrameWriter {
            out,
            hasher,
            frames: 0,
        })
    }

    /// Appends one frame (never [`Frame::End`]: [`FrameWriter::finish`] writes it).
    pub fn write(&mut self, frame: &Frame) -> Result<()> {
        let payload = encode_frame(frame)?;
        self.hasher.update(&(payload.len() as u32).to_le_bytes());
        self.hasher.update(&payload);
        self.write_raw(&payload)?;
        self.frames += 1;
        Ok(())
    }

    fn write_raw(&mut self, payload: &[u8]) -> Result<()> {
        self.out
            .write_all(&(payload.len() as u32).to_le_bytes())
            .and_then(|()| self.out.write_all(payload))
            .map_err(spool_error)
    }

    /// Writes the end frame and returns the writer, flushed.
    pub fn finish(mut self) -> Result<W> {
        let end = Frame::End {
            frames: self.frames,
            digest: *self.hasher.finalize().as_bytes(),
        };
        let payload = encode_frame(&end)?;
        self.write_raw(&payload)?;
        self.out.flush().map_err(spool_error)?;
        Ok(self.out)
    }
}

fn encode_frame(frame: &Frame) -> Result<Vec<u8>> {
    let payload = rmp_serde::to_vec_named(frame)
        .map_err(|e| Error::corrupt("<change stream>", format!("cannot encode a frame: {e}")))?;
    if payload.len() as u64 > u64::from(MAX_FRAME_BYTES) {
        return Err(Error::corrupt(
            "<change stream>",
            format!("a frame of {} bytes exceeds the limit", payload.len()),
        ));
    }
    Ok(payload)
}

/// Reads a change stream frame by frame, checking the end frame's count and digest.
pub struct FrameReader<R: Read> {
    input: R,
    hasher: blake3::Hasher,
    frames: u64,
    ended: bool,
}

impl<R: Read> FrameReader<R> {
    /// Checks the magic.
    pub fn new(mut input: R) -> Result<Self> {
        let mut magic = [0u8; 8];
        input
            .read_exact(&mut magic)
            .map_err(|_| bad("the stream is shorter than its magic"))?;
        if &magic != CHANGE_STREAM_MAGIC {
            return Err(bad("not a floe change stream (wrong magic)"));
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(&magic);
        Ok(FrameReader {
            input,
            hasher,
            frames: 0,
            ended: false,
        })
    }

    /// The next frame, `None` after a valid end frame. A stream that stops early, has
    /// trailing bytes, or whose digest does not match fails.
    pub fn next_frame(&mut self) -> Result<Option<Frame>> {
        if self.ended {
            return Ok(None);
        }
        let mut len = [0u8; 4];
        self.input
            .read_exact(&mut len)
            .map_err(|_| bad("the stream ends without its end frame (truncated)"))?;
        let n = u32::from_le_bytes(len);
        if n > MAX_FRAME_BYTES {
            return Err(bad(&format!("a frame claims {n} bytes, over the limit")));
        }
        let mut payload = vec![0u8; n as usize];
        self.input
            .read_exact(&mut payload)
            .map_err(|_| bad("the stream ends inside a frame (truncated)"))?;
        let frame: Frame = rmp_serde::from_slice(&payload)
            .map_err(|e| bad(&format!("a frame does not decode: {e}")))?;
        if let Frame::End { frames, digest } = &frame {
            if *frames != self.frames || digest != self.hasher.finalize().as_bytes() {
                return Err(bad("the end frame does not match the stream (altered)"));
            }
            let mut extra = [0u8; 1];
            if self.input.read(&mut extra).map_err(spool_error)? != 0 {
                return Err(bad("bytes follow the end frame"));
            }
            self.ended = true;
            return Ok(None);
        }
        self.hasher.update(&len);
        self.hasher.update(&payload);
        self.frames += 1;
        Ok(Some(frame))
    }
}

fn bad(reason: &str) -> Error {
    Error::corrupt("<change stream>", reason)
}

/// An I/O error of a local spool file or of the caller's reader/writer.
pub(crate) fn spool_error(e: std::io::Error) -> Error {
    Error::Spool {
        reason: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Frame> {
        vec![
            Frame::Header {
                version: CHANGE_STREAM_VERSION,
                kind: StreamKind::WorkerChanges,
                fork_id: 7,
                branch: "main".into(),
                base: SnapshotId::of_bytes(b"s"),
                base_seq: 3,
            },
            Frame::Node {
                path: NodePath::new("/a").unwrap(),
                before: WireNode::Unchanged,
                after: WireNode::Put {
                    zarr_json: "{}".into(),
                    fresh: true,
                },
            },
            Frame::Chunks {
                path: NodePath::new("/a").unwrap(),
                changes: vec![ChunkChange {
                    coord: vec![1, 2],
                    before: WireChunk::Unchanged,
                    after: WireChunk::Inline(vec![1, 2, 3]),
                }],
            },
        ]
    }

    fn write(frames: &[Frame]) -> Vec<u8> {
        let mut w = FrameWriter::new(Vec::new()).unwrap();
        for f in frames {
            w.write(f).unwrap();
        }
        w.finish().unwrap()
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Frame>> {
        let mut r = FrameReader::new(bytes)?;
        let mut out = Vec::new();
        while let Some(f) = r.next_frame()? {
            out.push(f);
        }
        Ok(out)
    }

    #[test]
    fn round_trip() {
        let frames = sample();
        assert_eq!(read_all(&write(&frames)).unwrap(), frames);
    }

    #[test]
    fn truncation_alteration_and_trailing_bytes_are_detected() {
        let bytes = write(&sample());
        for cut in [0, 5, 8, 12, bytes.len() - 1] {
            assert!(read_all(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        for i in 8..bytes.len() {
            let mut altered = bytes.clone();
            altered[i] ^= 0x40;
            assert!(read_all(&altered).is_err(), "flip at {i}");
        }
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(read_all(&trailing).is_err());
        // Dropping a whole middle frame changes the count and the digest.
        let short = write(&sample()[..2]);
        assert!(read_all(&short).is_ok());
        assert_eq!(read_all(&short).unwrap().len(), 2);
    }
}
