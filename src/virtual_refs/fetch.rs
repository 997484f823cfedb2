//! Reading byte ranges of virtual chunk sources: conditional, coalesced ranged gets.

use std::ops::Range;

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::{GetOptions, GetRange, ObjectStoreExt};

use super::access::ResolvedSource;
use crate::error::{Error, Result};
use crate::format::manifest::{SourceChecksum, VirtualChunkRef, VirtualSource};
use crate::repo::Repository;
use crate::storage::SharedCache;

/// Ranges of one source separated by at most this many bytes are read by one request.
pub(crate) const COALESCE_GAP: u64 = 64 * 1024;
/// How many requests to one source are in flight at once.
const CONCURRENT_REQUESTS: usize = 8;

impl Repository {
    /// Reads byte ranges (relative to the chunk) of a virtual chunk.
    ///
    /// Fails with [`Error::InvalidByteRange`] for a range outside the chunk, and otherwise as
    /// [`Repository::read_source_ranges`].
    pub(crate) async fn read_virtual(
        &self,
        chunk: &VirtualChunkRef,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>> {
        let mut absolute = Vec::with_capacity(ranges.len());
        for r in ranges {
            let start = chunk.offset.checked_add(r.start);
            let end = chunk.offset.checked_add(r.end);
            match (start, end) {
                (Some(start), Some(end)) if r.start <= r.end && r.end <= chunk.length => {
                    absolute.push(start..end)
                }
                _ => {
                    return Err(Error::InvalidByteRange {
                        key: chunk.source.location.clone(),
                        start: r.start,
                        end: r.end,
                        size: chunk.length,
                    })
                }
            }
        }
        self.read_source_ranges(&chunk.source, &absolute).await
    }

    /// Reads absolute byte ranges of one source, after checking its location and this
    /// handle's authorization. Ranges separated by at most [`COALESCE_GAP`] bytes are read
    /// by one request. Reads are conditional on the source's checksum.
    ///
    /// Fails with [`Error::VirtualLocationRefused`], [`Error::VirtualSourceNotAuthorized`],
    /// [`Error::VirtualSourceChanged`] (checksum mismatch, or the source is too short) or
    /// [`Error::VirtualSourceMissing`].
    pub(crate) async fn read_source_ranges(
        &self,
        source: &VirtualSource,
        ranges: &[Range<u64>],
    ) -> Result<Vec<Bytes>> {
        let resolved = self.resolve_virtual(source).await?;
        let groups = coalesce(ranges, COALESCE_GAP);
        let spans: Vec<Range<u64>> = groups.iter().map(|(span, _)| span.clone()).collect();
        let resolved = &resolved;
        let fetched: Vec<Bytes> = futures::stream::iter(spans)
            .map(|span| self.fetch(source, resolved, span))
            .buffered(CONCURRENT_REQUESTS)
            .try_collect()
            .await?;
        let mut out = vec![Bytes::new(); ranges.len()];
        for ((span, members), bytes) in groups.iter().zip(&fetched) {
            for &i in members {
                let r = &ranges[i];
                let (from, to) = (
                    (r.start - span.start) as usize,
                    (r.end - span.start) as usize,
                );
                out[i] = bytes.slice(from..to);
            }
        }
        Ok(out)
    }

    /// One conditional ranged get; the bytes come back only if they are exactly the range
    /// of the unchanged source.
    async fn fetch(
        &self,
        source: &VirtualSource,
        resolved: &ResolvedSource,
        span: Range<u64>,
    ) -> Result<Bytes> {
        let location = &source.location;
        let changed = || Error::VirtualSourceChanged {
            location: location.clone(),
        };
        let mut options = GetOptions {
            range: Some(GetRange::Bounded(span.clone())),
            ..Default::default()
        };
        match &source.checksum {
            Some(SourceChecksum::ETag(tag)) => options.if_match = Some(etag_for(tag)),
            Some(SourceChecksum::LastModified(secs)) => {
                // Whole seconds: modified within that second still counts as unchanged. The
                // precondition only catches newer files; the response is checked for the
                // exact second too (see `fetch_uncached`).
                let deadline =
                    chrono::DateTime::from_timestamp(*secs, 999_999_999).ok_or_else(changed)?;
                options.if_unmodified_since = Some(deadline);
            }
            None => {}
        }
        let wanted = span.end - span.start;
        if wanted == 0 {
            return Ok(Bytes::new());
        }
        // Only ranges of a source with a checksum are immutable, hence cacheable.
        let cache_entry = match (&self.virtual_reader.cache, &source.checksum) {
            (Some(cache), Some(checksum)) => Some((
                cache,
                cache_entry_name(&resolved.store_id, source, checksum, &span),
            )),
            _ => None,
        };
        if let Some((cache, name)) = &cache_entry {
            if let Some((_, bytes)) = cache.lookup_any(vec![name.clone()]).await {
                if bytes.len() as u64 == wanted {
                    return Ok(bytes);
                }
            }
        }
        let bytes = self.fetch_uncached(source, resolved, span, options).await?;
        if let Some((cache, name)) = cache_entry {
            cache.insert_all(vec![(name, bytes.clone())]).await;
        }
        Ok(bytes)
    }

    async fn fetch_uncached(
        &self,
        source: &VirtualSource,
        resolved: &ResolvedSource,
        span: Range<u64>,
        options: GetOptions,
    ) -> Result<Bytes> {
        let location = &source.location;
        let changed = || Error::VirtualSourceChanged {
            location: location.clone(),
        };
        let wanted = span.end - span.start;
        self.virtual_reader.count_request(wanted);
        let result = match resolved.store.get_opts(&resolved.path, options).await {
            Ok(result) => result,
            Err(e) => return Err(self.classify(source, resolved, span, e).await),
        };
        // Servers that ignore conditional headers are caught here: never stale bytes. An ETag
        // reference needs the same ETag back (a response without one cannot be verified); a
        // modification-time reference needs a time within the recorded second (an older time
        // is a replaced file too: a restored backup, `cp -p`, `rsync -t`).
        match &source.checksum {
            Some(SourceChecksum::ETag(tag)) => match &result.meta.e_tag {
                Some(found) if same_etag(found, tag) => {}
                _ => return Err(changed()),
            },
            Some(SourceChecksum::LastModified(secs))
                if result.meta.last_modified.timestamp() != *secs =>
            {
                return Err(changed())
            }
            Some(SourceChecksum::LastModified(_)) | None => {}
        }
        let bytes = result
            .bytes()
            .await
            .map_err(|e| storage_error(location, e))?;
        if bytes.len() as u64 != wanted {
            return Err(changed());
        }
        Ok(bytes)
    }

    /// Turns a failed get into the error that explains it.
    async fn classify(
        &self,
        source: &VirtualSource,
        resolved: &ResolvedSource,
        span: Range<u64>,
        error: object_store::Error,
    ) -> Error {
        let location = source.location.clone();
        match error {
            object_store::Error::Precondition { .. } | object_store::Error::NotModified { .. } => {
                Error::VirtualSourceChanged { location }
            }
            object_store::Error::NotFound { .. } => Error::VirtualSourceMissing { location },
            other => match resolved.store.head(&resolved.path).await {
                Err(object_store::Error::NotFound { .. }) => {
                    Error::VirtualSourceMissing { location }
                }
                // The reference ends past the end of the file: not the file referenced.
                Ok(meta) if meta.size < span.end => Error::VirtualSourceChanged { location },
                _ => storage_error(&location, other),
            },
        }
    }
}

/// The local cache entry of a verified range: the store read (`store_id`, see
/// [`super::clients::store_identity`]), the source's location and its checksum identify the
/// exact bytes.
fn cache_entry_name(
    store_id: &str,
    source: &VirtualSource,
    checksum: &SourceChecksum,
    span: &Range<u64>,
) -> String {
    let checksum = match checksum {
        SourceChecksum::ETag(tag) => {
            let weak = if is_weak(tag) { "W/" } else { "" };
            format!("etag:{weak}{}", unquote(tag))
        }
        SourceChecksum::LastModified(secs) => format!("mtime:{secs}"),
    };
    format!(
        "virtual:{store_id}:{}#{checksum}@{}-{}",
        source.location, span.start, span.end
    )
}

fn storage_error(location: &str, source: object_store::Error) -> Error {
    Error::Storage {
        key: location.to_string(),
        source,
    }
}

/// True for a weak entity tag (`W/"..."`).
fn is_weak(tag: &str) -> bool {
    tag.starts_with("W/")
}

/// True when two entity tags name the same bytes: same opaque value and same strength. A weak
/// tag never equals a strong one, so a source recorded with a weak tag is never taken for
/// unchanged on a strong match. (A weak tag sent in `If-Match` also fails on servers that
/// compare strongly, as RFC 9110 requires: such sources read as changed.)
fn same_etag(a: &str, b: &str) -> bool {
    is_weak(a) == is_weak(b) && unquote(a) == unquote(b)
}

/// The opaque value of an entity tag, without `W/` and quotes.
fn unquote(tag: &str) -> &str {
    let tag = tag.strip_prefix("W/").unwrap_or(tag);
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(tag)
}

/// The entity tag in the quoted form of the HTTP header, which every store (local files
/// included) reports and compares.
fn etag_for(tag: &str) -> String {
    if tag.starts_with('"') || tag.starts_with("W/\"") {
        tag.to_string()
    } else {
        format!("\"{tag}\"")
    }
}

/// Groups ranges into spans: ranges (in offset order) whose gap to the span so far is at most
/// `gap` bytes share one span. Each span lists the indices (into `ranges`) it serves. Empty
/// ranges are served by the span they touch, or by a span of their own.
pub(crate) fn coalesce(ranges: &[Range<u64>], gap: u64) -> Vec<(Range<u64>, Vec<usize>)> {
    let mut order: Vec<usize> = (0..ranges.len()).collect();
    order.sort_by_key(|&i| (ranges[i].start, ranges[i].end));
    let mut spans: Vec<(Range<u64>, Vec<usize>)> = Vec::new();
    for i in order {
        let r = &ranges[i];
        match spans.last_mut() {
            Some((span, members)) if r.start <= span.end.saturating_add(gap) => {
                span.end = span.end.max(r.end);
                members.push(i);
            }
            _ => spans.push((r.clone(), vec![i])),
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjacent_and_near_ranges_coalesce() {
        let ranges = vec![200..300, 0..100, 100..200, 400_000..400_010, 300..300];
        let spans = coalesce(&ranges, COALESCE_GAP);
        assert_eq!(spans.len(), 2);
        assert_eq!(spans[0].0, 0..300);
        assert_eq!(spans[0].1, vec![1, 2, 0, 4]);
        assert_eq!(spans[1].0, 400_000..400_010);
        let near = coalesce(&[0..10, 10 + COALESCE_GAP..20 + COALESCE_GAP], COALESCE_GAP);
        assert_eq!(near.len(), 1);
        let far = coalesce(&[0..10, 11 + COALESCE_GAP..20 + COALESCE_GAP], COALESCE_GAP);
        assert_eq!(far.len(), 2);
    }

    #[test]
    fn etags_are_sent_quoted() {
        assert_eq!(etag_for("abc"), "\"abc\"");
        assert_eq!(etag_for("\"abc\""), "\"abc\"");
        assert_eq!(unquote("W/\"x\""), "x");
    }

    #[test]
    fn weak_and_strong_etags_never_match() {
        assert!(same_etag("\"x\"", "x"));
        assert!(same_etag("W/\"x\"", "W/\"x\""));
        assert!(!same_etag("W/\"x\"", "\"x\""));
        assert!(!same_etag("x", "W/\"x\""));
        assert!(!same_etag("\"x\"", "\"y\""));
    }

    #[test]
    fn cache_entries_of_different_stores_differ() {
        let source = VirtualSource {
            location: "s3://b/x.nc".into(),
            checksum: None,
        };
        let tag = SourceChecksum::ETag("\"e\"".into());
        let one = cache_entry_name("aaaa", &source, &tag, &(0..10));
        assert_ne!(one, cache_entry_name("bbbb", &source, &tag, &(0..10)));
        let weak = SourceChecksum::ETag("W/\"e\"".into());
        assert_ne!(one, cache_entry_name("aaaa", &source, &weak, &(0..10)));
    }
}
