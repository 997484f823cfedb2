//! Kerchunk JSON reference files.
//!
//! Version 0 is a flat object `{key: value}`. Version 1 is
//! `{"version": 1, "templates": {name: text}, "gen": [...], "refs": {key: value}}`: URLs of
//! `refs` values may use templates (`{{u}}`), and each `gen` entry expands to one reference per
//! combination of its `dimensions` (`{"start": 0, "stop": n, "step": 1}` ranges, `start` and
//! `step` optional, or explicit lists of values), with `key`, `url`, `offset` and `length`
//! rendered for each (`offset` and `length` both or neither: neither means the whole file).
//! Generated keys are added after `refs` and replace equal keys. The generators of one file
//! may produce at most [`MAX_GENERATED_REFS`] references in total; the count is computed
//! before anything is allocated.
//!
//! A value is inline text (its UTF-8 bytes), `base64:` inline bytes, a JSON object (a
//! metadata document, stored as its JSON text), `[url]` (a whole file) or
//! `[url, offset, length]`.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use serde_json::{Map, Value};

use super::template::{render, Scope, TemplateValue};
use super::KerchunkRef;
use crate::zarr::base64;

type Refs = BTreeMap<String, KerchunkRef>;

/// Most references the `gen` entries of one reference file may produce together (each range
/// and product of dimensions is counted, with checked arithmetic, before it is expanded).
pub(crate) const MAX_GENERATED_REFS: u64 = 100_000_000;

/// Parses a reference file of version 0 or 1 into its expanded references.
pub(crate) fn parse(json: &[u8]) -> Result<Refs, String> {
    let value: Value = serde_json::from_slice(json).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(document) = value else {
        return Err("the references must be a JSON object".into());
    };
    let mut urls = UrlInterner::default();
    match document.get("version") {
        None => {
            let no_templates = BTreeMap::new();
            let mut refs = Refs::new();
            for (key, value) in &document {
                refs.insert(
                    key.clone(),
                    reference(key, value, &no_templates, &mut urls)?,
                );
            }
            Ok(refs)
        }
        Some(v) if v.as_u64() == Some(1) => parse_v1(&document, &mut urls),
        Some(other) => Err(format!(
            "unknown reference version {other} (versions 0 and 1 are supported)"
        )),
    }
}

fn parse_v1(document: &Map<String, Value>, urls: &mut UrlInterner) -> Result<Refs, String> {
    let templates = match document.get("templates") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(format!("template `{k}` must be a string")),
            })
            .collect::<Result<_, String>>()?,
        Some(_) => return Err("`templates` must be an object".into()),
    };
    let mut refs = Refs::new();
    match document.get("refs") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (key, value) in map {
                refs.insert(key.clone(), reference(key, value, &templates, urls)?);
            }
        }
        Some(_) => return Err("`refs` must be an object".into()),
    }
    match document.get("gen") {
        None | Some(Value::Null) => {}
        Some(Value::Array(gens)) => {
            let mut budget = MAX_GENERATED_REFS;
            for (i, generator) in gens.iter().enumerate() {
                expand(generator, &templates, urls, &mut budget, &mut refs)
                    .map_err(|e| format!("`gen` entry {i}: {e}"))?;
            }
        }
        Some(_) => return Err("`gen` must be a list".into()),
    }
    Ok(refs)
}

/// URLs shared between the references of one file.
#[derive(Default)]
struct UrlInterner(BTreeMap<String, Arc<str>>);

impl UrlInterner {
    fn get(&mut self, url: String) -> Arc<str> {
        self.0
            .entry(url)
            .or_insert_with_key(|u| Arc::from(u.as_str()))
            .clone()
    }
}

