//! `floe import kerchunk`: import kerchunk references as virtual arrays and commit them.

use std::io::Write;
use std::path::PathBuf;

use floe::{Error, KerchunkRefs};

use super::common::{short, CliError, CliResult, Exit, RepoLocation};
use super::import_placement::{import_with_bar, ImportPlacement};

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

Coordinate variables (1-D, named like their dimension), arrays other variables name as CF
coordinates, bounds or grid mappings, and scalars are loaded: their values are read once and
stored as ordinary chunks, so they can grow with each appended file. --load VAR and
--virtual VAR (repeatable; a name or a path below the references' root) override that.
Arrays carry what xarray needs to decode them as it decodes the source files (_FillValue,
dimension names, packing and time attributes).

With --append-dim, arrays that already exist grow along that dimension (the daily-file case):
loaded values are written after the existing ones (CF times re-encoded to the stored units and
calendar), and references go after the existing chunks, a partly filled last chunk (netCDF
stores 12 time steps in a chunk of 512) being cut to its length and stored first. Arrays
without that dimension must hold the same values as the stored ones. Attributes that change
how values decode (scale_factor, add_offset, _FillValue, missing_value, units, calendar) must
agree; other attributes that differ keep the stored value and are listed. A refused import
changes nothing.";

/// Subcommands of `floe import`.
#[derive(Debug, clap::Subcommand)]
pub enum ImportCommand {
    /// Import kerchunk references (JSON v0/v1 or a parquet reference directory) and commit.
    Kerchunk(KerchunkArgs),
    /// Scan netCDF-3, netCDF-4 and HDF5 files natively, import their variables as virtual
    /// arrays and commit once (`floe import hdf5` is the same command).
    #[command(long_about = super::import_netcdf::LONG_ABOUT, visible_alias = "hdf5")]
    Netcdf(super::import_netcdf::NetcdfArgs),
}

/// Arguments of `floe import kerchunk`.
#[derive(Debug, clap::Args)]
pub struct KerchunkArgs {
    /// The references: a JSON file, or a parquet reference directory (`refs.parq/`).
    #[arg(value_name = "REFS")]
    refs: PathBuf,
    #[command(flatten)]
    place: ImportPlacement,
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
    let args = match command {
        ImportCommand::Kerchunk(args) => args,
        ImportCommand::Netcdf(args) => return super::import_netcdf::run(location, args, out).await,
    };
    let options = args.place.options()?;
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
    let session = repo.writable_session(&args.place.branch).await?;
    let summary = import_with_bar(&session, &refs, &options, "importing refs").await?;
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
            args.place.branch,
            short(&id)
        )?;
    }
    writeln!(out, "{summary}")?;
    Ok(())
}
