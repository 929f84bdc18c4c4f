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
//! login`) gets a token with empty access. Bad credentials are 401.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Serialize;
use turtle_fleet_api::RegistryToken;

use crate::auth::{self, basic};
use crate::error::{ApiError, ApiResult, BASIC_CHALLENGE};
use crate::extract::QueryParams;
use crate::respond::rfc3339;
use crate::secret;
use crate::state::AppState;

/// Tokens live five minutes.
pub const TOKEN_LIFETIME_SECS: u64 = 300;

/// One requested scope: `<type>:<name>:<action>,<action>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// `repository`, `repository(plugin)`, `registry`, ...
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// Parses `scope` parameters; one parameter may hold several scopes separated by
/// spaces.
pub fn parse_scopes<'a>(values: impl IntoIterator<Item = &'a str>) -> ApiResult<Vec<Scope>> {
    let mut scopes = Vec::new();
    for item in values.into_iter().flat_map(str::split_whitespace) {
        let parsed = item.split_once(':').and_then(|(kind, rest)| {
            let (name, actions) = rest.rsplit_once(':')?;
            (!kind.is_empty() && !name.is_empty()).then(|| Scope {
                kind: kind.to_string(),
                name: name.to_string(),
                actions: actions
                    .split(',')
                    .filter(|a| !a.is_empty())
                    .map(str::to_string)
                    .collect(),
            })
        });
        scopes.push(parsed.ok_or_else(|| {
            ApiError::BadRequest(format!(
                "scope {item:?} is not <type>:<name>:<actions>, such as \
                 repository:fleet/web:pull,push"
            ))
        })?);
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
    kind: &'a str,
}

/// Who asks for a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Admin,
    Builder,
    /// A device of the fleet with this name.
    Device {
        fleet: String,
    },
}

/// The actions of `scope` that `caller` may take, in the order asked, once each.
pub fn grant(caller: &Caller, scope: &Scope) -> Vec<String> {
    let is_repository = scope.kind == "repository" || scope.kind.starts_with("repository(");
    let allowed = |action: &str| match caller {
        Caller::Admin => true,
        Caller::Builder => is_repository && (action == "pull" || action == "push"),
        Caller::Device { fleet } => {
            is_repository
                && action == "pull"
                && scope
                    .name
                    .strip_prefix(fleet.as_str())
                    .is_some_and(|rest| rest.starts_with('/') && rest.len() > 1)
        }
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
            name: &scope.name,
            kind: &scope.kind,
        })
        .collect();
    let now = SystemTime::now();
    let iat = now
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs();
    let claims = Claims {
        access,
        aud: &config.registry_service,
        exp: iat + TOKEN_LIFETIME_SECS,
        iat,
        iss: &config.issuer,
        jti: secret::new_key(),
        nbf: iat,
        sub: &user,
    };
    let token = config
        .signer
        .sign(&claims)
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(RegistryToken {
        access_token: token.clone(),
        expires_in: TOKEN_LIFETIME_SECS,
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
    fn scopes_parse_alone_and_space_separated() {
        let scopes = parse_scopes([
            "repository:f/web:pull,push",
            "repository:f/db:pull registry:catalog:*",
        ])
        .unwrap();
        assert_eq!(scopes.len(), 3);
        assert_eq!(
            scopes[0],
            Scope {
                kind: "repository".into(),
                name: "f/web".into(),
                actions: vec!["pull".into(), "push".into()],
            }
        );
        assert_eq!(scopes[2].kind, "registry");
        assert_eq!(scopes[2].name, "catalog");
        assert_eq!(scopes[2].actions, vec!["*"]);
        assert_eq!(
            scope("repository(plugin):f/x:pull").kind,
            "repository(plugin)"
        );
        assert!(parse_scopes(Vec::<&str>::new()).unwrap().is_empty());
        for bad in [
            "repository",
            "repository:f/web",
            ":f/web:pull",
            "repository::pull",
        ] {
            assert!(parse_scopes([bad]).is_err(), "{bad}");
        }
    }

    /// The claims are written with their keys sorted, as they were when they were
    /// a JSON map (the registry does not care; a token's bytes stay the same).
    #[test]
    fn claims_are_written_in_sorted_order() {
        let claims = Claims {
            access: vec![Access {
                actions: vec!["pull".into()],
                name: "f/web",
                kind: "repository",
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
        let device = Caller::Device { fleet: "f".into() };
        assert_eq!(grant(&admin, &push), vec!["pull", "push"]);
        assert_eq!(grant(&admin, &catalog), vec!["*"]);
        assert_eq!(grant(&builder, &push), vec!["pull", "push"]);
        assert!(grant(&builder, &catalog).is_empty());
        assert_eq!(grant(&device, &push), vec!["pull"]);
        assert!(grant(&device, &catalog).is_empty());
        assert!(grant(&device, &scope("repository:g/web:pull")).is_empty());
        assert!(grant(&device, &scope("repository:ff/web:pull")).is_empty());
        assert!(grant(&device, &scope("repository:f:pull")).is_empty());
        assert!(grant(&device, &scope("repository:f/:pull")).is_empty());
    }
}
