//! The registry's token endpoint, as Docker's token authentication specifies it:
//! the registry answers an unauthenticated client 401 with
//! `WWW-Authenticate: Bearer realm=<this endpoint>,service=..,scope=..`; the client
//! asks here with HTTP Basic credentials and the scopes it wants, and gets a JWT
//! listing the actions it may take, which the registry verifies against Turtle's
//! root (the `x5c` chain in the token's header).
//!
//! Who may do what: `admin`:<admin-token> anything asked for; `builder`:<builder-token>
//! pull and push on every repository; `<device uuid>`:<device key> pull on the
//! repositories of its fleet (`<fleet name>/...`). Actions a caller may not take
//! are dropped from the answer, not refused; a request with no scope (`docker
//! login`) gets a token with empty access. Bad credentials are 401; a scope
//! outside Distribution's grammar is 400 (`scope`), so a granted name is read by
//! the registry exactly as it was checked here.
//!
//! # Revocation
//!
//! A token is a JWT the registry verifies offline, so it cannot be taken back.
//! What bounds a deleted device: its key is refused here at once (it is looked
//! up at every request), and a device's token lives [`DEVICE_TOKEN_LIFETIME_SECS`]
//! (60 s, the least Docker's client takes: it treats a shorter `expires_in` as
//! 60 s and would present a token the registry already refuses), against five
//! minutes for the admin and the builder, whose large pushes and pulls gain from
//! fewer renewals. The registry adds 60 s of leeway for clock skew to `exp`, so
//! a deleted device can use a token it already holds for at most about two
//! minutes, and only for pulls of its own fleet's images.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use turtle_fleet_api::RegistryToken;

use turtle_fleet_api::FleetName;

use crate::auth::{self, basic};
use crate::error::{ApiError, ApiResult, BASIC_CHALLENGE};
use crate::extract::QueryParams;
use crate::respond::rfc3339;
use crate::scope::{self, Scope};
use crate::secret;
use crate::state::AppState;

/// The admin's and the builder's tokens live five minutes.
pub const TOKEN_LIFETIME_SECS: u64 = 300;
/// A device's tokens live a minute (see "Revocation" above).
pub const DEVICE_TOKEN_LIFETIME_SECS: u64 = 60;

/// Parses the `scope` parameters; one parameter may hold several scopes
/// separated by spaces, and all of them together at most
/// [`scope::MAX_SCOPES`].
pub fn parse_scopes<'a>(values: impl IntoIterator<Item = &'a str>) -> ApiResult<Vec<Scope>> {
    let mut scopes = Vec::new();
    for value in values {
        scopes.extend(scope::parse(value).map_err(|e| ApiError::BadRequest(e.to_string()))?);
        if scopes.len() > scope::MAX_SCOPES {
            return Err(ApiError::BadRequest(scope::ScopeError::TooMany.to_string()));
        }
    }
    Ok(scopes)
}

/// The claims of a registry token, as Docker's token authentication reads them
/// (fields in alphabetical order, as the claims have always been written).
#[derive(Debug, Serialize)]
struct Claims<'a> {
    access: Vec<Access<'a>>,
    aud: &'a str,
    exp: u64,
    iat: u64,
    iss: &'a str,
    jti: String,
    nbf: u64,
    sub: &'a str,
}

/// One entry of `access`: the actions granted on one resource.
#[derive(Debug, Serialize)]
struct Access<'a> {
    actions: Vec<String>,
    name: &'a str,
    #[serde(rename = "type")]
    kind: String,
}

/// Who asks for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Builder,
    /// A device of the fleet with this name.
    Device {
        fleet: FleetName,
    },
}

impl Caller {
    /// How long this caller's tokens live.
    pub fn token_lifetime_secs(&self) -> u64 {
        match self {
            Caller::Admin | Caller::Builder => TOKEN_LIFETIME_SECS,
            Caller::Device { .. } => DEVICE_TOKEN_LIFETIME_SECS,
        }
    }
}

/// The actions of `scope` that `caller` may take, in the order asked, once each.
pub fn grant(caller: &Caller, scope: &Scope) -> Vec<String> {
    let is_repository = scope.is_repository();
    // The name parsed by the grammar: its first component is the fleet's
    // name exactly, and an image's name follows.
    let in_fleet = |fleet: &FleetName| {
        let mut components = scope.name.components();
        components.next() == Some(fleet.as_str()) && components.next().is_some()
    };
    let allowed = |action: &str| match caller {
        Caller::Admin => true,
        Caller::Builder => is_repository && (action == "pull" || action == "push"),
        Caller::Device { fleet } => is_repository && action == "pull" && in_fleet(fleet),
    };
    let mut granted: Vec<String> = Vec::new();
    for action in &scope.actions {
        if allowed(action) && !granted.contains(action) {
            granted.push(action.clone());
        }
    }
    granted
}

const CREDENTIALS_HINT: &str = "send HTTP Basic credentials: admin:<admin-token>, \
                                builder:<builder-token> or <device uuid>:<device key>";

fn refused(why: &str) -> ApiError {
    ApiError::Unauthorized {
        message: format!("{why}: {CREDENTIALS_HINT}"),
        challenge: BASIC_CHALLENGE,
    }
}

