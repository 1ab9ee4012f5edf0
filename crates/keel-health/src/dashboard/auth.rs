//! Bearer-token check for the dashboard's routes: `Authorization: Bearer …` or `?token=…`
//! (the query form is for the browser's `EventSource`, which cannot set headers).

use axum::{
    extract::{Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use keel_core::Secret;

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `%XX` and `+` decoding of one query value; `None` for a malformed escape.
fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

fn presented(request: &Request) -> Option<Vec<u8>> {
    if let Some(value) = request.headers().get(header::AUTHORIZATION)
        && let Some(token) = value.to_str().ok()?.strip_prefix("Bearer ")
    {
        return Some(token.trim().as_bytes().to_vec());
    }
    request
        .uri()
        .query()?
        .split('&')
        .find_map(|pair| pair.strip_prefix("token="))
        .and_then(percent_decode)
}

/// Lets the request through only with the right token.
pub(crate) async fn require_token(
    State(token): State<Secret<String>>,
    request: Request,
    next: Next,
) -> Response {
    match presented(&request) {
        Some(given) if same(&given, token.expose().as_bytes()) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "a bearer token is required",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparison_and_decoding() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd") && !same(b"abc", b"ab"));
        assert_eq!(percent_decode("a%2Fb+c").unwrap(), b"a/b c");
        assert_eq!(percent_decode("%zz"), None);
        assert_eq!(percent_decode("%4"), None);
    }
}
