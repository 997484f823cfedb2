//! Virtual chunks: byte ranges of files outside the repository.
//!
//! - [`containers`]: the containers (URL prefixes with non-secret settings) declared in the
//!   repository configuration;
//! - [`access`]: what a handle is authorized to read (deny by default), given when opening;
//! - [`location`]: the checks every location passes (no traversal, supported schemes);
//! - [`fetch`]: conditional, coalesced ranged reads;
//! - [`batch`]: reading many chunks of an array at once;
//! - [`dataset`]: the neutral description of a virtual dataset every importer produces;
//! - [`import`]: the one path that imports it (loading, appending, attribute checks);
//! - [`kerchunk`]: kerchunk references as a virtual dataset;
//! - [`scan`]: floe's own scanners of source files (netCDF-3), producing such references.

mod access;
mod batch;
mod clients;
mod containers;
pub(crate) mod dataset;
mod fetch;
pub(crate) mod import;
pub(crate) mod kerchunk;
mod location;
pub(crate) mod scan;

pub(crate) use access::VirtualReader;
pub use access::{VirtualAccess, VirtualReadStats};
pub use containers::VirtualContainer;
pub use dataset::SourceChunk;
pub use import::{
    ConvertedTimes, ImportOptions, ImportProgress, ImportSummary, ImportedContainer, KeptAttribute,
    LoadReason, LoadedArray, DEFAULT_LOAD_LIMIT,
};
pub use kerchunk::{import_kerchunk, import_kerchunk_with_progress, KerchunkRef, KerchunkRefs};
pub use scan::{
    expand_sources, scan_bytes, scan_source, scan_sources, scan_sources_with_progress,
    ScanProgress, ScanSummary,
};
