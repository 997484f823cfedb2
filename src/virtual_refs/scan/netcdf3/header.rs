//! The header of a netCDF-3 file (classic, 64-bit offset and CDF-5), decoded from its bytes
//! by the format specification ("The NetCDF Classic Format Specification" and its CDF-5
//! extension): dimensions, global attributes and variables with their attributes, types,
//! shapes and where their data begins.
//!
//! Nothing read from the file is trusted for allocation: every count is checked against the
//! bytes left before anything is reserved, and a header that needs more bytes than it was
//! given says how many ([`Parse::NeedMore`]), so a caller can read the file's start in growing
//! pieces without knowing the header's size.

use std::fmt;

/// The three variants of the format, from the fourth byte of the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Variant {
    /// `CDF\x01`: 32-bit offsets.
    Classic,
    /// `CDF\x02`: 64-bit offsets.
    Offset64,
    /// `CDF\x05`: 64-bit offsets, counts and sizes, unsigned and 64-bit integer types.
    Cdf5,
}

impl Variant {
    /// The variant named by the first four bytes of a file, `None` when they are not netCDF-3.
    pub(crate) fn of_magic(magic: &[u8]) -> Option<Variant> {
        match magic.get(..4)? {
            b"CDF\x01" => Some(Variant::Classic),
            b"CDF\x02" => Some(Variant::Offset64),
            b"CDF\x05" => Some(Variant::Cdf5),
            _ => None,
        }
    }

    /// Width of counts, lengths, dimension ids and sizes (`NON_NEG`).
    fn count_width(self) -> usize {
        match self {
            Variant::Cdf5 => 8,
            _ => 4,
        }
    }

    /// Width of a variable's `begin` offset.
    fn offset_width(self) -> usize {
        match self {
            Variant::Classic => 4,
            _ => 8,
        }
    }
}

impl fmt::Display for Variant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Variant::Classic => "netCDF-3 classic",
            Variant::Offset64 => "netCDF-3 64-bit offset",
            Variant::Cdf5 => "netCDF-3 CDF-5",
        })
    }
}

/// The external types of the format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NcType {
    Byte,
    Char,
    Short,
    Int,
    Float,
    Double,
    UByte,
    UShort,
    UInt,
    Int64,
    UInt64,
}

impl NcType {
    fn of_code(code: u64, variant: Variant) -> Result<NcType, String> {
        let nc = match code {
            1 => NcType::Byte,
            2 => NcType::Char,
            3 => NcType::Short,
            4 => NcType::Int,
            5 => NcType::Float,
            6 => NcType::Double,
            7 => NcType::UByte,
            8 => NcType::UShort,
            9 => NcType::UInt,
            10 => NcType::Int64,
            11 => NcType::UInt64,
            other => return Err(format!("unknown type code {other}")),
        };
        if code > 6 && variant != Variant::Cdf5 {
            return Err(format!("type code {code} exists only in CDF-5 files"));
        }
        Ok(nc)
    }

    /// Bytes per value.
    pub(crate) fn size(self) -> u64 {
        match self {
            NcType::Byte | NcType::Char | NcType::UByte => 1,
            NcType::Short | NcType::UShort => 2,
            NcType::Int | NcType::Float | NcType::UInt => 4,
            NcType::Double | NcType::Int64 | NcType::UInt64 => 8,
        }
    }

    /// The Zarr v2 `dtype` of the type as stored (big-endian).
    pub(crate) fn zarr_v2_dtype(self) -> &'static str {
        match self {
            NcType::Byte => "|i1",
            NcType::Char => "|S1",
            NcType::Short => ">i2",
            NcType::Int => ">i4",
            NcType::Float => ">f4",
            NcType::Double => ">f8",
            NcType::UByte => "|u1",
            NcType::UShort => ">u2",
            NcType::UInt => ">u4",
            NcType::Int64 => ">i8",
            NcType::UInt64 => ">u8",
        }
    }
}

/// The values of one attribute, decoded.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum AttrValues {
    /// `NC_CHAR` text.
    Text(Vec<u8>),
    /// Integers of any integer type.
    Ints(Vec<i128>),
    /// `NC_FLOAT` values (kept as `f32`, whose exact value JSON carries as an `f64`).
    Floats(Vec<f32>),
    /// `NC_DOUBLE` values.
    Doubles(Vec<f64>),
}

/// One attribute.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Attribute {
    pub(crate) name: String,
    pub(crate) nc_type: NcType,
    pub(crate) values: AttrValues,
}

