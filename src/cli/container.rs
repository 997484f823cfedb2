//! `floe container`: declare and list the virtual chunk containers of a repository.

use std::io::Write;

use floe::VirtualContainer;

use super::common::{
    parse_key_value, write_json, write_table, CliError, CliResult, Exit, RepoLocation,
};

/// Long description of `floe container`.
pub const LONG_ABOUT: &str = "\
Declare and list the virtual chunk containers of the repository: the URL prefixes (file://,
s3://, gs://, az://, http(s)://) below which virtual chunks may live, with the object-store
settings needed to read them (region, endpoint, allow_http...; never credentials, which are
refused: give those through the environment when reading). Reading virtual chunks still needs
authorization: `--allow-virtual <prefix>` or `--allow-virtual-declared`.";

/// Help of `floe container list --json`.
pub const JSON_HELP: &str = "\
JSON output (--json): an array of {\"prefix\": URL ending with /, \"options\": {KEY: VALUE}}.";

/// Subcommands of `floe container`.
#[derive(Debug, clap::Subcommand)]
pub enum ContainerCommand {
    /// Declare a container (declaring an existing prefix again replaces its options).
    Add(AddArgs),
    /// List the declared containers.
    #[command(after_long_help = JSON_HELP)]
    List(ListArgs),
}

/// Arguments of `floe container add`.
#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// The URL prefix, e.g. `s3://bucket/data/` or `/data/netcdf` (a local directory).
    #[arg(value_name = "URL_PREFIX")]
    prefix: String,
    /// A non-secret object-store setting of the container, e.g. `aws_region=eu-west-1`
    /// (repeatable). `-o` is taken by the repository's own storage options.
    #[arg(
        short = 'O',
        long = "container-option",
        value_name = "KEY=VALUE",
        value_parser = parse_key_value
    )]
    options: Vec<(String, String)>,
}

/// Arguments of `floe container list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs a `floe container` subcommand.
pub async fn run(
    location: &RepoLocation,
    command: ContainerCommand,
    out: &mut dyn Write,
) -> CliResult {
    let repo = location.open().await?;
    match command {
        ContainerCommand::Add(args) => {
            let container = VirtualContainer::new(&args.prefix, args.options)
                .map_err(|e| CliError::new(Exit::Usage, e.to_string()))?;
            repo.declare_virtual_containers(std::slice::from_ref(&container))
                .await?;
            writeln!(out, "declared container {}", container.prefix)?;
            Ok(())
        }
        ContainerCommand::List(args) => {
            let containers = repo.virtual_containers().await?;
            if args.json {
                let value: Vec<serde_json::Value> = containers
                    .iter()
                    .map(|c| {
                        let options: serde_json::Map<String, serde_json::Value> = c
                            .options
                            .iter()
                            .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                            .collect();
                        serde_json::json!({ "prefix": c.prefix, "options": options })
                    })
                    .collect();
                return write_json(out, &value);
            }
            let rows: Vec<Vec<String>> = containers
                .iter()
                .map(|c| {
                    let options: Vec<String> =
                        c.options.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    vec![c.prefix.clone(), options.join(",")]
                })
                .collect();
            write_table(out, &["PREFIX", "OPTIONS"], &rows)
        }
    }
}
