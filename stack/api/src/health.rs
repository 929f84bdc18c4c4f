//! `GET /v1/health`: 200 while PostgreSQL answers, 503 while it does not. A change
//! either way is logged once (with the cause), not every probe.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use turtle_fleet_api::{Health, HealthStatus};

use crate::db;
use crate::state::AppState;

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    match db::check(&state.pool).await {
        Ok(()) => {
            if !state.healthy.swap(true, Ordering::Relaxed) {
                tracing::info!("healthy again: the database answers");
            }
            (
                StatusCode::OK,
                Json(Health {
                    database: "ok".into(),
                    status: HealthStatus::Ok,
                }),
            )
        }
        Err(e) => {
            if state.healthy.swap(false, Ordering::Relaxed) {
                tracing::warn!("unhealthy: the database does not answer: {e}");
            }
            // The route is public: why the database does not answer (a
            // library's words, host names) stays in the log.
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    database: "unavailable (the api's log has the cause)".into(),
                    status: HealthStatus::Unhealthy,
                }),
            )
        }
    }
}
