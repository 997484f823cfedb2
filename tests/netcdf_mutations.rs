//! Hostile netCDF-3 files: every truncation, every bit flipped in the header and every
//! 4-byte header word rewritten to extreme values, in classic and CDF-5 files, scanned with
//! `floe::scan_source`. Each scan must end with references or a clear error (never a panic),
//! allocate at most a bounded amount (a counting allocator measures the peak), and a file
//! that scans must have every reference inside the file.

#[path = "common/peak_alloc.rs"]
mod peak_alloc;
#[path = "common/scan_checks.rs"]
mod scan_checks;

/// Most bytes one scan of these small files may add to what was live before it.
const SCAN_BUDGET: usize = 8 << 20;

/// A netCDF-3 file (`cdf5` selects CDF-5 widths): dimensions `time` (unlimited, 4 records),
/// `x` (3), `nchar` (4); global text, int, float and double attributes; record variables
/// `time` (double) and `v(time, x)` (short, with `_FillValue` and `scale_factor`); `c(x,
/// nchar)` characters; a double scalar `s`. Returns the bytes and the header's length.
fn sample(cdf5: bool) -> (Vec<u8>, usize) {
    let count = |out: &mut Vec<u8>, n: u64| {
        if cdf5 {
            out.extend(n.to_be_bytes());
        } else {
            out.extend((n as u32).to_be_bytes());
        }
    };
    let word = |out: &mut Vec<u8>, n: u32| out.extend(n.to_be_bytes());
    let pad = |out: &mut Vec<u8>| {
        while out.len() % 4 != 0 {
            out.push(0);
        }
    };
    let name = |out: &mut Vec<u8>, text: &str| {
        count(out, text.len() as u64);
        out.extend(text.as_bytes());
        pad(out);
    };
    let mut h = if cdf5 {
        b"CDF\x05".to_vec()
    } else {
        b"CDF\x01".to_vec()
    };
    count(&mut h, 4);
    word(&mut h, 0x0A);
    count(&mut h, 3);
    for (dim, len) in [("time", 0), ("x", 3), ("nchar", 4)] {
        name(&mut h, dim);
        count(&mut h, len);
    }
    word(&mut h, 0x0C);
    count(&mut h, 4);
    name(&mut h, "title");
    word(&mut h, 2);
    count(&mut h, 5);
    h.extend(b"hello");
    pad(&mut h);
    name(&mut h, "version");
    word(&mut h, 4);
    count(&mut h, 1);
    word(&mut h, 3);
    name(&mut h, "ratio");
    word(&mut h, 5);
    count(&mut h, 1);
    h.extend(0.1f32.to_be_bytes());
    name(&mut h, "levels");
    word(&mut h, 6);
    count(&mut h, 2);
    h.extend(1.5f64.to_be_bytes());
    h.extend(2.5f64.to_be_bytes());
    word(&mut h, 0x0B);
    count(&mut h, 4);
    // (name, dim ids, type, vsize)
    let vars: [(&str, &[u64], u32, u64); 4] = [
        ("time", &[0], 6, 8),
        ("v", &[0, 1], 3, 8),
        ("c", &[1, 2], 2, 12),
        ("s", &[], 6, 8),
    ];
    let mut begins = Vec::new();
    for (var, dims, nc_type, vsize) in vars {
        name(&mut h, var);
        count(&mut h, dims.len() as u64);
        for &d in dims {
            count(&mut h, d);
        }
        if var == "v" {
            word(&mut h, 0x0C);
            count(&mut h, 2);
            name(&mut h, "_FillValue");
            word(&mut h, 3);
            count(&mut h, 1);
            h.extend((-999i16).to_be_bytes());
            pad(&mut h);
            name(&mut h, "scale_factor");
            word(&mut h, 5);
            count(&mut h, 1);
            h.extend(0.5f32.to_be_bytes());
        } else {
            word(&mut h, 0);
            count(&mut h, 0);
        }
        word(&mut h, nc_type);
        count(&mut h, vsize);
        begins.push(h.len());
        if cdf5 {
            h.extend(0u64.to_be_bytes());
        } else {
            word(&mut h, 0);
        }
    }
    let header = h.len();
    // Fixed variables first (c: 12 bytes, s: 8), then 4 records of 8 + 8 bytes.
    let layout = [header + 20, header + 28, header, header + 12];
    for (place, begin) in begins.iter().zip(layout) {
        if cdf5 {
            h[*place..*place + 8].copy_from_slice(&(begin as u64).to_be_bytes());
        } else {
            h[*place..*place + 4].copy_from_slice(&(begin as u32).to_be_bytes());
        }
    }
    h.resize(header + 20 + 4 * 16, 7);
    (h, header)
}

async fn scan_checked(path: &std::path::Path, bytes: &[u8], what: &str) -> bool {
    scan_checks::scan_checked(path, bytes, what, SCAN_BUDGET).await
}

#[tokio::test]
async fn every_truncation_flip_and_rewritten_word_ends_in_refs_or_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mutated.nc");
    for cdf5 in [false, true] {
        let (good, header) = sample(cdf5);
        assert!(
            scan_checked(&path, &good, "the sample").await,
            "the sample scans"
        );
        let (mut scanned, mut refused) = (0, 0);
        for cut in 0..good.len() {
            let ok = scan_checked(&path, &good[..cut], &format!("cut at {cut}")).await;
            if ok {
                scanned += 1;
            } else {
                refused += 1;
            }
        }
        for at in 4..header {
            for bit in 0..8 {
                let mut bytes = good.clone();
                bytes[at] ^= 1 << bit;
                let ok = scan_checked(&path, &bytes, &format!("bit {bit} of byte {at}")).await;
                if ok {
                    scanned += 1;
                } else {
                    refused += 1;
                }
            }
        }
        for at in (4..header - 3).step_by(4) {
            for value in [u32::MAX, 0x7FFF_FFFF, 0x8000_0000, 0x0001_0000] {
                let mut bytes = good.clone();
                bytes[at..at + 4].copy_from_slice(&value.to_be_bytes());
                let ok = scan_checked(&path, &bytes, &format!("word {value:#x} at {at}")).await;
                if ok {
                    scanned += 1;
                } else {
                    refused += 1;
                }
            }
        }
        println!("cdf5 {cdf5}: {scanned} mutated files scanned, {refused} refused");
        assert!(refused > 0 && scanned > 0);
    }
}

#[tokio::test]
async fn a_header_claiming_billions_of_records_is_refused_before_listing_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.nc");
    let (mut bytes, _) = sample(false);
    bytes[4..8].copy_from_slice(&0x7FFF_FFFFu32.to_be_bytes());
    std::fs::write(&path, &bytes).unwrap();
    let err = floe::scan_source(path.to_str().unwrap(), &Vec::new())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("past the end of the file")
            && err.to_string().contains("2147483647 records"),
        "{err}"
    );
}
