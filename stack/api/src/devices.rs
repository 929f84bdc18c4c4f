//! Devices as admins see them, and registration: a device presents a provisioning
//! key once and gets its UUID, its own key (shown once, stored as its SHA-256) and,
//! when it sent a WireGuard public key, its tunnel address.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use turtle_fleet_api::{Device, FleetRef, LogLine, LogQuery, Registered, Registration};

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, JsonBody, QueryParams};
use crate::respond::{created, rfc3339, rfc3339_opt};
use crate::state::AppState;
use crate::{secret, vpn};

const DEVICE_QUERY: &str = "SELECT d.uuid::text AS uuid, d.name, d.fleet_id, f.name AS fleet_name,
        host(d.vpn_address) AS vpn_address, d.wireguard_public_key, d.registered_at,
        d.last_seen, d.state, d.state_at
    FROM devices d JOIN fleets f ON f.id = d.fleet_id";

/// A device from a row of [`DEVICE_QUERY`].
fn from_row(row: &Row) -> Device {
    Device {
        fleet: FleetRef {
            id: row.get("fleet_id"),
            name: row.get("fleet_name"),
        },
        last_seen: rfc3339_opt(row.get("last_seen")),
        name: row.get("name"),
        registered_at: rfc3339(row.get("registered_at")),
        state: row.get("state"),
        state_reported_at: rfc3339_opt(row.get("state_at")),
        uuid: row.get("uuid"),
        vpn_address: row.get("vpn_address"),
        wireguard_public_key: row.get("wireguard_public_key"),
    }
}

/// `GET /v1/devices`.
pub async fn list(_: Admin, State(state): State<AppState>) -> ApiResult<Json<Vec<Device>>> {
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!("{DEVICE_QUERY} ORDER BY d.registered_at, d.uuid"),
            &[],
        )
        .await?;
    Ok(Json(rows.iter().map(from_row).collect()))
}

fn not_found(uuid: &str) -> ApiError {
    ApiError::NotFound(format!("no device {uuid}: GET /v1/devices lists them"))
}

/// `GET /v1/devices/{uuid}`.
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> ApiResult<Json<Device>> {
    let uuid = extract::uuid(&uuid)?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            &format!("{DEVICE_QUERY} WHERE d.uuid = $1::text::uuid"),
            &[&uuid],
        )
        .await?
        .ok_or_else(|| not_found(&uuid))?;
    Ok(Json(from_row(&row)))
}

/// `POST /v1/devices/register` (no `Authorization`: the provisioning key is in the
/// body).
pub async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Registration>,
) -> ApiResult<Response> {
    let name = body
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.len() > 253) {
        return Err(ApiError::BadRequest(
            "name is longer than 253 characters: give a shorter one".into(),
        ));
    }
    let wireguard_key = body
        .wireguard_public_key
        .as_deref()
        .map(vpn::check_public_key)
        .transpose()?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    let key = tx
        .query_opt(
            "SELECT k.id, k.fleet_id, f.name, k.expires_at, k.expires_at <= now()
             FROM provisioning_keys k JOIN fleets f ON f.id = k.fleet_id
             WHERE k.key_sha256 = $1",
            &[&secret::sha256(&body.provisioning_key).as_slice()],
        )
        .await?
        .ok_or_else(|| {
            ApiError::unauthorized(
                "unknown provisioning key: ask an admin for one (POST \
                 /v1/fleets/{id}/provisioning-keys)",
            )
        })?;
    let (key_id, fleet_id, fleet_name): (i64, i64, String) = (key.get(0), key.get(1), key.get(2));
    if key.get::<_, bool>(4) {
        let expired: OffsetDateTime = key.get(3);
        return Err(ApiError::unauthorized(format!(
            "provisioning key expired at {}: ask an admin for a new one",
            rfc3339(expired)
        )));
    }
    let address = match &wireguard_key {
        Some(_) => Some(vpn::allocate(&tx, &state.config.vpn).await?),
        None => None,
    };
    let device_key = secret::new_key();
    let row = tx
        .query_one(
            "INSERT INTO devices
                 (fleet_id, name, key_sha256, provisioning_key_id, wireguard_public_key, vpn_address)
             VALUES ($1, $2, $3, $4, $5, $6::text::inet)
             RETURNING uuid::text",
            &[
                &fleet_id,
                &name,
                &secret::sha256(&device_key).as_slice(),
                &key_id,
                &wireguard_key,
                &address,
            ],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                ApiError::Conflict(
                    "this WireGuard public key belongs to another device: generate a new key \
                     pair for this device"
                        .into(),
                )
            } else {
                e.into()
            }
        })?;
    tx.commit().await?;
    let uuid: String = row.get(0);
    tracing::info!(
        "registered device {uuid} in fleet {fleet_name}{}",
        address
            .as_deref()
            .map(|a| format!(" at {a}"))
            .unwrap_or_default()
    );
    Ok(created(Registered {
        device_key,
        fleet: FleetRef {
            id: fleet_id,
            name: fleet_name,
        },
        uuid,
        vpn: address.map(|a| vpn::device_config(&state.config.vpn, a)),
    }))
}

