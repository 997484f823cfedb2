//! What must hold before an append writes anything, beyond each array's metadata: arrays
//! without the append dimension hold the same values as the stored ones, and every array along
//! the append dimension ends at the same length afterwards.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::chunks::ChunkCodec;
use super::placement::{Action, ArrayPlan};
use super::sources::Sources;
use super::values::{self, Decoded};
use crate::error::{Error, Result};
use crate::format::manifest::ChunkCoord;
use crate::format::path::NodePath;
use crate::repo::Session;
use crate::virtual_refs::dataset::{SourceChunk, VirtualArray};
use crate::zarr::metadata::NodeMetadata;

fn differ(path: &NodePath, detail: &str) -> crate::Error {
    Error::import_refused(
        format!("array `{path}`"),
        format!(
            "it lacks the append dimension, so it must equal the stored array, but {detail}; \
             nothing was changed"
        ),
    )
}

/// Checks that the array at `path` (stored metadata `existing`) holds the values of the
/// imported `array`: `new` when the import decoded them already (loaded, or re-encoded times),
/// else chunk by chunk when both are laid out and encoded alike (equal encoded bytes need no
/// decoding), else whole.
pub(crate) async fn check_unchanged(
    session: &Session,
    path: &NodePath,
    existing: &NodeMetadata,
    array: &VirtualArray,
    new: Option<&Decoded>,
    sources: &Sources,
) -> Result<()> {
    let same_layout = ["chunk_grid", "codecs", "data_type", "fill_value"]
        .iter()
        .all(|f| existing.document().get(*f) == array.document.get(*f));
    if new.is_none() && same_layout {
        return check_chunks(session, path, existing, array, sources).await;
    }
    let stored = values::read_stored(session, path, existing.document()).await?;
    let imported = match new {
        Some(values) => values.clone(),
        None => values::read_source(&format!("array `{path}`"), array, sources).await?,
    };
    if stored != imported {
        return Err(differ(path, "its values differ"));
    }
    Ok(())
}

async fn check_chunks(
    session: &Session,
    path: &NodePath,
    existing: &NodeMetadata,
    array: &VirtualArray,
    sources: &Sources,
) -> Result<()> {
    let what = format!("array `{path}`");
    let geometry = existing
        .geometry()
        .ok_or_else(|| Error::import_refused(what.clone(), "not an array"))?;
    let imported: BTreeMap<&ChunkCoord, &SourceChunk> =
        array.chunks.iter().map(|(c, s)| (c, s)).collect();
    let stored: BTreeSet<ChunkCoord> = session.list_chunks(path).await?.into_iter().collect();
    let coords: BTreeSet<&ChunkCoord> = imported.keys().copied().chain(stored.iter()).collect();
    let mut codec: Option<ChunkCodec> = None;
    for coord in coords {
        let theirs = match imported.get(coord) {
            Some(chunk) => Some(values::fetch_chunk(chunk, sources).await?),
            None => None,
        };
        let ours = if stored.contains(coord) {
            session.get_chunk(path, coord).await?
        } else {
            None
        };
        if ours == theirs {
            continue;
        }
        if codec.is_none() {
            codec = Some(
                ChunkCodec::new(existing).map_err(|e| Error::import_refused(what.clone(), e))?,
            );
        }
        let codec = codec
            .as_ref()
            .ok_or_else(|| Error::import_refused(what.clone(), "no codec"))?;
        let shape = geometry.chunk_shape_at(coord).ok_or_else(|| {
            Error::import_refused(what.clone(), format!("chunk {coord:?} is outside its grid"))
        })?;
        let decode = |bytes: Option<&bytes::Bytes>| {
            codec
                .decode(bytes.map(|b| &b[..]), &shape)
                .map_err(|e| Error::import_refused(format!("{what} chunk {coord:?}"), e))
        };
        if decode(ours.as_ref())? != decode(theirs.as_ref())? {
            return Err(differ(
                path,
                &format!("its chunk {coord:?} holds other values"),
            ));
        }
    }
    Ok(())
}

