//! The one import path of virtual datasets: every importer (kerchunk references today) yields
//! a [`VirtualDataset`], which becomes groups, arrays and chunks of a session here.
//!
//! - [`roles`]: which arrays are loaded (values stored as native chunks) or stay virtual;
//! - [`placement`]: create, append (by reference or by value) or find unchanged, with every
//!   metadata check ([`attrs`]: decoding attributes; [`cf_time`], [`calendar`]: CF times);
//! - [`grid_edges`] and [`partial`]: chunk edges along the append dimension, and the cut of a
//!   partly filled last chunk;
//! - [`values`]: decoded values read from sources or the session, and compared;
//! - [`chunks`]: the chunks an import encodes itself (loaded values, cut chunks);
//! - [`checks`]: values and lengths an append must find consistent before writing;
//! - [`sources`]: the referenced files, their checksums and containers;
//! - [`summary`]: what an import did.

mod attrs;
mod calendar;
pub(crate) mod cf_time;
mod checks;
mod chunks;
mod grid_edges;
mod partial;
mod placement;
mod roles;
pub(crate) mod sources;
mod summary;
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::format::manifest::{ChunkCoord, VirtualChunkRef};
use crate::format::path::NodePath;
use crate::repo::Session;
use crate::storage::StorageOptions;
use crate::virtual_refs::dataset::{SourceChunk, VirtualArray, VirtualDataset};

use placement::{Action, ArrayPlan};
use roles::Role;
use sources::Sources;

pub use roles::DEFAULT_LOAD_LIMIT;
pub use summary::{
    ConvertedTimes, ImportSummary, ImportedContainer, KeptAttribute, LoadReason, LoadedArray,
};

/// How an import places a virtual dataset.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The group the dataset's root becomes (created if missing, with its parents).
    pub to: NodePath,
    /// Append along this dimension (a name of `dimension_names`, from `_ARRAY_DIMENSIONS`) to
    /// arrays that already exist, instead of replacing them.
    pub append_dim: Option<String>,
    /// Object-store options (credentials, region, endpoint...) for reading the source files
    /// (checksums, loaded values). Options declared in the repository are never used for
    /// them.
    pub source_options: StorageOptions,
    /// Variables to load whatever their kind (a path relative to the dataset root, or a
    /// name matching every array of that name).
    pub load: Vec<String>,
    /// Variables to keep virtual even when they would be loaded by default.
    pub keep_virtual: Vec<String>,
    /// The largest array (decoded bytes) loaded by default ([`DEFAULT_LOAD_LIMIT`]).
    pub load_limit: u64,
}

impl ImportOptions {
    /// Import into `to`, replacing existing arrays, with default loading and no extra source
    /// options.
    pub fn new(to: NodePath) -> Self {
        ImportOptions {
            to,
            append_dim: None,
            source_options: Vec::new(),
            load: Vec::new(),
            keep_virtual: Vec::new(),
            load_limit: DEFAULT_LOAD_LIMIT,
        }
    }
}

/// Progress of an import: chunks handled so far, of `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportProgress {
    /// Chunks handled.
    pub done: u64,
    /// Chunks in the dataset.
    pub total: u64,
}

/// An array's plan with the values the import read for it.
struct Prepared {
    plan: ArrayPlan,
    /// Chunks encoded before anything is written, to store once the array's new metadata is
    /// set: loaded values, or the cut chunks of a partly filled slab.
    chunks: Vec<(ChunkCoord, bytes::Bytes)>,
    /// Loaded times re-encoded to the stored encoding.
    converted: Option<ConvertedTimes>,
}

