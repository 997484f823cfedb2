//! Any bytes given to the HDF5 scanner (the signature prepended, so every input reaches the
//! superblock decoder): references or an error, never a panic; every byte range inside the
//! input; run with `-rss_limit_mb` to bound memory (see `fuzz/README.md`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut file = b"\x89HDF\r\n\x1a\n".to_vec();
    // Seeds are whole files (with their signature); other inputs get one.
    file.extend_from_slice(data.strip_prefix(b"\x89HDF\r\n\x1a\n".as_slice()).unwrap_or(data));
    if let Ok((refs, _)) = floe::scan_bytes("file:///fuzz.h5", &file) {
        for r in refs.refs.values() {
            if let floe::KerchunkRef::Range { offset, length, .. } = r {
                assert!(offset + length <= file.len() as u64);
            }
        }
    }
});
