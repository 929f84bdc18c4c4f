//! The API's errors and how each becomes an HTTP answer: `{"error": "<message>"}`
//! with a status chosen per variant (no wildcard arm, so a new variant must pick one).
//!
//! What a caller reads is written here, for the caller: the cause in their
//! request and what to do. What the database or a library said is never sent:
//! a fault of the service ([`ApiError::Internal`]) and an unreachable database
//! ([`ApiError::DatabaseUnavailable`]) keep their detail for the log, and the
//! caller gets a fixed sentence with an incident id to find that line by.

use std::time::Duration;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use turtle_fleet_api::ErrorBody;

use crate::rate::Refusal;

/// What went wrong in a request; each message names the cause and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong credentials; `challenge` is the `WWW-Authenticate` value.
    #[error("{message}")]
    Unauthorized {
        message: String,
        challenge: &'static str,
    },
    /// The request itself is malformed or asks for something invalid.
    #[error("{0}")]
    BadRequest(String),
    /// The body is larger than the route takes.
    #[error("{0}")]
    TooLarge(String),
    /// What the path names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request collides with what exists (a duplicate name, a reused key, a
    /// fleet that still has devices).
    #[error("{0}")]
    Conflict(String),
    /// A rate limit: the caller may try again after `retry_after`.
    #[error("{message}")]
    TooManyRequests {
        message: String,
        retry_after: Duration,
    },
    /// A resource ran out (the VPN subnet is nearly full).
    #[error("{0}")]
    Exhausted(String),
    /// PostgreSQL does not answer: the request may succeed once it is back. The
    /// detail is logged, not sent.
    #[error("database unavailable: {0}")]
    DatabaseUnavailable(String),
    /// A fault of the service itself. The detail is logged, not sent.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The `WWW-Authenticate` challenge of bearer-token routes.
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"turtle\"";
/// The `WWW-Authenticate` challenge of the registry token endpoint (HTTP Basic).
pub const BASIC_CHALLENGE: &str = "Basic realm=\"turtle registry\"";

impl ApiError {
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            message: message.into(),
            challenge: BEARER_CHALLENGE,
        }
    }

    /// A rate limiter's refusal: 429 with the wait, or 413 for a cost that
    /// never fits. `what` names the limit and its flag, such as "the log
    /// budget of device <uuid> (--device-log-limit 1 MiB/1m)".
    pub fn limited(refusal: Refusal, what: &str, unit: &str) -> Self {
        match refusal {
            Refusal::Wait(wait) => ApiError::TooManyRequests {
                message: format!(
                    "past {what}: send again in {} s (Retry-After)",
                    Refusal::retry_after_secs(wait)
                ),
                retry_after: wait,
            },
            Refusal::TooBig { cost, burst } => ApiError::TooLarge(format!(
                "this request costs {cost} {unit}, more than {what} ever allows at once \
                 ({burst}): send less at a time"
            )),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Exhausted(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// What the caller reads, and the incident id logged with the detail (for
    /// the two variants whose detail stays in the log).
    fn public(&self) -> (String, Option<String>) {
        match self {
            ApiError::Internal(_) => {
                let incident = incident_id();
                (
                    format!(
                        "internal error (incident {incident}): the api logged the cause; try \
                         again, and if it persists, look for {incident} in the api's log"
                    ),
                    Some(incident),
                )
            }
            ApiError::DatabaseUnavailable(_) => {
                let incident = incident_id();
                (
                    format!(
                        "database unavailable (incident {incident}): try again shortly; if it \
                         persists, is the db service running? (the api's log has the cause)"
                    ),
                    Some(incident),
                )
            }
            ApiError::Unauthorized { message, .. }
            | ApiError::TooManyRequests { message, .. }
            | ApiError::BadRequest(message)
            | ApiError::TooLarge(message)
            | ApiError::NotFound(message)
            | ApiError::Conflict(message)
            | ApiError::Exhausted(message) => (message.clone(), None),
        }
    }
}

/// A short random id tying an answer to its log line.
fn incident_id() -> String {
    crate::secret::new_key()[..12].to_string()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (message, incident) = self.public();
        let incident = incident.unwrap_or_default();
        match &self {
            ApiError::Internal(_) => tracing::error!("incident {incident}: {self}"),
            ApiError::DatabaseUnavailable(_) => tracing::warn!("incident {incident}: {self}"),
            ApiError::Unauthorized { .. }
            | ApiError::BadRequest(_)
            | ApiError::TooLarge(_)
            | ApiError::NotFound(_)
            | ApiError::Conflict(_)
            | ApiError::TooManyRequests { .. }
            | ApiError::Exhausted(_) => tracing::debug!("{status}: {self}"),
        }
        let mut response = (status, Json(ErrorBody { error: message })).into_response();
        match &self {
            ApiError::Unauthorized { challenge, .. } => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(challenge),
                );
            }
            ApiError::TooManyRequests { retry_after, .. } => {
                response.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(Refusal::retry_after_secs(*retry_after)),
                );
            }
            ApiError::BadRequest(_)
            | ApiError::TooLarge(_)
            | ApiError::NotFound(_)
            | ApiError::Conflict(_)
            | ApiError::Exhausted(_)
            | ApiError::DatabaseUnavailable(_)
            | ApiError::Internal(_) => {}
        }
        response
    }
}

impl From<deadpool_postgres::PoolError> for ApiError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        ApiError::DatabaseUnavailable(crate::db::describe_pool_error(&e))
    }
}

impl From<tokio_postgres::Error> for ApiError {
    fn from(e: tokio_postgres::Error) -> Self {
        // A closed connection (the server went away mid-request) is the database
        // being unavailable; anything the server answered is our fault.
        if crate::db::is_unavailable(&e) {
            ApiError::DatabaseUnavailable(crate::db::describe(&e))
        } else {
            ApiError::Internal(crate::db::describe(&e))
        }
    }
}

/// `Result` of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    async fn body(e: ApiError) -> (StatusCode, axum::http::HeaderMap, String) {
        let response = e.into_response();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
            .await
            .unwrap();
        let body: ErrorBody = serde_json::from_slice(&bytes).unwrap();
        (status, headers, body.error)
    }

    /// The detail of an internal error or an unreachable database stays in the
    /// log; the caller gets an incident id.
    #[tokio::test]
    async fn internal_detail_is_not_sent() {
        let secret = "relation \"device_logs\" does not exist at character 13";
        let (status, _, text) = body(ApiError::Internal(secret.into())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!text.contains("relation"), "{text}");
        assert!(text.starts_with("internal error (incident "), "{text}");
        let (status, _, text) = body(ApiError::DatabaseUnavailable(
            "Connection refused (os error 111)".into(),
        ))
        .await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(!text.contains("os error"), "{text}");
        assert!(text.starts_with("database unavailable"), "{text}");
    }

    #[tokio::test]
    async fn rate_limits_answer_429_with_retry_after() {
        let e = ApiError::limited(
            Refusal::Wait(Duration::from_millis(2500)),
            "the state report rate of device u (--device-state-limit 12/1m)",
            "reports",
        );
        let (status, headers, text) = body(e).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(headers[header::RETRY_AFTER], "3");
        assert_eq!(
            text,
            "past the state report rate of device u (--device-state-limit 12/1m): send again \
             in 3 s (Retry-After)"
        );
        let e = ApiError::limited(Refusal::TooBig { cost: 5, burst: 4 }, "the budget", "bytes");
        assert_eq!(e.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert!(e.to_string().contains("costs 5 bytes"), "{e}");
    }
}
