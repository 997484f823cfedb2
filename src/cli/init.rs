//! `floe init`: create a repository.

use std::io::Write;

use floe::{Repository, DEFAULT_BRANCH};

use super::common::{short, CliResult, RepoLocation};

/// Creates the repository and prints where and what `main` points at.
pub async fn run(location: &RepoLocation, out: &mut dyn Write) -> CliResult {
    let place = location.require()?;
    let repo = Repository::init_location(place, &location.options).await?;
    let tip = repo.branch_tip(DEFAULT_BRANCH).await?;
    writeln!(
        out,
        "initialized an empty floe repository at {place} (branch {DEFAULT_BRANCH} at {})",
        short(&tip)
    )?;
    Ok(())
}
