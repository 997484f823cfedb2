//! Optional bearer-token authentication: with a token configured, every request must carry
//! `Authorization: Bearer <token>` or gets 401.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The expected token, kept as its blake3 digest so the comparison takes the same time
/// whatever the presented token is (digest equality is constant-time).
#[derive(Clone, Debug)]
pub struct TokenCheck {
    digest: blake3::Hash,
}

impl TokenCheck {
    /// A check accepting exactly `token`.
    pub fn new(token: &str) -> Self {
        TokenCheck {
            digest: blake3::hash(token.as_bytes()),
        }
    }

    /// True when the `Authorization` header value presents the token.
    pub fn accepts(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(value) = authorization.and_then(|v| v.to_str().ok()) else {
            return false;
        };
        let Some((scheme, token)) = value.trim().split_once(' ') else {
            return false;
        };
        scheme.eq_ignore_ascii_case("bearer")
            && blake3::hash(token.trim().as_bytes()) == self.digest
    }
}

/// Middleware refusing requests that do not present the token.
pub async fn require_token(
    State(check): State<Arc<TokenCheck>>,
    request: Request,
    next: Next,
) -> Response {
    if check.accepts(request.headers().get(header::AUTHORIZATION)) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        [
            (header::WWW_AUTHENTICATE, "Bearer"),
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
        ],
        "a valid `Authorization: Bearer <token>` header is required\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_passes() {
        let check = TokenCheck::new("s3cret");
        let value = |s: &str| HeaderValue::from_str(s).unwrap();
        assert!(check.accepts(Some(&value("Bearer s3cret"))));
        assert!(check.accepts(Some(&value("bearer s3cret"))));
        assert!(!check.accepts(Some(&value("Bearer s3cre"))));
        assert!(!check.accepts(Some(&value("Basic s3cret"))));
        assert!(!check.accepts(Some(&value("s3cret"))));
        assert!(!check.accepts(None));
    }
}
