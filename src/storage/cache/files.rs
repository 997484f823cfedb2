//! The bytes of cached entries: one file per entry under `objects/`, named by a digest of the
//! entry's name so that no key text ever reaches the file system.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Directory (inside the cache directory) holding one file per cached entry.
pub(crate) const OBJECTS_DIR: &str = "objects";
/// Directory (inside the cache directory) where files are written before being renamed into
/// `objects/`.
pub(crate) const TMP_DIR: &str = "tmp";

/// Domain separation for the file-name digest: a file name never equals a repository id.
const NAME_DOMAIN: &[u8] = b"floe local cache file v1\0";

/// The relative path of the file holding `entry`: `objects/<2 hex>/<62 hex>`, the blake3
/// digest of the entry name. Whatever `entry` contains (`..`, `/`, NUL, absurd lengths), the
/// result is two plain components of hex digits.
pub(crate) fn entry_file_name(entry: &str) -> PathBuf {
    let mut hasher = blake3::Hasher::new();
    hasher.update(NAME_DOMAIN);
    hasher.update(entry.as_bytes());
    let hex = hasher.finalize().to_hex();
    let (fan, rest) = hex.as_str().split_at(2);
    Path::new(OBJECTS_DIR).join(fan).join(rest)
}

/// Writes `bytes` to `dir/<relative>` atomically: into a uniquely named file under `tmp/`,
/// optionally synced, then renamed over the destination.
pub(crate) fn write_atomically(
    dir: &Path,
    relative: &Path,
    bytes: &[u8],
    sync: bool,
) -> std::io::Result<()> {
    let destination = dir.join(relative);
    if let Some(parent) = destination.parent() {
        fs::create_dir_all(parent)?;
    }
    let tmp_dir = dir.join(TMP_DIR);
    fs::create_dir_all(&tmp_dir)?;
    let mut tmp = tempfile_in(&tmp_dir)?;
    let result = (|| {
        tmp.1.write_all(bytes)?;
        if sync {
            tmp.1.sync_all()?;
        }
        fs::rename(&tmp.0, &destination)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp.0);
    }
    result
}

/// Creates a new file with a random name in `dir`.
fn tempfile_in(dir: &Path) -> std::io::Result<(PathBuf, fs::File)> {
    loop {
        let name = format!("{:032x}", rand::random::<u128>());
        let path = dir.join(name);
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads the file of an entry and checks it against the size and blake3 digest recorded in
/// the index. `None` when the file is missing, has another size or other bytes.
pub(crate) fn read_verified(
    dir: &Path,
    relative: &Path,
    size: u64,
    digest: &[u8; 32],
) -> Option<Vec<u8>> {
    let path = dir.join(relative);
    let on_disk = fs::metadata(&path).ok()?.len();
    if on_disk != size {
        return None;
    }
    let bytes = fs::read(&path).ok()?;
    (bytes.len() as u64 == size && blake3::hash(&bytes).as_bytes() == digest).then_some(bytes)
}

/// Removes an entry file; a file already gone is fine.
pub(crate) fn remove(dir: &Path, relative: &Path) {
    let path = dir.join(relative);
    if let Err(e) = fs::remove_file(&path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a cache file");
        }
    }
}

/// Every entry file under `objects/` (as paths relative to `dir`), for sweeping orphans.
pub(crate) fn list_entry_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let objects = dir.join(OBJECTS_DIR);
    let fans = match fs::read_dir(&objects) {
        Ok(fans) => fans,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for fan in fans {
        let fan = fan?;
        if !fan.file_type()?.is_dir() {
            found.push(Path::new(OBJECTS_DIR).join(fan.file_name()));
            continue;
        }
        for file in fs::read_dir(fan.path())? {
            let file = file?;
            found.push(
                Path::new(OBJECTS_DIR)
                    .join(fan.file_name())
                    .join(file.file_name()),
            );
        }
    }
    Ok(found)
}

/// Removes everything under `tmp/` (files left by writes interrupted by a crash).
pub(crate) fn clear_tmp(dir: &Path) {
    let tmp = dir.join(TMP_DIR);
    if let Ok(entries) = fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Component;

    fn assert_confined(name: &Path) {
        let parts: Vec<Component<'_>> = name.components().collect();
        assert_eq!(parts.len(), 3, "{name:?}");
        assert_eq!(parts[0], Component::Normal(OBJECTS_DIR.as_ref()));
        for part in &parts[1..] {
            let Component::Normal(text) = part else {
                panic!("{name:?} has a non-plain component");
            };
            let text = text.to_str().unwrap();
            assert!(text.bytes().all(|b| b.is_ascii_hexdigit()), "{name:?}");
        }
        assert_eq!(
            parts[1].as_os_str().len() + parts[2].as_os_str().len(),
            64,
            "{name:?}"
        );
    }

    #[test]
    fn hostile_keys_map_to_plain_hex_names_inside_the_objects_dir() {
        let long = "a/".repeat(100_000);
        let hostile = [
            "",
            "..",
            "../../etc/passwd",
            "/etc/passwd",
            "snapshots/../../x",
            "a\0b",
            "C:\\Windows\\system32",
            "%2e%2e%2f",
            "objects/ab/cd",
            long.as_str(),
        ];
        for key in hostile {
            assert_confined(&entry_file_name(key));
        }
    }

    #[test]
    fn names_are_stable_and_distinct() {
        assert_eq!(entry_file_name("k@all"), entry_file_name("k@all"));
        assert_ne!(entry_file_name("k@all"), entry_file_name("k@0-1"));
        assert_ne!(entry_file_name("a"), entry_file_name("A"));
    }

    #[test]
    fn written_files_verify_and_damaged_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let name = entry_file_name("x");
        let bytes = b"hello cache";
        write_atomically(dir.path(), &name, bytes, true).unwrap();
        let digest = *blake3::hash(bytes).as_bytes();
        let size = bytes.len() as u64;
        assert_eq!(
            read_verified(dir.path(), &name, size, &digest).as_deref(),
            Some(&bytes[..])
        );
        assert_eq!(read_verified(dir.path(), &name, size + 1, &digest), None);
        fs::write(dir.path().join(&name), b"hellO cache").unwrap();
        assert_eq!(read_verified(dir.path(), &name, size, &digest), None);
        remove(dir.path(), &name);
        assert_eq!(read_verified(dir.path(), &name, size, &digest), None);
        assert!(list_entry_files(dir.path()).unwrap().is_empty());
        assert_eq!(fs::read_dir(dir.path().join(TMP_DIR)).unwrap().count(), 0);
    }
}
