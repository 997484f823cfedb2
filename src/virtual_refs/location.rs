//! Checking and normalising virtual chunk locations and container prefixes.
//!
//! Every location is refused unless it is an absolute URL of a supported scheme (or an
//! absolute local path, taken as a `file://` URL) whose path has no `.` or `..` segment, no
//! empty segment, no backslash, no percent-encoded `/`, `\` or dot segment, and (for URLs) no
//! `?` or `#` anywhere, authority included. The normalised
//! form is the URL as the `url` crate serialises it, so a source and a container prefix
//! normalised here compare by plain string prefix.

use percent_encoding::percent_decode_str;

use crate::error::{Error, Result};

/// The schemes virtual chunks may be read from.
pub(crate) const SUPPORTED_SCHEMES: [&str; 6] = ["file", "s3", "gs", "az", "http", "https"];

/// A checked location: its normalised URL text and the parsed URL.
#[derive(Clone, Debug)]
pub(crate) struct CheckedUrl {
    /// The normalised URL text.
    pub(crate) text: String,
    /// The parsed URL.
    pub(crate) url: url::Url,
}

impl CheckedUrl {
    /// The URL scheme (one of [`SUPPORTED_SCHEMES`]).
    pub(crate) fn scheme(&self) -> &str {
        self.url.scheme()
    }
}

fn refused(location: &str, reason: impl Into<String>) -> Error {
    Error::VirtualLocationRefused {
        location: location.to_string(),
        reason: reason.into(),
    }
}

/// Checks and normalises the location of a virtual chunk's source file.
pub(crate) fn check_source(location: &str) -> Result<CheckedUrl> {
    let checked = check(location, false)?;
    if checked.text.ends_with('/') {
        return Err(refused(location, "it names a directory, not a file"));
    }
    Ok(checked)
}

/// Checks and normalises a container prefix; the result always ends with `/`.
pub(crate) fn check_prefix(prefix: &str) -> Result<CheckedUrl> {
    let with_slash = if prefix.ends_with('/') {
        prefix.to_string()
    } else {
        format!("{prefix}/")
    };
    let checked = check(&with_slash, true).map_err(|e| match e {
        Error::VirtualLocationRefused { reason, .. } => refused(prefix, reason),
        other => other,
    })?;
    // A prefix must end with `/`, or `file:///data` would also cover `file:///data2/x`.
    if !checked.text.ends_with('/') {
        return Err(refused(prefix, "it cannot be normalised to end with `/`"));
    }
    Ok(checked)
}

fn check(location: &str, is_prefix: bool) -> Result<CheckedUrl> {
    if location.is_empty() {
        return Err(refused(location, "it is empty"));
    }
    if location.contains('\\') {
        return Err(refused(location, "it contains a backslash"));
    }
    if location.chars().any(char::is_control) {
        return Err(refused(location, "it contains control characters"));
    }
    let Some((scheme, rest)) = location.split_once("://") else {
        if !location.starts_with('/') {
            return Err(refused(
                location,
                "a plain path must be absolute (or use a URL: file://, s3://, gs://, az://, http(s)://)",
            ));
        }
        check_segments(location, location, is_prefix)?;
        let url = if is_prefix {
            url::Url::from_directory_path(location)
        } else {
            url::Url::from_file_path(location)
        }
        .map_err(|_| refused(location, "not a valid absolute path"))?;
        return Ok(CheckedUrl {
            text: url.as_str().to_string(),
            url,
        });
    };
    let scheme = scheme.to_ascii_lowercase();
    if !SUPPORTED_SCHEMES.contains(&scheme.as_str()) {
        return Err(refused(
            location,
            format!(
                "unsupported scheme `{scheme}` (use {})",
                SUPPORTED_SCHEMES.join(", ")
            ),
        ));
    }
    // The authority ends at the first `/`; everything after it is the path, checked raw
    // (URL parsing would silently resolve `..`).
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // Anywhere in the URL, authority included: `https://host#/x` would otherwise name the
    // server's root with a fragment.
    if rest.contains('?') || rest.contains('#') {
        return Err(refused(
            location,
            "query strings and fragments are not allowed",
        ));
    }
    if scheme == "file" {
        if !authority.is_empty() && authority != "localhost" {
            return Err(refused(location, "a file:// URL must have no host"));
        }
    } else if authority.is_empty() {
        return Err(refused(
            location,
            "the URL names no bucket, container or host",
        ));
    }
    if authority.contains('@') {
        return Err(refused(location, "credentials in URLs are not allowed"));
    }
    if path.is_empty() && !is_prefix {
        return Err(refused(location, "the URL names no file"));
    }
    check_segments(location, path, is_prefix)?;
    let url = url::Url::parse(location).map_err(|e| refused(location, e.to_string()))?;
    Ok(CheckedUrl {
        text: url.as_str().to_string(),
        url,
    })
}

