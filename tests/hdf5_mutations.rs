//! Hostile HDF5 files: the small files of `tests/data/hdf5` (netCDF-4 with superblock 2,
//! h5py with superblock 0 and with libver latest; see `tests/data/hdf5/make.py`) truncated
//! at many points, with a bit flipped in every few bytes and with 8-byte words rewritten to
//! extreme values, scanned with `floe::scan_source`. Each scan must end with references or a
//! clear error (never a panic or a hang), allocate at most a bounded amount (a counting
//! allocator measures the peak), and a file that scans must have every byte range inside it.
//!
//! Superblock 2 files checksum their metadata, so most mutations there end at a checksum;
//! the superblock 0 file has no checksums and exercises every decoder behind them.

#[path = "common/peak_alloc.rs"]
mod peak_alloc;
#[path = "common/scan_checks.rs"]
mod scan_checks;

use std::path::Path;

/// Most bytes one scan of these small files may add to what was live before it.
const SCAN_BUDGET: usize = 16 << 20;

const FILES: [&str; 3] = ["nc4.nc", "earliest.h5", "latest.h5"];

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data/hdf5")
            .join(name),
    )
    .unwrap()
}

async fn scan_checked(path: &std::path::Path, bytes: &[u8], what: &str) -> bool {
    scan_checks::scan_checked(path, bytes, what, SCAN_BUDGET).await
}

#[tokio::test]
async fn truncations_flips_and_rewritten_words_end_in_refs_or_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mutated.h5");
    for name in FILES {
        let good = fixture(name);
        assert!(
            scan_checked(&path, &good, name).await,
            "{name} scans unmutated"
        );
        let (mut scanned, mut refused) = (0, 0);
        let mut count = |ok: bool| {
            if ok {
                scanned += 1
            } else {
                refused += 1
            }
        };
        for cut in (0..good.len()).step_by(53) {
            count(scan_checked(&path, &good[..cut], &format!("{name} cut at {cut}")).await);
        }
        for at in (8..good.len()).step_by(3) {
            let mut bytes = good.clone();
            bytes[at] ^= 1 << (at % 8);
            count(
                scan_checked(
                    &path,
                    &bytes,
                    &format!("{name}: bit {} of byte {at}", at % 8),
                )
                .await,
            );
        }
        for at in (8..good.len().saturating_sub(8)).step_by(8) {
            for value in [u64::MAX, u64::from(u32::MAX), 1 << 40] {
                let mut bytes = good.clone();
                bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
                count(
                    scan_checked(&path, &bytes, &format!("{name}: word {value:#x} at {at}")).await,
                );
            }
        }
        println!("{name}: {scanned} mutated files scanned, {refused} refused");
        assert!(refused > 0 && scanned > 0, "{name}");
    }
}

#[tokio::test]
async fn a_file_that_only_starts_like_hdf5_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.h5");
    let mut bytes = b"\x89HDF\r\n\x1a\n".to_vec();
    bytes.extend(std::iter::repeat_n(0xAB, 200));
    std::fs::write(&path, &bytes).unwrap();
    let err = floe::scan_source(path.to_str().unwrap(), &Vec::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("superblock version"), "{err}");
    // A superblock 0 whose root object header lies past the end of the file.
    let mut good = fixture("earliest.h5");
    // The root symbol table entry's object header address: after the 8-byte signature,
    // 16 bytes of versions and sizes, and 4 addresses plus the link name offset (8 each).
    good[64..72].copy_from_slice(&(1u64 << 40).to_le_bytes());
    std::fs::write(&path, &good).unwrap();
    let err = floe::scan_source(path.to_str().unwrap(), &Vec::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("past the end of the file"),
        "{err}"
    );
}
