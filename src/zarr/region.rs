//! Boxes of array elements and dense row-major buffers of them: iterating index tuples,
//! intersecting boxes, copying a box from one buffer to another. Shared by rechunked views
//! (assembling a requested chunk from stored ones) and imports (writing loaded values into
//! chunks).

use std::ops::Range;

/// A box of elements: one half-open range per dimension.
pub(crate) type Region = Vec<Range<u64>>;

/// Every index tuple of the cartesian product of `ranges`, in row-major order (none when a
/// range is empty; one empty tuple for no ranges).
pub(crate) fn for_each_index(ranges: &[Range<u64>], mut f: impl FnMut(&[u64])) {
    if ranges.iter().any(|r| r.start >= r.end) {
        return;
    }
    let mut index: Vec<u64> = ranges.iter().map(|r| r.start).collect();
    loop {
        f(&index);
        let mut dim = ranges.len();
        loop {
            if dim == 0 {
                return;
            }
            dim -= 1;
            index[dim] += 1;
            if index[dim] < ranges[dim].end {
                break;
            }
            index[dim] = ranges[dim].start;
        }
    }
}

/// A dense row-major buffer of fixed-size elements covering a box of elements.
pub(crate) struct Block<'a, T> {
    /// The element bytes.
    pub(crate) bytes: T,
    /// First element of the box along each dimension (array coordinates).
    pub(crate) origin: &'a [u64],
    /// Extent of the box along each dimension.
    pub(crate) shape: &'a [u64],
}

fn offset(origin: &[u64], shape: &[u64], at: &[u64]) -> u64 {
    at.iter()
        .zip(origin)
        .zip(shape)
        .fold(0u64, |acc, ((&a, &o), &s)| acc * s + (a - o))
}

/// Copies the elements of `region` (which must lie inside both boxes) from `src` to `dst`;
/// each element is `element_size` bytes.
pub(crate) fn copy_region(
    src: &Block<'_, &[u8]>,
    dst: &mut Block<'_, &mut [u8]>,
    region: &[Range<u64>],
    element_size: usize,
) {
    let Some((last, outer)) = region.split_last() else {
        // 0-d: one element.
        let n = element_size.min(src.bytes.len()).min(dst.bytes.len());
        dst.bytes[..n].copy_from_slice(&src.bytes[..n]);
        return;
    };
    let run = ((last.end - last.start) as usize) * element_size;
    let mut at: Vec<u64> = region.iter().map(|r| r.start).collect();
    for_each_index(outer, |prefix| {
        at[..prefix.len()].copy_from_slice(prefix);
        let from = offset(src.origin, src.shape, &at) as usize * element_size;
        let to = offset(dst.origin, dst.shape, &at) as usize * element_size;
        dst.bytes[to..to + run].copy_from_slice(&src.bytes[from..from + run]);
    });
}

/// The intersection of two boxes, `None` when empty.
pub(crate) fn intersect(a: &[Range<u64>], b: &[Range<u64>]) -> Option<Region> {
    a.iter()
        .zip(b)
        .map(|(x, y)| {
            let r = x.start.max(y.start)..x.end.min(y.end);
            (r.start < r.end).then_some(r)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iterates_row_major() {
        let mut seen = Vec::new();
        for_each_index(&[0..2, 5..7], |i| seen.push(i.to_vec()));
        assert_eq!(seen, vec![vec![0, 5], vec![0, 6], vec![1, 5], vec![1, 6]]);
        let mut n = 0;
        for_each_index(&[], |_| n += 1);
        assert_eq!(n, 1);
        for_each_index(&[0..0, 0..3], |_| n += 1);
        assert_eq!(n, 1);
    }

    #[test]
    fn copies_hyperslabs() {
        // src: box rows 2..4, cols 0..3 of u16; dst: box rows 0..3, cols 1..3.
        let src: Vec<u8> = (0u16..6).flat_map(|v| v.to_le_bytes()).collect();
        let mut dst = vec![0xffu8; 3 * 2 * 2];
        let region = intersect(&[2..4, 0..3], &[0..3, 1..3]).unwrap();
        assert_eq!(region, vec![2..3, 1..3]);
        copy_region(
            &Block {
                bytes: &src,
                origin: &[2, 0],
                shape: &[2, 3],
            },
            &mut Block {
                bytes: &mut dst,
                origin: &[0, 1],
                shape: &[3, 2],
            },
            &region,
            2,
        );
        let got: Vec<u16> = dst
            .chunks(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(got, vec![0xffff, 0xffff, 0xffff, 0xffff, 1, 2]);
        assert_eq!(intersect(&[0..2, 0..1], &[2..4, 0..1]), None);
    }
}