fn reference(
    key: &str,
    value: &Value,
    templates: &BTreeMap<String, String>,
    urls: &mut UrlInterner,
) -> Result<KerchunkRef, String> {
    let bad = |reason: &str| format!("key `{key}`: {reason}");
    match value {
        Value::String(text) => inline_text(text).map_err(|e| bad(&e)),
        Value::Object(_) => Ok(KerchunkRef::Inline(Bytes::from(value.to_string()))),
        Value::Array(parts) => {
            let url = parts
                .first()
                .and_then(Value::as_str)
                .ok_or_else(|| bad("a list reference must start with a URL string"))?;
            let url = if url.contains("{{") {
                let variables = BTreeMap::new();
                render(
                    url,
                    &Scope {
                        templates,
                        variables: &variables,
                    },
                )
                .map_err(|e| bad(&e))?
            } else {
                url.to_string()
            };
            let url = urls.get(url);
            match parts.as_slice() {
                [_] => Ok(KerchunkRef::File { url }),
                [_, offset, length] => {
                    let (Some(offset), Some(length)) = (offset.as_u64(), length.as_u64()) else {
                        return Err(bad("offset and length must be non-negative integers"));
                    };
                    Ok(KerchunkRef::Range {
                        url,
                        offset,
                        length,
                    })
                }
                _ => Err(bad(
                    "a list reference must be [url] or [url, offset, length]",
                )),
            }
        }
        _ => Err(bad(
            "a reference must be a string, an object, [url] or [url, offset, length]",
        )),
    }
}

/// Inline data: `base64:` bytes, or the UTF-8 bytes of the text.
pub(crate) fn inline_text(text: &str) -> Result<KerchunkRef, String> {
    match text.strip_prefix("base64:") {
        Some(encoded) => Ok(KerchunkRef::Inline(Bytes::from(base64::decode(encoded)?))),
        None => Ok(KerchunkRef::Inline(Bytes::from(text.as_bytes().to_vec()))),
    }
}

/// Number of values of the range `start..stop` by `step` (`step` not 0), as Python's `range`.
fn range_len(start: i64, stop: i64, step: i64) -> u64 {
    let (start, stop, step) = (i128::from(start), i128::from(stop), i128::from(step));
    let span = if step > 0 { stop - start } else { start - stop };
    if span <= 0 {
        return 0;
    }
    let count = (span - 1) / step.abs() + 1;
    // At most 2^64 - 1 as |span| < 2^64 and |step| >= 1.
    u64::try_from(count).unwrap_or(u64::MAX)
}

/// One generator dimension, validated but not expanded yet.
enum Dimension<'v> {
    /// Explicit values.
    List(&'v [Value]),
    /// `start..stop` by `step` (not 0).
    Range { start: i64, stop: i64, step: i64 },
}

impl<'v> Dimension<'v> {
    fn parse(name: &str, spec: &'v Value) -> Result<Self, String> {
        match spec {
            Value::Array(values) => Ok(Dimension::List(values)),
            Value::Object(range) => {
                let field = |field: &str, default: Option<i64>| match range.get(field) {
                    None => default.ok_or_else(|| format!("dimension `{name}` needs `{field}`")),
                    Some(v) => v
                        .as_i64()
                        .ok_or_else(|| format!("dimension `{name}`: `{field}` must be an integer")),
                };
                let (start, stop, step) = (
                    field("start", Some(0))?,
                    field("stop", None)?,
                    field("step", Some(1))?,
                );
                if step == 0 {
                    return Err(format!("dimension `{name}`: `step` must not be 0"));
                }
                Ok(Dimension::Range { start, stop, step })
            }
            _ => Err(format!(
                "dimension `{name}` must be {{\"start\", \"stop\", \"step\"}} or a list"
            )),
        }
    }

    /// Number of values, without expanding them.
    fn len(&self) -> u64 {
        match *self {
            Dimension::List(values) => values.len() as u64,
            Dimension::Range { start, stop, step } => range_len(start, stop, step),
        }
    }

