//! What the import subcommands share: where and how an import places what it reads, and the
//! import itself with a progress bar.

use floe::{
    import_kerchunk_with_progress, Error, ImportOptions, ImportProgress, KerchunkRefs, NodePath,
};
use indicatif::{ProgressBar, ProgressStyle};

use super::common::{CliError, CliResult, Exit};

/// Where and how an import places what it reads (shared by the import subcommands).
#[derive(Debug, clap::Args)]
pub struct ImportPlacement {
    /// The group the imported root becomes, e.g. `era5` (`/` for the root).
    #[arg(long, value_name = "PATH")]
    to: String,
    /// The branch to commit to.
    #[arg(long, default_value = floe::DEFAULT_BRANCH, value_name = "BRANCH")]
    pub branch: String,
    /// Append along this dimension (a name from the dimension names, e.g. `time`) to the
    /// arrays that exist instead of replacing them.
    #[arg(long = "append-dim", value_name = "DIM")]
    append_dim: Option<String>,
    /// Load this variable's values into the repository instead of referencing them
    /// (repeatable; a name, or a path below the imported root).
    #[arg(long = "load", value_name = "VAR")]
    load: Vec<String>,
    /// Keep this variable virtual even if it would be loaded by default (repeatable).
    #[arg(long = "virtual", value_name = "VAR")]
    keep_virtual: Vec<String>,
}

impl ImportPlacement {
    /// The import options these arguments say; a bad `--to` is a usage error.
    pub fn options(&self) -> CliResult<ImportOptions> {
        let to = NodePath::new(&self.to)
            .map_err(|e| CliError::new(Exit::Usage, format!("--to {}: {e}", self.to)))?;
        let mut options = ImportOptions::new(to);
        options.append_dim = self.append_dim.clone();
        options.load = self.load.clone();
        options.keep_virtual = self.keep_virtual.clone();
        Ok(options)
    }
}

/// Imports `refs` into `session` with a progress bar labelled `label`; a refused import is a
/// usage error.
pub(super) async fn import_with_bar(
    session: &floe::Session,
    refs: &KerchunkRefs,
    options: &ImportOptions,
    label: &str,
) -> CliResult<floe::ImportSummary> {
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{spinner}} {label} {{pos}}/{{len}} [{{bar:40}}] {{eta}}"
        ))
        .map_err(|e| CliError::new(Exit::Failure, e.to_string()))?
        .progress_chars("=> "),
    );
    let report = |p: ImportProgress| {
        bar.set_length(p.total);
        bar.set_position(p.done);
    };
    let imported = import_kerchunk_with_progress(session, refs, options, &report).await;
    bar.finish_and_clear();
    imported.map_err(|e| match e {
        Error::KerchunkImport { .. } => CliError::new(Exit::Usage, e.to_string()),
        other => other.into(),
    })
}