/// Reads what an array's plan needs before anything is written, and runs the checks that
/// need it: every reference inside its file, loaded values (times re-encoded), the cut
/// chunks of a partly filled slab, the values an unchanged array must hold.
async fn prepare(
    session: &Session,
    plan: ArrayPlan,
    array: &VirtualArray,
    what: &str,
    sources: &Sources,
) -> Result<Prepared> {
    for (coord, chunk) in &array.chunks {
        virtual_reference(&plan.target, coord, chunk, sources)?;
    }
    let mut values = match (&plan.role, &plan.action) {
        (Role::Load(_), _) | (_, Action::Unchanged { time: Some(_), .. }) => {
            Some(values::read_source(what, array, sources).await?)
        }
        _ => None,
    };
    let mut converted = None;
    let time = match &plan.action {
        Action::AppendLoaded { time, .. } | Action::Unchanged { time, .. } => time.as_ref(),
        _ => None,
    };
    if let (Some(change), Some(decoded)) = (time, values.as_mut()) {
        let missing = values::missing_values(&array.attributes());
        let data_type = &array.document["data_type"];
        let count = values::convert_times(decoded, data_type, &change.conversion, &missing)
            .map_err(|reason| Error::import_refused(format!("array `{}`", plan.target), reason))?;
        // Values re-encoded only to be compared are not reported as converted.
        if matches!(plan.action, Action::AppendLoaded { .. }) {
            converted = Some(ConvertedTimes {
                path: plan.target.clone(),
                values: count,
                from: change.from.clone(),
                to: change.to.clone(),
            });
        }
    }
    let target = &plan.target;
    let chunks = match (&plan.action, &values) {
        (
            Action::AppendVirtual {
                dim,
                partial: Some((partial, _)),
                existing,
                ..
            },
            _,
        ) => partial::cut_partial_chunks(session, target, existing, *dim, *partial)
            .await
            .map_err(|e| cut_refused(target, e))?,
        (Action::Create { metadata, .. }, Some(values)) => {
            let origin = vec![0; values.shape.len()];
            chunks::encode_region(session, target, metadata, &origin, values, false).await?
        }
        (
            Action::AppendLoaded {
                dim,
                offset,
                metadata,
                ..
            },
            Some(values),
        ) => {
            let mut origin = vec![0; values.shape.len()];
            origin[*dim] = *offset;
            chunks::encode_region(session, target, metadata, &origin, values, true)
                .await
                .map_err(|e| cut_refused(target, e))?
        }
        (Action::Unchanged { existing, .. }, _) => {
            checks::check_unchanged(session, target, existing, array, values.as_ref(), sources)
                .await?;
            Vec::new()
        }
        _ => Vec::new(),
    };
    Ok(Prepared {
        plan,
        chunks,
        converted,
    })
}

/// Imports `dataset` into the writable `session` (nothing is committed). See
/// [`crate::import_kerchunk`] for the rules.
pub(crate) async fn import_dataset(
    session: &Session,
    dataset: &VirtualDataset,
    options: &ImportOptions,
    progress: &(dyn Fn(ImportProgress) + Send + Sync),
) -> Result<ImportSummary> {
    let origin = dataset.origin.as_str();
    if let Some(dim) = &options.append_dim {
        if !dataset
            .arrays
            .values()
            .any(|a| a.dimension_names().contains(&dim.as_str()))
        {
            return Err(placement::unknown_dimension(origin, dim));
        }
    }
    let roles = roles::decide(
        dataset,
        &options.load,
        &options.keep_virtual,
        options.load_limit,
    )?;
    let mut summary = ImportSummary {
        skipped_keys: dataset.skipped_keys,
        ..ImportSummary::default()
    };
    let bounds_parents = roles::bounds_parents(dataset);
    // Every check first: a refused import changes nothing (not even the containers).
    let mut plans: BTreeMap<&String, ArrayPlan> = BTreeMap::new();
    for (path, array) in &dataset.arrays {
        let target = target_path(&options.to, path)?;
        let role = roles[path].clone();
        if let Role::Virtual { note: Some(note) } = &role {
            summary.not_loaded.push((target.clone(), note.clone()));
        }
        let parent = match bounds_parents.get(path) {
            Some(parent) => Some((target_path(&options.to, parent)?, &dataset.arrays[parent])),
            None => None,
        };
        let parent = parent.as_ref().map(|(t, a)| (t, *a));
        let append_dim = options.append_dim.as_deref();
        plans.insert(
            path,
            placement::plan(session, &target, array, role, append_dim, parent)?,
        );
    }
    let targets = node_targets(dataset, options)?;
    checks::check_hierarchy(
        session,
        &targets.described,
        &targets.implied,
        &targets.arrays,
        options.append_dim.is_some(),
    )?;
    if let Some(dim) = &options.append_dim {
        let planned: Vec<&ArrayPlan> = plans.values().collect();
        checks::check_append_lengths(session, &options.to, dim, &planned)?;
    }
    let urls: BTreeSet<Arc<str>> = dataset
        .arrays
        .values()
        .flat_map(|a| a.chunks.iter().filter_map(|(_, c)| c.url().map(Arc::from)))
        .collect();
    let sources = sources::resolve(session.repository(), &urls, &options.source_options).await?;
    let mut prepared: BTreeMap<&String, Prepared> = BTreeMap::new();
    for (path, plan) in plans {
        let what = format!("{origin}: variable `{path}`");
        let item = prepare(session, plan, &dataset.arrays[path], &what, &sources).await?;
        if let Some(converted) = &item.converted {
            summary.converted_times.push(converted.clone());
        }
        prepared.insert(path, item);
    }
    let virtual_urls: BTreeSet<Arc<str>> = dataset
        .arrays
        .iter()
        .filter(|(path, _)| {
            prepared.get(path).is_some_and(|p| {
                matches!(p.plan.role, Role::Virtual { .. })
                    && !matches!(p.plan.action, Action::Unchanged { .. })
            })
        })
        .flat_map(|(_, a)| a.chunks.iter().filter_map(|(_, c)| c.url().map(Arc::from)))
        .collect();
    summary.containers = sources.declare(session.repository(), &virtual_urls).await?;

    write_groups(session, dataset, options, &mut summary).await?;
    let total: u64 = dataset.arrays.values().map(|a| a.chunks.len() as u64).sum();
    let mut done = 0u64;
    progress(ImportProgress { done, total });
    for (path, item) in &prepared {
        let array = &dataset.arrays[*path];
        write_array(session, item, array, &sources, &mut summary).await?;
        done += array.chunks.len() as u64;
        progress(ImportProgress { done, total });
    }
    Ok(summary)
}

