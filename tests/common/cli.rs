//! Running the `floe` binary built for these tests (only with the `cli` feature, which builds
//! it).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

/// The outcome of one run of the binary.
pub struct Run {
    pub code: i32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Run {
    /// Standard output as text; panics if it is not UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8(self.stdout.clone()).unwrap()
    }

    /// Standard output parsed as JSON, after asserting that the run succeeded.
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "stderr: {}", self.stderr);
        serde_json::from_slice(&self.stdout).unwrap()
    }

    /// Asserts a failure: the given exit code and exactly one `error: ` line on stderr.
    pub fn assert_error(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "stderr: {}", self.stderr);
        assert!(self.stderr.starts_with("error: "), "{:?}", self.stderr);
        assert_eq!(self.stderr.lines().count(), 1, "{:?}", self.stderr);
        assert!(
            self.stderr.contains(needle),
            "{:?} lacks {needle:?}",
            self.stderr
        );
        assert!(self.stdout.is_empty(), "stdout: {}", self.text());
    }
}

/// Runs `floe [-r repo] args` with `FLOE_REPO` set to `env_repo` (unset when `None`).
pub fn floe_env(repo: Option<&Path>, env_repo: Option<&Path>, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_floe"));
    command.env_remove("FLOE_REPO");
    if let Some(path) = env_repo {
        command.env("FLOE_REPO", path);
    }
    if let Some(path) = repo {
        command.arg("-r").arg(path);
    }
    let output = command.args(args).output().unwrap();
    Run {
        code: output.status.code().unwrap(),
        stdout: output.stdout,
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `floe -r repo args`.
pub fn floe(repo: &Path, args: &[&str]) -> Run {
    floe_env(Some(repo), None, args)
}

/// Runs `floe -r repo args` and asserts that it succeeded.
pub fn ok(repo: &Path, args: &[&str]) -> Run {
    let run = floe(repo, args);
    assert_eq!(run.code, 0, "floe {args:?} failed: {}", run.stderr);
    run
}