/// One dimension; `length` 0 for the unlimited (record) dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Dimension {
    pub(crate) name: String,
    pub(crate) length: u64,
}

/// One variable as the header declares it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Variable {
    pub(crate) name: String,
    /// Indexes into [`Header::dimensions`].
    pub(crate) dimensions: Vec<usize>,
    pub(crate) attributes: Vec<Attribute>,
    pub(crate) nc_type: NcType,
    /// The header's `vsize` (not trusted: it saturates for large variables).
    pub(crate) vsize: u64,
    /// Offset of the variable's data (of its first record, for a record variable).
    pub(crate) begin: u64,
}

/// A decoded header.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Header {
    pub(crate) variant: Variant,
    /// The record count, `None` for a file being streamed (count unknown).
    pub(crate) numrecs: Option<u64>,
    pub(crate) dimensions: Vec<Dimension>,
    pub(crate) attributes: Vec<Attribute>,
    pub(crate) variables: Vec<Variable>,
    /// Bytes the header takes.
    pub(crate) size: u64,
}

/// The outcome of decoding a file's first bytes.
#[derive(Debug)]
pub(crate) enum Parse {
    /// The header.
    Done(Header),
    /// The header continues past the bytes given: at least this many bytes are needed.
    NeedMore(u64),
}

const NC_DIMENSION: u64 = 0x0A;
const NC_VARIABLE: u64 = 0x0B;
const NC_ATTRIBUTE: u64 = 0x0C;

/// Why decoding stopped.
enum Stop {
    NeedMore(u64),
    Invalid(String),
}

impl From<String> for Stop {
    fn from(reason: String) -> Self {
        Stop::Invalid(reason)
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
    variant: Variant,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Stop> {
        let end = self
            .at
            .checked_add(n)
            .ok_or_else(|| Stop::Invalid("a length overflows".into()))?;
        if end > self.bytes.len() {
            return Err(Stop::NeedMore(end as u64));
        }
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn uint(&mut self, width: usize) -> Result<u64, Stop> {
        let bytes = self.take(width)?;
        Ok(bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b)))
    }

    fn count(&mut self) -> Result<u64, Stop> {
        self.uint(self.variant.count_width())
    }

    /// A count of items each taking at least `min_item` bytes: refused when the file could
    /// not hold that many (before anything is allocated for them).
    fn bounded_count(&mut self, what: &str, min_item: u64, limit: u64) -> Result<usize, Stop> {
        let n = self.count()?;
        if n > limit {
            return Err(Stop::Invalid(format!(
                "{what} count {n} is above the limit of {limit}"
            )));
        }
        let needed = n.saturating_mul(min_item);
        let end = (self.at as u64).saturating_add(needed);
        if end > self.bytes.len() as u64 {
            return Err(Stop::NeedMore(end));
        }
        Ok(n as usize)
    }

    fn padded(&mut self, n: u64) -> Result<&[u8], Stop> {
        let padded = n
            .checked_add(3)
            .map(|p| p & !3)
            .ok_or_else(|| Stop::Invalid("a length overflows".into()))?;
        let padded = usize::try_from(padded).map_err(|_| Stop::Invalid("too long".into()))?;
        let bytes = self.take(padded)?;
        Ok(&bytes[..n as usize])
    }

    fn name(&mut self) -> Result<String, Stop> {
        let n = self.count()?;
        if n > MAX_NAME {
            return Err(Stop::Invalid(format!("a name of {n} bytes is too long")));
        }
        let bytes = self.padded(n)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|_| Stop::Invalid("a name is not UTF-8 text".into()))
    }

    /// A list's tag and element count; `None` for `ABSENT`.
    fn list(&mut self, tag: u64, what: &str) -> Result<Option<()>, Stop> {
        let found = self.uint(4)?;
        if found == 0 {
            let n = self.count()?;
            return if n == 0 {
                Ok(None)
            } else {
                Err(Stop::Invalid(format!(
                    "an absent {what} list has {n} elements"
                )))
            };
        }
        if found != tag {
            return Err(Stop::Invalid(format!(
                "expected the {what} list tag {tag:#x}, found {found:#x}"
            )));
        }
        Ok(Some(()))
    }
}

