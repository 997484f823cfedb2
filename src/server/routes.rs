//! The request handler: from method, raw path and headers to a response.
//!
//! Only `GET` and `HEAD` are served (others get 405). The raw path is parsed by
//! [`super::request_path`], the version segment by [`super::version_segment`]; the view is
//! chosen by [`super::view::view_for`]; bytes come from a [`ByteSource`].

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use crate::id::SnapshotId;

use super::caching::{add_cache_headers, etag, not_modified, REVALIDATE};
use super::listing_html::{encode_segment, render, version_entries, Entry};
use super::range::{content_range, parse_range, unsatisfied_range};
use super::reply::Rejection;
use super::request_path::{parse_path, BadPath, Target};
use super::sessions::Versions;
use super::version_segment::parse_segment;
use super::view::{view_for, ByteSource, SizedValue, View};

const JSON: &str = "application/json";
const OCTETS: &str = "application/octet-stream";
const HTML: &str = "text/html; charset=utf-8";

/// Answers one request (the router's only handler).
pub async fn handle(
    State(versions): State<Arc<Versions>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if method != Method::GET && method != Method::HEAD {
        let mut response =
            Rejection::new(StatusCode::METHOD_NOT_ALLOWED, "this server is read-only")
                .into_response();
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let head = method == Method::HEAD;
    let path = uri.path();
    let answer = match parse_path(path) {
        Err(BadPath(reason)) => Err(Rejection::bad_request(reason)),
        Ok(Target::Refs) => refs_listing(&versions, head).await,
        Ok(Target::VersionRoot { segment }) => open(&versions, &segment, &headers)
            .await
            .map(|_| redirect_to_listing(path)),
        Ok(Target::Listing { segment, prefix }) => {
            listing(&versions, &segment, &prefix, &headers, head).await
        }
        Ok(Target::Key { segment, key }) => {
            value(&versions, &segment, &key, path, &headers, head).await
        }
    };
    answer.unwrap_or_else(IntoResponse::into_response)
}

/// A resolved version segment.
struct Opened {
    snapshot: SnapshotId,
    immutable: bool,
    view: View,
    source: ByteSource,
}

async fn open(
    versions: &Versions,
    segment: &str,
    headers: &HeaderMap,
) -> Result<Opened, Rejection> {
    let parsed = parse_segment(segment).map_err(|e| Rejection::bad_request(e.to_string()))?;
    let view = view_for(&parsed.params, headers).map_err(Rejection::bad_request)?;
    let (snapshot, source) = versions
        .open_view(&parsed.spec, &view)
        .await
        .map_err(Rejection::from_error)?;
    Ok(Opened {
        snapshot,
        immutable: parsed.immutable,
        source,
        view,
    })
}

fn content_type(key: &str) -> &'static str {
    if key == "zarr.json" || key.ends_with("/zarr.json") {
        JSON
    } else {
        OCTETS
    }
}

/// A response with `status`, `headers` and `body`, with an explicit `Content-Length` (the
/// body's, or `length` for HEAD answers that carry no body).
fn respond(
    status: StatusCode,
    mut headers: HeaderMap,
    body: Option<Bytes>,
    length: u64,
) -> Response {
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    let mut response = Response::new(body.map_or_else(Body::empty, Body::from));
    *response.status_mut() = status;
    response.headers_mut().extend(headers);
    response
}

fn not_modified_response(headers: HeaderMap) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::NOT_MODIFIED;
    response.headers_mut().extend(headers);
    response
}

/// True when `key` is not a key but the path of a group or array (its `zarr.json` exists):
/// fsspec lists `<url>/<group>` without the trailing slash, so such paths redirect to their
/// listing like `/<version>` does. Other absent keys (chunk directories included) stay 404,
/// which costs one metadata lookup and never a chunk listing.
async fn is_node(source: &ByteSource, key: &str) -> Result<bool, Rejection> {
    Ok(source
        .size(&format!("{key}/zarr.json"))
        .await
        .map_err(Rejection::from_error)?
        .is_some())
}

