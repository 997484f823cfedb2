//! Any bytes given to the netCDF-3 scanner (inputs not starting with a `CDF` magic get the
//! classic one): references or an error, never a panic; every byte range inside the input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let file = if data.starts_with(b"CDF") {
        data.to_vec()
    } else {
        [b"CDF\x01".as_slice(), data].concat()
    };
    if let Ok((refs, _)) = floe::scan_bytes("file:///fuzz.nc", &file) {
        for r in refs.refs.values() {
            if let floe::KerchunkRef::Range { offset, length, .. } = r {
                assert!(offset + length <= file.len() as u64);
            }
        }
    }
});