/// Checks HTTP Basic credentials.
async fn caller(state: &AppState, headers: &HeaderMap) -> ApiResult<(String, Caller)> {
    let Some((user, password)) = basic(headers) else {
        return Err(refused("no credentials"));
    };
    let config = &state.config;
    let caller = match user.as_str() {
        "admin" if config.admin.matches(&password) => Caller::Admin,
        "builder" if config.builder.matches(&password) => Caller::Builder,
        "admin" | "builder" => return Err(refused(&format!("wrong password for {user}"))),
        uuid => match auth::device_by_key(state, &password).await? {
            Some(device) if device.uuid.eq_ignore_ascii_case(uuid) => Caller::Device {
                fleet: device.fleet_name,
            },
            _ => {
                return Err(refused(&format!(
                    "unknown user {uuid:?} or wrong device key"
                )));
            }
        },
    };
    Ok((user, caller))
}

/// `GET /v1/registry/token?service=&scope=&account=`.
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    QueryParams(params): QueryParams<Vec<(String, String)>>,
) -> ApiResult<Json<RegistryToken>> {
    let (user, caller) = caller(&state, &headers).await?;
    let config = &state.config;
    for (key, value) in &params {
        if key == "service" && *value != config.registry_service {
            return Err(ApiError::BadRequest(format!(
                "service {value:?} is not this stack's registry {:?}: configure the \
                 registry's auth.token.service as {:?} (or start the api with \
                 --registry-service {value})",
                config.registry_service, config.registry_service
            )));
        }
    }
    let scopes = parse_scopes(
        params
            .iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v.as_str()),
    )?;
    let access = scopes
        .iter()
        .map(|scope| Access {
            actions: grant(&caller, scope),
            name: scope.name.as_str(),
            kind: scope.kind_text(),
        })
        .collect();
    let now = SystemTime::now();
    let iat = now
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let lifetime = caller.token_lifetime_secs();
    let claims = Claims {
        access,
        aud: &config.registry_service,
        exp: iat + lifetime,
        iat,
        iss: &config.issuer,
        jti: secret::new_key(),
        nbf: iat,
        sub: &user,
    };
    let token = config
        .signer
        .sign(&claims)
        .map_err(|e| ApiError::Internal(format!("signing a registry token: {e}")))?;
    Ok(Json(RegistryToken {
        access_token: token.clone(),
        expires_in: lifetime,
        issued_at: rfc3339(now.into()),
        token,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scope(text: &str) -> Scope {
        parse_scopes([text]).unwrap().remove(0)
    }

    #[test]
    fn scope_parameters_add_up() {
        let scopes = parse_scopes([
            "repository:f/web:pull,push",
            "repository:f/db:pull registry:catalog:*",
        ])
        .unwrap();
        assert_eq!(scopes.len(), 3);
        assert!(parse_scopes(Vec::<&str>::new()).unwrap().is_empty());
        let e = parse_scopes(["repository:f/../g/db:pull"]).unwrap_err();
        assert!(matches!(e, ApiError::BadRequest(_)), "{e}");
        let half = vec!["repository:f/web:pull"; scope::MAX_SCOPES / 2 + 1].join(" ");
        let e = parse_scopes([half.as_str(), half.as_str()]).unwrap_err();
        assert!(e.to_string().contains("more than"), "{e}");
    }

    /// The claims are written with their keys sorted, as they were when they were
    /// a JSON map (the registry does not care; a token's bytes stay the same).
    #[test]
    fn claims_are_written_in_sorted_order() {
        let claims = Claims {
            access: vec![Access {
                actions: vec!["pull".into()],
                name: "f/web",
                kind: "repository".into(),
            }],
            aud: "registry.t.local",
            exp: 2,
            iat: 1,
            iss: "turtle-api",
            jti: "j".into(),
            nbf: 1,
            sub: "admin",
        };
        let direct = serde_json::to_string(&claims).unwrap();
        let sorted = serde_json::to_string(&serde_json::to_value(&claims).unwrap()).unwrap();
        assert_eq!(direct, sorted);
        assert!(direct.contains(r#"{"actions":["pull"],"name":"f/web","type":"repository"}"#));
    }

    #[test]
    fn grants_follow_the_caller() {
        let push = scope("repository:f/web:pull,push,pull");
        let catalog = scope("registry:catalog:*");
        let admin = Caller::Admin;
        let builder = Caller::Builder;
        let device = Caller::Device {
            fleet: FleetName::parse("f").unwrap(),
        };
        assert_eq!(grant(&admin, &push), vec!["pull", "push"]);
        assert_eq!(grant(&admin, &catalog), vec!["*"]);
        assert_eq!(grant(&builder, &push), vec!["pull", "push"]);
        assert!(grant(&builder, &catalog).is_empty());
        assert_eq!(grant(&device, &push), vec!["pull"]);
        assert_eq!(
            grant(&device, &scope("repository(plugin):f/web:pull")),
            vec!["pull"]
        );
        assert!(grant(&device, &catalog).is_empty());
        assert!(grant(&device, &scope("repository:g/web:pull")).is_empty());
        assert!(grant(&device, &scope("repository:ff/web:pull")).is_empty());
        assert!(grant(&device, &scope("repository:f.x/web:pull")).is_empty());
        assert!(grant(&device, &scope("repository:f:pull")).is_empty());
        assert_eq!(device.token_lifetime_secs(), 60);
        assert_eq!(admin.token_lifetime_secs(), 300);
    }
}