/// Checks that after an append along `append_dim` into `to`, the arrays of each group below
/// `to` that have that dimension (imported, or stored and not in the import) have one length
/// along it: a file lacking a variable the store has, or bringing a new one, would leave the
/// group with conflicting lengths that xarray refuses to open. (Groups may have dimensions of
/// their own: netCDF-4 groups do.)
pub(crate) fn check_append_lengths(
    session: &Session,
    to: &NodePath,
    append_dim: &str,
    plans: &[&ArrayPlan],
) -> Result<()> {
    let mut lengths: BTreeMap<NodePath, u64> = BTreeMap::new();
    for node in session.list_nodes()? {
        let Some(geometry) = node.metadata.geometry() else {
            continue;
        };
        if !node.path.is_within(to) {
            continue;
        }
        let names = node.metadata.document().get("dimension_names");
        if let Some(dim) = dimension_index(names, append_dim) {
            if let Some(&length) = geometry.shape.get(dim) {
                lengths.insert(node.path.clone(), length);
            }
        }
    }
    for plan in plans {
        let document = match &plan.action {
            Action::Create { metadata, .. }
            | Action::AppendLoaded { metadata, .. }
            | Action::AppendVirtual { metadata, .. } => metadata.document(),
            Action::Unchanged { .. } => continue,
        };
        match dimension_index(document.get("dimension_names"), append_dim) {
            Some(dim) => {
                let length = document["shape"][dim].as_u64().unwrap_or(0);
                lengths.insert(plan.target.clone(), length);
            }
            None => {
                lengths.remove(&plan.target);
            }
        }
    }
    let mut by_group: BTreeMap<Option<NodePath>, Vec<(&NodePath, u64)>> = BTreeMap::new();
    for (path, &length) in &lengths {
        by_group
            .entry(path.parent())
            .or_default()
            .push((path, length));
    }
    for (group, arrays) in by_group {
        let distinct: BTreeSet<u64> = arrays.iter().map(|&(_, l)| l).collect();
        if distinct.len() > 1 {
            let listed: Vec<String> = arrays
                .iter()
                .map(|(path, length)| format!("{path}: {length}"))
                .collect();
            let group = group.map_or_else(|| "/".to_string(), |g| g.to_string());
            return Err(Error::import_refused(
                format!("group `{group}`"),
                format!(
                    "after this append its arrays along `{append_dim}` would have different \
                     lengths ({}): a variable the stored dataset has is missing from the \
                     imported file, or the file brings a new one; nothing was changed",
                    listed.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

/// Checks that the nodes an import writes fit the hierarchy: no array of the dataset inside
/// another; no group the import only implies (a parent of `--to`, or of a node) where the
/// repository has an array, since implied groups are never written over; and, for an append,
/// no dataset group where the repository has an array (an append replaces no node). Without
/// an append, a dataset group replaces a stored array, as any node of the dataset does.
pub(crate) fn check_hierarchy(
    session: &Session,
    described: &BTreeSet<NodePath>,
    implied: &BTreeSet<NodePath>,
    arrays: &BTreeSet<NodePath>,
    appending: bool,
) -> Result<()> {
    let refuse = |path: &NodePath, reason: String| {
        Error::import_refused(
            format!("node `{path}`"),
            format!("{reason}; nothing was changed"),
        )
    };
    let is_stored_array = |path: &NodePath| -> Result<bool> {
        Ok(session
            .node(path)?
            .is_some_and(|n| n.metadata.geometry().is_some()))
    };
    for group in implied {
        if is_stored_array(group)? {
            return Err(refuse(
                group,
                "it is an array in the repository, and the import would place nodes inside it"
                    .into(),
            ));
        }
    }
    if appending {
        for group in described {
            if is_stored_array(group)? {
                return Err(refuse(
                    group,
                    "the dataset has a group here but the repository has an array, and an \
                     append does not replace nodes"
                        .into(),
                ));
            }
        }
    }
    for array in arrays {
        let mut ancestor = array.parent();
        while let Some(a) = ancestor {
            if arrays.contains(&a) {
                return Err(refuse(
                    array,
                    format!("it lies inside the array `{a}` of the dataset"),
                ));
            }
            ancestor = a.parent();
        }
    }
    Ok(())
}

fn dimension_index(names: Option<&Value>, dim: &str) -> Option<usize> {
    names?
        .as_array()?
        .iter()
        .position(|n| n.as_str() == Some(dim))
}