    /// The values; call only once [`Dimension::len`] is known to be reasonable.
    fn values(&self, name: &str) -> Result<Vec<TemplateValue>, String> {
        match *self {
            Dimension::List(values) => values
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(TemplateValue::Str(s.clone())),
                    v => v.as_i64().map(TemplateValue::Int).ok_or_else(|| {
                        format!("dimension `{name}`: values must be integers or strings")
                    }),
                })
                .collect(),
            Dimension::Range { start, stop, step } => {
                let mut values = Vec::with_capacity(usize::try_from(self.len()).unwrap_or(0));
                let mut i = start;
                while (step > 0 && i < stop) || (step < 0 && i > stop) {
                    values.push(TemplateValue::Int(i));
                    i = match i.checked_add(step) {
                        Some(next) => next,
                        None => break,
                    };
                }
                Ok(values)
            }
        }
    }
}

/// Expands one `gen` entry into `refs`, taking its number of references from `budget` (the
/// references the file's generators may still produce) or failing when it exceeds it.
fn expand(
    generator: &Value,
    templates: &BTreeMap<String, String>,
    urls: &mut UrlInterner,
    budget: &mut u64,
    refs: &mut Refs,
) -> Result<(), String> {
    let text = |field: &str| generator.get(field).and_then(Value::as_str);
    let key = text("key").ok_or("`key` must be a string")?;
    let url = text("url").ok_or("`url` must be a string")?;
    let range = match (generator.get("offset"), generator.get("length")) {
        (None, None) => None,
        (Some(offset), Some(length)) => Some((template_text(offset)?, template_text(length)?)),
        _ => return Err("`offset` and `length` must be given together".into()),
    };
    let dimensions = generator
        .get("dimensions")
        .and_then(Value::as_object)
        .ok_or("`dimensions` must be an object")?;
    let parsed: Vec<(&String, Dimension<'_>)> = dimensions
        .iter()
        .map(|(name, spec)| Ok((name, Dimension::parse(name, spec)?)))
        .collect::<Result<_, String>>()?;
    // Count before expanding anything: a hostile range or product must not allocate.
    let total = parsed.iter().try_fold(1u64, |total, (_, dimension)| {
        total.checked_mul(dimension.len())
    });
    match total {
        Some(0) => return Ok(()),
        Some(total) if total <= *budget => *budget -= total,
        _ => {
            let counts: Vec<String> = parsed
                .iter()
                .map(|(name, dimension)| format!("{name}: {}", dimension.len()))
                .collect();
            return Err(format!(
                "the dimensions ({}) would generate more than {MAX_GENERATED_REFS} references \
                 (the limit for all `gen` entries of a file together)",
                counts.join(", ")
            ));
        }
    }
    let axes: Vec<(String, Vec<TemplateValue>)> = parsed
        .iter()
        .map(|(name, dimension)| Ok(((*name).clone(), dimension.values(name)?)))
        .collect::<Result<_, String>>()?;
    // Odometer over the product of the dimensions, the last one fastest.
    let mut index = vec![0usize; axes.len()];
    loop {
        let variables: BTreeMap<String, TemplateValue> = axes
            .iter()
            .zip(&index)
            .map(|((name, values), &i)| (name.clone(), values[i].clone()))
            .collect();
        let scope = Scope {
            templates,
            variables: &variables,
        };
        let rendered_key = render(key, &scope)?;
        let rendered_url = urls.get(render(url, &scope)?);
        let reference = match &range {
            None => KerchunkRef::File { url: rendered_url },
            Some((offset, length)) => KerchunkRef::Range {
                url: rendered_url,
                offset: integer(&render(offset, &scope)?, "offset")?,
                length: integer(&render(length, &scope)?, "length")?,
            },
        };
        refs.insert(rendered_key, reference);
        let mut axis = axes.len();
        loop {
            if axis == 0 {
                return Ok(());
            }
            axis -= 1;
            index[axis] += 1;
            if index[axis] < axes[axis].1.len() {
                break;
            }
            index[axis] = 0;
        }
    }
}

/// `offset`/`length` fields are template strings, or plain integers.
fn template_text(value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        v if v.is_u64() => Ok(v.to_string()),
        _ => Err("`offset` and `length` must be strings or non-negative integers".into()),
    }
}