/// Longest name accepted (netCDF-C's `NC_MAX_NAME` is 256; some writers go further).
const MAX_NAME: u64 = 4096;
/// Most dimensions, attributes or variables in one list.
const MAX_ITEMS: u64 = 1 << 20;
/// Most dimensions of one variable (netCDF-C's `NC_MAX_VAR_DIMS` is 1024).
const MAX_RANK: u64 = 1024;

/// Decodes the header at the start of `bytes` (the file's first bytes).
///
/// Fails with a reason for anything the specification does not allow; a header that goes on
/// past `bytes` is [`Parse::NeedMore`].
pub(crate) fn parse(bytes: &[u8]) -> Result<Parse, String> {
    if bytes.len() < 4 {
        return Ok(Parse::NeedMore(4));
    }
    let variant = Variant::of_magic(bytes).ok_or("not a netCDF-3 file (no `CDF` magic)")?;
    let mut cursor = Cursor {
        bytes,
        at: 4,
        variant,
    };
    match decode(&mut cursor) {
        Ok(header) => Ok(Parse::Done(header)),
        Err(Stop::NeedMore(n)) => Ok(Parse::NeedMore(n)),
        Err(Stop::Invalid(reason)) => Err(reason),
    }
}

fn decode(cursor: &mut Cursor<'_>) -> Result<Header, Stop> {
    let variant = cursor.variant;
    let numrecs = cursor.count()?;
    let streaming = match variant {
        Variant::Cdf5 => numrecs == u64::MAX,
        _ => numrecs == u64::from(u32::MAX),
    };
    let mut dimensions = Vec::new();
    if cursor.list(NC_DIMENSION, "dimension")?.is_some() {
        let n = cursor.bounded_count("dimension", 8, MAX_ITEMS)?;
        for _ in 0..n {
            let name = cursor.name()?;
            let length = cursor.count()?;
            dimensions.push(Dimension { name, length });
        }
    }
    if dimensions.iter().filter(|d| d.length == 0).count() > 1 {
        return Err(Stop::Invalid(
            "more than one unlimited dimension (netCDF-3 allows one)".into(),
        ));
    }
    let attributes = attribute_list(cursor)?;
    let mut variables = Vec::new();
    if cursor.list(NC_VARIABLE, "variable")?.is_some() {
        let n = cursor.bounded_count("variable", 16, MAX_ITEMS)?;
        for _ in 0..n {
            variables.push(variable(cursor, dimensions.len())?);
        }
    }
    Ok(Header {
        variant,
        numrecs: (!streaming).then_some(numrecs),
        dimensions,
        attributes,
        variables,
        size: cursor.at as u64,
    })
}

fn attribute_list(cursor: &mut Cursor<'_>) -> Result<Vec<Attribute>, Stop> {
    let mut out = Vec::new();
    if cursor.list(NC_ATTRIBUTE, "attribute")?.is_none() {
        return Ok(out);
    }
    let n = cursor.bounded_count("attribute", 12, MAX_ITEMS)?;
    for _ in 0..n {
        let name = cursor.name()?;
        let nc_type = NcType::of_code(cursor.uint(4)?, cursor.variant)?;
        let count = cursor.count()?;
        let length = count
            .checked_mul(nc_type.size())
            .ok_or_else(|| Stop::Invalid(format!("attribute `{name}` is too long")))?;
        let raw = cursor.padded(length)?;
        out.push(Attribute {
            values: attribute_values(nc_type, raw),
            name,
            nc_type,
        });
    }
    Ok(out)
}

/// Big-endian values of `nc_type` in `raw` (whose length is a multiple of the type's size).
fn attribute_values(nc_type: NcType, raw: &[u8]) -> AttrValues {
    let size = nc_type.size() as usize;
    let words = raw.chunks_exact(size);
    let be = |w: &[u8]| w.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    match nc_type {
        NcType::Char => AttrValues::Text(raw.to_vec()),
        NcType::Float => AttrValues::Floats(words.map(|w| f32::from_bits(be(w) as u32)).collect()),
        NcType::Double => AttrValues::Doubles(words.map(|w| f64::from_bits(be(w))).collect()),
        NcType::Byte => AttrValues::Ints(words.map(|w| i128::from(w[0] as i8)).collect()),
        NcType::Short => AttrValues::Ints(words.map(|w| i128::from(be(w) as u16 as i16)).collect()),
        NcType::Int => AttrValues::Ints(words.map(|w| i128::from(be(w) as u32 as i32)).collect()),
        NcType::Int64 => AttrValues::Ints(words.map(|w| i128::from(be(w) as i64)).collect()),
        NcType::UByte | NcType::UShort | NcType::UInt | NcType::UInt64 => {
            AttrValues::Ints(words.map(|w| i128::from(be(w))).collect())
        }
    }
}

