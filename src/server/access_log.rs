//! The access log: one `tracing` event per request at target `floe::server::access`, with the
//! method, path (truncated), status, response bytes (`Content-Length`, or the body's exact size) and duration.

use std::time::Instant;

use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;

/// Longest path written to the log; longer (hostile) paths are cut.
const MAX_LOGGED_PATH: usize = 512;

/// Middleware logging each request after its response is produced.
pub async fn log_request(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let mut path = request.uri().path().to_string();
    if path.len() > MAX_LOGGED_PATH {
        let mut cut = MAX_LOGGED_PATH;
        while !path.is_char_boundary(cut) {
            cut -= 1;
        }
        path.truncate(cut);
        path.push_str("...");
    }
    let response = next.run(request).await;
    let bytes = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .or_else(|| response.body().size_hint().exact())
        .unwrap_or(0);
    tracing::info!(
        target: "floe::server::access",
        method = %method,
        path = %path,
        status = response.status().as_u16(),
        bytes,
        duration_ms = %format_args!("{:.3}", started.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
    response
}