/// The nodes an import writes, at their target paths.
struct NodeTargets {
    /// The dataset's groups (with attributes to write).
    described: BTreeSet<NodePath>,
    /// `options.to` when the dataset does not describe it, and every parent of a node: groups
    /// created when missing, left as they are otherwise.
    implied: BTreeSet<NodePath>,
    /// The dataset's arrays.
    arrays: BTreeSet<NodePath>,
}

fn node_targets(dataset: &VirtualDataset, options: &ImportOptions) -> Result<NodeTargets> {
    let arrays: BTreeSet<NodePath> = dataset
        .arrays
        .keys()
        .map(|p| target_path(&options.to, p))
        .collect::<Result<_>>()?;
    let described: BTreeSet<NodePath> = dataset
        .groups
        .keys()
        .map(|p| target_path(&options.to, p))
        .collect::<Result<_>>()?;
    let mut implied = BTreeSet::from([options.to.clone()]);
    for path in described.iter().chain(&arrays).chain([&options.to]) {
        let mut parent = path.parent();
        while let Some(p) = parent {
            parent = p.parent();
            implied.insert(p);
        }
    }
    implied.retain(|p| !described.contains(p));
    Ok(NodeTargets {
        described,
        implied,
        arrays,
    })
}

/// Creates the dataset's groups and the missing parents of everything; for appends, existing
/// groups keep their attributes and differences are reported.
async fn write_groups(
    session: &Session,
    dataset: &VirtualDataset,
    options: &ImportOptions,
    summary: &mut ImportSummary,
) -> Result<()> {
    let targets = node_targets(dataset, options)?;
    let mut attributes: BTreeMap<NodePath, Map<String, Value>> = BTreeMap::new();
    for (path, attrs) in &dataset.groups {
        attributes.insert(target_path(&options.to, path)?, attrs.clone());
    }
    for path in targets.described.iter().chain(&targets.implied) {
        let imported = attributes.remove(path);
        let existing = session.node(path)?;
        if imported.is_none() && existing.is_some() {
            // A parent the dataset does not describe: left as it is.
            continue;
        }
        let imported = imported.unwrap_or_default();
        if let (Some(existing), Some(_)) = (&existing, &options.append_dim) {
            let stored = existing
                .metadata
                .document()
                .get("attributes")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            report_kept(path, &stored, &imported, summary);
            continue;
        }
        session.create_group(path, imported).await?;
        summary.groups += 1;
    }
    Ok(())
}

fn report_kept_pairs(
    path: &NodePath,
    kept: &[(String, Value, Value)],
    summary: &mut ImportSummary,
) {
    for (name, stored, imported) in kept {
        summary.kept_attributes.push(KeptAttribute {
            path: path.clone(),
            name: name.clone(),
            stored: stored.clone(),
            imported: imported.clone(),
        });
    }
}

fn report_kept(
    path: &NodePath,
    stored: &Map<String, Value>,
    imported: &Map<String, Value>,
    summary: &mut ImportSummary,
) {
    for (name, stored, imported) in attrs::differing(stored, imported) {
        summary.kept_attributes.push(KeptAttribute {
            path: path.clone(),
            name,
            stored,
            imported,
        });
    }
}

