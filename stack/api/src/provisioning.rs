//! Provisioning keys: what a new device presents once to register into a fleet.
//! A key is 32 random bytes in hex, shown once and stored as its SHA-256. It
//! registers at most `max_uses` devices (1 unless asked, at most
//! [`MAX_USES`]) before it expires (an hour unless asked, at most
//! [`MAX_LIFETIME_SECS`]); an admin may delete it sooner. Deleting a key does
//! not touch the devices it registered.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use tokio_postgres::Row;
use turtle_fleet_api::{
    FleetRef, NewProvisioningConfig, NewProvisioningKey, ProvisioningConfig, ProvisioningKey,
    ProvisioningKeyInfo, VpnEndpoint,
};

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, JsonBody};
use crate::fleets;
use crate::respond::{created, rfc3339};
use crate::secret;
use crate::state::AppState;
use crate::text::check_label;

/// A key lives an hour unless asked otherwise: long enough to set a device up.
pub const DEFAULT_LIFETIME_SECS: i64 = 3_600;
/// At most 30 days.
pub const MAX_LIFETIME_SECS: i64 = 30 * 86_400;
/// A key registers one device unless asked otherwise, and at most this many.
pub const MAX_USES: i32 = 1_000;
/// The longest description.
const DESCRIPTION_MAX: usize = 1024;

/// `POST /v1/fleets/{id}/provisioning-keys`.
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<JsonBody<NewProvisioningKey>>,
) -> ApiResult<Response> {
    // Every field is optional, so a request without a body is `{}`.
    let body = body.map(|JsonBody(b)| b).unwrap_or_default();
    let fleet_id = extract::id(&id, "fleet")?;
    let (key, _) = insert(&state, fleet_id, body).await?;
    Ok(created(key))
}

/// `POST /v1/fleets/{id}/provisioning-config`: a new provisioning key (as
/// `provisioning-keys` makes it) in the one file a device needs to join
/// the fleet: the api's URL, the registry's name, the root certificate and
/// its SHA-256 pin, the VPN endpoint and the device profile.
pub async fn config(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Option<JsonBody<NewProvisioningConfig>>,
) -> ApiResult<Response> {
    let body = body.map(|JsonBody(b)| b).unwrap_or_default();
    let fleet_id = extract::id(&id, "fleet")?;
    if let Some(p) = &body.device_profile {
        check_label("device_profile", p, PROFILE_MAX)
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    }
    // The root first: a config without it is of no use, and no key is made.
    let root_ca = tokio::fs::read_to_string(&state.config.ca_file)
        .await
        .map_err(|e| {
            ApiError::Internal(format!(
                "the CA's root certificate is not readable at {} ({e})",
                state.config.ca_file.display()
            ))
        })?;
    let root_sha256 = turtle_certs::pem_fingerprint(&root_ca)
        .map_err(|e| ApiError::Internal(format!("{}: {e}", state.config.ca_file.display())))?;
    let (key, fleet) = insert(&state, fleet_id, body.key).await?;
    let c = &state.config;
    Ok(created(ProvisioningConfig {
        api: format!(
            "https://{}",
            crate::config::with_port(&format!("api.{}", c.domain), c.https_port)
        ),
        registry: c.registry_service.clone(),
        fleet: FleetRef {
            id: fleet_id,
            name: fleet,
        },
        provisioning_key: Some(key.key),
        provisioning_key_id: key.id,
        expires_at: key.expires_at,
        max_uses: key.max_uses,
        root_ca,
        root_sha256,
        vpn: VpnEndpoint {
            host: c.vpn.host.clone(),
            port: c.vpn.port,
        },
        device_profile: body.device_profile,
    }))
}

/// The longest device profile name.
const PROFILE_MAX: usize = 64;

