//! Fleets: groups of devices that run the same release.
//!
//! A fleet's name is a `FleetName` (turtle-fleet-api): checked when a body is
//! read, and again by the database's CHECK, so every name the api hands out
//! is a valid repository path component.
//!
//! Deleting a fleet deletes its releases and provisioning keys (they are the
//! fleet's own configuration) but is refused (409, naming them) while it has
//! devices. Decided against cascading to the devices: that would revoke every
//! device of the fleet in one call, too easy to do by mistake, and a fleet's
//! devices are revoked one by one (`DELETE /v1/devices/{uuid}`), each a
//! decision. The images under `<fleet>/` in the registry stay; a new fleet of
//! the same name would be able to pull them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use turtle_fleet_api::{Fleet, FleetName, NewFleet, SetTarget};

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, JsonBody};
use crate::respond::{created, rfc3339};
use crate::state::AppState;

/// The columns [`from_row`] reads.
pub const FLEET_COLUMNS: &str = "id, name, created_at, target_release_id";

/// How many of a fleet's devices a refused deletion names.
const NAMED_DEVICES: i64 = 10;

/// A fleet name read from the database (where a CHECK holds the grammar: a
/// name that fails it is the database's fault).
pub fn stored_name(text: String) -> ApiResult<FleetName> {
    FleetName::try_from(text)
        .map_err(|e| ApiError::Internal(format!("a stored fleet name is not valid: {e}")))
}

/// A fleet from its row (`target_release_id`: the pinned release, null when the
/// newest release is the target).
pub fn from_row(row: &Row) -> ApiResult<Fleet> {
    Ok(Fleet {
        created_at: rfc3339(row.get("created_at")),
        id: row.get("id"),
        name: stored_name(row.get("name"))?,
        target_release_id: row.get("target_release_id"),
    })
}

/// `POST /v1/fleets`.
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewFleet>,
) -> ApiResult<Response> {
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            &format!("INSERT INTO fleets (name) VALUES ($1) RETURNING {FLEET_COLUMNS}"),
            &[&body.name.as_str()],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                ApiError::Conflict(format!(
                    "fleet {:?} exists: pick another name (GET /v1/fleets lists them)",
                    body.name.as_str()
                ))
            } else {
                e.into()
            }
        })?;
    tracing::info!("created fleet {}", body.name);
    Ok(created(from_row(&row)?))
}

/// `GET /v1/fleets`.
pub async fn list(_: Admin, State(state): State<AppState>) -> ApiResult<Json<Vec<Fleet>>> {
    let client = state.pool.get().await?;
    let rows = client
        .query(
            &format!("SELECT {FLEET_COLUMNS} FROM fleets ORDER BY id"),
            &[],
        )
        .await?;
    Ok(Json(rows.iter().map(from_row).collect::<ApiResult<_>>()?))
}

/// The fleet row with this id, or 404.
pub async fn find(client: &tokio_postgres::Client, id: i64) -> ApiResult<Row> {
    client
        .query_opt(
            &format!("SELECT {FLEET_COLUMNS} FROM fleets WHERE id = $1"),
            &[&id],
        )
        .await?
        .ok_or_else(|| not_found(id))
}

pub fn not_found(id: i64) -> ApiError {
    ApiError::NotFound(format!("no fleet with id {id}: GET /v1/fleets lists them"))
}

/// `GET /v1/fleets/{id}`.
pub async fn get(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Fleet>> {
    let id = extract::id(&id, "fleet")?;
    let client = state.pool.get().await?;
    Ok(Json(from_row(&find(&client, id).await?)?))
}

/// `DELETE /v1/fleets/{id}`: with its releases and provisioning keys; 409
/// while it has devices.
pub async fn delete(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    let id = extract::id(&id, "fleet")?;
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    // The row lock holds off registrations into the fleet until we are done
    // (inserting a device checks its fleet with a key-share lock).
    let fleet = tx
        .query_opt("SELECT name FROM fleets WHERE id = $1 FOR UPDATE", &[&id])
        .await?
        .ok_or_else(|| not_found(id))?;
    let name: String = fleet.get(0);
    let devices = tx
        .query(
            "SELECT uuid::text, name, count(*) OVER () FROM devices WHERE fleet_id = $1
             ORDER BY registered_at, uuid LIMIT $2",
            &[&id, &NAMED_DEVICES],
        )
        .await?;
    if let Some(first) = devices.first() {
        let total: i64 = first.get(2);
        let mut named: Vec<String> = devices
            .iter()
            .map(|r| match r.get::<_, Option<String>>(1) {
                Some(label) => format!("{} ({label:?})", r.get::<_, String>(0)),
                None => r.get(0),
            })
            .collect();
        if total > NAMED_DEVICES {
            named.push(format!("and {} more", total - NAMED_DEVICES));
        }
        return Err(has_devices(&name, total, &named.join(", ")));
    }
    tx.execute("DELETE FROM fleets WHERE id = $1", &[&id])
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::FOREIGN_KEY_VIOLATION) {
                has_devices(&name, 1, "a device registered meanwhile")
            } else {
                e.into()
            }
        })?;
    tx.commit().await?;
    state.targets.moved(id);
    tracing::info!("deleted fleet {name} (id {id}) with its releases and provisioning keys");
    Ok(StatusCode::NO_CONTENT)
}

fn has_devices(fleet: &str, count: i64, named: &str) -> ApiError {
    ApiError::Conflict(format!(
        "fleet {fleet:?} still has {count} device{}: {named}: delete them first (DELETE \
         /v1/devices/{{uuid}}, which revokes each), then the fleet",
        if count == 1 { "" } else { "s" }
    ))
}

/// `PUT /v1/fleets/{id}/target`: pins a release of the fleet as its target (null
/// unpins: the newest release is the target again). Answers the fleet.
pub async fn set_target(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<SetTarget>,
) -> ApiResult<Json<Fleet>> {
    let id = extract::id(&id, "fleet")?;
    let client = state.pool.get().await?;
    find(&client, id).await?;
    if let Some(release) = body.release_id {
        let belongs = client
            .query_opt(
                "SELECT 1 FROM releases WHERE id = $1 AND fleet_id = $2",
                &[&release, &id],
            )
            .await?
            .is_some();
        if !belongs {
            return Err(ApiError::BadRequest(format!(
                "fleet {id} has no release {release}: GET /v1/fleets/{id}/releases lists them"
            )));
        }
    }
    let row = client
        .query_one(
            &format!(
                "UPDATE fleets SET target_release_id = $2 WHERE id = $1 RETURNING {FLEET_COLUMNS}"
            ),
            &[&id, &body.release_id],
        )
        .await?;
    state.targets.moved(id);
    tracing::info!("fleet {id} targets release {:?}", body.release_id);
    Ok(Json(from_row(&row)?))
}
