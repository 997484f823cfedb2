//! Where a dataset's data lies (the data layout message), and its filter pipeline. (Fill
//! value messages are not read: the Zarr fill value comes from `_FillValue`, see `refs`.)

use super::bytes::{bad, Cursor, Parsed, UNDEFINED};

/// A chunk index and its parameters (layout message version 4; earlier versions always use
/// a version 1 B-tree).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ChunkIndex {
    /// A version 1 B-tree.
    BtreeV1,
    /// One chunk; for a filtered dataset its stored size and filter mask.
    Single {
        filtered: Option<(u64, u32)>,
    },
    /// Chunks at computed addresses (no index).
    Implicit,
    FixedArray,
    ExtensibleArray,
    BtreeV2,
}

/// A data layout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    /// The data inside the object header.
    Compact(Vec<u8>),
    /// One byte range (address undefined when never written).
    Contiguous { address: u64, size: u64 },
    /// Chunks of `chunk` elements (without the element size), through `index` at `address`.
    Chunked {
        chunk: Vec<u64>,
        index: ChunkIndex,
        address: u64,
        /// Layout flag: partial edge chunks are stored unfiltered.
        dont_filter_partial: bool,
    },
}

/// Decodes a data layout message.
pub(crate) fn layout(c: &mut Cursor<'_>) -> Parsed<Layout> {
    let version = c.u8()?;
    match version {
        1 | 2 => {
            let rank = usize::from(c.u8()?);
            let class = c.u8()?;
            c.skip(5)?;
            let address = if class == 0 {
                UNDEFINED
            } else {
                c.address_field()?
            };
            let mut dims = Vec::with_capacity(rank.min(33));
            for _ in 0..rank {
                dims.push(u64::from(c.u32()?));
            }
            match class {
                0 => {
                    let size = c.u32()? as usize;
                    Ok(Layout::Compact(c.take(size)?.to_vec()))
                }
                1 => {
                    let size = dims.iter().try_fold(1u64, |n, &d| n.checked_mul(d));
                    Ok(Layout::Contiguous {
                        address,
                        size: size.unwrap_or(0),
                    })
                }
                2 => {
                    c.skip(4)?; // element size
                    dims.pop();
                    Ok(Layout::Chunked {
                        chunk: dims,
                        index: ChunkIndex::BtreeV1,
                        address,
                        dont_filter_partial: false,
                    })
                }
                other => bad(format!("data layout class {other} is not known")),
            }
        }
        // Version 5 (HDF5 2.0) is laid out as version 4.
        3..=5 => {
            let class = c.u8()?;
            match class {
                0 => {
                    let size = usize::from(c.u16()?);
                    Ok(Layout::Compact(c.take(size)?.to_vec()))
                }
                1 => Ok(Layout::Contiguous {
                    address: c.address_field()?,
                    size: c.length()?,
                }),
                2 if version == 3 => {
                    let rank = usize::from(c.u8()?);
                    let address = c.address_field()?;
                    let mut dims = Vec::with_capacity(rank.min(33));
                    for _ in 0..rank {
                        dims.push(u64::from(c.u32()?));
                    }
                    dims.pop();
                    Ok(Layout::Chunked {
                        chunk: dims,
                        index: ChunkIndex::BtreeV1,
                        address,
                        dont_filter_partial: false,
                    })
                }
                2 => {
                    let flags = c.u8()?;
                    let rank = usize::from(c.u8()?);
                    let width = usize::from(c.u8()?);
                    if !(1..=8).contains(&width) || rank > 33 {
                        return bad("a chunked layout with impossible dimension fields");
                    }
                    let mut dims = Vec::with_capacity(rank);
                    for _ in 0..rank {
                        dims.push(c.uint(width)?);
                    }
                    dims.pop();
                    let index = match c.u8()? {
                        1 => {
                            let filtered = if flags & 0x02 != 0 {
                                Some((c.length()?, c.u32()?))
                            } else {
                                None
                            };
                            ChunkIndex::Single { filtered }
                        }
                        2 => ChunkIndex::Implicit,
                        3 => {
                            c.skip(1)?;
                            ChunkIndex::FixedArray
                        }
                        4 => {
                            c.skip(5)?;
                            ChunkIndex::ExtensibleArray
                        }
                        5 => {
                            c.skip(6)?;
                            ChunkIndex::BtreeV2
                        }
                        other => return bad(format!("chunk index type {other} is not known")),
                    };
                    Ok(Layout::Chunked {
                        chunk: dims,
                        index,
                        address: c.address_field()?,
                        dont_filter_partial: flags & 0x01 != 0,
                    })
                }
                3 => bad("a virtual dataset (its data lives in other datasets or files)"),
                other => bad(format!("data layout class {other} is not known")),
            }
        }
        other => bad(format!("data layout message version {other} is not known")),
    }
}

/// One filter of a pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Filter {
    /// Its registered id (1 deflate, 2 shuffle, 3 fletcher32, 4 szip, 5 nbit,
    /// 6 scale-offset, 32001 blosc, 32015 zstd, ...).
    pub(crate) id: u16,
    /// Its name when the file gives one.
    pub(crate) name: String,
    /// Optional filter (may be skipped for a chunk).
    pub(crate) optional: bool,
    /// Client data values.
    pub(crate) values: Vec<u32>,
}

/// Decodes a filter pipeline message.
pub(crate) fn filters(c: &mut Cursor<'_>) -> Parsed<Vec<Filter>> {
    let version = c.u8()?;
    let count = usize::from(c.u8()?);
    if version == 1 {
        c.skip(6)?;
    } else if version != 2 {
        return bad(format!(
            "filter pipeline message version {version} is not known"
        ));
    }
    if count > 32 {
        return bad(format!("a filter pipeline of {count} filters (at most 32)"));
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let id = c.u16()?;
        let name_len = if version == 1 || id >= 256 {
            usize::from(c.u16()?)
        } else {
            0
        };
        let flags = c.u16()?;
        let nvalues = usize::from(c.u16()?);
        let name_bytes = if version == 1 {
            c.take(name_len.div_ceil(8) * 8)?
        } else {
            c.take(name_len)?
        };
        let name = super::bytes::c_string(name_bytes);
        let mut values = Vec::with_capacity(nvalues.min(256));
        for _ in 0..nvalues {
            values.push(c.u32()?);
        }
        if version == 1 && nvalues % 2 == 1 {
            c.skip(4)?;
        }
        out.push(Filter {
            id,
            name,
            optional: flags & 1 != 0,
            values,
        });
    }
    Ok(out)
}
