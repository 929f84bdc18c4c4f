//! Reading requests: JSON bodies, query strings and path ids whose errors are the
//! API's JSON errors rather than axum's plain-text rejections.
//!
//! A JSON body is read whole up to its route's limit, then checked for NUL
//! characters (`\u0000` in any string or key: PostgreSQL stores no NUL in
//! `text` or `jsonb`, so one would otherwise fail deep in a query), then parsed.

use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use http_body_util::LengthLimitError;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest request body (axum's default).
pub const BODY_LIMIT: usize = 2 << 20;

/// A JSON body (`Content-Type: application/json`) of at most `LIMIT` bytes.
pub struct JsonBody<T, const LIMIT: usize = BODY_LIMIT>(pub T);

impl<S: Send + Sync, T: DeserializeOwned, const LIMIT: usize> FromRequest<S>
    for JsonBody<T, LIMIT>
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|v| v.trim().to_ascii_lowercase())
            .is_some_and(|v| v == "application/json" || v.ends_with("+json"));
        if !json {
            return Err(ApiError::BadRequest(
                "the body must be JSON with `Content-Type: application/json`: send the JSON \
                 body /v1/openapi.json describes"
                    .into(),
            ));
        }
        let bytes = axum::body::to_bytes(req.into_body(), LIMIT)
            .await
            .map_err(|e| {
                if e.into_inner().downcast_ref::<LengthLimitError>().is_some() {
                    ApiError::TooLarge(format!(
                        "the body is larger than this route takes ({}): send less at a time",
                        turtle_units::ByteSize(LIMIT as u64)
                    ))
                } else {
                    ApiError::BadRequest("the body could not be read whole: send it again".into())
                }
            })?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// `Option<JsonBody<T>>`: `None` when the request has no `Content-Type` (no body).
impl<S: Send + Sync, T: DeserializeOwned, const LIMIT: usize> OptionalFromRequest<S>
    for JsonBody<T, LIMIT>
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        if !req.headers().contains_key(CONTENT_TYPE) {
            return Ok(None);
        }
        <JsonBody<T, LIMIT> as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
}

/// Parses a JSON body, refusing NUL characters first. Parse errors are about
/// the caller's JSON (where it breaks, which field is missing or of the wrong
/// type), so serde's words, which name only the body's own content, are kept.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if has_nul_escape(bytes) {
        return Err(ApiError::BadRequest(
            "the body holds a NUL character (\\u0000) in a string: remove it (the api stores \
             no NUL in text)"
                .into(),
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not what this route takes: {}: send the JSON body /v1/openapi.json \
             describes",
            shorten(&e.to_string(), 300)
        ))
    })
}

/// At most `max` bytes of `text` (serde quotes the offending value, which may
/// be the caller's whole string).
fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Whether a JSON text holds `\u0000` in a string. Strict JSON has no raw
/// control characters in strings (serde_json refuses them), so an escape is the
/// only way a NUL gets in. Escaped backslashes (`\\u0000` is the six
/// characters, not a NUL) are skipped as pairs.
pub fn has_nul_escape(bytes: &[u8]) -> bool {
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            if bytes.get(i + 1) == Some(&b'u') && bytes.get(i + 2..i + 6) == Some(b"0000") {
                return true;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

/// A query string.
pub struct QueryParams<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryParams<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(QueryParams(value)),
            Err(rejection) => Err(ApiError::BadRequest(format!(
                "{}: see /v1/openapi.json for the parameters",
                rejection.body_text()
            ))),
        }
    }
}

/// A numeric id from the path (fleets, releases, provisioning keys).
pub fn id(text: &str, what: &str) -> Result<i64, ApiError> {
    text.parse()
        .ok()
        .filter(|id| *id > 0)
        .ok_or_else(|| ApiError::NotFound(format!("no {what} {text:?}: {what} ids are numbers")))
}

/// A device UUID from the path, checked before it reaches the database.
pub fn uuid(text: &str) -> Result<String, ApiError> {
    let bytes = text.as_bytes();
    let well_formed = bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        });
    if well_formed {
        Ok(text.to_ascii_lowercase())
    } else {
        Err(ApiError::NotFound(format!(
            "no device {text:?}: device ids are UUIDs as GET /v1/devices lists them"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_uuids() {
        assert_eq!(id("12", "fleet").unwrap(), 12);
        assert!(id("0", "fleet").is_err());
        assert!(id("x", "fleet").is_err());
        let u = "6F9619FF-8B86-D011-B42D-00C04FC964FF";
        assert_eq!(uuid(u).unwrap(), u.to_ascii_lowercase());
        assert!(uuid("6f9619ff8b86d011b42d00c04fc964ff").is_err());
        assert!(uuid("6f9619ff-8b86-d011-b42d-00c04fc964fg").is_err());
    }

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        for (json, nul) in [
            (r#"{"a": "x\u0000y"}"#, true),
            (r#"{"a\u0000": 1}"#, true),
            (r#"["\\\u0000"]"#, true),
            (r#"{"a": "\\u0000"}"#, false),
            (r#"{"a": "\\\\u0000"}"#, false),
            (r#"{"a": "\u00001"}"#, true),
            (r#"{"a": "\u0001"}"#, false),
            (r#"{"a": "\u1000"}"#, false),
            (r#"{"a": "\""}"#, false),
            ("\"\\u000", false),
        ] {
            assert_eq!(has_nul_escape(json.as_bytes()), nul, "{json}");
            // The parsed JSON agrees: a NUL is in some string or key.
            fn holds_nul(v: &serde_json::Value) -> bool {
                match v {
                    serde_json::Value::String(s) => s.contains('\0'),
                    serde_json::Value::Array(items) => items.iter().any(holds_nul),
                    serde_json::Value::Object(map) => {
                        map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v))
                    }
                    _ => false,
                }
            }
            if let Ok(value) = serde_json::from_str::<serde_json::Value>(json) {
                assert_eq!(holds_nul(&value), nul, "{json}");
            }
        }
        let e = parse_json::<serde_json::Value>(br#"{"m": "\u0000"}"#).unwrap_err();
        assert!(e.to_string().contains("NUL"), "{e}");
        let long = format!("{{\"name\": {:?}}}", "é".repeat(1000));
        let e = parse_json::<Vec<u8>>(long.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(e.len() < 500, "{e}");
    }
}