/// Makes a provisioning key for fleet `fleet_id` as `body` asks; answers it
/// and the fleet's name.
async fn insert(
    state: &AppState,
    fleet_id: i64,
    body: NewProvisioningKey,
) -> ApiResult<(ProvisioningKey, turtle_fleet_api::FleetName)> {
    let lifetime = body.expires_in_secs.unwrap_or(DEFAULT_LIFETIME_SECS);
    if !(0..=MAX_LIFETIME_SECS).contains(&lifetime) {
        return Err(ApiError::BadRequest(format!(
            "expires_in_secs {lifetime} is out of range: give 0 to {MAX_LIFETIME_SECS} seconds \
             (30 days); make a new key when one runs out"
        )));
    }
    let max_uses = body.max_uses.unwrap_or(1);
    if !(1..=MAX_USES).contains(&max_uses) {
        return Err(ApiError::BadRequest(format!(
            "max_uses {max_uses} is out of range: give 1 to {MAX_USES} devices; make more keys \
             for more"
        )));
    }
    let description = body.description.unwrap_or_default();
    check_label("description", &description, DESCRIPTION_MAX)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let key = secret::new_key();
    let client = state.pool.get().await?;
    let fleet = fleets::stored_name(fleets::find(&client, fleet_id).await?.get("name"))?;
    let row = client
        .query_one(
            "INSERT INTO provisioning_keys (fleet_id, key_sha256, description, expires_at, max_uses)
             VALUES ($1, $2, $3, now() + $4::bigint * interval '1 second', $5)
             RETURNING id, expires_at",
            &[
                &fleet_id,
                &secret::sha256(&key).as_slice(),
                &description,
                &lifetime,
                &max_uses,
            ],
        )
        .await?;
    tracing::info!(
        "fleet {fleet_id}: provisioning key {} ({max_uses} use{}, {lifetime} s)",
        row.get::<_, i64>(0),
        if max_uses == 1 { "" } else { "s" }
    );
    Ok((
        ProvisioningKey {
            description,
            expires_at: rfc3339(row.get(1)),
            fleet_id,
            id: row.get(0),
            key,
            max_uses,
        },
        fleet,
    ))
}

fn info_from_row(row: &Row) -> ProvisioningKeyInfo {
    ProvisioningKeyInfo {
        created_at: rfc3339(row.get("created_at")),
        description: row.get("description"),
        expires_at: rfc3339(row.get("expires_at")),
        fleet_id: row.get("fleet_id"),
        id: row.get("id"),
        max_uses: row.get("max_uses"),
        uses: row.get("uses"),
    }
}

/// `GET /v1/fleets/{id}/provisioning-keys`: the fleet's keys, oldest first,
/// without the keys themselves.
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<ProvisioningKeyInfo>>> {
    let fleet_id = extract::id(&id, "fleet")?;
    let client = state.pool.get().await?;
    fleets::find(&client, fleet_id).await?;
    let rows = client
        .query(
            "SELECT id, fleet_id, description, expires_at, created_at, max_uses, uses
             FROM provisioning_keys WHERE fleet_id = $1 ORDER BY id",
            &[&fleet_id],
        )
        .await?;
    Ok(Json(rows.iter().map(info_from_row).collect()))
}

/// `DELETE /v1/fleets/{id}/provisioning-keys/{key}`: the key registers nothing
/// more, from now on.
pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let fleet_id = extract::id(&id, "fleet")?;
    let key_id = extract::id(&key, "provisioning key")?;
    let client = state.pool.get().await?;
    fleets::find(&client, fleet_id).await?;
    let deleted = client
        .execute(
            "DELETE FROM provisioning_keys WHERE id = $1 AND fleet_id = $2",
            &[&key_id, &fleet_id],
        )
        .await?;
    if deleted == 0 {
        return Err(ApiError::NotFound(format!(
            "fleet {fleet_id} has no provisioning key {key_id}: GET \
             /v1/fleets/{fleet_id}/provisioning-keys lists them"
        )));
    }
    tracing::info!("fleet {fleet_id}: deleted provisioning key {key_id}");
    Ok(StatusCode::NO_CONTENT)
}
