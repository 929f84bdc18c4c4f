//! Writing answers: times in RFC 3339, and JSON with an ETag that answers
//! `If-None-Match` with 304. The answers themselves are `turtle_fleet_api`'s
//! types.

use axum::Json;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A time as RFC 3339 in UTC (`2025-06-01T12:00:00.123456Z`).
pub fn rfc3339(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&Rfc3339)
        .expect("a time from PostgreSQL formats as RFC 3339")
}

/// An optional time as RFC 3339 (null when `None`).
pub fn rfc3339_opt(t: Option<OffsetDateTime>) -> Option<String> {
    t.map(rfc3339)
}

/// 200 with `body` and a strong ETag (SHA-256 of the JSON), or 304 when the
/// request's `If-None-Match` names that ETag (or is `*`).
pub fn json_with_etag(request: &HeaderMap, body: &impl Serialize) -> Response {
    let bytes = serde_json::to_vec(body).expect("the api's answers serialize");
    let etag = format!("\"{}\"", hex::encode(Sha256::digest(&bytes)));
    let etag_value = HeaderValue::from_str(&etag).expect("hex is a header value");
    let matches = request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag);
    if matches {
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag_value)]).into_response();
    }
    (
        StatusCode::OK,
        [
            (header::ETAG, etag_value),
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        bytes,
    )
        .into_response()
}

/// 201 with a JSON body.
pub fn created(body: impl Serialize) -> Response {
    (StatusCode::CREATED, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_answer_if_none_match() {
        let body = serde_json::json!({"a": 1});
        let first = json_with_etag(&HeaderMap::new(), &body);
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].clone();
        for value in [
            etag.to_str().unwrap().to_string(),
            format!("\"x\", W/{}", etag.to_str().unwrap()),
            "*".into(),
        ] {
            let mut h = HeaderMap::new();
            h.insert(header::IF_NONE_MATCH, value.parse().unwrap());
            assert_eq!(
                json_with_etag(&h, &body).status(),
                StatusCode::NOT_MODIFIED,
                "{value}"
            );
        }
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, "\"other\"".parse().unwrap());
        assert_eq!(json_with_etag(&h, &body).status(), StatusCode::OK);
    }
}
