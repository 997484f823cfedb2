//! Turning a kerchunk reference set into groups, arrays and chunk references of a session.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::append::{self, check_unchanged, Placement};
use super::sources::{self, Sources};
use super::zarr_v2::array_v3;
use super::{invalid, KerchunkRef, KerchunkRefs};
use crate::error::Result;
use crate::format::manifest::{ChunkCoord, VirtualChunkRef};
use crate::format::path::NodePath;
use crate::repo::Session;
use crate::storage::StorageOptions;
use crate::zarr::metadata::{ArrayGeometry, NodeMetadata};

/// How [`import_kerchunk`] places the references.
#[derive(Clone, Debug)]
pub struct ImportOptions {
    /// The group the reference set's root becomes (created if missing, with its parents).
    pub to: NodePath,
    /// Append along this dimension (a name of `_ARRAY_DIMENSIONS`) to arrays that already
    /// exist, instead of replacing them.
    pub append_dim: Option<String>,
    /// Object-store options (credentials, region, endpoint...) for the HEAD requests that
    /// record each source file's checksum. Options declared in the repository are never used
    /// for them.
    pub source_options: StorageOptions,
}

impl ImportOptions {
    /// Import into `to`, replacing existing arrays, with no extra source options.
    pub fn new(to: NodePath) -> Self {
        ImportOptions {
            to,
            append_dim: None,
            source_options: Vec::new(),
        }
    }
}

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

/// What [`import_kerchunk`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImportSummary {
    /// Groups created or updated.
    pub groups: usize,
    /// Arrays created (or replaced).
    pub arrays_created: usize,
    /// Existing arrays the references were appended to.
    pub arrays_appended: usize,
    /// Existing arrays without the append dimension, found equal and left as they were.
    pub arrays_unchanged: usize,
    /// Virtual chunk references set.
    pub virtual_refs: u64,
    /// Chunks the references held inline, stored through [`Session::set_chunk`].
    pub inline_chunks: u64,
    /// Keys that belong to no array and are not metadata (ignored).
    pub skipped_keys: u64,
    /// The containers holding the referenced files.
    pub containers: Vec<ImportedContainer>,
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
        if self.skipped_keys > 0 {
            write!(f, "; {} keys skipped", self.skipped_keys)?;
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

/// Progress of an import: chunk references handled so far, of `total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportProgress {
    /// Chunk references handled.
    pub done: u64,
    /// Chunk references in the set.
    pub total: u64,
}

/// One Zarr v2 node of the reference set.
#[derive(Default)]
struct V2Node {
    group: bool,
    zarray: Option<Value>,
    zattrs: Option<Map<String, Value>>,
}

/// An array being imported.
struct ArrayPlan {
    target: NodePath,
    separator: char,
    ndim: usize,
    placement: Placement,
    document: Value,
    /// The grid of the imported array: every chunk key must address a chunk of it.
    grid: ArrayGeometry,
    /// For an append: the grid of the grown array, which the shifted chunks must fit.
    appended_grid: Option<ArrayGeometry>,
    /// The chunks, at their final coordinates (shifted for an append).
    chunks: Vec<(ChunkCoord, KerchunkRef)>,
}

