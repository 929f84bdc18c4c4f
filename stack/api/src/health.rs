//! `GET /v1/health`: 200 while PostgreSQL answers, 503 while it does not. A change
//! either way is logged once, not every probe.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::db;
use crate::state::AppState;

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<serde_json::Value>) {
    match db::check(&state.pool).await {
        Ok(()) => {
            if !state.healthy.swap(true, Ordering::Relaxed) {
                tracing::info!("healthy again: the database answers");
            }
            (
                StatusCode::OK,
                Json(serde_json::json!({ "status": "ok", "database": "ok" })),
            )
        }
        Err(e) => {
            if state.healthy.swap(false, Ordering::Relaxed) {
                tracing::warn!("unhealthy: the database does not answer: {e}");
            }
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({ "status": "unhealthy", "database": e.to_string() })),
            )
        }
    }
}
