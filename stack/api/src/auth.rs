//! Who is calling: bearer tokens (admin, builder, vpn), device keys, and HTTP Basic
//! for the registry token endpoint. Each extractor answers 401 with
//! `WWW-Authenticate` and a message saying which credential the route wants.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use turtle_fleet_api::FleetName;

use crate::error::ApiError;
use crate::secret;
use crate::state::AppState;

/// A registered device, as its key identifies it.
#[derive(Debug, Clone)]
pub struct Device {
    pub uuid: String,
    pub fleet_id: i64,
    pub fleet_name: FleetName,
}

/// Any caller the API knows.
#[derive(Debug, Clone)]
pub enum Principal {
    Admin,
    Builder,
    Vpn,
    Device(Device),
}

const ADMIN_HINT: &str = "this route needs the admin token: send `Authorization: Bearer \
                          <admin-token>` (on the box: `turtle secret admin-token`)";
const DEVICE_HINT: &str = "this route needs a device key: send `Authorization: Bearer \
                           <device-key>` as POST /v1/devices/register returned it";
const VPN_HINT: &str = "this route needs the vpn token or the admin token: send \
                        `Authorization: Bearer <vpn-token>`";
const ANY_HINT: &str = "this route needs a credential: send `Authorization: Bearer <token>` \
                        with the admin, builder or vpn token or a device key";

/// The bearer token of a request, if it has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// `(user, password)` of an HTTP Basic `Authorization` header.
pub fn basic(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

/// The shared token a bearer value is, if any.
fn shared(state: &AppState, token: &str) -> Option<Principal> {
    let c = &state.config;
    if c.admin.matches(token) {
        Some(Principal::Admin)
    } else if c.builder.matches(token) {
        Some(Principal::Builder)
    } else if c.vpn_token.matches(token) {
        Some(Principal::Vpn)
    } else {
        None
    }
}

/// How stale `last_seen` may get before a call writes it again: a device
/// calling (or refused by a rate limit) many times a second costs one write
/// per this long, not one per call.
const SEEN_PRECISION_SECS: i64 = 10;

/// The device whose key this is (by the key's SHA-256), marking it seen. A
/// deleted device's key finds nothing: revocation is a row gone, checked at
/// every call.
pub async fn device_by_key(state: &AppState, key: &str) -> Result<Option<Device>, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "WITH d AS (
                 SELECT d.uuid, d.fleet_id, f.name FROM devices d JOIN fleets f ON f.id = d.fleet_id
                 WHERE d.key_sha256 = $1
             ), seen AS (
                 UPDATE devices SET last_seen = now()
                 WHERE uuid = (SELECT uuid FROM d)
                   AND (last_seen IS NULL OR last_seen < now() - $2::bigint * interval '1 second')
             )
             SELECT uuid::text, fleet_id, name FROM d",
            &[&secret::sha256(key).as_slice(), &SEEN_PRECISION_SECS],
        )
        .await?;
    row.map(|r| {
        Ok(Device {
            uuid: r.get(0),
            fleet_id: r.get(1),
            fleet_name: crate::fleets::stored_name(r.get(2))?,
        })
    })
    .transpose()
}

/// The answer to a device deleted while its call was under way.
pub fn revoked() -> ApiError {
    ApiError::unauthorized(format!(
        "unknown device key (the device was deleted): {DEVICE_HINT}"
    ))
}

/// The admin token was presented.
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(&parts.headers) {
            Some(t) if state.config.admin.matches(t) => Ok(Admin),
            _ => Err(ApiError::unauthorized(ADMIN_HINT)),
        }
    }
}

/// A device key was presented.
pub struct DeviceAuth(pub Device);

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(key) = bearer(&parts.headers) else {
            return Err(ApiError::unauthorized(DEVICE_HINT));
        };
        match device_by_key(state, key).await? {
            Some(d) => Ok(DeviceAuth(d)),
            None => Err(ApiError::unauthorized(format!(
                "unknown device key: {DEVICE_HINT}"
            ))),
        }
    }
}

/// The vpn token or the admin token was presented.
pub struct VpnOrAdmin;

impl FromRequestParts<AppState> for VpnOrAdmin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match bearer(&parts.headers).and_then(|t| shared(state, t)) {
            Some(Principal::Vpn | Principal::Admin) => Ok(VpnOrAdmin),
            _ => Err(ApiError::unauthorized(VPN_HINT)),
        }
    }
}

/// Any credential the API knows.
pub struct AnyCaller(pub Principal);

impl FromRequestParts<AppState> for AnyCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = bearer(&parts.headers) else {
            return Err(ApiError::unauthorized(ANY_HINT));
        };
        if let Some(p) = shared(state, token) {
            return Ok(AnyCaller(p));
        }
        match device_by_key(state, token).await? {
            Some(d) => Ok(AnyCaller(Principal::Device(d))),
            None => Err(ApiError::unauthorized(format!("unknown token: {ANY_HINT}"))),
        }
    }
}
