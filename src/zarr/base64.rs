//! The standard base64 alphabet (decoding also takes the URL-safe `-` and `_`): decoding
//! (with or without `=` padding), as kerchunk writes
//! inline chunks (`base64:...`) and zarr-python writes byte-string fill values; encoding, as
//! xarray expects a float `_FillValue` attribute of a Zarr v3 array.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encodes `bytes` in standard base64 with `=` padding.
pub(crate) fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Decodes standard base64 (`A-Z a-z 0-9 + /`, optional `=` padding; ASCII whitespace is
/// ignored). Fails with a reason for any other character or a truncated final group.
pub(crate) fn decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let mut group = 0u32;
    let mut bits = 0u32;
    let mut padding = 0usize;
    for c in text.bytes() {
        let value = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padding += 1;
                continue;
            }
            c if c.is_ascii_whitespace() => continue,
            other => return Err(format!("invalid base64 character {:?}", other as char)),
        };
        if padding > 0 {
            return Err("base64 data continues after `=` padding".into());
        }
        group = (group << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((group >> bits) as u8);
            group &= (1 << bits) - 1;
        }
    }
    // 6 leftover bits cannot encode a byte: the data was cut.
    if bits >= 6 {
        return Err("truncated base64 data".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{decode, encode};

    #[test]
    fn encodes_with_padding_and_round_trips() {
        assert_eq!(encode(b"hello"), "aGVsbG8=");
        assert_eq!(encode(b"hello!"), "aGVsbG8h");
        assert_eq!(encode(b""), "");
        assert_eq!(encode(&[0, 1, 2, 255]), "AAEC/w==");
        // xarray's float `_FillValue` for -9999.0: the little-endian f64 bytes.
        assert_eq!(encode(&(-9999.0f64).to_le_bytes()), "AAAAAICHw8A=");
        for len in 0..40u8 {
            let bytes: Vec<u8> = (0..len).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(decode(&encode(&bytes)).unwrap(), bytes);
        }
    }

    #[test]
    fn decodes_padded_unpadded_and_refuses_garbage() {
        assert_eq!(decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode("aGVsbG8h").unwrap(), b"hello!");
        assert_eq!(decode("").unwrap(), b"");
        assert_eq!(decode("AAEC/w==").unwrap(), vec![0, 1, 2, 255]);
        assert!(decode("aGV*").is_err());
        assert!(decode("a").is_err());
        assert!(decode("aA==aA").is_err());
    }
}
