//! The OpenAPI 3 document (`openapi.json` next to `Cargo.toml`, written by hand),
//! served at `/v1/openapi.json` with this stack's public API URL as its server.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// The document as written.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// The document with `servers` set to `api_url`.
pub fn with_server(api_url: &str) -> String {
    let mut doc: serde_json::Value =
        serde_json::from_str(DOCUMENT).expect("openapi.json is JSON (a unit test checks)");
    doc["servers"] = serde_json::json!([{ "url": api_url }]);
    serde_json::to_string_pretty(&doc).expect("a JSON value serializes")
}

/// `GET /v1/openapi.json`.
pub async fn document(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.openapi.as_str().to_owned(),
    )
        .into_response()
}
