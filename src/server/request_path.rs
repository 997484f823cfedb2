//! Splitting a raw request path into the version segment and the Zarr key or listing prefix.
//!
//! The path is taken exactly as received (still percent-encoded). It is split on literal `/`
//! first, then each segment is percent-decoded on its own, so an encoded slash (`%2F`) can
//! never join two segments: a decoded segment containing `/`, a NUL or another control
//! character, or invalid UTF-8 is refused, as are `.`/`..` segments (also when encoded) and
//! empty segments inside the key. The one exception: the view parameters of the version
//! segment (after its first `;`) may contain encoded slashes, as they name nested arrays.
//! Nothing here touches the filesystem: the result is a Zarr key that is resolved by the store.

use percent_encoding::percent_decode_str;

use crate::zarr::resolve::check_key_syntax;

/// Longest request path accepted, in bytes as received (percent-encoded).
pub const MAX_PATH_LEN: usize = 8192;

/// What a request path addresses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// `/`: the list of branches and tags.
    Refs,
    /// `/<ref>` without a trailing slash: redirected to the listing `/<ref>/` when the version
    /// exists.
    VersionRoot {
        /// The decoded version segment.
        segment: String,
    },
    /// `/<ref>/<prefix>/`: an HTML listing of a prefix (`""` for the hierarchy root).
    Listing {
        /// The decoded version segment.
        segment: String,
        /// `""` or a key prefix ending with `/`.
        prefix: String,
    },
    /// `/<ref>/<key>`: one Zarr key.
    Key {
        /// The decoded version segment.
        segment: String,
        /// The Zarr key, relative to the hierarchy root.
        key: String,
    },
}

/// Why a path was refused (answered with 400 and this text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPath(pub String);

fn decode_segment(raw: &str) -> Result<String, BadPath> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| BadPath("a path segment is not valid UTF-8".into()))?;
    if decoded.contains('/') || decoded.contains('\\') {
        return Err(BadPath("encoded slashes are not allowed in a path".into()));
    }
    if decoded.chars().any(char::is_control) {
        return Err(BadPath(
            "control characters are not allowed in a path".into(),
        ));
    }
    if decoded == "." || decoded == ".." {
        return Err(BadPath("`.` and `..` segments are not allowed".into()));
    }
    Ok(decoded.into_owned())
}

/// Decodes the raw version segment: the version itself (before the first `;`) as any other
/// segment, the view parameters after it with encoded slashes allowed, since their values
/// name nested arrays (`main;chunks=group%2Ftemp=1,2`) and are never used as keys.
fn decode_version_segment(raw: &str) -> Result<String, BadPath> {
    let (raw_version, raw_params) = match raw.split_once(';') {
        Some((version, params)) => (version, Some(params)),
        None => (raw, None),
    };
    let mut segment = decode_segment(raw_version)?;
    // The raw segment is split on `;` before decoding, and a decoded `;` is refused: an
    // encoded `;` (`%3B`) must not split the version or a parameter in two.
    if segment.contains(';') {
        return Err(BadPath("an encoded `;` is not allowed in a version".into()));
    }
    if let Some(raw_params) = raw_params {
        for raw_param in raw_params.split(';') {
            let param = percent_decode_str(raw_param)
                .decode_utf8()
                .map_err(|_| BadPath("a path segment is not valid UTF-8".into()))?;
            if param.chars().any(char::is_control) {
                return Err(BadPath(
                    "control characters are not allowed in a path".into(),
                ));
            }
            if param.contains(';') {
                return Err(BadPath(
                    "an encoded `;` is not allowed in a view parameter".into(),
                ));
            }
            segment.push(';');
            segment.push_str(&param);
        }
    }
    Ok(segment)
}

/// Parses a raw (percent-encoded) request path such as `/main/temp/c/0/1`.
pub fn parse_path(raw: &str) -> Result<Target, BadPath> {
    if raw.len() > MAX_PATH_LEN {
        return Err(BadPath(format!(
            "the path is longer than {MAX_PATH_LEN} bytes"
        )));
    }
    let Some(rest) = raw.strip_prefix('/') else {
        return Err(BadPath("the path must start with `/`".into()));
    };
    if rest.is_empty() {
        return Ok(Target::Refs);
    }
    let (raw_segment, raw_key) = match rest.split_once('/') {
        Some((segment, key)) => (segment, Some(key)),
        None => (rest, None),
    };
    let segment = decode_version_segment(raw_segment)?;
    if segment.is_empty() {
        return Err(BadPath("the version segment is empty".into()));
    }
    let Some(raw_key) = raw_key else {
        return Ok(Target::VersionRoot { segment });
    };
    let (body, is_listing) = match raw_key.strip_suffix('/') {
        Some("") => return Err(BadPath("empty path segment".into())),
        Some(body) => (body, true),
        None => (raw_key, raw_key.is_empty()),
    };
    let mut parts = Vec::new();
    if !body.is_empty() {
        for raw_part in body.split('/') {
            let part = decode_segment(raw_part)?;
            if part.is_empty() {
                return Err(BadPath("empty path segment".into()));
            }
            parts.push(part);
        }
    }
    let key = parts.join("/");
    if !key.is_empty() {
        check_key_syntax(&key).map_err(BadPath)?;
    }
    if is_listing {
        let prefix = if key.is_empty() { key } else { key + "/" };
        Ok(Target::Listing { segment, prefix })
    } else {
        Ok(Target::Key { segment, key })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(segment: &str, key: &str) -> Target {
        Target::Key {
            segment: segment.into(),
            key: key.into(),
        }
    }

    #[test]
    fn splits_version_and_key() {
        assert_eq!(parse_path("/").unwrap(), Target::Refs);
        assert_eq!(parse_path("/main/a/c/0/1").unwrap(), key("main", "a/c/0/1"));
        assert_eq!(
            parse_path("/main%402026-01-02T03%3A04%3A05Z/zarr.json").unwrap(),
            key("main@2026-01-02T03:04:05Z", "zarr.json")
        );
        assert_eq!(
            parse_path("/main").unwrap(),
            Target::VersionRoot {
                segment: "main".into()
            }
        );
        assert_eq!(
            parse_path("/main/").unwrap(),
            Target::Listing {
                segment: "main".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            parse_path("/main/a/c/").unwrap(),
            Target::Listing {
                segment: "main".into(),
                prefix: "a/c/".into()
            }
        );
        assert_eq!(
            parse_path("/main/na%20me/zarr.json").unwrap(),
            key("main", "na me/zarr.json")
        );
        assert_eq!(
            parse_path("/main;chunks=g%2Ft=1%2C2/g/t/c/0/0").unwrap(),
            key("main;chunks=g/t=1,2", "g/t/c/0/0")
        );
        assert!(parse_path("/ma%2Fin;chunks=t=1/zarr.json").is_err());
        assert!(parse_path("/main;chunks=t%00=1/zarr.json").is_err());
    }

    #[test]
    fn refuses_hostile_paths() {
        for bad in [
            "/main/../x",
            "/main/%2e%2e/%2E%2E/etc/passwd",
            "/main/a%2fb",
            "/main/a%5Cb",
            "/main/a%00b",
            "/main/a//b",
            "/main/./zarr.json",
            "/%2e%2e/zarr.json",
            "/main/%ff",
            "main/zarr.json",
            "//zarr.json",
            "/main//",
        ] {
            assert!(parse_path(bad).is_err(), "{bad} was accepted");
        }
        let long = format!("/main/{}", "a".repeat(MAX_PATH_LEN));
        assert!(parse_path(&long).is_err());
    }
}
