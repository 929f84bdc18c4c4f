//! Devices as admins see them (and delete them), and registration: a device
//! presents a provisioning key once and gets its UUID, its own key (shown once,
//! stored as its SHA-256) and, when it sent a WireGuard public key, its tunnel
//! address.

use std::time::Instant;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use time::OffsetDateTime;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use turtle_fleet_api::{Device, FleetRef, LogLine, LogQuery, Registered, Registration};

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, JsonBody, QueryParams};
use crate::respond::{created, rfc3339, rfc3339_opt};
use crate::state::AppState;
use crate::text::check_label;
use crate::{fleets, secret, vpn};

const DEVICE_QUERY: &str = "SELECT d.uuid::text AS uuid, d.name, d.fleet_id, f.name AS fleet_name,
        host(d.vpn_address) AS vpn_address, d.wireguard_public_key, d.registered_at,
        d.last_seen, d.state, d.state_at
    FROM devices d JOIN fleets f ON f.id = d.fleet_id";

/// A device from a row of [`DEVICE_QUERY`].
fn from_row(row: &Row) -> ApiResult<Device> {
    Ok(Device {
        fleet: FleetRef {
            id: row.get("fleet_id"),
            name: fleets::stored_name(row.get("fleet_name"))?,
        },
        last_seen: rfc3339_opt(row.get("last_seen")),
        name: row.get("name"),
        registered_at: rfc3339(row.get("registered_at")),
        state: row.get("state"),
        state_reported_at: rfc3339_opt(row.get("state_at")),
        uuid: row.get("uuid"),
        vpn_address: row.get("vpn_address"),
        wireguard_public_key: row.get("wireguard_public_key"),
    })
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
    Ok(Json(rows.iter().map(from_row).collect::<ApiResult<_>>()?))
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
    Ok(Json(from_row(&row)?))
}