/// Log lines answered when `limit` is not given, and at most.
const DEFAULT_LOG_LIMIT: i64 = 100;
const MAX_LOG_LIMIT: i64 = 10_000;

/// `GET /v1/devices/{uuid}/logs?limit=&since=&after=`: with `since` (RFC 3339),
/// the first `limit` lines stamped after it, oldest first; with `after` (a line's
/// id), the first `limit` lines received after that one, in the order received,
/// so paging never skips lines that share a time; with neither, the last `limit`
/// lines, oldest first.
pub async fn logs(
    _: Admin,
    State(state): State<AppState>,
    Path(uuid): Path<String>,
    QueryParams(query): QueryParams<LogQuery>,
) -> ApiResult<Json<Vec<LogLine>>> {
    let uuid = extract::uuid(&uuid)?;
    let limit = query.limit.unwrap_or(DEFAULT_LOG_LIMIT);
    if !(1..=MAX_LOG_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit {limit} is out of range: give 1 to {MAX_LOG_LIMIT}"
        )));
    }
    let since = query
        .since
        .as_deref()
        .map(crate::device::parse_time)
        .transpose()?;
    if since.is_some() && query.after.is_some() {
        return Err(ApiError::BadRequest(
            "give one of since and after: after pages by the order lines were received, since by their time".into(),
        ));
    }
    let client = state.pool.get().await?;
    client
        .query_opt(
            "SELECT 1 FROM devices WHERE uuid = $1::text::uuid",
            &[&uuid],
        )
        .await?
        .ok_or_else(|| not_found(&uuid))?;
    let rows = match (since, query.after) {
        (Some(since), _) => {
            client
                .query(
                    "SELECT at, service, message, id FROM device_logs
                     WHERE device_uuid = $1::text::uuid AND at > $2
                     ORDER BY at, id LIMIT $3",
                    &[&uuid, &since, &limit],
                )
                .await?
        }
        (None, Some(after)) => {
            client
                .query(
                    "SELECT at, service, message, id FROM device_logs
                     WHERE device_uuid = $1::text::uuid AND id > $2
                     ORDER BY id LIMIT $3",
                    &[&uuid, &after, &limit],
                )
                .await?
        }
        (None, None) => {
            client
                .query(
                    "SELECT at, service, message, id FROM (
                         SELECT at, service, message, id FROM device_logs
                         WHERE device_uuid = $1::text::uuid ORDER BY at DESC, id DESC LIMIT $2
                     ) last ORDER BY at, id",
                    &[&uuid, &limit],
                )
                .await?
        }
    };
    Ok(Json(
        rows.iter()
            .map(|r| LogLine {
                id: r.get(3),
                message: r.get(2),
                service: r.get(1),
                timestamp: rfc3339(r.get(0)),
            })
            .collect(),
    ))
}
