//! `floe info`: one group or array described, like Zarr's `.info`.

use std::io::Write;

use floe::{NodeMetadata, NodePath};
use serde::Serialize;
use serde_json::Value;

use super::common::{bytes, dims, resolve, short, write_json, CliResult, RepoLocation};
use super::ls::dtype_name;

/// Documentation of `floe info --json`.
pub const JSON_HELP: &str = "\
JSON output (--json), one document. For an array:
  {\"ref\": \"<REF as given>\", \"snapshot\": \"<64-hex id>\", \"path\": \"/a/b\", \"type\": \"array\",
   \"shape\": [..], \"chunk_shape\": [..], \"dtype\": \"float32\",
   \"codecs\": [<codec objects exactly as in zarr.json>], \"fill_value\": <as in zarr.json>,
   \"dimension_names\": [..] or null, \"attributes_count\": <n>,
   \"chunks\": {\"total\": <n>, \"initialized\": <n>, \"inline\": <n>, \"native\": <n>,
              \"virtual\": <n>},
   \"bytes_logical\": <shape product * dtype size> or null when the dtype has no fixed size,
   \"bytes_stored\": <sum of the encoded sizes of the stored chunks>}
  chunks: \"total\" chunks in the grid, \"initialized\" of them stored (the others read as
  the fill value), each stored one counted once by where its bytes are: \"inline\" (in the
  manifest), \"native\" (in the repository's chunk objects) or \"virtual\" (a byte range of
  a file outside the repository); inline + native + virtual = initialized. bytes_stored
  counts virtual chunks by the length of their byte ranges.
For a group:
  {\"ref\": .., \"snapshot\": .., \"path\": .., \"type\": \"group\", \"attributes_count\": <n>,
   \"members\": <number of direct children>}";

/// Arguments of `floe info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// The version to look at.
    #[arg(long = "at", value_name = "REF", default_value = floe::DEFAULT_BRANCH)]
    at: String,
    /// The group or array (`/` is the root group).
    #[arg(value_name = "PATH")]
    path: String,
    /// Print one JSON document (see below) instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct ArrayReport {
    #[serde(rename = "ref")]
    reference: String,
    snapshot: String,
    path: String,
    #[serde(rename = "type")]
    kind: &'static str,
    shape: Vec<u64>,
    chunk_shape: Vec<u64>,
    dtype: Option<String>,
    codecs: Vec<Value>,
    fill_value: Value,
    dimension_names: Option<Value>,
    attributes_count: usize,
    chunks: ChunkCounts,
    bytes_logical: Option<u64>,
    bytes_stored: u64,
}

#[derive(Serialize)]
struct ChunkCounts {
    total: u64,
    initialized: u64,
    inline: u64,
    native: u64,
    #[serde(rename = "virtual")]
    virtual_chunks: u64,
}

#[derive(Serialize)]
struct GroupReport {
    #[serde(rename = "ref")]
    reference: String,
    snapshot: String,
    path: String,
    #[serde(rename = "type")]
    kind: &'static str,
    attributes_count: usize,
    members: usize,
}

/// The shape product times the element size of an array (`None` for groups, variable-size
/// data types, and sizes past 2^64).
pub fn logical_bytes(metadata: &NodeMetadata) -> Option<u64> {
    let geometry = metadata.geometry()?;
    let size = dtype_size(&dtype_name(metadata)?)?;
    geometry
        .shape
        .iter()
        .try_fold(size, |acc, &d| acc.checked_mul(d))
}

/// Size in bytes of one element of a fixed-size Zarr v3 core data type.
pub fn dtype_size(name: &str) -> Option<u64> {
    Some(match name {
        "bool" | "int8" | "uint8" => 1,
        "int16" | "uint16" | "float16" | "bfloat16" => 2,
        "int32" | "uint32" | "float32" => 4,
        "int64" | "uint64" | "float64" | "complex64" => 8,
        "complex128" => 16,
        raw => {
            let bits: u64 = raw.strip_prefix('r')?.parse().ok()?;
            if bits == 0 || bits % 8 != 0 {
                return None;
            }
            bits / 8
        }
    })
}

/// A codec as a short name; a sharding codec shows its inner codecs in parentheses.
fn codec_label(codec: &Value) -> String {
    let name = match codec {
        Value::String(name) => return name.clone(),
        Value::Object(object) => object.get("name").and_then(Value::as_str).unwrap_or("?"),
        _ => return "?".to_string(),
    };
    let inner = codec
        .get("configuration")
        .and_then(|c| c.get("codecs"))
        .and_then(Value::as_array);
    match inner {
        Some(inner) => {
            let labels: Vec<String> = inner.iter().map(codec_label).collect();
            format!("{name}({})", labels.join(", "))
        }
        None => name.to_string(),
    }
}

fn members(nodes: &[floe::NodeInfo], path: &NodePath) -> usize {
    nodes
        .iter()
        .filter(|n| n.path.parent().as_ref() == Some(path))
        .count()
}

