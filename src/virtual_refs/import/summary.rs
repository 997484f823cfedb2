//! What an import did, for callers and for the command line: counts, the arrays it loaded and
//! why, time values it re-encoded, attributes it kept, the containers it used.

use std::fmt;

use serde_json::Value;

use crate::format::path::NodePath;

/// A container holding some of the imported references' files.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImportedContainer {
    /// The container's URL prefix.
    pub prefix: String,
    /// How many distinct files of the import it holds.
    pub sources: usize,
    /// True when the import declared it; false when it was declared already.
    pub newly_declared: bool,
}

/// Why an import loaded an array instead of referencing it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoadReason {
    /// The import was asked to (`--load`).
    Asked,
    /// A coordinate variable: one-dimensional, named like its dimension.
    Coordinate,
    /// Another variable (or a group) names it in a CF attribute.
    Referenced {
        /// The variable or group (`/` for the root) whose attribute names it.
        by: String,
        /// The attribute: `coordinates`, `bounds`, `climatology` or `grid_mapping`.
        attribute: &'static str,
    },
    /// A scalar (no dimension).
    Scalar,
}

impl fmt::Display for LoadReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadReason::Asked => write!(f, "asked with --load"),
            LoadReason::Coordinate => write!(f, "coordinate variable"),
            LoadReason::Referenced { by, attribute } => {
                write!(f, "named by the `{attribute}` attribute of {by}")
            }
            LoadReason::Scalar => write!(f, "scalar"),
        }
    }
}

/// An array whose values the import read and stored as ordinary chunks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadedArray {
    /// The array.
    pub path: NodePath,
    /// Why it was loaded.
    pub reason: LoadReason,
}

/// An attribute whose value in the imported file differs from the stored one, which was kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptAttribute {
    /// The group or array.
    pub path: NodePath,
    /// The attribute's name.
    pub name: String,
    /// The value kept (`null` when the stored node lacks it).
    pub stored: Value,
    /// The value in the imported file (`null` when it lacks it).
    pub imported: Value,
}

/// Time values re-encoded to an array's stored CF units and calendar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConvertedTimes {
    /// The array.
    pub path: NodePath,
    /// How many values were converted.
    pub values: u64,
    /// The imported file's encoding (`units`, and `calendar` when given).
    pub from: String,
    /// The stored encoding.
    pub to: String,
}

/// What [`crate::import_kerchunk`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Groups created or updated.
    pub groups: usize,
    /// Arrays created (or replaced).
    pub arrays_created: usize,
    /// Existing arrays the data was appended to.
    pub arrays_appended: usize,
    /// Existing arrays without the append dimension, found equal and left as they were.
    pub arrays_unchanged: usize,
    /// Virtual chunk references set.
    pub virtual_refs: u64,
    /// Chunks the references held inline, stored through [`crate::Session::set_chunk`].
    pub inline_chunks: u64,
    /// Keys that belong to no array and are not metadata (ignored).
    pub skipped_keys: u64,
    /// The containers holding the referenced files.
    pub containers: Vec<ImportedContainer>,
    /// The arrays loaded (their values stored as native chunks) and why.
    pub loaded: Vec<LoadedArray>,
    /// Arrays that would have been loaded by default but stayed virtual, and why.
    pub not_loaded: Vec<(NodePath, String)>,
    /// Partly filled last chunks of existing arrays, cut to their real length and stored as
    /// native chunks so the appended chunks could follow.
    pub materialized_chunks: u64,
    /// Time values re-encoded to the stored units or calendar.
    pub converted_times: Vec<ConvertedTimes>,
    /// Attributes that differ from the stored ones, which were kept.
    pub kept_attributes: Vec<KeptAttribute>,
}

impl fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} groups, {} arrays created, {} appended, {} unchanged; {} virtual refs, {} inline \
             chunks",
            self.groups,
            self.arrays_created,
            self.arrays_appended,
            self.arrays_unchanged,
            self.virtual_refs,
            self.inline_chunks
        )?;
        if self.materialized_chunks > 0 {
            write!(
                f,
                "; {} partly filled chunks materialized",
                self.materialized_chunks
            )?;
        }
        if self.skipped_keys > 0 {
            write!(f, "; {} keys skipped", self.skipped_keys)?;
        }
        for loaded in &self.loaded {
            write!(f, "\nloaded {} ({})", loaded.path, loaded.reason)?;
        }
        for (path, why) in &self.not_loaded {
            write!(f, "\nkept {path} virtual: {why}")?;
        }
        for c in &self.converted_times {
            write!(
                f,
                "\nconverted {} values of {} from `{}` to `{}`",
                c.values, c.path, c.from, c.to
            )?;
        }
        for kept in &self.kept_attributes {
            write!(
                f,
                "\nkept attribute `{}` of {} as stored: {} (the imported file has {})",
                kept.name, kept.path, kept.stored, kept.imported
            )?;
        }
        for c in &self.containers {
            let verb = if c.newly_declared {
                "declared container"
            } else {
                "used declared container"
            };
            let plural = if c.sources == 1 { "" } else { "s" };
            write!(f, "\n{verb} {} for {} source{plural}", c.prefix, c.sources)?;
        }
        Ok(())
    }
}
