//! `floe import netcdf` (alias `hdf5`): scan netCDF-3, netCDF-4 and HDF5 files natively,
//! import them as virtual arrays and commit once.

use std::io::Write;
use std::path::{Path, PathBuf};

use floe::{scan_sources_with_progress, KerchunkRefs, ScanProgress};
use indicatif::{ProgressBar, ProgressStyle};

use super::common::{short, CliError, CliResult, Exit, RepoLocation};
use super::import_placement::{import_with_bar, ImportPlacement};

/// Long description of `floe import netcdf`.
pub const LONG_ABOUT: &str = "\
Scan netCDF-3 files (classic, 64-bit offset and CDF-5) and HDF5 files (netCDF-4 among them),
told apart by their first bytes, with floe's own metadata parsers, no Python needed, and import
their variables as virtual arrays below
--to, exactly as `floe import kerchunk` imports references (coordinates and scalars loaded,
data referenced, the containers holding the files declared, each file's checksum recorded),
then commit once. Only metadata is read: for netCDF-3 one HEAD request and one ranged read for
most files; for HDF5 one batch of concurrent ranged reads per level of the file's metadata
(superblock and root group, each level of groups, each level of chunk indexes).

netCDF-3: record variables (along the unlimited dimension) get one chunk per record; other
variables are one chunk, or chunks of whole rows of about 16 MiB when they are larger and
their first dimension divides evenly (HDF5 contiguous datasets too). Attributes, _FillValue and dimension names are kept as xarray reads
them from the file.

Several files need --append-dim. They are scanned --concurrency at a time, ordered by their
append coordinate (the variable named like the dimension; CF times in different units or from
different reference dates compared as instants), which must increase from file to file without
overlapping (two more small reads per file), and appended in that order; the first goes onto
existing arrays, or creates them.

--variables and --drop-variables choose what is imported (and emitted): only some variables
(with the coordinates, bounds and grid mappings they need), or all but some. --emit-kerchunk
writes the references found (kerchunk JSON version 1) to compare with other tools; with several
files, one file each, numbered before the extension (refs.0.json, refs.1.json...). --dry-run
scans and reports without touching the repository.

HDF5 and netCDF-4: every dataset keeps its chunks (each a byte range of the file, found through
any chunk index) and its filters (deflate, shuffle, zstd, blosc; a trailing Fletcher32 checksum
is left out of each range). What no byte range can express is copied inline instead: compact
datasets, chunks stored with some filters skipped (unfiltered partial edge chunks), and
variable-length strings. Dimension names follow the netCDF-4 conventions (dimension scales,
DIMENSION_LIST), and datasets without them get phony_dim_N names as the netCDF library gives.
External storage, virtual datasets, and types or filters Zarr cannot express are refused by
name.";

/// Arguments of `floe import netcdf`.
#[derive(Debug, clap::Args)]
pub struct NetcdfArgs {
    /// The files: local paths or `file://`, `s3://`, `gs://`, `az://`, `http(s)://` URLs
    /// (read with your own credentials from the environment). A quoted pattern
    /// (`'s3://bucket/run/*.nc'`; `*`, `**`, `?`, `[a-z]`) stands for the files it matches.
    #[arg(value_name = "FILE|URL", required = true)]
    files: Vec<String>,
    #[command(flatten)]
    place: ImportPlacement,
    /// Import only these variables (repeatable), with the coordinate variables of their
    /// dimensions and the variables their `coordinates`, `bounds` and `grid_mapping` name.
    #[arg(long = "variables", value_name = "VAR", value_delimiter = ',')]
    variables: Vec<String>,
    /// Leave these variables out (repeatable).
    #[arg(long = "drop-variables", value_name = "VAR", value_delimiter = ',')]
    drop_variables: Vec<String>,
    /// Write the references found as kerchunk JSON (version 1) to this file.
    #[arg(long = "emit-kerchunk", value_name = "FILE")]
    emit_kerchunk: Option<PathBuf>,
    /// Scan and report only: nothing is written to the repository.
    #[arg(long = "dry-run")]
    dry_run: bool,
    /// Files scanned at once.
    #[arg(long, default_value_t = 16, value_name = "N")]
    concurrency: usize,
    /// The commit message (default: `import netcdf <FILE>` or `import netcdf <N> files`).
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    message: Option<String>,
}

/// A local path made absolute (URLs pass unchanged).
fn absolute(file: &str) -> CliResult<String> {
    if file.contains("://") {
        return Ok(file.to_string());
    }
    if file.contains(['*', '?', '[']) {
        // A pattern: only the directory before it must exist.
        let first = file.find(['*', '?', '[']).unwrap_or(file.len());
        let (dir, pattern) = match file[..first].rfind('/') {
            Some(i) => (&file[..=i], &file[i + 1..]),
            None => ("./", file),
        };
        let trimmed = dir.trim_end_matches('/');
        let dir = absolute(if trimmed.is_empty() { "/" } else { trimmed })?;
        return Ok(format!("{}/{pattern}", dir.trim_end_matches('/')));
    }
    let path = Path::new(file);
    let absolute = std::fs::canonicalize(path)
        .map_err(|e| CliError::new(Exit::NotFound, format!("{file}: {e}")))?;
    absolute
        .to_str()
        .map(str::to_string)
        .ok_or_else(|| CliError::new(Exit::Usage, format!("{file}: the path is not UTF-8")))
}

/// Where the references of file `index` of `count` go: `path` itself for one file, else
/// `path` with `.index` before its extension.
fn emit_path(path: &Path, index: usize, count: usize) -> PathBuf {
    if count == 1 {
        return path.to_path_buf();
    }
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("refs");
    let name = match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => format!("{stem}.{index}.{ext}"),
        None => format!("{stem}.{index}"),
    };
    path.with_file_name(name)
}