async fn value(
    versions: &Versions,
    segment: &str,
    key: &str,
    path: &str,
    request: &HeaderMap,
    head: bool,
) -> Result<Response, Rejection> {
    let opened = open(versions, segment, request).await?;
    let missing = || Rejection::not_found(format!("no value at key `{key}` in `{segment}`"));
    let Some(SizedValue { size, value: whole }) = opened
        .source
        .sized(key)
        .await
        .map_err(Rejection::from_error)?
    else {
        return if is_node(&opened.source, key).await? {
            Ok(redirect_to_listing(path))
        } else {
            Err(missing())
        };
    };
    let tag = etag(&opened.snapshot, &opened.view.tag(), key);
    let mut headers = HeaderMap::new();
    add_cache_headers(&mut headers, &tag, opened.immutable);
    headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if not_modified(request, &tag) {
        return Ok(not_modified_response(headers));
    }
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(key)),
    );
    let range = request
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_range)
        .filter(|_| if_range_holds(request, &tag));
    let Some(range) = range else {
        let body = match (head, whole) {
            (true, _) => None,
            (false, Some(whole)) => Some(whole),
            (false, None) => Some(
                opened
                    .source
                    .get(key)
                    .await
                    .map_err(Rejection::from_error)?
                    .ok_or_else(missing)?,
            ),
        };
        let length = body.as_ref().map_or(size, |b| b.len() as u64);
        return Ok(respond(StatusCode::OK, headers, body, length));
    };
    let Some(wanted) = range.resolve(size) else {
        headers.remove(header::CONTENT_TYPE);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Ok(value) = HeaderValue::from_str(&unsatisfied_range(size)) {
            headers.insert(header::CONTENT_RANGE, value);
        }
        let reason = Bytes::from(format!("the range is outside `{key}` ({size} bytes)\n"));
        let length = reason.len() as u64;
        let body = (!head).then_some(reason);
        return Ok(respond(
            StatusCode::RANGE_NOT_SATISFIABLE,
            headers,
            body,
            length,
        ));
    };
    if let Ok(value) = HeaderValue::from_str(&content_range(&wanted, size)) {
        headers.insert(header::CONTENT_RANGE, value);
    }
    let length = wanted.end - wanted.start;
    let body = match (head, whole) {
        (true, _) => None,
        (false, Some(whole)) => Some(whole.slice(wanted.start as usize..wanted.end as usize)),
        (false, None) => Some(
            opened
                .source
                .get_range(key, wanted)
                .await
                .map_err(Rejection::from_error)?
                .ok_or_else(missing)?,
        ),
    };
    Ok(respond(StatusCode::PARTIAL_CONTENT, headers, body, length))
}

/// False when the request has an `If-Range` that is not exactly the current ETag (a date
/// never matches: no `Last-Modified` is sent), in which case `Range` is ignored and the whole
/// value sent, so a client resuming a download of a value that changed gets the new value
/// whole rather than a mix.
fn if_range_holds(request: &HeaderMap, etag: &str) -> bool {
    request
        .get(header::IF_RANGE)
        .is_none_or(|v| v.to_str().is_ok_and(|v| v.trim() == etag))
}

fn html(headers: HeaderMap, page: String, head: bool) -> Response {
    let mut headers = headers;
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(HTML));
    let length = page.len() as u64;
    let body = (!head).then(|| Bytes::from(page));
    respond(StatusCode::OK, headers, body, length)
}

async fn listing(
    versions: &Versions,
    segment: &str,
    prefix: &str,
    request: &HeaderMap,
    head: bool,
) -> Result<Response, Rejection> {
    let opened = open(versions, segment, request).await?;
    let (keys, prefixes) = opened
        .source
        .list_dir(prefix)
        .await
        .map_err(Rejection::from_error)?;
    if keys.is_empty() && prefixes.is_empty() && !prefix.is_empty() {
        return Err(Rejection::not_found(format!(
            "nothing under `{prefix}` in `{segment}`"
        )));
    }
    let tag = etag(
        &opened.snapshot,
        &opened.view.tag(),
        &format!("\0listing\0{prefix}"),
    );
    let mut headers = HeaderMap::new();
    add_cache_headers(&mut headers, &tag, opened.immutable);
    if not_modified(request, &tag) {
        return Ok(not_modified_response(headers));
    }
    let title = format!("{segment}/{prefix}");
    let page = render(&title, &version_entries(prefix, &keys, &prefixes));
    Ok(html(headers, page, head))
}

async fn refs_listing(versions: &Versions, head: bool) -> Result<Response, Rejection> {
    let repo = versions.repository();
    let branches = repo.list_branches().await.map_err(Rejection::from_error)?;
    let tags = repo.list_tags().await.map_err(Rejection::from_error)?;
    let entries: Vec<Entry> = branches
        .iter()
        .map(|b| (&b.name, "branch"))
        .chain(tags.iter().map(|t| (&t.name, "tag")))
        .map(|(name, kind)| Entry {
            href: format!("/{}/", encode_segment(name)),
            text: format!("{name}/ ({kind})"),
        })
        .collect();
    let mut headers = HeaderMap::new();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE));
    Ok(html(headers, render("branches and tags", &entries), head))
}

fn redirect_to_listing(path: &str) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(location) = HeaderValue::from_str(&format!("{path}/")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    response
}