fn integer(text: &str, what: &str) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|_| format!("{what} `{text}` is not a non-negative integer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(url: &str, offset: u64, length: u64) -> KerchunkRef {
        KerchunkRef::Range {
            url: Arc::from(url),
            offset,
            length,
        }
    }

    #[test]
    fn version_0_values() {
        let refs = parse(
            br#"{".zgroup": "{\"zarr_format\": 2}", "a/.zattrs": {"x": 1},
                 "a/0": ["s3://b/f.nc", 10, 20], "a/1": ["/data/whole.bin"],
                 "a/2": "base64:AAEC", "a/3": "text"}"#,
        )
        .unwrap();
        assert_eq!(
            refs[".zgroup"],
            KerchunkRef::Inline(Bytes::from_static(b"{\"zarr_format\": 2}"))
        );
        assert_eq!(
            refs["a/.zattrs"],
            KerchunkRef::Inline(Bytes::from_static(b"{\"x\":1}"))
        );
        assert_eq!(refs["a/0"], range("s3://b/f.nc", 10, 20));
        assert_eq!(
            refs["a/1"],
            KerchunkRef::File {
                url: Arc::from("/data/whole.bin")
            }
        );
        assert_eq!(
            refs["a/2"],
            KerchunkRef::Inline(Bytes::from_static(&[0, 1, 2]))
        );
        assert_eq!(
            refs["a/3"],
            KerchunkRef::Inline(Bytes::from_static(b"text"))
        );
    }

    #[test]
    fn version_1_templates_and_generators() {
        let refs = parse(
            br#"{"version": 1,
                 "templates": {"u": "s3://bucket/data", "f": "s3://bucket/{{c}}.nc"},
                 "gen": [
                   {"key": "g/{{i}}.{{j}}", "url": "{{u}}/f{{i}}.nc",
                    "offset": "{{(j + 1) * 1000}}", "length": "100",
                    "dimensions": {"i": {"stop": 2}, "j": {"start": 1, "stop": 6, "step": 2}}},
                   {"key": "w/{{n}}", "url": "{{f(c=n)}}", "dimensions": {"n": ["x", "y"]}}
                 ],
                 "refs": {"a/0": ["{{u}}/a.nc", 5, 6], "b/0": ["{{f(c='b')}}"],
                          "g/0.1": "replaced by gen", "c/0": "base64:AAE="}}"#,
        )
        .unwrap();
        assert_eq!(refs["a/0"], range("s3://bucket/data/a.nc", 5, 6));
        assert_eq!(
            refs["b/0"],
            KerchunkRef::File {
                url: Arc::from("s3://bucket/b.nc")
            }
        );
        assert_eq!(
            refs["c/0"],
            KerchunkRef::Inline(Bytes::from_static(&[0, 1]))
        );
        for i in 0..2 {
            for j in [1, 3, 5] {
                assert_eq!(
                    refs[&format!("g/{i}.{j}")],
                    range(&format!("s3://bucket/data/f{i}.nc"), (j + 1) * 1000, 100)
                );
            }
        }
        assert!(!refs.contains_key("g/0.0"));
        assert_eq!(
            refs["w/y"],
            KerchunkRef::File {
                url: Arc::from("s3://bucket/y.nc")
            }
        );
        assert_eq!(refs.len(), 3 + 6 + 2);
        // Generated URLs of one file share one allocation.
        let (KerchunkRef::Range { url: a, .. }, KerchunkRef::Range { url: b, .. }) =
            (&refs["g/0.1"], &refs["g/0.3"])
        else {
            panic!()
        };
        assert!(Arc::ptr_eq(a, b));
    }

    #[test]
    fn malformed_references_are_refused() {
        for (bad, reason) in [
            (&b"[1]"[..], "JSON object"),
            (br#"{"version": 2}"#, "unknown reference version"),
            (br#"{"a/0": 3}"#, "a reference must be"),
            (br#"{"a/0": ["u", 1]}"#, "[url] or [url, offset, length]"),
            (br#"{"a/0": ["u", -1, 2]}"#, "non-negative"),
            (br#"{"a/0": "base64:!!"}"#, "invalid base64"),
            (
                br#"{"version": 1, "refs": {"a/0": ["{{nope}}", 1, 2]}}"#,
                "undefined name",
            ),
            (
                br#"{"version": 1, "gen": [{"key": "k{{i}}", "url": "u", "offset": "1", "dimensions": {"i": {"stop": 2}}}]}"#,
                "together",
            ),
            (
                br#"{"version": 1, "gen": [{"key": "k{{i}}", "url": "u", "offset": "{{i/2}}", "length": "1", "dimensions": {"i": {"stop": 2}}}]}"#,
                "use `//`",
            ),
            (
                br#"{"version": 1, "gen": [{"key": "k", "url": "u", "dimensions": {"i": {"start": 1}}}]}"#,
                "needs `stop`",
            ),
            (
                br#"{"version": 1, "gen": [{"key": "k{{i}}", "url": "u", "dimensions": {"i": {"stop": 9223372036854775807}}}]}"#,
                "more than 100000000 references",
            ),
            (
                br#"{"version": 1, "gen": [{"key": "k{{i}}", "url": "u", "dimensions": {"i": {"start": -9223372036854775808, "stop": 9223372036854775807, "step": 1}}}]}"#,
                "i: 18446744073709551615",
            ),
            (
                br#"{"version": 1, "gen": [{"key": "k{{i}}.{{j}}", "url": "u", "dimensions": {"i": {"stop": 100000}, "j": {"stop": 100000}}}]}"#,
                "(i: 100000, j: 100000) would generate more than",
            ),
            (
                // Overflows u64 when multiplied.
                br#"{"version": 1, "gen": [{"key": "k{{i}}.{{j}}", "url": "u", "dimensions": {"i": {"stop": 9223372036854775807}, "j": {"stop": 9223372036854775807}, "k": []}}]}"#,
                "would generate more than",
            ),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains(reason), "{err}");
        }
    }

    #[test]
    fn range_lengths_match_python_ranges() {
        assert_eq!(range_len(0, 10, 3), 4);
        assert_eq!(range_len(1, 6, 2), 3);
        assert_eq!(range_len(5, 5, 1), 0);
        assert_eq!(range_len(10, 0, 1), 0);
        assert_eq!(range_len(10, 0, -3), 4);
        assert_eq!(range_len(100, -99_999_900, -2), 50_000_000);
        assert_eq!(range_len(i64::MIN, i64::MAX, 1), u64::MAX);
        assert_eq!(range_len(i64::MAX, i64::MIN, -1), u64::MAX);
    }

    #[test]
    fn the_generated_reference_budget_is_shared_by_all_entries() {
        let templates = BTreeMap::new();
        let mut urls = UrlInterner::default();
        let mut refs = Refs::new();
        let mut budget = 10;
        let generator = |stop: u32| -> Value {
            serde_json::from_str(&format!(
                r#"{{"key": "k{{{{i}}}}", "url": "u", "dimensions": {{"i": {{"stop": {stop}}}}}}}"#
            ))
            .unwrap()
        };
        expand(&generator(6), &templates, &mut urls, &mut budget, &mut refs).unwrap();
        assert_eq!((refs.len(), budget), (6, 4));
        expand(&generator(4), &templates, &mut urls, &mut budget, &mut refs).unwrap();
        assert_eq!(budget, 0);
        let err = expand(&generator(1), &templates, &mut urls, &mut budget, &mut refs).unwrap_err();
        assert!(err.contains("(i: 1) would generate more than"), "{err}");
        assert_eq!(refs.len(), 6);
    }
}