fn chunk_refs(refs: &KerchunkRefs) -> usize {
    refs.refs.values().filter(|r| r.url().is_some()).count()
}

/// Runs `floe import netcdf`.
pub async fn run(location: &RepoLocation, args: NetcdfArgs, out: &mut dyn Write) -> CliResult {
    let mut options = args.place.options()?;
    // Source files are read with the user's own settings (environment variables), never
    // with the repository's storage options.
    let options_for_sources: floe::StorageOptions = Vec::new();
    let files: Vec<String> = args
        .files
        .iter()
        .map(|f| absolute(f))
        .collect::<CliResult<_>>()?;
    // Quoted patterns (`'s3://bucket/run/*.nc'`) become the files they match.
    let files = floe::expand_sources(&files, &options_for_sources)
        .await
        .map_err(|e| match e {
            floe::Error::KerchunkImport { .. } => CliError::new(Exit::NotFound, e.to_string()),
            other => other.into(),
        })?;
    if files.len() > 1 && options.append_dim.is_none() {
        return Err(CliError::new(
            Exit::Usage,
            "several files need --append-dim (each would replace the one before)",
        ));
    }
    let bar = ProgressBar::new(files.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} scanning files {pos}/{len} [{bar:40}] {eta}")
            .map_err(|e| CliError::new(Exit::Failure, e.to_string()))?
            .progress_chars("=> "),
    );
    let report = |p: ScanProgress| bar.set_position(p.scanned as u64);
    let scanned = scan_sources_with_progress(
        &files,
        &options_for_sources,
        args.concurrency,
        options.append_dim.as_deref(),
        &report,
    )
    .await;
    bar.finish_and_clear();
    let scanned = scanned.map_err(|e| match e {
        floe::Error::KerchunkImport { .. } => CliError::new(Exit::Usage, e.to_string()),
        other => other.into(),
    })?;
    let scanned = scanned
        .into_iter()
        .map(|(refs, summary)| {
            let chosen = refs.select_variables(&args.variables, &args.drop_variables)?;
            Ok((chosen, summary))
        })
        .collect::<floe::Result<Vec<_>>>()
        .map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
    for (refs, summary) in &scanned {
        writeln!(
            out,
            "scanned {}: {}, {} arrays, {} chunk references ({} requests in {} round trips, \
             {} bytes read)",
            refs.origin,
            summary.format,
            refs.refs.keys().filter(|k| k.ends_with("/.zarray")).count(),
            chunk_refs(refs),
            summary.requests,
            summary.round_trips,
            summary.bytes_read
        )?;
    }
    if let Some(path) = &args.emit_kerchunk {
        for (index, (refs, _)) in scanned.iter().enumerate() {
            let target = emit_path(path, index, scanned.len());
            let text = serde_json::to_vec_pretty(&refs.to_json())
                .map_err(|e| CliError::new(Exit::Failure, e.to_string()))?;
            std::fs::write(&target, text)
                .map_err(|e| CliError::new(Exit::Failure, format!("{}: {e}", target.display())))?;
            writeln!(out, "wrote {}", target.display())?;
        }
    }
    if args.dry_run {
        writeln!(out, "dry run: nothing imported")?;
        return Ok(());
    }
    // An append compares coordinate arrays with the existing ones, reading their chunks: the
    // import may read below the places its own files live.
    let mut access = location.virtual_access()?;
    for (refs, _) in &scanned {
        for prefix in refs.source_prefixes()? {
            access = access.allow(&prefix)?;
        }
    }
    let repo = location.open().await?.with_virtual_access(access);
    let session = repo.writable_session(&args.place.branch).await?;
    options.source_options = options_for_sources;
    let mut summaries = Vec::new();
    for (index, (refs, _)) in scanned.iter().enumerate() {
        let label = format!("importing file {}/{}", index + 1, scanned.len());
        summaries.push(import_with_bar(&session, refs, &options, &label).await?);
    }
    let message = args.message.unwrap_or_else(|| match scanned.as_slice() {
        [(refs, _)] => format!("import netcdf {}", refs.origin),
        many => format!("import netcdf {} files", many.len()),
    });
    if !session.has_changes() {
        writeln!(out, "nothing to commit: the files add nothing new")?;
    } else {
        let id = session.commit(&message, None).await?;
        writeln!(
            out,
            "imported {} file(s) into `{}` on {}: snapshot {}",
            scanned.len(),
            options.to,
            args.place.branch,
            short(&id)
        )?;
    }
    for summary in summaries {
        writeln!(out, "{summary}")?;
    }
    Ok(())
}
