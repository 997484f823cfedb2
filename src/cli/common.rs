//! What every subcommand shares: opening the repository, resolving a REF, formatting output and
//! turning errors into one line and an exit code.

use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use floe::{Error, Repository, SnapshotId, StorageOptions, VersionSpec, VirtualAccess};

/// The exit codes of `floe` (also listed in `floe --help`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// Any failure not listed below (storage unreachable, I/O error...).
    Failure = 1,
    /// The command line is wrong: bad arguments, names, paths or REF syntax.
    Usage = 2,
    /// Something named does not exist: repository, branch, tag, snapshot, node or key.
    NotFound = 3,
    /// Refused because of existing state (already exists, conflict, protected branch) or a
    /// virtual chunk read that is not authorized or whose location is refused.
    Refused = 4,
    /// The repository is damaged: an object is missing, corrupt or fails its integrity check.
    Corrupt = 5,
}

/// Help text listing the exit codes.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  other failure (storage unreachable, I/O error, unsupported format, ...)
  2  usage error: bad arguments, names, paths or REF syntax
  3  not found: repository, branch, tag, snapshot, node or Zarr key
  4  refused: already exists, conflicting commit, protected branch, virtual chunk source not
     authorized (see --allow-virtual) or refused
  5  corrupt repository: an object is missing, corrupt or fails its integrity check

REF names a version: a branch, a tag, a snapshot id (a unique prefix of at least 4 hex
characters works) or `branch@<RFC 3339 time>` (the newest commit on the branch at or before
that time). It defaults to `main`.";

/// A failed command: what to print on stderr and the exit code.
#[derive(Debug)]
pub enum CliError {
    /// A failure to report as `error: <message>`.
    Failed {
        /// The exit code.
        code: Exit,
        /// One line saying what went wrong and what to do.
        message: String,
    },
    /// Standard output was closed by the reader (e.g. `floe log | head`): stop quietly.
    OutputClosed,
}

impl CliError {
    /// A failure with an explicit exit code.
    pub fn new(code: Exit, message: impl Into<String>) -> Self {
        CliError::Failed {
            code,
            message: message.into(),
        }
    }

    /// The exit code of this error.
    pub fn code(&self) -> Exit {
        match self {
            CliError::Failed { code, .. } => *code,
            CliError::OutputClosed => Exit::Ok,
        }
    }
}

impl From<Error> for CliError {
    fn from(error: Error) -> Self {
        CliError::new(classify(&error), error.to_string())
    }
}

impl From<std::io::Error> for CliError {
    fn from(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            CliError::OutputClosed
        } else {
            CliError::new(Exit::Failure, format!("cannot write the output: {error}"))
        }
    }
}

/// The exit code for a library error.
pub fn classify(error: &Error) -> Exit {
    match error {
        Error::RepositoryNotFound { .. }
        | Error::BranchNotFound { .. }
        | Error::TagNotFound { .. }
        | Error::TagDeleted { .. }
        | Error::SnapshotNotFound { .. }
        | Error::NoCommitAsOf { .. }
        | Error::HistoryExpired { .. }
        | Error::SnapshotExpired { .. }
        | Error::NodeNotFound { .. } => Exit::NotFound,
        Error::RepositoryExists { .. }
        | Error::BranchExists { .. }
        | Error::TagExists { .. }
        | Error::ProtectedBranch { .. }
        | Error::Conflict { .. }
        | Error::BranchMoved { .. }
        | Error::SnapshotCondemned { .. }
        | Error::SessionObjectsCollected { .. }
        | Error::TooManyRebaseAttempts { .. } => Exit::Refused,
        Error::ObjectMissing { .. }
        | Error::CorruptObject { .. }
        | Error::DigestMismatch { .. } => Exit::Corrupt,
        Error::InvalidLocation { .. }
        | Error::InvalidRefName { .. }
        | Error::InvalidVersion { .. }
        | Error::InvalidLifecycleOption { .. }
        | Error::InvalidHistoryEdit { .. }
        | Error::AmbiguousSnapshotPrefix { .. }
        | Error::InvalidPath { .. }
        | Error::InvalidKey { .. }
        | Error::WrongNodeKind { .. } => Exit::Usage,
        Error::VirtualSourceNotAuthorized { .. } | Error::VirtualLocationRefused { .. } => {
            Exit::Refused
        }
        Error::VirtualSourceMissing { .. } => Exit::NotFound,
        _ => Exit::Failure,
    }
}

/// Result of a subcommand.
pub type CliResult<T = ()> = Result<T, CliError>;

/// Where the repository is, as given on the command line.
#[derive(Clone, Debug)]
pub struct RepoLocation {
    /// `-r/--repo` or `FLOE_REPO`.
    pub location: Option<String>,
    /// `-o/--storage-option KEY=VALUE` pairs.
    pub options: StorageOptions,
    /// `--allow-virtual URL_PREFIX` values: virtual chunk prefixes the user authorizes.
    pub allow_virtual: Vec<String>,
    /// `--allow-virtual-declared`: trust every container declared in the repository.
    pub allow_virtual_declared: bool,
}

