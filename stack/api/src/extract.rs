//! Reading requests: JSON bodies, query strings and path ids whose errors are the
//! API's JSON errors rather than axum's plain-text rejections.

use axum::extract::{FromRequest, FromRequestParts, OptionalFromRequest, Request};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// The largest request body (axum's default).
pub const BODY_LIMIT: usize = 2 << 20;

/// A JSON body (`Content-Type: application/json`).
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match <axum::Json<T> as FromRequest<S>>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(JsonBody(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::TooLarge(format!(
                    "the body is larger than the API takes ({} MiB): send less at a time",
                    BODY_LIMIT >> 20
                )))
            }
            Err(rejection) => Err(ApiError::BadRequest(format!(
                "{}: send the JSON body /v1/openapi.json describes",
                rejection.body_text()
            ))),
        }
    }
}

/// `Option<JsonBody<T>>`: `None` when the request has no `Content-Type` (no body).
impl<S: Send + Sync, T: DeserializeOwned> OptionalFromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Option<Self>, ApiError> {
        if !req.headers().contains_key(CONTENT_TYPE) {
            return Ok(None);
        }
        <JsonBody<T> as FromRequest<S>>::from_request(req, state)
            .await
            .map(Some)
    }
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

/// A numeric id from the path (fleets, releases).
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
}