/// Writes one array as planned.
async fn write_array(
    session: &Session,
    item: &Prepared,
    array: &VirtualArray,
    sources: &Sources,
    summary: &mut ImportSummary,
) -> Result<()> {
    let plan = &item.plan;
    let target = &plan.target;
    report_kept_pairs(target, &plan.kept, summary);
    if let Role::Load(reason) = &plan.role {
        if !matches!(plan.action, Action::Unchanged { .. }) {
            summary.loaded.push(LoadedArray {
                path: target.clone(),
                reason: reason.clone(),
            });
        }
    }
    match &plan.action {
        Action::Unchanged { .. } => {
            summary.arrays_unchanged += 1;
            Ok(())
        }
        Action::Create { replace, metadata } => {
            if *replace {
                session.delete_node(target).await?;
            }
            session.set_metadata(target, (**metadata).clone()).await?;
            summary.arrays_created += 1;
            store_chunks(session, target, &item.chunks).await?;
            if matches!(plan.role, Role::Load(_)) {
                return Ok(());
            }
            write_references(session, target, &array.chunks, 0, 0, sources, summary).await
        }
        Action::AppendLoaded { metadata, .. } => {
            session.set_metadata(target, (**metadata).clone()).await?;
            summary.arrays_appended += 1;
            store_chunks(session, target, &item.chunks).await
        }
        Action::AppendVirtual {
            dim,
            metadata,
            chunk_shift,
            partial,
            ..
        } => {
            if let Some((_, truncated)) = partial {
                session.set_metadata(target, (**truncated).clone()).await?;
            }
            session.set_metadata(target, (**metadata).clone()).await?;
            store_chunks(session, target, &item.chunks).await?;
            summary.materialized_chunks += item.chunks.len() as u64;
            summary.arrays_appended += 1;
            write_references(
                session,
                target,
                &array.chunks,
                *dim,
                *chunk_shift,
                sources,
                summary,
            )
            .await
        }
    }
}

async fn store_chunks(
    session: &Session,
    path: &NodePath,
    chunks: &[(ChunkCoord, bytes::Bytes)],
) -> Result<()> {
    for (coord, bytes) in chunks {
        session.set_chunk(path, coord, bytes.clone()).await?;
    }
    Ok(())
}

/// The error for a partly filled chunk that cannot be read to be cut: the usual cause is a
/// chunk of an earlier file this handle may not read.
fn cut_refused(path: &NodePath, error: Error) -> Error {
    match error {
        Error::VirtualSourceNotAuthorized { location, hint } => Error::VirtualSourceNotAuthorized {
            location,
            hint: format!(
                "{hint} (the import must read the partly filled last chunk of `{path}` from an \
                 earlier file to cut or complete it; authorize that file's location, e.g. \
                 with --allow-virtual <its directory> or --allow-virtual-declared)"
            ),
        },
        other => other,
    }
}

/// Sets the chunks of `chunks` (shifted by `shift` along `dim`) as virtual references, or as
/// native chunks for inline data.
async fn write_references(
    session: &Session,
    path: &NodePath,
    chunks: &[(Vec<u64>, SourceChunk)],
    dim: usize,
    shift: u64,
    sources: &Sources,
    summary: &mut ImportSummary,
) -> Result<()> {
    for (coord, chunk) in chunks {
        let mut coord = coord.clone();
        if shift > 0 {
            coord[dim] = coord[dim].checked_add(shift).ok_or_else(|| {
                Error::import_refused(format!("array `{path}`"), "chunk index overflow")
            })?;
        }
        let Some(reference) = virtual_reference(path, &coord, chunk, sources)? else {
            if let SourceChunk::Inline(bytes) = chunk {
                session.set_chunk(path, &coord, bytes.clone()).await?;
                summary.inline_chunks += 1;
            }
            continue;
        };
        session.set_virtual_chunk(path, &coord, reference).await?;
        summary.virtual_refs += 1;
    }
    Ok(())
}

/// The virtual reference of `chunk` (at `coord` of the array at `path`), `None` for inline
/// data. Fails when the range lies past the end of its file.
fn virtual_reference(
    path: &NodePath,
    coord: &[u64],
    chunk: &SourceChunk,
    sources: &Sources,
) -> Result<Option<VirtualChunkRef>> {
    let (url, offset, length) = match chunk {
        SourceChunk::Inline(_) => return Ok(None),
        SourceChunk::File { url } => (url, 0, sources.get(url)?.size),
        SourceChunk::Range {
            url,
            offset,
            length,
        } => (url, *offset, *length),
    };
    let file = sources.get(url)?;
    if offset.checked_add(length).is_none_or(|end| end > file.size) {
        return Err(Error::import_refused(
            format!("array `{path}` chunk {coord:?}"),
            format!(
                "bytes {offset}..+{length} lie past the end of `{}` ({} bytes)",
                file.source.location, file.size
            ),
        ));
    }
    Ok(Some(VirtualChunkRef {
        source: file.source.clone(),
        offset,
        length,
    }))
}

/// The path a dataset path (`""` for the root) takes below `to`.
fn target_path(to: &NodePath, path: &str) -> Result<NodePath> {
    if path.is_empty() {
        return Ok(to.clone());
    }
    NodePath::new(&format!("{}{path}", to.key_prefix()))
}
