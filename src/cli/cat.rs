//! `floe cat`: the raw bytes of one Zarr key.

use std::io::Write;

use floe::ZarrStore;

use super::common::{resolve, short, CliError, CliResult, Exit, RepoLocation};

/// Long description of `floe cat`.
pub const LONG_ABOUT: &str = "\
Write the raw bytes of one Zarr key to stdout, exactly as a Zarr client reading the version
through floe gets them: `zarr.json` documents (a group's carries the consolidated metadata of
every node below it) and encoded chunks, e.g. `t2m/zarr.json` or `t2m/c/0/0/0`. A key that holds nothing (a chunk never
written reads as the fill value) exits with code 3.";

/// Arguments of `floe cat`.
#[derive(Debug, clap::Args)]
pub struct CatArgs {
    /// The version to read.
    #[arg(long = "at", value_name = "REF", default_value = floe::DEFAULT_BRANCH)]
    at: String,
    /// The Zarr key, e.g. `zarr.json`, `t2m/zarr.json` or `t2m/c/0/0/0`.
    #[arg(value_name = "KEY")]
    key: String,
}

/// Writes the key's bytes to `out`.
pub async fn run(location: &RepoLocation, args: CatArgs, out: &mut dyn Write) -> CliResult {
    let repo = location.open().await?;
    let id = resolve(&repo, &args.at).await?;
    let store = ZarrStore::new(repo.session_at_snapshot(id).await?);
    let key = args.key.strip_prefix('/').unwrap_or(&args.key);
    match store.get(key).await? {
        Some(bytes) => {
            out.write_all(&bytes)?;
            Ok(())
        }
        None => Err(CliError::new(
            Exit::NotFound,
            format!(
                "no value at key `{key}` in {} ({}); list nodes with `floe ls --at {}`",
                args.at,
                short(&id),
                args.at
            ),
        )),
    }
}
