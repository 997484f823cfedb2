//! Virtual chunks: byte ranges of files outside the repository.
//!
//! - [`containers`]: the containers (URL prefixes with non-secret settings) declared in the
//!   repository configuration;
//! - [`access`]: what a handle is authorized to read (deny by default), given when opening;
//! - [`location`]: the checks every location passes (no traversal, supported schemes);
//! - [`fetch`]: conditional, coalesced ranged reads;
//! - [`batch`]: reading many chunks of an array at once;
//! - [`kerchunk`]: importing kerchunk references.

mod access;
mod batch;
mod clients;
mod containers;
mod fetch;
mod kerchunk;
mod location;

pub(crate) use access::VirtualReader;
pub use access::{VirtualAccess, VirtualReadStats};
pub use containers::VirtualContainer;
pub use kerchunk::{
    import_kerchunk, import_kerchunk_with_progress, ImportOptions, ImportProgress, ImportSummary,
    ImportedContainer, KerchunkRef, KerchunkRefs,
};
