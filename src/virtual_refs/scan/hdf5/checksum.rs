//! The checksum of HDF5 metadata (format version 2 structures): Bob Jenkins' `lookup3`
//! `hashlittle` with an initial value of 0, over the structure's bytes before the checksum.

use super::bytes::{bad, Parsed};

fn rot(x: u32, k: u32) -> u32 {
    x.rotate_left(k)
}

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= rot(*c, 4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= rot(*a, 6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= rot(*b, 8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= rot(*c, 16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= rot(*a, 19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= rot(*b, 4);
    *b = b.wrapping_add(*a);
}

fn final_mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(rot(*b, 14));
    *a ^= *c;
    *a = a.wrapping_sub(rot(*c, 11));
    *b ^= *a;
    *b = b.wrapping_sub(rot(*a, 25));
    *c ^= *b;
    *c = c.wrapping_sub(rot(*b, 16));
    *a ^= *c;
    *a = a.wrapping_sub(rot(*c, 4));
    *b ^= *a;
    *b = b.wrapping_sub(rot(*a, 14));
    *c ^= *b;
    *c = c.wrapping_sub(rot(*b, 24));
}

fn word(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .take(4)
        .enumerate()
        .fold(0u32, |acc, (i, &b)| acc | (u32::from(b) << (8 * i)))
}

/// `lookup3` of `data` with initial value 0.
pub(crate) fn lookup3(data: &[u8]) -> u32 {
    let init = 0xdead_beefu32
        .wrapping_add(data.len() as u32)
        .wrapping_add(0);
    let (mut a, mut b, mut c) = (init, init, init);
    let mut rest = data;
    while rest.len() > 12 {
        a = a.wrapping_add(word(&rest[0..4]));
        b = b.wrapping_add(word(&rest[4..8]));
        c = c.wrapping_add(word(&rest[8..12]));
        mix(&mut a, &mut b, &mut c);
        rest = &rest[12..];
    }
    if rest.is_empty() {
        return c;
    }
    // The last 1..=12 bytes, zero-padded.
    let mut tail = [0u8; 12];
    tail[..rest.len()].copy_from_slice(rest);
    a = a.wrapping_add(word(&tail[0..4]));
    b = b.wrapping_add(word(&tail[4..8]));
    c = c.wrapping_add(word(&tail[8..12]));
    final_mix(&mut a, &mut b, &mut c);
    c
}

/// Checks that the last 4 bytes of `structure` are the checksum of the bytes before them.
/// `what` and `address` name the structure in the error.
pub(crate) fn verify(structure: &[u8], what: &str, address: u64) -> Parsed<()> {
    let Some(split) = structure.len().checked_sub(4) else {
        return bad(format!("the {what} at byte {address} is truncated"));
    };
    let (body, stored) = structure.split_at(split);
    let stored = word(stored);
    let computed = lookup3(body);
    if stored != computed {
        return bad(format!(
            "the checksum of the {what} at byte {address} does not match (stored {stored:#010x}, \
             computed {computed:#010x}): the file is damaged"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values_of_hashlittle() {
        // Values from lookup3.c's self-test (hashlittle with initval 0).
        assert_eq!(lookup3(b""), 0xdead_beef);
        assert_eq!(lookup3(b"Four score and seven years ago"), 0x1777_0551);
    }
}