/// `DELETE /v1/devices/{uuid}`: revokes the device. Its key is checked against
/// the database at every call, so it stops working at once on every route
/// (the registry's token endpoint too); its VPN peer leaves the peer list (the
/// vpn drops it at its next poll); its logs go with it. Registry tokens it
/// already holds live out their 60 s (see `registry`).
pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path(uuid): Path<String>,
) -> ApiResult<StatusCode> {
    let uuid = extract::uuid(&uuid)?;
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "DELETE FROM devices WHERE uuid = $1::text::uuid RETURNING host(vpn_address)",
            &[&uuid],
        )
        .await?
        .ok_or_else(|| not_found(&uuid))?;
    state.limiters.forget_device(&uuid);
    let address: Option<String> = row.get(0);
    tracing::info!(
        "deleted device {uuid}{}",
        address
            .map(|a| format!(" (its VPN address {a} is free again)"))
            .unwrap_or_default()
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The longest device name.
const NAME_MAX: usize = 253;

/// `POST /v1/devices/register` (no `Authorization`: the provisioning key is in the
/// body). Rate-limited in all and per key; a key registers at most its
/// `max_uses` devices; a WireGuard key must be the device's own (not the VPN
/// server's, not another device's), and the VPN subnet must have an address
/// left above its reserve.
pub async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Registration>,
) -> ApiResult<Response> {
    let name = body
        .name
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty());
    if let Some(name) = &name {
        check_label("name", name, NAME_MAX).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    let wireguard_key = body
        .wireguard_public_key
        .as_deref()
        .map(vpn::check_public_key)
        .transpose()?;
    if wireguard_key.as_deref() == Some(state.config.vpn.public_key.as_str()) {
        return Err(ApiError::BadRequest(
            "wireguard_public_key is the VPN server's own public key: generate a key pair for              this device (wg genkey | wg pubkey) and send its public key"
                .into(),
        ));
    }
    let identity = match (&body.uuid, &body.device_key) {
        (Some(uuid), Some(key)) => Some(check_identity(uuid, key)?),
        (None, None) => None,
        _ => {
            return Err(ApiError::BadRequest(
                "uuid and device_key go together: send both (the device's own identity) or \
                 neither (the api makes them)"
                    .into(),
            ));
        }
    };
    let key_hash = secret::sha256(&body.provisioning_key);
    let now = Instant::now();
    let limiters = &state.limiters;
    limiters.registration.take(&(), 1, now).map_err(|refusal| {
        ApiError::limited(
            refusal,
            &format!(
                "the registration rate of this api (--registration-limit {})",
                limiters.registration.rate()
            ),
            "registrations",
        )
    })?;
    limiters
        .registration_key
        .take(&key_hash, 1, now)
        .map_err(|refusal| {
            ApiError::limited(
                refusal,
                &format!(
                    "the registration rate of this provisioning key (--registration-key-limit {})",
                    limiters.registration_key.rate()
                ),
                "registrations",
            )
        })?;
    let unknown = || {
        ApiError::unauthorized(
            "unknown provisioning key: ask an admin for one (POST \
             /v1/fleets/{id}/provisioning-keys)",
        )
    };
    let mut client = state.pool.get().await?;
    // A registration sent again (a restart, a lost answer) with the identity
    // of a registered device answers that device, whatever became of the
    // provisioning key since: no second device, no use counted.
    if let Some((uuid, device_key)) = &identity
        && let Some(again) = registered_again(&client, &state, uuid, device_key).await?
    {
        return Ok(Json(again).into_response());
    }
    let tx = client.transaction().await?;
    // Locks in the order a fleet's deletion takes them (the fleet, then its
    // keys), so the two never wait on each other in a cycle.
    let found = tx
        .query_opt(
            "SELECT id, fleet_id FROM provisioning_keys WHERE key_sha256 = $1",
            &[&key_hash.as_slice()],
        )
        .await?
        .ok_or_else(unknown)?;
    let (key_id, fleet_id): (i64, i64) = (found.get(0), found.get(1));
    let fleet_name = tx
        .query_opt(
            "SELECT name FROM fleets WHERE id = $1 FOR KEY SHARE",
            &[&fleet_id],
        )
        .await?
        .ok_or_else(unknown)?;
    let fleet_name = fleets::stored_name(fleet_name.get(0))?;
    let key = tx
        .query_opt(
            "SELECT expires_at, expires_at <= now(), uses, max_uses FROM provisioning_keys
             WHERE id = $1 FOR UPDATE",
            &[&key_id],
        )
        .await?
        .ok_or_else(unknown)?;
    if key.get::<_, bool>(1) {
        let expired: OffsetDateTime = key.get(0);
        return Err(ApiError::unauthorized(format!(
            "provisioning key expired at {}: ask an admin for a new one",
            rfc3339(expired)
        )));
    }
    let (uses, max_uses): (i32, i32) = (key.get(2), key.get(3));
    if uses >= max_uses {
        return Err(ApiError::unauthorized(format!(
            "provisioning key {key_id} is used up: it registered the {max_uses} device{} it \
             was made for; ask an admin for a new one",
            if max_uses == 1 { "" } else { "s" }
        )));
    }
    let address = match &wireguard_key {
        Some(_) => Some(vpn::allocate(&tx, &state.config.vpn).await?),
        None => None,
    };
    let (uuid, device_key) = match identity {
        Some((uuid, key)) => (Some(uuid), key),
        None => (None, secret::new_key()),
    };
    let row = tx
        .query_one(
            "INSERT INTO devices
                 (uuid, fleet_id, name, key_sha256, provisioning_key_id, wireguard_public_key,
                  vpn_address)
             VALUES (COALESCE($1::text::uuid, gen_random_uuid()), $2, $3, $4, $5, $6,
                     $7::text::inet)
             RETURNING uuid::text",
            &[
                &uuid,
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
            let constraint = e.as_db_error().and_then(|db| db.constraint());
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                && constraint == Some("devices_wireguard_public_key_key")
            {
                ApiError::Conflict(
                    "this WireGuard public key belongs to another device: generate a new key \
                     pair for this device"
                        .into(),
                )
            } else if e.code() == Some(&SqlState::UNIQUE_VIOLATION)
                && constraint == Some("devices_pkey")
            {
                ApiError::Conflict(
                    "a device with this uuid was registered meanwhile: send the registration \
                     again"
                        .into(),
                )
            } else {
                e.into()
            }
        })?;
    tx.execute(
        "UPDATE provisioning_keys SET uses = uses + 1 WHERE id = $1",
        &[&key_id],
    )
    .await?;
    tx.commit().await?;
    let uuid: String = row.get(0);
    tracing::info!(
        "registered device {uuid} in fleet {fleet_name} with provisioning key {key_id} ({} of \
         {max_uses}){}",
        uses + 1,
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

/// A device's own identity as it sent it: a UUID (any case; stored and
/// answered lowercase) and 64 lowercase hex characters.
fn check_identity(uuid: &str, key: &str) -> ApiResult<(String, String)> {
    let uuid = uuid.trim().to_ascii_lowercase();
    let groups: Vec<&str> = uuid.split('-').collect();
    let shaped = groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups
            .iter()
            .all(|g| g.bytes().all(|b| b.is_ascii_hexdigit()));
    if !shaped {
        return Err(ApiError::BadRequest(format!(
            "uuid {uuid:?} is not a UUID (8-4-4-4-12 hex digits)"
        )));
    }
    if key.len() != 64 || !key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(ApiError::BadRequest(
            "device_key must be 64 lowercase hex characters (32 random bytes)".into(),
        ));
    }
    Ok((uuid, key.to_string()))
}

/// The registration of device `uuid` when its key is `device_key`; `None`
/// when no such device exists; a conflict when it exists with another key.
async fn registered_again(
    client: &tokio_postgres::Client,
    state: &AppState,
    uuid: &str,
    device_key: &str,
) -> ApiResult<Option<Registered>> {
    let Some(row) = client
        .query_opt(
            "SELECT d.key_sha256, d.fleet_id, f.name, host(d.vpn_address)
             FROM devices d JOIN fleets f ON f.id = d.fleet_id
             WHERE d.uuid = $1::text::uuid",
            &[&uuid],
        )
        .await?
    else {
        return Ok(None);
    };
    let stored: Vec<u8> = row.get(0);
    if stored.as_slice() != secret::sha256(device_key).as_slice() {
        return Err(ApiError::Conflict(format!(
            "device {uuid} is registered with another key: a device registers with an identity \
             of its own (make a new uuid and key)"
        )));
    }
    let address: Option<String> = row.get(3);
    Ok(Some(Registered {
        device_key: device_key.to_string(),
        fleet: FleetRef {
            id: row.get(1),
            name: fleets::stored_name(row.get(2))?,
        },
        uuid: uuid.to_string(),
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
