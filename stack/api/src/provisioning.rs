//! Provisioning keys: what a new device presents once to register into a fleet.
//! A key is 32 random bytes in hex, shown once and stored as its SHA-256; it may
//! register any number of devices until it expires.

use axum::extract::{Path, State};
use axum::response::Response;
use turtle_fleet_api::{NewProvisioningKey, ProvisioningKey};

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, JsonBody};
use crate::fleets;
use crate::respond::{created, rfc3339};
use crate::secret;
use crate::state::AppState;

/// A key lives a day unless asked otherwise.
const DEFAULT_LIFETIME_SECS: i64 = 86_400;
/// At most ten years.
const MAX_LIFETIME_SECS: i64 = 10 * 365 * 86_400;

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
    let lifetime = body.expires_in_secs.unwrap_or(DEFAULT_LIFETIME_SECS);
    if !(0..=MAX_LIFETIME_SECS).contains(&lifetime) {
        return Err(ApiError::BadRequest(format!(
            "expires_in_secs {lifetime} is out of range: give 0 to {MAX_LIFETIME_SECS} seconds"
        )));
    }
    let description = body.description.unwrap_or_default();
    let key = secret::new_key();
    let client = state.pool.get().await?;
    fleets::find(&client, fleet_id).await?;
    let row = client
        .query_one(
            "INSERT INTO provisioning_keys (fleet_id, key_sha256, description, expires_at)
             VALUES ($1, $2, $3, now() + $4::bigint * interval '1 second')
             RETURNING id, expires_at",
            &[
                &fleet_id,
                &secret::sha256(&key).as_slice(),
                &description,
                &lifetime,
            ],
        )
        .await?;
    tracing::info!(
        "fleet {fleet_id}: provisioning key {}",
        row.get::<_, i64>(0)
    );
    Ok(created(ProvisioningKey {
        description,
        expires_at: rfc3339(row.get(1)),
        fleet_id,
        id: row.get(0),
        key,
    }))
}
