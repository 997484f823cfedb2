//! LEB128 varints and zigzag encoding for the columnar manifest layout.

use crate::error::{Error, Result};

/// Appends `v` as an unsigned LEB128 varint.
pub fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Appends `v` zigzag-encoded (small magnitudes of either sign stay short).
pub fn put_i64(out: &mut Vec<u8>, v: i64) {
    put_u64(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A cursor over a column of varints.
pub struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    column: &'static str,
}

impl<'a> Reader<'a> {
    /// Reads the column `column` (named in errors).
    pub fn new(bytes: &'a [u8], column: &'static str) -> Self {
        Reader {
            bytes,
            pos: 0,
            column,
        }
    }

    /// Next unsigned varint.
    pub fn u64(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.pos).ok_or_else(|| {
                Error::corrupt(
                    "<manifest>",
                    format!("column `{}` is truncated", self.column),
                )
            })?;
            self.pos += 1;
            if shift == 63 && byte > 1 {
                break;
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Error::corrupt(
            "<manifest>",
            format!("column `{}` has an overlong varint", self.column),
        ))
    }

    /// Next zigzag-encoded signed varint.
    pub fn i64(&mut self) -> Result<i64> {
        let raw = self.u64()?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_extremes() {
        let mut buf = Vec::new();
        let unsigned = [0, 1, 127, 128, 300, u64::MAX];
        let signed = [0, -1, 1, i64::MIN, i64::MAX, -300];
        for v in unsigned {
            put_u64(&mut buf, v);
        }
        for v in signed {
            put_i64(&mut buf, v);
        }
        let mut r = Reader::new(&buf, "t");
        for v in unsigned {
            assert_eq!(r.u64().unwrap(), v);
        }
        for v in signed {
            assert_eq!(r.i64().unwrap(), v);
        }
        assert!(r.u64().is_err());
        assert!(Reader::new(&[0xff; 11], "t").u64().is_err());
    }
}
