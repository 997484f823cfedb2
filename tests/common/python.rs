//! Running the Python scripts of `tests/python/` with the interpreter named by
//! `FLOE_TEST_PYTHON` (scripts/check sets it to its venv's python, with zarr-python, xarray,
//! fsspec and aiohttp installed).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The interpreter to run the scripts with, or `None` (after saying so) when not configured:
/// the calling test `test` then returns early and passes.
pub fn python(test: &str) -> Option<PathBuf> {
    match std::env::var_os("FLOE_TEST_PYTHON") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            println!(
                "skipping {test}: FLOE_TEST_PYTHON is not set (scripts/check installs zarr, \
                 xarray, fsspec and aiohttp into ./.venv and sets it)"
            );
            None
        }
    }
}

/// The path of `tests/python/<name>`.
pub fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/python")
        .join(name)
}

/// Runs `python tests/python/<name> args...` off the runtime's workers (a server in the same
/// process keeps answering), prints its output, and returns its stdout; panics with its
/// output when it fails.
pub async fn run_python(python: &Path, name: &str, args: Vec<String>) -> String {
    let python = python.to_path_buf();
    let script = script(name);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(&python)
            .arg(&script)
            .args(&args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()))
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    println!("--- {name} stdout ---\n{stdout}--- {name} stderr ---\n{stderr}---");
    assert!(
        output.status.success(),
        "{name} failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    stdout
}
