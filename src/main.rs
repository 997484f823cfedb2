//! The `floe` command-line tool. Everything lives in the `cli` module; see `floe --help`.

#![deny(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
