//! The one encode/decode envelope shared by every floe object.
//!
//! Layout (all integers little-endian):
//!
//! | offset | size | field                                          |
//! |--------|------|------------------------------------------------|
//! | 0      | 4    | magic `FLOE`                                   |
//! | 4      | 2    | format version (currently 1)                   |
//! | 6      | 1    | object kind (see [`ObjectKind`])               |
//! | 7      | 1    | payload encoding: 0 = raw, 1 = zstd            |
//! | 8      | 16   | write nonce (random; makes every write unique) |
//! | 24     | ...  | payload                                        |
//!
//! For structured objects the payload is rmp-serde (MessagePack, structs as maps) optionally
//! compressed with zstd. Chunk objects carry raw chunk bytes as their payload, uncompressed, so
//! that ranged reads address chunks directly.

use bytes::{BufMut, Bytes, BytesMut};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{Error, Result};

/// Magic bytes at the start of every floe object.
pub const MAGIC: &[u8; 4] = b"FLOE";
/// The format version this build writes and the newest it reads.
pub const FORMAT_VERSION: u16 = 1;
/// Size of the envelope header in bytes.
pub const HEADER_LEN: usize = 24;
/// Payloads at least this large are zstd-compressed.
const COMPRESS_MIN: usize = 256;
const ZSTD_LEVEL: i32 = 3;

/// What an object is; stored in byte 6 of the header and checked on every read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ObjectKind {
    /// A snapshot (`snapshots/<id>`).
    Snapshot = 1,
    /// A manifest shard (`manifests/<id>`).
    Manifest = 2,
    /// A transaction log (`txlogs/<id>`).
    TxLog = 3,
    /// A chunk object or pack (`chunks/<id>`).
    Chunks = 4,
    /// A branch or tag ref record.
    Ref = 5,
    /// An expiry or garbage-collection record (`config/expiry/<seq>`, `gc/<seq>`).
    Lifecycle = 6,
}

impl ObjectKind {
    fn from_byte(b: u8) -> Option<Self> {
        Some(match b {
            1 => Self::Snapshot,
            2 => Self::Manifest,
            3 => Self::TxLog,
            4 => Self::Chunks,
            5 => Self::Ref,
            6 => Self::Lifecycle,
            _ => return None,
        })
    }
}

fn header(kind: ObjectKind, encoding: u8) -> BytesMut {
    let mut out = BytesMut::with_capacity(HEADER_LEN);
    out.put_slice(MAGIC);
    out.put_u16_le(FORMAT_VERSION);
    out.put_u8(kind as u8);
    out.put_u8(encoding);
    out.put_slice(&rand::random::<[u8; 16]>());
    out
}

