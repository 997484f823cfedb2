//! `floe import kerchunk`: import kerchunk references as virtual arrays and commit them.

use std::io::Write;
use std::path::PathBuf;

use floe::{
    import_kerchunk_with_progress, Error, ImportOptions, ImportProgress, KerchunkRefs, NodePath,
};
use indicatif::{ProgressBar, ProgressStyle};

use super::common::{short, CliError, CliResult, Exit, RepoLocation};

/// Long description of `floe import`.
pub const LONG_ABOUT: &str = "\
Import data described elsewhere into the repository. `floe import kerchunk` reads kerchunk
references (a JSON file of version 0 or 1, or a parquet reference directory `refs.parq/`),
creates the groups and arrays they describe (Zarr v2 metadata translated to Zarr v3) below
--to, sets virtual chunk references to the byte ranges of the netCDF/HDF5/GRIB files, and
commits. The containers holding those files are declared in the repository when none holds
them yet (one per directory, or per bucket), and each file's ETag or modification time is
recorded: reading a file changed since the import fails with \"source changed\". Reading the
virtual chunks later needs `--allow-virtual <prefix>` or `--allow-virtual-declared`.

With --append-dim, arrays that already exist grow along that dimension (the daily-file case):
the new file's chunks go after the existing ones. Arrays without that dimension (coordinates)
must equal the existing ones. The existing length along the dimension must be a multiple of
the chunk length.";

/// Subcommands of `floe import`.
#[derive(Debug, clap::Subcommand)]
pub enum ImportCommand {
    /// Import kerchunk references (JSON v0/v1 or a parquet reference directory) and commit.
    Kerchunk(KerchunkArgs),
}

/// Arguments of `floe import kerchunk`.
#[derive(Debug, clap::Args)]
pub struct KerchunkArgs {
    /// The references: a JSON file, or a parquet reference directory (`refs.parq/`).
    #[arg(value_name = "REFS")]
    refs: PathBuf,
    /// The group the references' root becomes, e.g. `era5` (`/` for the root).
    #[arg(long, value_name = "PATH")]
    to: String,
    /// The branch to commit to.
    #[arg(long, default_value = floe::DEFAULT_BRANCH, value_name = "BRANCH")]
    branch: String,
    /// Append along this dimension to the arrays that exist (a name from
    /// `_ARRAY_DIMENSIONS`, e.g. `time`) instead of replacing them.
    #[arg(long = "append-dim", value_name = "DIM")]
    append_dim: Option<String>,
    /// The commit message (default: `import kerchunk <REFS>`).
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    message: Option<String>,
}

/// Runs a `floe import` subcommand.
pub async fn run(
    location: &RepoLocation,
    command: ImportCommand,
    out: &mut dyn Write,
) -> CliResult {
    let ImportCommand::Kerchunk(args) = command;
    let to = NodePath::new(&args.to)
        .map_err(|e| CliError::new(Exit::Usage, format!("--to {}: {e}", args.to)))?;
    let refs = KerchunkRefs::read(&args.refs).map_err(|e| match e {
        Error::Io { .. } => CliError::new(Exit::NotFound, e.to_string()),
        other => CliError::new(Exit::Usage, other.to_string()),
    })?;
    // An append compares coordinate arrays with the existing ones, reading their chunks: the
    // import may read below the places its own files live.
    let mut access = location.virtual_access()?;
    for prefix in refs.source_prefixes()? {
        access = access.allow(&prefix)?;
    }
    let repo = location.open().await?.with_virtual_access(access);
    let session = repo.writable_session(&args.branch).await?;
    let options = ImportOptions {
        to,
        append_dim: args.append_dim.clone(),
        source_options: Vec::new(),
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{spinner} importing refs {pos}/{len} [{bar:40}] {eta}")
            .map_err(|e| CliError::new(Exit::Failure, e.to_string()))?
            .progress_chars("=> "),
    );
    let report = |p: ImportProgress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    };
    let imported = import_kerchunk_with_progress(&session, &refs, &options, &report).await;
    bar.finish_and_clear();
    let summary = imported.map_err(|e| match e {
        Error::KerchunkImport { .. } => CliError::new(Exit::Usage, e.to_string()),
        other => other.into(),
    })?;
    let message = args
        .message
        .unwrap_or_else(|| format!("import kerchunk {}", args.refs.display()));
    if !session.has_changes() {
        writeln!(out, "nothing to commit: the references add nothing new")?;
    } else {
        let id = session.commit(&message, None).await?;
        writeln!(
            out,
            "imported {} into `{}` on {}: snapshot {}",
            args.refs.display(),
            options.to,
            args.branch,
            short(&id)
        )?;
    }
    writeln!(out, "{summary}")?;
    Ok(())
}
