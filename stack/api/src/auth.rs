//! Who is calling: bearer tokens (admin, builder, vpn), device keys, and HTTP Basic
//! for the registry token endpoint. Each extractor answers 401 with
//! `WWW-Authenticate` and a message saying which credential the route wants.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::error::ApiError;
use crate::secret;
use crate::state::AppState;

/// A registered device, as its key identifies it.
#[derive(Debug, Clone)]
pub struct Device {
    pub uuid: String,
    pub fleet_id: i64,
    pub fleet_name: String,
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

/// The device whose key this is (by the key's SHA-256), marking it seen.
pub async fn device_by_key(state: &AppState, key: &str) -> Result<Option<Device>, ApiError> {
    let client = state.pool.get().await?;
    let row = client
        .query_opt(
            "UPDATE devices d SET last_seen = now() FROM fleets f
             WHERE d.key_sha256 = $1 AND f.id = d.fleet_id
             RETURNING d.uuid::text, d.fleet_id, f.name",
            &[&secret::sha256(key).as_slice()],
        )
        .await?;
    Ok(row.map(|r| Device {
        uuid: r.get(0),
        fleet_id: r.get(1),
        fleet_name: r.get(2),
    }))
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
