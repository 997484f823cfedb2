//! The check every hostile-file scan must pass, shared by the mutation suites of the native
//! scanners. A test crate includes it with `#[path = "common/scan_checks.rs"] mod
//! scan_checks;` next to `peak_alloc` (whose counting allocator it reads).

use std::path::Path;

use crate::peak_alloc;

/// Scans `bytes` written to `path` with `floe::scan_source`: no panic, at most `budget`
/// bytes allocated above what was live, every byte range inside the file, and an error (if
/// any) a clear `KerchunkImport`. Returns whether it scanned.
pub async fn scan_checked(path: &Path, bytes: &[u8], what: &str, budget: usize) -> bool {
    std::fs::write(path, bytes).unwrap();
    let before = peak_alloc::start();
    let result = floe::scan_source(path.to_str().unwrap(), &Vec::new()).await;
    let peak = peak_alloc::peak_since(before);
    assert!(peak < budget, "{what}: a scan allocated {peak} bytes");
    match result {
        Ok((refs, _)) => {
            for reference in refs.refs.values() {
                if let floe::KerchunkRef::Range { offset, length, .. } = reference {
                    assert!(
                        offset + length <= bytes.len() as u64,
                        "{what}: a reference past the end"
                    );
                }
            }
            true
        }
        Err(e) => {
            assert!(
                matches!(e, floe::Error::KerchunkImport { .. }),
                "{what}: {e:?}"
            );
            assert!(!e.to_string().is_empty());
            false
        }
    }
}
