//! Fleets: groups of devices that run the same release.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use turtle_fleet_api::{Fleet, NewFleet, SetTarget};

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, JsonBody};
use crate::respond::{created, rfc3339};
use crate::state::AppState;

/// The columns [`from_row`] reads.
pub const FLEET_COLUMNS: &str = "id, name, created_at, target_release_id";

/// A fleet from its row (`target_release_id`: the pinned release, null when the
/// newest release is the target).
pub fn from_row(row: &Row) -> Fleet {
    Fleet {
        created_at: rfc3339(row.get("created_at")),
        id: row.get("id"),
        name: row.get("name"),
        target_release_id: row.get("target_release_id"),
    }
}

/// Checks a fleet name: 1 to 63 of `a-z`, `0-9`, `-` (it becomes the first part
/// of the fleet's image repositories).
pub fn check_name(name: &str) -> ApiResult<()> {
    let ok = (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "fleet name {name:?} is not valid: use 1 to 63 lowercase letters, digits and '-'"
        )))
    }
}

/// `POST /v1/fleets`.
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<NewFleet>,
) -> ApiResult<Response> {
    check_name(&body.name)?;
    let client = state.pool.get().await?;
    let row = client
        .query_one(
            &format!("INSERT INTO fleets (name) VALUES ($1) RETURNING {FLEET_COLUMNS}"),
            &[&body.name],
        )
        .await
        .map_err(|e| {
            if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
                ApiError::Conflict(format!(
                    "fleet {:?} exists: pick another name (GET /v1/fleets lists them)",
                    body.name
                ))
            } else {
                e.into()
            }
        })?;
    tracing::info!("created fleet {}", body.name);
    Ok(created(from_row(&row)))
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
    Ok(Json(rows.iter().map(from_row).collect()))
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
    Ok(Json(from_row(&find(&client, id).await?)))
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
    tracing::info!("fleet {id} targets release {:?}", body.release_id);
    Ok(Json(from_row(&row)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_names() {
        for good in ["a", "prod-eu-1", &"x".repeat(63)] {
            assert!(check_name(good).is_ok(), "{good}");
        }
        for bad in ["", "Prod", "a_b", "a.b", "a/b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
    }
}