/// Describes the node.
pub async fn run(location: &RepoLocation, args: InfoArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let path = NodePath::new(&args.path)?;
    let id = resolve(&repo, &args.at).await?;
    let session = repo.session_at_snapshot(id).await?;
    let node = session.require_node(&path)?;
    let metadata: &NodeMetadata = &node.metadata;
    let Some(geometry) = metadata.geometry() else {
        let report = GroupReport {
            reference: args.at,
            snapshot: id.to_string(),
            path: path.to_string(),
            kind: "group",
            attributes_count: metadata.attributes().len(),
            members: members(&session.list_nodes()?, &path),
        };
        if args.json {
            return write_json(out, &report);
        }
        writeln!(out, "Path         {}", report.path)?;
        writeln!(out, "Type         group")?;
        writeln!(out, "Snapshot     {} ({})", short(&id), report.reference)?;
        writeln!(out, "Attributes   {}", report.attributes_count)?;
        writeln!(out, "Members      {}", report.members)?;
        return Ok(());
    };
    let stats = session.array_stats(&path).await?;
    let document = metadata.document();
    let dtype = dtype_name(metadata);
    let bytes_logical = logical_bytes(metadata);
    let report = ArrayReport {
        reference: args.at,
        snapshot: id.to_string(),
        path: path.to_string(),
        kind: "array",
        shape: geometry.shape.clone(),
        chunk_shape: geometry.max_chunk_shape(),
        dtype,
        codecs: document
            .get("codecs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
        fill_value: document.get("fill_value").cloned().unwrap_or(Value::Null),
        dimension_names: document
            .get("dimension_names")
            .cloned()
            .filter(|v| !v.is_null()),
        attributes_count: metadata.attributes().len(),
        chunks: ChunkCounts {
            total: stats.chunks_total,
            initialized: stats.chunks_initialized,
            inline: stats.inline_chunks,
            native: stats.native_chunks,
            virtual_chunks: stats.virtual_chunks,
        },
        bytes_logical,
        bytes_stored: stats.bytes_stored,
    };
    if args.json {
        return write_json(out, &report);
    }
    let codecs: Vec<String> = report.codecs.iter().map(codec_label).collect();
    let dimension_names = match &report.dimension_names {
        Some(Value::Array(names)) => {
            let names: Vec<String> = names
                .iter()
                .map(|n| n.as_str().map_or_else(|| n.to_string(), str::to_string))
                .collect();
            format!("[{}]", names.join(", "))
        }
        Some(other) => other.to_string(),
        None => "-".to_string(),
    };
    let c = &report.chunks;
    writeln!(out, "Path              {}", report.path)?;
    writeln!(out, "Type              array")?;
    writeln!(
        out,
        "Snapshot          {} ({})",
        short(&id),
        report.reference
    )?;
    writeln!(out, "Shape             {}", dims(&report.shape))?;
    writeln!(out, "Chunk shape       {}", dims(&report.chunk_shape))?;
    writeln!(
        out,
        "Data type         {}",
        report.dtype.as_deref().unwrap_or("?")
    )?;
    writeln!(out, "Codecs            {}", codecs.join(", "))?;
    writeln!(out, "Fill value        {}", report.fill_value)?;
    writeln!(out, "Dimension names   {dimension_names}")?;
    writeln!(out, "Attributes        {}", report.attributes_count)?;
    writeln!(
        out,
        "Chunks            {} of {} initialized ({} inline, {} native, {} virtual)",
        c.initialized, c.total, c.inline, c.native, c.virtual_chunks
    )?;
    match report.bytes_logical {
        Some(n) => writeln!(out, "Bytes             {}", bytes(n))?,
        None => writeln!(out, "Bytes             unknown (variable-size data type)")?,
    }
    writeln!(out, "Bytes stored      {}", bytes(report.bytes_stored))?;
    if let (Some(logical), true) = (report.bytes_logical, report.bytes_stored > 0) {
        writeln!(
            out,
            "Storage ratio     {:.2}",
            logical as f64 / report.bytes_stored as f64
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_sizes() {
        assert_eq!(dtype_size("float32"), Some(4));
        assert_eq!(dtype_size("complex128"), Some(16));
        assert_eq!(dtype_size("r24"), Some(3));
        assert_eq!(dtype_size("r7"), None);
        assert_eq!(dtype_size("string"), None);
    }

    #[test]
    fn codec_labels_show_sharding_contents() {
        let codec = serde_json::json!({"name": "sharding_indexed", "configuration": {
            "chunk_shape": [2], "codecs": [{"name": "bytes"}, {"name": "zstd"}],
            "index_codecs": [{"name": "bytes"}, "crc32c"]}});
        assert_eq!(codec_label(&codec), "sharding_indexed(bytes, zstd)");
        assert_eq!(codec_label(&serde_json::json!("crc32c")), "crc32c");
    }
}
