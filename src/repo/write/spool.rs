//! [`ChangeStream`]: a finished change stream, held in memory while small and spooled to a
//! local file once it grows past a size limit, so large change sets never sit in memory whole.

use std::fs::File;
use std::io::{BufReader, BufWriter, Cursor, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::format::changes::{spool_error, Frame, FrameReader, FrameWriter, StreamKind};

/// A serialized change set: a fork ticket for a worker, or a worker's changes for its
/// coordinator (see [`Session::fork`](crate::Session::fork)).
///
/// The bytes are a self-checking stream (format in `spec/algorithms.md`, "Distributed
/// writes"): send them anywhere with [`ChangeStream::write_to`] or
/// [`ChangeStream::to_bytes`], and rebuild the value on the other side with
/// [`ChangeStream::from_bytes`], [`ChangeStream::read_from`] or [`ChangeStream::from_file`].
/// Streams larger than [`RepositorySettings::spool_memory_bytes`](crate::RepositorySettings)
/// live in a temporary file (deleted when the last clone is dropped) rather than in memory.
#[derive(Clone, Debug)]
pub struct ChangeStream {
    data: Spooled,
    kind: StreamKind,
}

#[derive(Clone, Debug)]
enum Spooled {
    Memory(Bytes),
    /// A temporary file this process created; deleted with the last clone.
    Temp(Arc<tempfile::NamedTempFile>),
    /// A file the caller named; never deleted by floe.
    External(PathBuf),
}

impl ChangeStream {
    /// Wraps stream bytes received from elsewhere. The header is checked now; the rest of the
    /// stream (frames, end digest) when it is used.
    pub fn from_bytes(bytes: impl Into<Bytes>) -> Result<Self> {
        let data = Spooled::Memory(bytes.into());
        let kind = peek_kind(&data)?;
        Ok(ChangeStream { data, kind })
    }

    /// Refers to a stream stored in a local file, read lazily each time it is used (the file
    /// must stay in place and unchanged until then; floe never deletes it).
    pub fn from_file(path: impl Into<PathBuf>) -> Result<Self> {
        let data = Spooled::External(path.into());
        let kind = peek_kind(&data)?;
        Ok(ChangeStream { data, kind })
    }

    /// Reads a whole stream from `input`, keeping it in memory up to `memory_limit` bytes and
    /// in a temporary file in `spool_dir` (the system temporary directory when `None`) beyond.
    pub fn read_from(
        mut input: impl Read,
        memory_limit: u64,
        spool_dir: Option<&Path>,
    ) -> Result<Self> {
        let mut spool = Spool::new(memory_limit, spool_dir.map(Path::to_path_buf));
        std::io::copy(&mut input, &mut spool).map_err(spool_error)?;
        let data = spool.into_spooled()?;
        let kind = peek_kind(&data)?;
        Ok(ChangeStream { data, kind })
    }

    /// Whether this is a fork ticket or a worker's changes.
    pub fn is_ticket(&self) -> bool {
        self.kind == StreamKind::Ticket
    }

    /// True when the stream lives in a file rather than in memory.
    pub fn is_spooled(&self) -> bool {
        !matches!(self.data, Spooled::Memory(_))
    }

    /// Size of the stream in bytes.
    pub fn len(&self) -> Result<u64> {
        match &self.data {
            Spooled::Memory(b) => Ok(b.len() as u64),
            Spooled::Temp(f) => Ok(f.as_file().metadata().map_err(spool_error)?.len()),
            Spooled::External(p) => Ok(std::fs::metadata(p).map_err(spool_error)?.len()),
        }
    }

    /// True for an empty stream (never the case for a valid one).
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Copies the stream's bytes to `out`, returning how many were written.
    pub fn write_to(&self, out: &mut impl Write) -> Result<u64> {
        let mut input = self.open()?;
        std::io::copy(&mut input, out).map_err(spool_error)
    }

    /// The stream's bytes in memory (reads the file of a spooled stream).
    pub fn to_bytes(&self) -> Result<Bytes> {
        match &self.data {
            Spooled::Memory(b) => Ok(b.clone()),
            _ => {
                let mut out = Vec::new();
                self.write_to(&mut out)?;
                Ok(Bytes::from(out))
            }
        }
    }

    /// Writes the stream to a file at `path` (created or truncated).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut out = BufWriter::new(File::create(path).map_err(spool_error)?);
        self.write_to(&mut out)?;
        out.flush().map_err(spool_error)?;
        out.get_ref().sync_all().map_err(spool_error)
    }

    fn open(&self) -> Result<Box<dyn Read + Send>> {
        Ok(match &self.data {
            Spooled::Memory(b) => Box::new(Cursor::new(b.clone())),
            Spooled::Temp(f) => Box::new(BufReader::new(f.reopen().map_err(spool_error)?)),
            Spooled::External(p) => Box::new(BufReader::new(File::open(p).map_err(spool_error)?)),
        })
    }

    /// A reader over the stream's frames.
    pub(crate) fn frames(&self) -> Result<FrameReader<Box<dyn Read + Send>>> {
        FrameReader::new(self.open()?)
    }

    /// Builds a stream by handing `fill` a frame writer that spools past `memory_limit`.
    pub(crate) fn build(
        kind: StreamKind,
        memory_limit: u64,
        spool_dir: Option<&Path>,
        fill: impl FnOnce(&mut FrameWriter<Spool>) -> Result<()>,
    ) -> Result<Self> {
        let spool = Spool::new(memory_limit, spool_dir.map(Path::to_path_buf));
        let mut writer = FrameWriter::new(spool)?;
        fill(&mut writer)?;
        let data = writer.finish()?.into_spooled()?;
        Ok(ChangeStream { data, kind })
    }
}

fn peek_kind(data: &Spooled) -> Result<StreamKind> {
    let stream = ChangeStream {
        data: data.clone(),
        kind: StreamKind::Ticket,
    };
    match stream.frames()?.next_frame()? {
        Some(Frame::Header { kind, .. }) => Ok(kind),
        _ => Err(Error::corrupt(
            "<change stream>",
            "the stream does not start with a header frame",
        )),
    }
}

/// A byte sink that stays in memory up to a limit and moves to a temporary file past it.
pub(crate) struct Spool {
    memory: Vec<u8>,
    file: Option<BufWriter<tempfile::NamedTempFile>>,
    limit: u64,
    dir: Option<PathBuf>,
}

impl Spool {
    fn new(limit: u64, dir: Option<PathBuf>) -> Self {
        Spool {
            memory: Vec::new(),
            file: None,
            limit,
            dir,
        }
    }

    fn into_spooled(self) -> Result<Spooled> {
        match self.file {
            None => Ok(Spooled::Memory(Bytes::from(self.memory))),
            Some(file) => {
                let mut file = file.into_inner().map_err(|e| spool_error(e.into_error()))?;
                file.as_file_mut().sync_data().map_err(spool_error)?;
                file.as_file_mut().rewind().map_err(spool_error)?;
                Ok(Spooled::Temp(Arc::new(file)))
            }
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.file.is_none() && (self.memory.len() + buf.len()) as u64 > self.limit {
            let file = match &self.dir {
                Some(dir) => tempfile::Builder::new()
                    .prefix("floe-changes-")
                    .tempfile_in(dir)?,
                None => tempfile::Builder::new()
                    .prefix("floe-changes-")
                    .tempfile()?,
            };
            let mut file = BufWriter::with_capacity(1 << 20, file);
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write(buf),
            None => {
                self.memory.extend_from_slice(buf);
                Ok(buf.len())
            }
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}