/// Imports kerchunk references into the writable `session` (nothing is committed):
///
/// - the root group of the references becomes `options.to`, created with any missing parent;
///   groups get their `.zattrs`; arrays get Zarr v3 metadata translated from `.zarray` and
///   `.zattrs` (consolidated `.zmetadata` is read too; explicit keys win);
/// - the files the references point to are checked (absolute URLs or paths of a supported
///   scheme, no traversal), the containers holding them are declared in the repository when
///   no declared container holds them yet (one per directory for local files and HTTP, one
///   per bucket for object stores), and each file's checksum (ETag, else modification time)
///   is recorded with one HEAD request, so reading a file changed after the import fails with
///   [`crate::Error::VirtualSourceChanged`];
/// - byte-range and whole-file references become virtual chunk references; inline data is
///   stored as chunks of the repository.
///
/// Without `append_dim`, an array that exists at a target path is replaced. With it, an
/// existing array having that dimension grows along it and the new chunks go after the
/// existing ones. When the new chunks have another length along that dimension than the
/// existing ones (monthly files of daily data, one chunk per file: 31, 28, 31...), or the
/// existing grid is already rectilinear, the array gets (or keeps) a `rectilinear` chunk grid
/// along that dimension: the existing edges followed by the new chunk length, repeated as
/// often as the new data needs; every other dimension must keep its chunk length. An
/// existing array without it must equal the imported one (same metadata,
/// chunks and bytes), which is then left as it is: that comparison reads the existing chunks
/// through `session`, so its repository handle must be authorized to read them (see
/// [`crate::VirtualAccess`]). Arrays that do not exist yet are created.
///
/// Fails with [`crate::Error::KerchunkImport`] for malformed metadata, an unsupported codec or
/// data type (naming the variable), a chunk key that does not fit its array, a reference past
/// the end of its file, an append dimension no array has, an append whose arrays do not fit
/// the existing ones, or an existing array whose last chunk along the append dimension reaches
/// past its end (a partial last chunk: its bytes are stored at full length, so the new chunks
/// cannot start right after the existing elements); with the errors of
/// location checks, HEAD requests and the session's writes otherwise. The containers are
/// declared before the session's changes, so a failed import may leave them declared.
pub async fn import_kerchunk(
    session: &Session,
    refs: &KerchunkRefs,
    options: &ImportOptions,
) -> Result<ImportSummary> {
    import_kerchunk_with_progress(session, refs, options, &|_| {}).await
}

