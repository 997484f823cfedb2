//! The `Range` request header (RFC 9110 §14), single byte ranges only.
//!
//! `bytes=a-b`, `bytes=a-` and `bytes=-n` are understood. A header in another unit, a
//! syntactically invalid one, or one with several ranges is ignored and the whole value is
//! sent with 200 (RFC 9110 lets a server ignore `Range`); this keeps multipart responses out
//! of the server, and no Zarr client sends several ranges in one request.

use std::ops::Range;

/// One requested byte range, as written in the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `bytes=first-last` (inclusive).
    FromTo {
        /// First byte.
        first: u64,
        /// Last byte, inclusive (may lie past the end of the value).
        last: u64,
    },
    /// `bytes=first-`.
    From(u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl RangeSpec {
    /// The bytes to send from a value of `size` bytes, `None` when unsatisfiable (416): the
    /// first byte is at or past the end, or a suffix of zero bytes. An end past the value is
    /// clamped; a suffix longer than the value selects all of it.
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            RangeSpec::FromTo { first, last } => {
                (first < size).then(|| first..last.saturating_add(1).min(size))
            }
            RangeSpec::From(first) => (first < size).then_some(first..size),
            RangeSpec::Suffix(n) => (n > 0 && size > 0).then(|| size.saturating_sub(n)..size),
        }
    }
}

fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// The single range a `Range` header asks for, `None` when the header is to be ignored (not
/// `bytes`, malformed, or several ranges).
pub fn parse_range(header: &str) -> Option<RangeSpec> {
    let (unit, set) = header.trim().split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("bytes") {
        return None;
    }
    let set = set.trim();
    if set.contains(',') {
        return None;
    }
    let (first, last) = set.split_once('-')?;
    let (first, last) = (first.trim(), last.trim());
    match (first.is_empty(), last.is_empty()) {
        (true, false) => number(last).map(RangeSpec::Suffix),
        (false, true) => number(first).map(RangeSpec::From),
        (false, false) => {
            let (first, last) = (number(first)?, number(last)?);
            (first <= last).then_some(RangeSpec::FromTo { first, last })
        }
        (true, true) => None,
    }
}

/// The `Content-Range` value of a partial response.
pub fn content_range(range: &Range<u64>, size: u64) -> String {
    format!(
        "bytes {}-{}/{size}",
        range.start,
        range.end.saturating_sub(1)
    )
}

/// The `Content-Range` value of a 416 response.
pub fn unsatisfied_range(size: u64) -> String {
    format!("bytes */{size}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_forms() {
        assert_eq!(
            parse_range("bytes=0-9"),
            Some(RangeSpec::FromTo { first: 0, last: 9 })
        );
        assert_eq!(parse_range("bytes=5-"), Some(RangeSpec::From(5)));
        assert_eq!(parse_range("bytes=-3"), Some(RangeSpec::Suffix(3)));
        assert_eq!(
            parse_range(" Bytes = 1 - 2 "),
            Some(RangeSpec::FromTo { first: 1, last: 2 })
        );
    }

    #[test]
    fn ignores_what_it_does_not_serve() {
        for header in [
            "items=0-1",
            "bytes=0-1,4-5",
            "bytes=5-2",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
            "bytes=99999999999999999999999-",
            "bytes",
        ] {
            assert_eq!(parse_range(header), None, "{header}");
        }
    }

    #[test]
    fn resolves_against_a_size() {
        let ten = 10;
        assert_eq!(
            RangeSpec::FromTo { first: 2, last: 4 }.resolve(ten),
            Some(2..5)
        );
        assert_eq!(
            RangeSpec::FromTo { first: 2, last: 99 }.resolve(ten),
            Some(2..10)
        );
        assert_eq!(
            RangeSpec::FromTo {
                first: 10,
                last: 12
            }
            .resolve(ten),
            None
        );
        assert_eq!(RangeSpec::From(9).resolve(ten), Some(9..10));
        assert_eq!(RangeSpec::From(10).resolve(ten), None);
        assert_eq!(RangeSpec::Suffix(3).resolve(ten), Some(7..10));
        assert_eq!(RangeSpec::Suffix(30).resolve(ten), Some(0..10));
        assert_eq!(RangeSpec::Suffix(0).resolve(ten), None);
        assert_eq!(RangeSpec::Suffix(1).resolve(0), None);
        assert_eq!(content_range(&(7..10), 10), "bytes 7-9/10");
        assert_eq!(unsatisfied_range(10), "bytes */10");
    }
}
