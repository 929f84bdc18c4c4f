//! The API's errors and how each becomes an HTTP answer: `{"error": "<message>"}`
//! with a status chosen per variant (no wildcard arm, so a new variant must pick one).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use turtle_fleet_api::ErrorBody;

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
    /// The body is larger than the API takes.
    #[error("{0}")]
    TooLarge(String),
    /// What the path names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request collides with what exists (a duplicate name, a reused key).
    #[error("{0}")]
    Conflict(String),
    /// A resource ran out (the VPN subnet is full).
    #[error("{0}")]
    Exhausted(String),
    /// PostgreSQL does not answer: the request may succeed once it is back.
    #[error("database unavailable: {0}: is the db service running?")]
    DatabaseUnavailable(String),
    /// A fault of the service itself; the message is logged, the caller sees it too.
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

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Exhausted(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::DatabaseUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        match &self {
            ApiError::Internal(_) => tracing::error!("{self}"),
            ApiError::DatabaseUnavailable(_) => tracing::warn!("{self}"),
            ApiError::Unauthorized { .. }
            | ApiError::BadRequest(_)
            | ApiError::TooLarge(_)
            | ApiError::NotFound(_)
            | ApiError::Conflict(_)
            | ApiError::Exhausted(_) => tracing::debug!("{status}: {self}"),
        }
        let body = Json(ErrorBody {
            error: self.to_string(),
        });
        let mut response = (status, body).into_response();
        if let ApiError::Unauthorized { challenge, .. } = &self {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
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