/// [`import_kerchunk`], calling `progress` as chunk references are handled (at most about
/// a thousand times).
pub async fn import_kerchunk_with_progress(
    session: &Session,
    refs: &KerchunkRefs,
    options: &ImportOptions,
    progress: &(dyn Fn(ImportProgress) + Send + Sync),
) -> Result<ImportSummary> {
    let origin = refs.origin.as_str();
    let nodes = collect_nodes(refs)?;
    let mut summary = ImportSummary::default();
    let mut documents: BTreeMap<&String, Value> = BTreeMap::new();
    for (v2_path, node) in &nodes {
        let Some(zarray) = &node.zarray else { continue };
        let what = || format!("{origin}: variable `{v2_path}`");
        let document = array_v3(zarray, node.zattrs.as_ref()).map_err(|e| invalid(what(), e))?;
        documents.insert(v2_path, document);
    }
    if let Some(dim) = &options.append_dim {
        let has_dim = documents.values().any(|document| {
            document["dimension_names"]
                .as_array()
                .is_some_and(|names| names.iter().any(|n| n == dim.as_str()))
        });
        if !has_dim {
            return Err(append::unknown_dimension(origin, dim));
        }
    }
    let mut arrays: BTreeMap<String, ArrayPlan> = BTreeMap::new();
    for (v2_path, document) in documents {
        let target = target_path(&options.to, v2_path)?;
        let placement = append::plan(session, &target, &document, options.append_dim.as_deref())?;
        let separator = match document["chunk_key_encoding"]["configuration"]["separator"].as_str()
        {
            Some("/") => '/',
            _ => '.',
        };
        let ndim = document["shape"].as_array().map_or(0, Vec::len);
        let grid = array_geometry(&target, &document)?;
        let appended_grid = match &placement {
            Placement::Append { document, .. } => Some(array_geometry(&target, document)?),
            _ => None,
        };
        arrays.insert(
            v2_path.clone(),
            ArrayPlan {
                target,
                separator,
                ndim,
                placement,
                document,
                grid,
                appended_grid,
                chunks: Vec::new(),
            },
        );
    }
    let mut urls: BTreeSet<Arc<str>> = BTreeSet::new();
    for (key, reference) in &refs.refs {
        if is_metadata_key(key) {
            continue;
        }
        let Some((v2_path, chunk)) = owning_array(&arrays, key) else {
            summary.skipped_keys += 1;
            continue;
        };
        let plan = arrays
            .get_mut(&v2_path)
            .ok_or_else(|| invalid(key.as_str(), "no array"))?;
        let coord = parse_chunk_key(chunk, plan.separator, plan.ndim).ok_or_else(|| {
            invalid(
                format!("{origin}: key `{key}`"),
                format!(
                    "not a chunk key of a {}-dimensional array with separator `{}`",
                    plan.ndim, plan.separator
                ),
            )
        })?;
        let coord = placed_chunk(plan, coord)
            .map_err(|reason| invalid(format!("{origin}: key `{key}`"), reason))?;
        if let KerchunkRef::File { url } | KerchunkRef::Range { url, .. } = reference {
            urls.insert(url.clone());
        }
        plan.chunks.push((coord, reference.clone()));
    }
    let sources = sources::resolve(session.repository(), &urls, &options.source_options).await?;
    summary.containers = sources.containers.clone();

    // Nodes first: groups (with the missing parents of everything), then arrays.
    let mut groups: BTreeMap<NodePath, Map<String, Value>> = BTreeMap::new();
    for (v2_path, node) in &nodes {
        if node.group && node.zarray.is_none() {
            groups.insert(
                target_path(&options.to, v2_path)?,
                node.zattrs.clone().unwrap_or_default(),
            );
        }
    }
    let mut parents: BTreeSet<NodePath> = BTreeSet::new();
    for path in groups
        .keys()
        .chain(arrays.values().map(|a| &a.target))
        .chain(std::iter::once(&options.to))
    {
        let mut parent = path.parent();
        while let Some(p) = parent {
            parent = p.parent();
            parents.insert(p);
        }
    }
    parents.insert(options.to.clone());
    for parent in parents {
        if !groups.contains_key(&parent) && session.node(&parent)?.is_none() {
            groups.insert(parent, Map::new());
        }
    }
    for (path, attributes) in groups {
        let exists = session
            .node(&path)?
            .is_some_and(|n| n.metadata.geometry().is_none());
        if exists && options.append_dim.is_some() {
            continue;
        }
        session.create_group(&path, attributes).await?;
        summary.groups += 1;
    }
    for plan in arrays.values_mut() {
        match &plan.placement {
            Placement::Create { replace } => {
                if *replace {
                    session.delete_node(&plan.target).await?;
                }
                session
                    .create_array(&plan.target, plan.document.clone())
                    .await?;
                summary.arrays_created += 1;
            }
            Placement::Append { document, .. } => {
                // Same kind of node: the existing chunks are kept, and the session checks
                // that a rectilinear grid keeps their extents. The chunks were shifted by
                // `placed_chunk` already.
                let metadata = NodeMetadata::from_value(&plan.target, document.clone())?;
                session.set_metadata(&plan.target, metadata).await?;
                summary.arrays_appended += 1;
            }
            Placement::Unchanged => {
                plan.chunks.sort_by(|a, b| a.0.cmp(&b.0));
                let new: Vec<(ChunkCoord, &KerchunkRef)> =
                    plan.chunks.iter().map(|(c, r)| (c.clone(), r)).collect();
                check_unchanged(session, &plan.target, &new, &sources).await?;
                summary.arrays_unchanged += 1;
            }
        }
    }
    write_chunks(session, &arrays, &sources, &mut summary, progress).await?;
    Ok(summary)
}

async fn write_chunks(
    session: &Session,
    arrays: &BTreeMap<String, ArrayPlan>,
    sources: &Sources,
    summary: &mut ImportSummary,
    progress: &(dyn Fn(ImportProgress) + Send + Sync),
) -> Result<()> {
    let total: u64 = arrays.values().map(|a| a.chunks.len() as u64).sum();
    let step = (total / 1000).max(1);
    let mut done = 0u64;
    progress(ImportProgress { done, total });
    for plan in arrays.values() {
        let writes = !matches!(plan.placement, Placement::Unchanged);
        for (coord, reference) in &plan.chunks {
            if writes {
                write_chunk(session, &plan.target, coord, reference, sources, summary).await?;
            }
            done += 1;
            if done % step == 0 || done == total {
                progress(ImportProgress { done, total });
            }
        }
    }
    Ok(())
}

