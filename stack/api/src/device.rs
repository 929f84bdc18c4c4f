//! The routes a device calls with its own key: its target release, its state
//! report, its logs. Every call marks the device seen (see `auth`).
//!
//! What a device sends is bounded, so one device cannot fill the database's
//! disk: a state report is at most [`STATE_LIMIT`] bytes and a device sends at
//! most `--device-state-limit` of them; its log lines are cleaned
//! (`text::clean_log_text`), cost their bytes against `--device-log-limit`, and
//! are kept by the row cap and the retention (`logs`).

use std::time::Instant;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use turtle_fleet_api::{FleetRef, LogLineIn, Target};

use crate::auth::{DeviceAuth, revoked};
use crate::error::{ApiError, ApiResult};
use crate::extract::{JsonBody, QueryParams};
use crate::logs::{self, Batch};
use crate::releases;
use crate::respond::json_with_etag;
use crate::state::AppState;
use crate::text::{MESSAGE_MAX, SERVICE_MAX, clean_log_text};

/// At most this many log lines per request.
const MAX_LOG_LINES: usize = 5_000;
/// The largest state report, in bytes of JSON.
pub const STATE_LIMIT: usize = 64 << 10;
/// What a stored line costs beyond its text (its row, times and index entries).
pub const LINE_OVERHEAD: u64 = 64;

/// Parses an RFC 3339 time (`2025-06-01T12:00:00Z`).
pub fn parse_time(text: &str) -> ApiResult<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        ApiError::BadRequest(format!(
            "{text:?} is not an RFC 3339 time ({e}): write it as 2025-06-01T12:00:00Z"
        ))
    })
}

/// The longest `wait` of a long-poll of the target.
pub const MAX_TARGET_WAIT_SECS: u64 = 60;

/// The query of `GET /v1/device/target`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetQuery {
    /// With `If-None-Match` naming the current target: wait up to this many
    /// seconds (at most [`MAX_TARGET_WAIT_SECS`]) for it to move before
    /// answering 304.
    #[serde(default)]
    pub wait: Option<u64>,
}

/// `GET /v1/device/target`: `{"fleet": {"id","name"}, "release": {...} | null}` with
/// an ETag; with `?wait=N` and the current ETag, a long-poll: the answer
/// comes as soon as the fleet's target moves, or as 304 after N seconds.
pub async fn target(
    DeviceAuth(device): DeviceAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(query): QueryParams<TargetQuery>,
) -> ApiResult<Response> {
    let wait = std::time::Duration::from_secs(query.wait.unwrap_or(0).min(MAX_TARGET_WAIT_SECS));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        // Watched before the read, so a move between the two is not missed.
        let mut moved = state.targets.watch(device.fleet_id);
        let release = {
            let client = state.pool.get().await?;
            releases::target(&client, device.fleet_id)
                .await?
                .map(|row| releases::from_row(&row))
                .transpose()?
        };
        let body = Target {
            fleet: FleetRef {
                id: device.fleet_id,
                name: device.fleet_name.clone(),
            },
            release,
        };
        let answer = json_with_etag(&headers, &body);
        if answer.status() != StatusCode::NOT_MODIFIED || wait.is_zero() {
            return Ok(answer);
        }
        // The database connection went back to the pool while waiting.
        match tokio::time::timeout_at(deadline, moved.changed()).await {
            Ok(_) => continue,
            Err(_) => return Ok(answer),
        }
    }
}

/// `PUT /v1/device/state`: any JSON object of at most 64 KiB, kept as the
/// device's last report.
pub async fn report_state(
    DeviceAuth(device): DeviceAuth,
    State(state): State<AppState>,
    JsonBody(report): JsonBody<serde_json::Value, STATE_LIMIT>,
) -> ApiResult<StatusCode> {
    if !report.is_object() {
        return Err(ApiError::BadRequest(
            "the state report must be a JSON object".into(),
        ));
    }
    let limiter = &state.limiters.device_state;
    limiter
        .take(&device.uuid, 1, Instant::now())
        .map_err(|refusal| {
            ApiError::limited(
                refusal,
                &format!(
                    "the state report rate of device {} (--device-state-limit {})",
                    device.uuid,
                    limiter.rate()
                ),
                "reports",
            )
        })?;
    let client = state.pool.get().await?;
    let updated = client
        .execute(
            "UPDATE devices SET state = $2, state_at = now() WHERE uuid = $1::text::uuid",
            &[&device.uuid, &report],
        )
        .await?;
    if updated == 0 {
        return Err(revoked());
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/device/logs`: `[{"timestamp"?, "service"?, "message"}]`; a line
/// without a timestamp gets the time it arrived.
pub async fn post_logs(
    DeviceAuth(device): DeviceAuth,
    State(state): State<AppState>,
    JsonBody(lines): JsonBody<Vec<LogLineIn>>,
) -> ApiResult<StatusCode> {
    if lines.len() > MAX_LOG_LINES {
        return Err(ApiError::BadRequest(format!(
            "{} log lines in one request: send at most {MAX_LOG_LINES} at a time",
            lines.len()
        )));
    }
    if lines.is_empty() {
        return Ok(StatusCode::NO_CONTENT);
    }
    let mut batch = Batch::default();
    let mut cost = 0u64;
    for line in lines {
        batch
            .times
            .push(line.timestamp.as_deref().map(parse_time).transpose()?);
        let service = line
            .service
            .map(|s| clean_log_text(&s, SERVICE_MAX))
            .filter(|s| !s.is_empty());
        let message = clean_log_text(&line.message, MESSAGE_MAX);
        cost +=
            LINE_OVERHEAD + message.len() as u64 + service.as_ref().map_or(0, |s| s.len() as u64);
        batch.services.push(service);
        batch.messages.push(message);
    }
    let limiter = &state.limiters.device_log;
    limiter
        .take(&device.uuid, cost, Instant::now())
        .map_err(|refusal| {
            ApiError::limited(
                refusal,
                &format!(
                    "the log budget of device {} (--device-log-limit {})",
                    device.uuid,
                    limiter.rate()
                ),
                "bytes",
            )
        })?;
    let mut client = state.pool.get().await?;
    if !logs::insert(&mut client, &device.uuid, &batch, &state.config.logs).await? {
        return Err(revoked());
    }
    Ok(StatusCode::NO_CONTENT)
}
