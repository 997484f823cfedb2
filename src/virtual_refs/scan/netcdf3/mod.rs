//! netCDF-3 files (classic, 64-bit offset, CDF-5): the [`header`] decoded by floe's own
//! parser, and its variables as kerchunk references ([`refs`]).

pub(crate) mod header;
pub(crate) mod refs;

use super::reader::{SourceReader, FIRST_READ};
use crate::error::{Error, Result};
use crate::virtual_refs::kerchunk::KerchunkRefs;
use header::{parse, Parse};

/// Scans the netCDF-3 file `reader` has open: its header, read in growing pieces, as
/// references.
pub(crate) async fn scan(reader: &mut SourceReader) -> Result<KerchunkRefs> {
    let mut want = FIRST_READ;
    loop {
        let bytes = reader.first_bytes(want).await?;
        let refused = |reason: String| Error::import_refused(reader.location.clone(), reason);
        match parse(&bytes).map_err(refused)? {
            Parse::Done(header) => {
                return refs::to_refs(&header, &reader.location, reader.size).map_err(refused)
            }
            Parse::NeedMore(n) if n > reader.size => {
                return Err(refused(format!(
                    "the header goes on past the end of the file ({} bytes)",
                    reader.size
                )))
            }
            Parse::NeedMore(n) => want = n.max(want.saturating_mul(4)),
        }
    }
}