async fn write_chunk(
    session: &Session,
    path: &NodePath,
    coord: &[u64],
    reference: &KerchunkRef,
    sources: &Sources,
    summary: &mut ImportSummary,
) -> Result<()> {
    let (url, offset, length) = match reference {
        KerchunkRef::Inline(bytes) => {
            session.set_chunk(path, coord, bytes.clone()).await?;
            summary.inline_chunks += 1;
            return Ok(());
        }
        KerchunkRef::File { url } => (url, 0, sources.get(url)?.size),
        KerchunkRef::Range {
            url,
            offset,
            length,
        } => (url, *offset, *length),
    };
    let file = sources.get(url)?;
    if offset.checked_add(length).is_none_or(|end| end > file.size) {
        return Err(invalid(
            format!("array `{path}` chunk {coord:?}"),
            format!(
                "bytes {offset}..+{length} lie past the end of `{}` ({} bytes)",
                file.source.location, file.size
            ),
        ));
    }
    let chunk = VirtualChunkRef {
        source: file.source.clone(),
        offset,
        length,
    };
    session.set_virtual_chunk(path, coord, chunk).await?;
    summary.virtual_refs += 1;
    Ok(())
}

/// The path a Zarr v2 node path (`""` for the root) takes below `to`.
fn target_path(to: &NodePath, v2_path: &str) -> Result<NodePath> {
    if v2_path.is_empty() {
        return Ok(to.clone());
    }
    NodePath::new(&format!("{}{v2_path}", to.key_prefix()))
}

/// True for Zarr v2 metadata keys (`.zgroup`, `a/.zarray`, `.zmetadata`...).
fn is_metadata_key(key: &str) -> bool {
    key.rsplit('/')
        .next()
        .is_some_and(|last| last.starts_with(".z"))
}

/// Splits `.zgroup`-style keys into the node path and the file name.
fn split_metadata_key(key: &str) -> (&str, &str) {
    match key.rsplit_once('/') {
        Some((path, name)) => (path, name),
        None => ("", key),
    }
}

fn parse_json(origin: &str, key: &str, reference: &KerchunkRef) -> Result<Value> {
    let KerchunkRef::Inline(bytes) = reference else {
        return Err(invalid(
            format!("{origin}: key `{key}`"),
            "metadata must be inline JSON",
        ));
    };
    serde_json::from_slice(bytes)
        .map_err(|e| invalid(format!("{origin}: key `{key}`"), format!("not JSON: {e}")))
}

/// Every node of the reference set, from `.zmetadata` and then the explicit metadata keys.
fn collect_nodes(refs: &KerchunkRefs) -> Result<BTreeMap<String, V2Node>> {
    let origin = refs.origin.as_str();
    let mut documents: BTreeMap<String, Value> = BTreeMap::new();
    if let Some(consolidated) = refs.refs.get(".zmetadata") {
        let value = parse_json(origin, ".zmetadata", consolidated)?;
        if let Some(metadata) = value.get("metadata").and_then(Value::as_object) {
            for (key, document) in metadata {
                let document = match document {
                    Value::String(text) => serde_json::from_str(text).map_err(|e| {
                        invalid(
                            format!("{origin}: .zmetadata `{key}`"),
                            format!("not JSON: {e}"),
                        )
                    })?,
                    other => other.clone(),
                };
                documents.insert(key.clone(), document);
            }
        }
    }
    for (key, reference) in &refs.refs {
        if is_metadata_key(key) && key != ".zmetadata" && !key.ends_with("/.zmetadata") {
            documents.insert(key.clone(), parse_json(origin, key, reference)?);
        }
    }
    let mut nodes: BTreeMap<String, V2Node> = BTreeMap::new();
    for (key, document) in documents {
        let (path, name) = split_metadata_key(&key);
        let node = nodes.entry(path.to_string()).or_default();
        match name {
            ".zgroup" => node.group = true,
            ".zarray" => node.zarray = Some(document),
            ".zattrs" => {
                let Value::Object(attributes) = document else {
                    return Err(invalid(
                        format!("{origin}: key `{key}`"),
                        "`.zattrs` must be a JSON object",
                    ));
                };
                node.zattrs = Some(attributes);
            }
            _ => {}
        }
    }
    nodes.retain(|_, n| n.group || n.zarray.is_some());
    Ok(nodes)
}