/// Refuses `.`/`..` segments (raw or percent-encoded), empty segments and percent-encoded
/// separators in the path part (which starts with `/` or is empty).
fn check_segments(location: &str, path: &str, is_prefix: bool) -> Result<()> {
    let lowered = path.to_ascii_lowercase();
    if lowered.contains("%2f") || lowered.contains("%5c") {
        return Err(refused(
            location,
            "it contains a percent-encoded path separator (%2F or %5C)",
        ));
    }
    let Some(body) = path.strip_prefix('/') else {
        return Ok(());
    };
    let body = if is_prefix {
        body.strip_suffix('/').unwrap_or(body)
    } else {
        body
    };
    if body.is_empty() {
        return Ok(());
    }
    for segment in body.split('/') {
        let decoded = percent_decode_str(segment).decode_utf8_lossy();
        match decoded.as_ref() {
            "" => {
                return Err(refused(
                    location,
                    "it contains an empty path segment (`//`)",
                ))
            }
            "." | ".." if decoded != segment => {
                return Err(refused(
                    location,
                    "it contains a percent-encoded `.` or `..` segment (path traversal)",
                ))
            }
            "." | ".." => {
                return Err(refused(
                    location,
                    "it contains a `.` or `..` segment (path traversal)",
                ))
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_locations_normalise() {
        assert_eq!(
            check_source("/data/a b.nc").unwrap().text,
            "file:///data/a%20b.nc"
        );
        assert_eq!(
            check_source("file:///data/x.nc").unwrap().text,
            "file:///data/x.nc"
        );
        assert_eq!(
            check_source("s3://bucket/k/x.nc").unwrap().text,
            "s3://bucket/k/x.nc"
        );
        assert_eq!(
            check_prefix("s3://bucket/k").unwrap().text,
            "s3://bucket/k/"
        );
        assert_eq!(check_prefix("s3://bucket").unwrap().text, "s3://bucket/");
        assert_eq!(check_prefix("/data").unwrap().text, "file:///data/");
        assert_eq!(
            check_prefix("HTTPS://Example.org/d/").unwrap().text,
            "https://example.org/d/"
        );
    }

    #[test]
    fn traversal_and_odd_forms_are_refused() {
        for bad in [
            "relative/x.nc",
            "file:///data/../etc/passwd",
            "/data/../etc/passwd",
            "file:///data/%2e%2e/etc/passwd",
            "file:///data/.%2E/etc/passwd",
            "file:///data/sub%2Fx.nc",
            "file:///data/./x.nc",
            "file:///data//x.nc",
            "s3://bucket/a\\b",
            "ftp://host/x",
            "s3:///x.nc",
            "file://host/x.nc",
            "https://user:pw@host/x",
            "https://host/x?y=1",
            "https://host#/x.nc",
            "https://host#frag",
            "s3://bucket#x/k.nc",
            "s3://bucket?x/k.nc",
            "file:///data/x.nc#frag",
            "file:///data/dir/",
        ] {
            let err = check_source(bad).unwrap_err();
            assert!(
                matches!(err, Error::VirtualLocationRefused { .. }),
                "{bad}: {err}"
            );
        }
        assert!(check_prefix("s3://bucket/../x").is_err());
        assert!(check_prefix("https://host#/d/").is_err());
        // In a plain path `#` is a file name character, not a fragment.
        assert_eq!(
            check_source("/data/a#1.nc").unwrap().text,
            "file:///data/a%231.nc"
        );
    }
}
