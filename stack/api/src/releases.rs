//! Releases: a compose file and the digest-pinned image of each of its services.
//! Versions count 1, 2, 3, ... per fleet; the newest is the fleet's target unless
//! an admin pinned one (`PUT /v1/fleets/{id}/target`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::response::Response;
use tokio_postgres::Row;
use tokio_postgres::types::Json as Jsonb;
use turtle_fleet_api::{NewRelease, Release};

use crate::auth::Admin;
use crate::error::{ApiError, ApiResult};
use crate::extract::{self, JsonBody};
use crate::fleets;
use crate::respond::{created, rfc3339};
use crate::state::AppState;

/// The columns [`from_row`] reads (of `releases`, aliased `r` where joined).
pub const RELEASE_COLUMNS: &str = "r.id, r.fleet_id, r.version, r.compose, r.images, r.created_at";

/// A release from its row. Its images were checked on the way in, so a stored
/// value that is not a map of strings is the database's fault (500).
pub fn from_row(row: &Row) -> ApiResult<Release> {
    let Jsonb(images) = row
        .try_get::<_, Jsonb<BTreeMap<String, String>>>("images")
        .map_err(|e| {
            ApiError::Internal(format!(
                "release {}: its stored images are not a map of strings: {e}",
                row.get::<_, i64>("id")
            ))
        })?;
    Ok(Release {
        compose: row.get("compose"),
        created_at: rfc3339(row.get("created_at")),
        fleet_id: row.get("fleet_id"),
        id: row.get("id"),
        images,
        version: row.get("version"),
    })
}

/// The target release of a fleet: the pinned one, else the newest; `None` before
/// the first release.
pub async fn target(client: &tokio_postgres::Client, fleet_id: i64) -> ApiResult<Option<Row>> {
    Ok(client
        .query_opt(
            &format!(
                "SELECT {RELEASE_COLUMNS} FROM fleets f JOIN releases r ON r.id = COALESCE(
                     f.target_release_id,
                     (SELECT id FROM releases WHERE fleet_id = f.id ORDER BY version DESC LIMIT 1))
                 WHERE f.id = $1"
            ),
            &[&fleet_id],
        )
        .await?)
}

/// Checks that an image reference is pinned by digest: `<repository>@sha256:<64 hex>`.
pub fn check_pinned(service: &str, image: &str) -> ApiResult<()> {
    let pinned = image.rsplit_once("@sha256:").is_some_and(|(repo, digest)| {
        !repo.is_empty()
            && !repo.contains(char::is_whitespace)
            && digest.len() == 64
            && digest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if service.is_empty() {
        return Err(ApiError::BadRequest(
            "an entry of \"images\" has an empty service name".into(),
        ));
    }
    if pinned {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "image {image:?} of service {service:?} is not pinned by digest: give \
             <repository>@sha256:<64 hex digits> (the builder's answer has it)"
        )))
    }
}

/// `POST /v1/fleets/{id}/releases`.
pub async fn create(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<NewRelease>,
) -> ApiResult<Response> {
    let fleet_id = extract::id(&id, "fleet")?;
    if body.compose.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "\"compose\" is empty: give the text of the release's compose file".into(),
        ));
    }
    for (service, image) in &body.images {
        check_pinned(service, image)?;
    }
    let images = serde_json::to_value(&body.images).expect("a map of strings is JSON");
    let mut client = state.pool.get().await?;
    let tx = client.transaction().await?;
    // The fleet's row lock orders concurrent releases of one fleet, so each gets
    // the next version.
    tx.query_opt(
        "SELECT 1 FROM fleets WHERE id = $1 FOR UPDATE",
        &[&fleet_id],
    )
    .await?
    .ok_or_else(|| fleets::not_found(fleet_id))?;
    let row = tx
        .query_one(
            "INSERT INTO releases AS r (fleet_id, version, compose, images)
             SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3 FROM releases WHERE fleet_id = $1
             RETURNING r.id, r.fleet_id, r.version, r.compose, r.images, r.created_at",
            &[&fleet_id, &body.compose, &images],
        )
        .await?;
    tx.commit().await?;
    state.targets.moved(fleet_id);
    tracing::info!(
        "fleet {fleet_id}: release {} (version {})",
        row.get::<_, i64>("id"),
        row.get::<_, i32>("version")
    );
    Ok(created(from_row(&row)?))
}

/// `GET /v1/fleets/{id}/releases`, oldest first.
pub async fn list(
    _: Admin,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Release>>> {
    let fleet_id = extract::id(&id, "fleet")?;
    let client = state.pool.get().await?;
    fleets::find(&client, fleet_id).await?;
    let rows = client
        .query(
            &format!(
                "SELECT {RELEASE_COLUMNS} FROM releases r WHERE r.fleet_id = $1 ORDER BY r.version"
            ),
            &[&fleet_id],
        )
        .await?;
    Ok(Json(rows.iter().map(from_row).collect::<ApiResult<_>>()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_must_be_pinned_by_digest() {
        let digest = "a".repeat(64);
        assert!(
            check_pinned(
                "web",
                &format!("registry.t.local:8443/f/web@sha256:{digest}")
            )
            .is_ok()
        );
        for bad in [
            "registry.t.local/f/web:latest".to_string(),
            "registry.t.local/f/web".to_string(),
            format!("@sha256:{digest}"),
            format!("f/web@sha256:{}", "A".repeat(64)),
            format!("f/web@sha256:{}", "a".repeat(63)),
        ] {
            let e = check_pinned("web", &bad).unwrap_err().to_string();
            assert!(e.contains("not pinned by digest"), "{bad}: {e}");
        }
        assert!(check_pinned("", &format!("f/web@sha256:{digest}")).is_err());
    }
}