impl RepoLocation {
    /// The location, or a usage error saying how to give one.
    pub fn require(&self) -> CliResult<&str> {
        match self.location.as_deref() {
            Some(location) if !location.is_empty() => Ok(location),
            _ => Err(CliError::new(
                Exit::Usage,
                "no repository given: pass -r/--repo <URL or PATH> or set FLOE_REPO",
            )),
        }
    }

    /// Opens the existing repository. A local path that does not exist is reported as
    /// missing rather than created.
    pub async fn open(&self) -> CliResult<Repository> {
        let location = self.require()?;
        if let Some(path) = local_path(location) {
            if !path.exists() {
                return Err(Error::RepositoryNotFound {
                    location: location.to_string(),
                }
                .into());
            }
        }
        let repo = Repository::open_location(location, &self.options).await?;
        Ok(repo.with_virtual_access(self.virtual_access()?))
    }

    /// The virtual chunk authorization the command line gives: each `--allow-virtual` prefix
    /// is accepted explicitly (declared or not), `--allow-virtual-declared` trusts every
    /// declared container.
    pub fn virtual_access(&self) -> CliResult<VirtualAccess> {
        let mut access = VirtualAccess::deny_all();
        for prefix in &self.allow_virtual {
            access = access.allow_undeclared(prefix).map_err(|e| {
                CliError::new(Exit::Usage, format!("--allow-virtual {prefix}: {e}"))
            })?;
        }
        if self.allow_virtual_declared {
            access = access.allow_declared();
        }
        Ok(access)
    }
}

/// The local directory a location names, for plain paths and `file://` URLs.
fn local_path(location: &str) -> Option<std::path::PathBuf> {
    if !location.contains("://") {
        return Some(std::path::PathBuf::from(location));
    }
    if location.starts_with("file://") {
        return url::Url::parse(location).ok()?.to_file_path().ok();
    }
    None
}

/// Parses a `KEY=VALUE` storage option.
pub fn parse_key_value(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// Parses and resolves a REF. Syntax errors are usage errors; names that match nothing are
/// "not found".
pub async fn resolve(repo: &Repository, reference: &str) -> CliResult<SnapshotId> {
    let spec = VersionSpec::parse(reference)?;
    repo.resolve(&spec).await.map_err(version_error)
}

/// The CLI error for a failure to resolve a version: a name that names nothing is "not found".
pub fn version_error(error: Error) -> CliError {
    match error {
        Error::InvalidVersion { .. } => CliError::new(Exit::NotFound, error.to_string()),
        other => other.into(),
    }
}

/// The display form of ids in human output: the first 12 hex characters.
pub fn short(id: &SnapshotId) -> String {
    id.short()
}

/// RFC 3339 in UTC with microseconds: exact enough to be pasted back as `branch@<time>`.
pub fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A byte count with a binary-unit approximation, e.g. `1536 (1.5 KiB)`.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{n} ({value:.1} {})", UNITS[unit])
}

/// A list of integers as `[a, b, c]`.
pub fn dims(values: &[u64]) -> String {
    let parts: Vec<String> = values.iter().map(u64::to_string).collect();
    format!("[{}]", parts.join(", "))
}

/// Writes rows as columns aligned on their widest cell, two spaces apart. The last column is
/// not padded; trailing empty cells leave no trailing spaces.
pub fn write_table(out: &mut dyn Write, header: &[&str], rows: &[Vec<String>]) -> CliResult {
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate().take(columns) {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i + 1 < columns {
                let pad = widths[i] - cell.chars().count();
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

/// Writes one value as a pretty-printed JSON document followed by a newline.
pub fn write_json(out: &mut dyn Write, value: &impl serde::Serialize) -> CliResult {
    serde_json::to_writer_pretty(&mut *out, value)
        .map_err(|e| CliError::new(Exit::Failure, format!("cannot write JSON output: {e}")))?;
    writeln!(out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_trim() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["a".to_string(), "long cell".to_string(), String::new()],
            vec!["bbbb".to_string(), "x".to_string(), "end".to_string()],
        ];
        write_table(&mut out, &["N", "VALUE", "LAST"], &rows).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "N     VALUE      LAST\na     long cell\nbbbb  x          end\n"
        );
    }

    #[test]
    fn byte_counts_read_well() {
        assert_eq!(bytes(12), "12 B");
        assert_eq!(bytes(1536), "1536 (1.5 KiB)");
        assert_eq!(bytes(3 << 30), "3221225472 (3.0 GiB)");
    }

    #[test]
    fn options_parse() {
        assert_eq!(
            parse_key_value("a=b=c").unwrap(),
            ("a".into(), "b=c".into())
        );
        assert!(parse_key_value("=x").is_err());
        assert!(parse_key_value("novalue").is_err());
    }

    #[test]
    fn local_paths_are_recognised() {
        assert!(local_path("some/dir").is_some());
        assert!(local_path("s3://bucket/x").is_none());
        assert!(local_path("memory://").is_none());
    }
}
