//! Typed object ids: blake3 digests that cannot be mixed up.
//!
//! A manifest digest cannot be passed where a snapshot digest is expected. Ids display as 64
//! lowercase hex characters and parse from the same.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Length of every object digest, in bytes.
pub const DIGEST_LEN: usize = 32;

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(#[serde(with = "digest_bytes")] [u8; DIGEST_LEN]);

        impl $name {
            /// The id of exactly these object bytes (their blake3 digest).
            pub fn of_bytes(bytes: &[u8]) -> Self {
                Self(*blake3::hash(bytes).as_bytes())
            }

            /// Wraps raw digest bytes.
            pub fn from_bytes(bytes: [u8; DIGEST_LEN]) -> Self {
                Self(bytes)
            }

            /// The raw digest bytes.
            pub fn as_bytes(&self) -> &[u8; DIGEST_LEN] {
                &self.0
            }

            /// Parses the 64-character lowercase or uppercase hex form.
            pub fn parse(text: &str) -> Result<Self> {
                parse_hex(text).map(Self).ok_or_else(|| Error::InvalidVersion {
                    spec: text.to_string(),
                    reason: format!("not a {} id (64 hex characters)", $what),
                })
            }

            /// The first `n` hex characters, for display in listings.
            pub fn short(&self) -> String {
                let mut s = self.to_string();
                s.truncate(12);
                s
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex_of(&self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.short())
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Self::parse(s)
            }
        }
    };
}

typed_id!(
    /// Id of a snapshot object (`snapshots/<id>`).
    SnapshotId,
    "snapshot"
);
typed_id!(
    /// Id of a manifest shard object (`manifests/<id>`).
    ManifestId,
    "manifest"
);
typed_id!(
    /// Id of a chunk object or pack (`chunks/<id>`).
    ChunkObjectId,
    "chunk object"
);
typed_id!(
    /// Id of a transaction log object (`txlogs/<id>`).
    TxLogId,
    "transaction log"
);

/// The lowercase hex form of a digest (formatting byte by byte through `fmt` costs more
/// than decoding a small snapshot, and keys are built for every object read).
fn hex_of(digest: &[u8; DIGEST_LEN]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(2 * DIGEST_LEN);
    for &b in digest {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

fn parse_hex(text: &str) -> Option<[u8; DIGEST_LEN]> {
    let raw = text.as_bytes();
    if raw.len() != DIGEST_LEN * 2 {
        return None;
    }
    let mut out = [0u8; DIGEST_LEN];
    for (i, pair) in raw.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// True when `text` is a non-empty string of hex digits (a candidate id prefix).
pub(crate) fn is_hex_prefix(text: &str) -> bool {
    !text.is_empty() && text.len() <= DIGEST_LEN * 2 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

mod digest_bytes {
    use super::DIGEST_LEN;
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; DIGEST_LEN], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; DIGEST_LEN], D::Error> {
        let raw: serde_bytes::ByteBuf = Deserialize::deserialize(d)?;
        raw.as_slice()
            .try_into()
            .map_err(|_| D::Error::invalid_length(raw.len(), &"a 32-byte digest"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trip_and_typed_parse() {
        let id = SnapshotId::of_bytes(b"hello");
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(SnapshotId::parse(&text).unwrap(), id);
        assert_eq!(SnapshotId::parse(&text.to_uppercase()).unwrap(), id);
        assert!(SnapshotId::parse(&text[..63]).is_err());
        assert!(SnapshotId::parse(&format!("{}g", &text[..63])).is_err());
        assert_eq!(id.short(), text[..12]);
    }

    #[test]
    fn msgpack_round_trip_uses_bytes() {
        let id = ManifestId::of_bytes(b"x");
        let enc = rmp_serde::to_vec(&id).unwrap();
        assert_eq!(enc.len(), 2 + DIGEST_LEN);
        let back: ManifestId = rmp_serde::from_slice(&enc).unwrap();
        assert_eq!(back, id);
        let short = rmp_serde::to_vec(&serde_bytes::Bytes::new(&[1, 2, 3])).unwrap();
        assert!(rmp_serde::from_slice::<ManifestId>(&short).is_err());
    }

    #[test]
    fn hex_prefix_detection() {
        assert!(is_hex_prefix("abc123"));
        assert!(!is_hex_prefix("main"));
        assert!(!is_hex_prefix(""));
    }
}