/// The array a chunk key belongs to (the longest array path that prefixes it) and the chunk
/// part of the key.
fn owning_array<'k>(
    arrays: &BTreeMap<String, ArrayPlan>,
    key: &'k str,
) -> Option<(String, &'k str)> {
    let mut end = key.len();
    while let Some(slash) = key[..end].rfind('/') {
        let path = &key[..slash];
        if arrays.contains_key(path) {
            return Some((path.to_string(), &key[slash + 1..]));
        }
        end = slash;
    }
    arrays.contains_key("").then(|| (String::new(), key))
}

/// Chunk coordinates from the chunk part of a v2 key (`1.2.3`, or `1/2/3`; `0` for 0-d).
/// The geometry of the array document `document` of `target`.
fn array_geometry(target: &NodePath, document: &Value) -> Result<ArrayGeometry> {
    let metadata = NodeMetadata::from_value(target, document.clone())?;
    metadata.geometry().cloned().ok_or_else(|| {
        invalid(
            format!("array `{target}`"),
            "the translated metadata is not an array's",
        )
    })
}

/// Where the chunk at `coord` of the imported array goes: `coord` itself, or shifted along
/// the append dimension for an append. Fails when `coord` is outside the imported array's
/// grid or the shifted one outside the grown array's grid (rather than wrapping around and
/// silently replacing another chunk).
fn placed_chunk(
    plan: &ArrayPlan,
    mut coord: ChunkCoord,
) -> std::result::Result<ChunkCoord, String> {
    if !plan.grid.contains_chunk(&coord) {
        return Err(format!(
            "chunk {coord:?} is outside the array's grid of {:?} chunks",
            plan.grid.grid_shape()
        ));
    }
    if let (
        Placement::Append {
            dim, chunk_shift, ..
        },
        Some(appended),
    ) = (&plan.placement, &plan.appended_grid)
    {
        let shifted = coord
            .get(*dim)
            .and_then(|index| index.checked_add(*chunk_shift));
        let Some(shifted) = shifted else {
            return Err(format!(
                "chunk {coord:?} cannot be shifted by {chunk_shift} along dimension {dim}"
            ));
        };
        coord[*dim] = shifted;
        if !appended.contains_chunk(&coord) {
            return Err(format!(
                "chunk {coord:?} (after the append shift) is outside the grown array's grid \
                 of {:?} chunks",
                appended.grid_shape()
            ));
        }
    }
    Ok(coord)
}

fn parse_chunk_key(chunk: &str, separator: char, ndim: usize) -> Option<ChunkCoord> {
    if ndim == 0 {
        return (chunk == "0").then(Vec::new);
    }
    let coord: Option<Vec<u64>> = chunk.split(separator).map(|p| p.parse().ok()).collect();
    coord.filter(|c| c.len() == ndim)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_keys_parse_by_separator_and_dimensionality() {
        assert_eq!(parse_chunk_key("1.2.3", '.', 3), Some(vec![1, 2, 3]));
        assert_eq!(parse_chunk_key("1/2", '/', 2), Some(vec![1, 2]));
        assert_eq!(parse_chunk_key("0", '.', 0), Some(vec![]));
        assert_eq!(parse_chunk_key("1.2", '.', 3), None);
        assert_eq!(parse_chunk_key("1.x", '.', 2), None);
        assert_eq!(parse_chunk_key("1", '.', 0), None);
        assert!(is_metadata_key(".zgroup"));
        assert!(is_metadata_key("a/b/.zattrs"));
        assert!(!is_metadata_key("a/0.0"));
    }
}
