//! Source locations given as patterns (`s3://bucket/run/*.nc`, `/data/2026-12-0?.h5`),
//! expanded by listing the prefix before the first pattern character through the source's
//! object store.
//!
//! `*` matches any characters but `/`, `**` any characters, `?` one character but `/`, and
//! `[abc]` / `[a-z]` / `[!a-z]` one character of (or not of) a set. A location without `*`,
//! `?` or `[` is a plain location.

use futures::TryStreamExt;
use object_store::path::Path as StorePath;
use object_store::ObjectStore;

use super::super::clients::build_client;
use super::super::import::sources::derived_prefix;
use super::super::location::check_prefix;
use crate::error::{Error, Result};
use crate::storage::StorageOptions;

/// Whether `location` is a pattern.
fn is_pattern(location: &str) -> bool {
    location.contains(['*', '?', '['])
}

/// `locations` with every pattern replaced by the files it matches, sorted; plain locations
/// stay as given, in place.
///
/// Fails with [`Error::KerchunkImport`] for a pattern that matches no file,
/// [`Error::VirtualLocationRefused`] for a prefix that is not a supported location, and
/// [`Error::Storage`] when listing fails.
pub async fn expand_sources(locations: &[String], options: &StorageOptions) -> Result<Vec<String>> {
    let mut out = Vec::with_capacity(locations.len());
    for location in locations {
        if !is_pattern(location) {
            out.push(location.clone());
            continue;
        }
        let first = location.find(['*', '?', '[']).unwrap_or(location.len());
        let cut = location[..first].rfind('/').map_or(0, |i| i + 1);
        let (base, pattern) = location.split_at(cut);
        if base.is_empty() {
            return Err(Error::import_refused(
                location.clone(),
                "a pattern needs a directory or prefix before it (an absolute path or URL)",
            ));
        }
        let checked = check_prefix(base)?;
        let store = build_client(&derived_prefix(&checked), options)?;
        let listed_prefix = if checked.scheme() == "file" {
            let dir = checked
                .url
                .to_file_path()
                .map_err(|_| Error::VirtualLocationRefused {
                    location: base.to_string(),
                    reason: "not an absolute directory".into(),
                })?;
            StorePath::from_absolute_path(&dir).map_err(|e| Error::VirtualLocationRefused {
                location: base.to_string(),
                reason: e.to_string(),
            })?
        } else {
            StorePath::from_url_path(checked.url.path()).map_err(|e| {
                Error::VirtualLocationRefused {
                    location: base.to_string(),
                    reason: e.to_string(),
                }
            })?
        };
        let mut found = list_matching(&*store, &listed_prefix, pattern)
            .await
            .map_err(|source| Error::Storage {
                key: base.to_string(),
                source,
            })?;
        if found.is_empty() {
            return Err(Error::import_refused(
                location.clone(),
                "no file matches the pattern",
            ));
        }
        found.sort();
        let base_text = checked.text.trim_end_matches('/');
        out.extend(found.into_iter().map(|rest| format!("{base_text}/{rest}")));
    }
    Ok(out)
}

/// The paths below `prefix` (relative to it) that match `pattern`.
async fn list_matching(
    store: &dyn ObjectStore,
    prefix: &StorePath,
    pattern: &str,
) -> object_store::Result<Vec<String>> {
    let listed: Vec<_> = store.list(Some(prefix)).try_collect().await?;
    let base = prefix.as_ref();
    Ok(listed
        .into_iter()
        .filter_map(|meta| {
            let full = meta.location.as_ref();
            let rest = full.strip_prefix(base)?.trim_start_matches('/');
            matches(pattern.as_bytes(), rest.as_bytes()).then(|| rest.to_string())
        })
        .collect())
}

/// Whether `text` matches the whole `pattern`.
fn matches(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') if pattern.get(1) == Some(&b'*') => {
            let rest = &pattern[2..];
            (0..=text.len()).any(|i| matches(rest, &text[i..]))
        }
        Some(b'*') => {
            let rest = &pattern[1..];
            for i in 0..=text.len() {
                if matches(rest, &text[i..]) {
                    return true;
                }
                if text.get(i) == Some(&b'/') {
                    return false;
                }
            }
            false
        }
        Some(b'?') => {
            text.first().is_some_and(|&c| c != b'/') && matches(&pattern[1..], &text[1..])
        }
        Some(b'[') => {
            let Some(close) = pattern
                .iter()
                .skip(2)
                .position(|&c| c == b']')
                .map(|p| p + 2)
            else {
                return text.first() == Some(&b'[') && matches(&pattern[1..], &text[1..]);
            };
            let Some(&c) = text.first() else {
                return false;
            };
            let (negated, set) = match pattern[1] {
                b'!' | b'^' => (true, &pattern[2..close]),
                _ => (false, &pattern[1..close]),
            };
            let mut hit = false;
            let mut i = 0;
            while i < set.len() {
                if i + 2 < set.len() && set[i + 1] == b'-' {
                    hit |= set[i] <= c && c <= set[i + 2];
                    i += 3;
                } else {
                    hit |= set[i] == c;
                    i += 1;
                }
            }
            hit != negated && c != b'/' && matches(&pattern[close + 1..], &text[1..])
        }
        Some(&p) => text.first() == Some(&p) && matches(&pattern[1..], &text[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn m(p: &str, t: &str) -> bool {
        matches(p.as_bytes(), t.as_bytes())
    }

    #[test]
    fn patterns_match_as_shells_do() {
        assert!(m("*.nc", "day_01.nc"));
        assert!(!m("*.nc", "sub/day_01.nc"));
        assert!(m("**/*.nc", "sub/day_01.nc"));
        assert!(m("day_0?.nc", "day_07.nc"));
        assert!(!m("day_0?.nc", "day_10.nc"));
        assert!(m("day_[0-2]*.h5", "day_13.h5"));
        assert!(!m("day_[!0-2]*.h5", "day_13.h5"));
        assert!(m("a[bc]d", "acd"));
        assert!(!m("*.nc", "day.nc.bak"));
    }
}