/// Encodes a structured value as a complete object (header + rmp-serde payload, zstd when it
/// pays). Every call produces different bytes (fresh nonce), hence a different digest.
pub fn encode<T: Serialize>(kind: ObjectKind, value: &T) -> Result<Bytes> {
    let payload = rmp_serde::to_vec_named(value)
        .map_err(|e| Error::corrupt(format!("<new {kind:?}>"), format!("cannot encode: {e}")))?;
    if payload.len() as u64 > MAX_PAYLOAD_BYTES {
        return Err(Error::ObjectTooLarge {
            what: format!("{kind:?}"),
            size: payload.len() as u64,
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let (encoding, body) = if payload.len() >= COMPRESS_MIN {
        let compressed = zstd::bulk::compress(&payload, ZSTD_LEVEL).map_err(|e| Error::Io {
            path: "<zstd>".into(),
            source: e,
        })?;
        (1u8, compressed)
    } else {
        (0u8, payload)
    };
    let mut out = header(kind, encoding);
    out.reserve(body.len());
    out.put_slice(&body);
    Ok(out.freeze())
}

/// Builds the header of a chunk object; raw chunk bytes follow it.
pub fn chunk_object_header() -> BytesMut {
    header(ObjectKind::Chunks, 0)
}

/// Checks the header of an object and returns its encoding byte.
pub fn check_header(key: &str, bytes: &[u8], expected: ObjectKind) -> Result<u8> {
    if bytes.len() < HEADER_LEN {
        return Err(Error::corrupt(
            key,
            format!(
                "{} bytes is shorter than the {HEADER_LEN}-byte header",
                bytes.len()
            ),
        ));
    }
    if &bytes[0..4] != MAGIC {
        return Err(Error::corrupt(key, "not a floe object (bad magic bytes)"));
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version == 0 || version > FORMAT_VERSION {
        return Err(Error::UnsupportedFormatVersion {
            found: version.into(),
            supported: FORMAT_VERSION.into(),
        });
    }
    match ObjectKind::from_byte(bytes[6]) {
        Some(kind) if kind == expected => {}
        Some(kind) => {
            return Err(Error::corrupt(
                key,
                format!("expected a {expected:?} object, found a {kind:?}"),
            ))
        }
        None => {
            return Err(Error::corrupt(
                key,
                format!("unknown object kind {}", bytes[6]),
            ))
        }
    }
    let encoding = bytes[7];
    if encoding > 1 {
        return Err(Error::corrupt(
            key,
            format!("unknown payload encoding {encoding}"),
        ));
    }
    Ok(encoding)
}

/// Largest decompressed payload accepted (a guard against corrupt or hostile objects that
/// would expand without bound; floe's own objects stay far below it).
pub const MAX_PAYLOAD_BYTES: u64 = 1 << 30;

/// Payloads whose frame states a content size up to this are decompressed in one call with
/// a decompression context reused by the thread (creating one costs more than decompressing a
/// small snapshot); others are streamed.
const ONE_SHOT_MAX_BYTES: u64 = 16 << 20;

thread_local! {
    static DECOMPRESSOR: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

fn decompress_bounded(key: &str, body: &[u8]) -> Result<Vec<u8>> {
    if let Ok(Some(size)) = zstd::zstd_safe::get_frame_content_size(body) {
        if size <= ONE_SHOT_MAX_BYTES {
            let one_shot = DECOMPRESSOR.with(|cell| {
                let mut slot = cell.borrow_mut();
                if slot.is_none() {
                    *slot = zstd::bulk::Decompressor::new().ok();
                }
                slot.as_mut()
                    .map(|decompressor| decompressor.decompress(body, size as usize))
            });
            if let Some(Ok(out)) = one_shot {
                if out.len() as u64 == size {
                    return Ok(out);
                }
            }
            // Not one frame of the size it states (or no context could be made): streaming
            // decides, within the bound.
        }
    }
    decompress_streamed(key, body)
}

fn decompress_streamed(key: &str, body: &[u8]) -> Result<Vec<u8>> {
    use std::io::Read;
    let decoder = zstd::stream::read::Decoder::new(body)
        .map_err(|e| Error::corrupt(key, format!("payload does not decompress: {e}")))?;
    let mut out = Vec::new();
    decoder
        .take(MAX_PAYLOAD_BYTES + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::corrupt(key, format!("payload does not decompress: {e}")))?;
    if out.len() as u64 > MAX_PAYLOAD_BYTES {
        return Err(Error::corrupt(
            key,
            format!("payload expands past the {MAX_PAYLOAD_BYTES}-byte limit"),
        ));
    }
    Ok(out)
}

/// Decodes an object produced by [`encode`], checking magic, version and kind.
pub fn decode<T: DeserializeOwned>(key: &str, bytes: &[u8], expected: ObjectKind) -> Result<T> {
    let encoding = check_header(key, bytes, expected)?;
    let body = &bytes[HEADER_LEN..];
    let decompressed;
    let payload = if encoding == 1 {
        decompressed = decompress_bounded(key, body)?;
        &decompressed[..]
    } else {
        body
    };
    rmp_serde::from_slice(payload)
        .map_err(|e| Error::corrupt(key, format!("payload does not decode: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Sample {
        name: String,
        values: Vec<u64>,
    }

    fn sample(n: u64) -> Sample {
        Sample {
            name: "x".into(),
            values: (0..n).collect(),
        }
    }

    #[test]
    fn round_trip_small_and_compressed() {
        for n in [1, 1000] {
            let bytes = encode(ObjectKind::Snapshot, &sample(n)).unwrap();
            assert_eq!(bytes[7], u8::from(n == 1000));
            let back: Sample = decode("k", &bytes, ObjectKind::Snapshot).unwrap();
            assert_eq!(back, sample(n));
        }
    }

    #[test]
    fn every_write_is_unique() {
        let a = encode(ObjectKind::Manifest, &sample(3)).unwrap();
        let b = encode(ObjectKind::Manifest, &sample(3)).unwrap();
        assert_ne!(a, b);
        assert_eq!(a[HEADER_LEN..], b[HEADER_LEN..]);
    }

    #[test]
    fn header_checks_give_clear_errors() {
        let good = encode(ObjectKind::TxLog, &sample(2)).unwrap();
        let err = decode::<Sample>("k", &good[..10], ObjectKind::TxLog).unwrap_err();
        assert!(err.to_string().contains("shorter"), "{err}");
        let mut bad = good.to_vec();
        bad[0] = b'X';
        let err = decode::<Sample>("k", &bad, ObjectKind::TxLog).unwrap_err();
        assert!(err.to_string().contains("magic"), "{err}");
        let err = decode::<Sample>("k", &good, ObjectKind::Snapshot).unwrap_err();
        assert!(err.to_string().contains("expected a Snapshot"), "{err}");
        let mut newer = good.to_vec();
        newer[4] = 9;
        assert!(matches!(
            decode::<Sample>("k", &newer, ObjectKind::TxLog),
            Err(Error::UnsupportedFormatVersion { found: 9, .. })
        ));
        let mut garbage = good.to_vec();
        garbage.truncate(HEADER_LEN + 1);
        assert!(matches!(
            decode::<Sample>("k", &garbage, ObjectKind::TxLog),
            Err(Error::CorruptObject { .. })
        ));
    }
}
