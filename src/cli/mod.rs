//! The `floe` command line: inspect and manage a floe repository.
//!
//! Every command takes the repository as `-r/--repo <URL or PATH>` or the `FLOE_REPO`
//! environment variable. Listing verbs (`log`, `branch list`, `tag list`, `ls`, `info`,
//! `status`) print aligned columns for people and, with `--json`, one JSON document whose
//! fields are documented in each verb's `--help`. Errors are one line on stderr,
//! `error: <message>`, and the exit code says what kind of failure it was (see
//! [`common::EXIT_CODES_HELP`]).

mod age;
mod branch;
mod cache;
mod cat;
mod common;
mod container;
mod diff;
mod du;
mod expire;
mod fsck;
mod gc;
mod import;
mod import_netcdf;
mod import_placement;
mod info;
mod init;
mod log;
mod ls;
mod merge;
mod reflog;
mod rewrite;
mod serve;
mod status;
mod tag;

use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use common::{CliError, CliResult, Exit, RepoLocation};

/// floe: a versioned, transactional store for Zarr v3 arrays.
#[derive(Debug, Parser)]
#[command(name = "floe", version, after_long_help = common::EXIT_CODES_HELP)]
struct Cli {
    /// The repository: a local path, or a file://, s3://, gs://, az:// URL.
    #[arg(
        short = 'r',
        long = "repo",
        env = "FLOE_REPO",
        global = true,
        value_name = "URL|PATH"
    )]
    repo: Option<String>,
    /// A storage backend option, e.g. `aws_region=eu-west-1` (repeatable).
    #[arg(
        short = 'o',
        long = "storage-option",
        global = true,
        value_name = "KEY=VALUE",
        value_parser = common::parse_key_value
    )]
    storage_options: Vec<(String, String)>,
    /// Authorize reading virtual chunks below this URL prefix (repeatable), e.g.
    /// `--allow-virtual s3://bucket/data/`. Sources below it are read with your own settings
    /// (environment variables), never with options the repository declares; to use those
    /// (an S3-compatible endpoint, say), trust the repository with --allow-virtual-declared.
    #[arg(long = "allow-virtual", global = true, value_name = "URL_PREFIX")]
    allow_virtual: Vec<String>,
    /// Authorize reading virtual chunks from every container declared in the repository
    /// (see `floe container list`).
    #[arg(long = "allow-virtual-declared", global = true)]
    allow_virtual_declared: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a new, empty repository with a `main` branch.
    Init,
    /// Show the history ending at a version, newest first.
    #[command(after_long_help = log::JSON_HELP)]
    Log(log::LogArgs),
    /// Show every move of a branch (commits, resets, creation, deletion), newest first.
    #[command(after_long_help = reflog::JSON_HELP)]
    Reflog(reflog::ReflogArgs),
    /// Show the logical and stored bytes of every array below a path.
    #[command(after_long_help = du::JSON_HELP)]
    Du(du::DuArgs),
    /// Show what changed between two versions (any two, related or not).
    #[command(after_long_help = diff::JSON_HELP)]
    Diff(diff::DiffArgs),
    /// Expire old history (recorded as cuts; `floe gc` deletes the objects later).
    #[command(after_long_help = expire::JSON_HELP)]
    Expire(expire::ExpireArgs),
    /// Delete objects no retained version reaches (two phases, a grace period apart).
    #[command(long_about = gc::LONG_ABOUT, after_long_help = gc::JSON_HELP)]
    Gc(gc::GcArgs),
    /// Merge a version into a branch (three-way, one merge commit).
    #[command(long_about = merge::LONG_ABOUT, after_long_help = merge::JSON_HELP)]
    Merge(merge::MergeArgs),
    /// Replace a range of a branch's commits by one commit with the last one's content.
    #[command(long_about = rewrite::SQUASH_ABOUT)]
    Squash(rewrite::SquashArgs),
    /// Give the branch's tip commit a new message (replaces the commit).
    Amend(rewrite::AmendArgs),
    /// Create, list, delete and reset branches.
    #[command(subcommand)]
    Branch(branch::BranchCommand),
    /// Create, list and delete tags.
    #[command(subcommand)]
    Tag(tag::TagCommand),
    /// List the groups and arrays of a version as a tree.
    #[command(after_long_help = ls::JSON_HELP)]
    Ls(ls::LsArgs),
    /// Describe one group or array: shape, chunks, data type, codecs, sizes.
    #[command(after_long_help = info::JSON_HELP)]
    Info(info::InfoArgs),
    /// Write the raw bytes of one Zarr key (e.g. `t2m/zarr.json`, `t2m/c/0/0`) to stdout.
    #[command(long_about = cat::LONG_ABOUT)]
    Cat(cat::CatArgs),
    /// Summarise the repository: location, format version, branches, tags.
    #[command(long_about = status::LONG_ABOUT, after_long_help = status::JSON_HELP)]
    Status(status::StatusArgs),
    /// Check that every object reachable from the live branches and tags is present and intact.
    #[command(long_about = fsck::LONG_ABOUT, after_long_help = fsck::JSON_HELP)]
    Fsck(fsck::FsckArgs),
    /// Inspect or empty a local cache directory (`stats`, `clear`).
    #[command(subcommand, long_about = cache::LONG_ABOUT)]
    Cache(cache::CacheCommand),
    /// Serve every version read-only over HTTP for Zarr clients (zarr-python, xarray).
    #[command(long_about = serve::LONG_ABOUT)]
    Serve(serve::ServeArgs),
    /// Declare and list the virtual chunk containers of the repository.
    #[command(subcommand, long_about = container::LONG_ABOUT)]
    Container(container::ContainerCommand),
    /// Import external data: kerchunk references as virtual arrays.
    #[command(subcommand, long_about = import::LONG_ABOUT)]
    Import(import::ImportCommand),
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return report(CliError::new(
                Exit::Failure,
                format!("cannot start the async runtime: {e}"),
            ))
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => report(error),
    }
}

