//! The routes a device calls with its own key: its target release, its state
//! report, its logs. Every call marks the device seen (see `auth`).

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use turtle_fleet_api::{FleetRef, LogLineIn, Target};

use crate::auth::DeviceAuth;
use crate::error::{ApiError, ApiResult};
use crate::extract::JsonBody;
use crate::releases;
use crate::respond::json_with_etag;
use crate::state::AppState;

/// At most this many log lines per request.
const MAX_LOG_LINES: usize = 5_000;

/// Parses an RFC 3339 time (`2025-06-01T12:00:00Z`).
pub fn parse_time(text: &str) -> ApiResult<OffsetDateTime> {
    OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
        ApiError::BadRequest(format!(
            "{text:?} is not an RFC 3339 time ({e}): write it as 2025-06-01T12:00:00Z"
        ))
    })
}

/// `GET /v1/device/target`: `{"fleet": {"id","name"}, "release": {...} | null}` with
/// an ETag.
pub async fn target(
    DeviceAuth(device): DeviceAuth,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let client = state.pool.get().await?;
    let release = releases::target(&client, device.fleet_id)
        .await?
        .map(|row| releases::from_row(&row))
        .transpose()?;
    let body = Target {
        fleet: FleetRef {
            id: device.fleet_id,
            name: device.fleet_name,
        },
        release,
    };
    Ok(json_with_etag(&headers, &body))
}

/// `PUT /v1/device/state`: any JSON object, kept as the device's last report.
pub async fn report_state(
    DeviceAuth(device): DeviceAuth,
    State(state): State<AppState>,
    JsonBody(report): JsonBody<serde_json::Value>,
) -> ApiResult<StatusCode> {
    if !report.is_object() {
        return Err(ApiError::BadRequest(
            "the state report must be a JSON object".into(),
        ));
    }
    let client = state.pool.get().await?;
    client
        .execute(
            "UPDATE devices SET state = $2, state_at = now() WHERE uuid = $1::text::uuid",
            &[&device.uuid, &report],
        )
        .await?;
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
    let mut times: Vec<Option<OffsetDateTime>> = Vec::with_capacity(lines.len());
    let mut services: Vec<Option<String>> = Vec::with_capacity(lines.len());
    let mut messages: Vec<String> = Vec::with_capacity(lines.len());
    for line in lines {
        times.push(line.timestamp.as_deref().map(parse_time).transpose()?);
        services.push(line.service);
        messages.push(line.message);
    }
    let client = state.pool.get().await?;
    client
        .execute(
            "INSERT INTO device_logs (device_uuid, at, service, message)
             SELECT $1::text::uuid, COALESCE(t, now()), s, m
             FROM unnest($2::timestamptz[], $3::text[], $4::text[]) WITH ORDINALITY AS l (t, s, m, n)
             ORDER BY n",
            &[&device.uuid, &times, &services, &messages],
        )
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
