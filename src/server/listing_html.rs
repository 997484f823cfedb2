//! HTML directory listings: one `<a href>` per child prefix (ending with `/`) and per key, for
//! clients that discover keys by parsing links (fsspec's HTTP filesystem) instead of reading
//! consolidated metadata.
//!
//! Links inside a version are relative to the listed prefix (`zarr.json`, `child/`), each
//! segment percent-encoded, and every text is HTML-escaped, so names with spaces, quotes or
//! `<` cannot break the page. Relative links keep every link inside the listed URL whatever
//! spelling the client used for it: fsspec keeps only links that start with the URL *it*
//! requested, and HTTP clients normalise the percent-encoding of a path before sending it
//! (aiohttp sends `main%402026...%3A00` as `main@2026...:00`), so links built from the path
//! the server received would not match it.

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Characters left as they are in a path segment; everything else is percent-encoded.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'@')
    .remove(b':')
    .remove(b';')
    .remove(b'=')
    .remove(b',');

/// One path segment, percent-encoded for use in a URL path.
pub fn encode_segment(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

/// `text` with the HTML special characters escaped.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One link of a listing.
pub struct Entry {
    /// The absolute, percent-encoded URL path.
    pub href: String,
    /// The text shown (not yet escaped).
    pub text: String,
}

/// The listing page titled `title` with one link per entry.
pub fn render(title: &str, entries: &[Entry]) -> String {
    let title = escape_html(title);
    let mut page = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1>\n<ul>\n"
    );
    for entry in entries {
        page.push_str(&format!(
            "<li><a href=\"{}\">{}</a></li>\n",
            escape_html(&entry.href),
            escape_html(&entry.text)
        ));
    }
    page.push_str("</ul></body></html>\n");
    page
}

/// Characters left as they are in a relative link: as [`SEGMENT`] but with `:` encoded, so
/// that a name such as `a:b` is never read as a URL scheme.
const RELATIVE: &AsciiSet = &SEGMENT.add(b':');

/// The entries of a version listing of `prefix` (served at a URL ending with `/`): child
/// `prefixes` (ending with `/`) then `keys`, each linked by its percent-encoded name relative
/// to `prefix`.
pub fn version_entries(prefix: &str, keys: &[String], prefixes: &[String]) -> Vec<Entry> {
    prefixes
        .iter()
        .chain(keys)
        .map(|full| {
            let relative = full.strip_prefix(prefix).unwrap_or(full);
            let name = relative.strip_suffix('/').unwrap_or(relative);
            let slash = if relative.ends_with('/') { "/" } else { "" };
            Entry {
                href: format!("{}{slash}", utf8_percent_encode(name, RELATIVE)),
                text: relative.to_string(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_encoded_and_escaped() {
        let entries = version_entries(
            "g/",
            &["g/zarr.json".to_string(), "g/c:1".to_string()],
            &["g/a b\"<x>/".to_string()],
        );
        assert_eq!(entries[0].href, "a%20b%22%3Cx%3E/");
        assert_eq!(entries[0].text, "a b\"<x>/");
        assert_eq!(entries[1].href, "zarr.json");
        assert_eq!(entries[2].href, "c%3A1");
        assert_eq!(encode_segment("v1.0_x-y"), "v1.0_x-y");
        let page = render("t<", &entries);
        assert!(page.contains("<title>t&lt;</title>"));
        assert!(page.contains("a b&quot;&lt;x&gt;/</a>"));
        assert!(!page.contains("<x>"));
    }
}