fn variable(cursor: &mut Cursor<'_>, dimension_count: usize) -> Result<Variable, Stop> {
    let name = cursor.name()?;
    let width = cursor.variant.count_width() as u64;
    let rank = cursor.bounded_count("dimension id", width, MAX_RANK)?;
    let mut dimensions = Vec::with_capacity(rank);
    for _ in 0..rank {
        let id = cursor.count()?;
        let index = usize::try_from(id)
            .ok()
            .filter(|&i| i < dimension_count)
            .ok_or_else(|| {
                Stop::Invalid(format!(
                    "variable `{name}` names dimension id {id}, but the file has {dimension_count}"
                ))
            })?;
        dimensions.push(index);
    }
    let attributes = attribute_list(cursor)?;
    let nc_type = NcType::of_code(cursor.uint(4)?, cursor.variant)
        .map_err(|e| Stop::Invalid(format!("variable `{name}`: {e}")))?;
    let vsize = cursor.count()?;
    let begin = cursor.uint(cursor.variant.offset_width())?;
    Ok(Variable {
        name,
        dimensions,
        attributes,
        nc_type,
        vsize,
        begin,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be32(n: u32) -> [u8; 4] {
        n.to_be_bytes()
    }

    fn name(out: &mut Vec<u8>, text: &str) {
        out.extend(be32(text.len() as u32));
        out.extend(text.as_bytes());
        while out.len() % 4 != 0 {
            out.push(0);
        }
    }

    /// A classic header: dimension `x` (3), global text attribute, variable `v(x)` of shorts.
    fn classic() -> Vec<u8> {
        let mut h = b"CDF\x01".to_vec();
        h.extend(be32(0));
        h.extend(be32(0x0A));
        h.extend(be32(1));
        name(&mut h, "x");
        h.extend(be32(3));
        h.extend(be32(0x0C));
        h.extend(be32(1));
        name(&mut h, "title");
        h.extend(be32(2));
        h.extend(be32(5));
        h.extend(b"hello\0\0\0");
        h.extend(be32(0x0B));
        h.extend(be32(1));
        name(&mut h, "v");
        h.extend(be32(1));
        h.extend(be32(0));
        h.extend([0; 8]);
        h.extend(be32(3));
        h.extend(be32(8));
        h.extend(be32(200));
        h
    }

    #[test]
    fn a_classic_header_decodes() {
        let Parse::Done(header) = parse(&classic()).unwrap() else {
            panic!("complete header")
        };
        assert_eq!(header.variant, Variant::Classic);
        assert_eq!(header.numrecs, Some(0));
        assert_eq!(header.dimensions[0].name, "x");
        assert_eq!(
            header.attributes[0].values,
            AttrValues::Text(b"hello".to_vec())
        );
        let v = &header.variables[0];
        assert_eq!(
            (v.nc_type, v.begin, v.dimensions.clone()),
            (NcType::Short, 200, vec![0])
        );
        assert_eq!(header.size, classic().len() as u64);
    }

    #[test]
    fn every_truncation_asks_for_more_and_never_panics() {
        let full = classic();
        for cut in 0..full.len() {
            match parse(&full[..cut]) {
                Ok(Parse::NeedMore(n)) => assert!(n as usize > cut, "cut {cut}: {n}"),
                other => panic!("cut {cut}: {other:?}"),
            }
        }
    }

    #[test]
    fn hostile_counts_and_ids_are_refused_before_allocation() {
        let mut huge = classic();
        // The dimension count: claims 2^31 dimensions.
        huge[12..16].copy_from_slice(&be32(0x8000_0000));
        assert!(parse(&huge).is_err());
        let mut bad_id = classic();
        let at = bad_id.len() - 24;
        bad_id[at..at + 4].copy_from_slice(&be32(7));
        let err = parse(&bad_id).unwrap_err();
        assert!(err.contains("dimension id 7"), "{err}");
        let mut flips = 0;
        let full = classic();
        for i in 4..full.len() {
            for bit in 0..8 {
                let mut b = full.clone();
                b[i] ^= 1 << bit;
                if parse(&b).is_err() {
                    flips += 1;
                }
            }
        }
        assert!(flips > 0);
        assert!(parse(b"HDF5").is_err());
    }
}