fn report(error: CliError) -> ExitCode {
    let code = error.code();
    if let CliError::Failed { message, .. } = &error {
        let _ = writeln!(std::io::stderr(), "error: {message}");
    }
    ExitCode::from(code as u8)
}

async fn dispatch(cli: Cli) -> CliResult {
    let location = RepoLocation {
        location: cli.repo,
        options: cli.storage_options,
        allow_virtual: cli.allow_virtual,
        allow_virtual_declared: cli.allow_virtual_declared,
    };
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let result = match cli.command {
        Command::Init => init::run(&location, &mut out).await,
        Command::Log(args) => log::run(&location, args, &mut out).await,
        Command::Diff(args) => diff::run(&location, args, &mut out).await,
        Command::Du(args) => du::run(&location, args, &mut out).await,
        Command::Reflog(args) => reflog::run(&location, args, &mut out).await,
        Command::Expire(args) => expire::run(&location, args, &mut out).await,
        Command::Gc(args) => gc::run(&location, args, &mut out).await,
        Command::Merge(args) => merge::run(&location, args, &mut out).await,
        Command::Squash(args) => rewrite::squash(&location, args, &mut out).await,
        Command::Amend(args) => rewrite::amend(&location, args, &mut out).await,
        Command::Branch(command) => branch::run(&location, command, &mut out).await,
        Command::Tag(command) => tag::run(&location, command, &mut out).await,
        Command::Ls(args) => ls::run(&location, args, &mut out).await,
        Command::Info(args) => info::run(&location, args, &mut out).await,
        Command::Cat(args) => cat::run(&location, args, &mut out).await,
        Command::Status(args) => status::run(&location, args, &mut out).await,
        Command::Fsck(args) => fsck::run(&location, args, &mut out).await,
        Command::Cache(command) => cache::run(command, &mut out),
        Command::Serve(args) => serve::run(&location, args, &mut out).await,
        Command::Container(command) => container::run(&location, command, &mut out).await,
        Command::Import(command) => import::run(&location, command, &mut out).await,
    };
    let flushed = out.flush().map_err(CliError::from);
    result.and(flushed)
}
