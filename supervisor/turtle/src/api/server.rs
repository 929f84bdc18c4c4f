//! The daemon's local HTTP API, served on a unix socket (mode 0600).
//!
//! Routes (JSON unless said otherwise; streams are newline-delimited JSON or text):
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | GET | `/v1/ping` | | `{"version", "resyncs"}` |
//! | GET | `/v1/projects` | | `[ProjectStatus]` |
//! | GET | `/v1/projects/{name}` | | `ProjectStatus` |
//! | PUT | `/v1/projects/{name}` | `Project`; `?build=true&wait=SECS` | stream of `ApplyLine` |
//! | POST | `/v1/projects/{name}/plan` | `Project` | `Plan` |
//! | DELETE | `/v1/projects/{name}` | `?volumes=true` | `DownReport` |
//! | POST | `/v1/projects/{name}/services/{service}/{action}` | action: start, stop, restart | `[container]` |
//! | GET | `/v1/projects/{name}/logs` | `?follow&tail=N&service=S` | text stream |
//! | GET | `/v1/events` | `?follow&after=ID&limit=N` | stream of `EventRecord` |
//! | GET | `/v1/names` | | `MdnsStatus`: names published over mDNS, conflicts |
//! | GET | `/v1/device` | | `DeviceReport`: profile, swap, zram, temperatures, shedding |
//!
//! Errors answer `{"error": "..."}` with a status chosen per error variant.

use std::convert::Infallible;
use std::path::Path;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use turtle_compose::Project;

use crate::apply::{self, Report};
use crate::device::DeviceError;
use crate::engine::{Engine, EngineError};
use crate::engine_trust::EngineTrustError;
use crate::plan::Mode;
use crate::secrets::SecretError;
use crate::store::StoreError;
use crate::supervisor::{Error, ServiceAction, Supervisor, UpOptions};
use crate::trust::TrustError;

/// One line of the `PUT /v1/projects/{name}` stream.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApplyLine {
    Event(serde_json::Value),
    Done(Report),
    Error(String),
}

struct ApiError(Error);

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        Self(e)
    }
}

/// Every error variant gets its status here, explicitly.
fn status_of(e: &Error) -> StatusCode {
    match e {
        Error::Engine(EngineError::Unreachable { .. }) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Engine(EngineError::NotFound { .. }) => StatusCode::NOT_FOUND,
        Error::Engine(EngineError::Conflict { .. }) => StatusCode::CONFLICT,
        Error::Engine(EngineError::Api { .. }) => StatusCode::BAD_GATEWAY,
        Error::Engine(EngineError::Build { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Engine(EngineError::Other { .. }) => StatusCode::BAD_GATEWAY,
        Error::Plan(_) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Apply(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Error::Store(
            StoreError::Dir { .. } | StoreError::Sql { .. } | StoreError::Corrupt { .. },
        ) => StatusCode::INTERNAL_SERVER_ERROR,
        Error::UnknownProject(_) | Error::UnknownService { .. } => StatusCode::NOT_FOUND,
        Error::Incomplete(_) => StatusCode::INTERNAL_SERVER_ERROR,
        Error::Trust(TrustError::OutsideDomain { .. } | TrustError::BadName { .. }) => {
            StatusCode::UNPROCESSABLE_ENTITY
        }
        Error::Trust(TrustError::Certs(_) | TrustError::Io { .. }) => {
            StatusCode::INTERNAL_SERVER_ERROR
        }
        Error::Device(DeviceError::Priority { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Device(
            DeviceError::Profile(_) | DeviceError::Detect(_) | DeviceError::System(_),
        ) => StatusCode::INTERNAL_SERVER_ERROR,
        Error::Secret(SecretError::BadName { .. }) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::Secret(
            SecretError::Write { .. }
            | SecretError::Read { .. }
            | SecretError::Unknown { .. }
            | SecretError::Signer { .. },
        ) => StatusCode::INTERNAL_SERVER_ERROR,
        Error::EngineTrust(
            EngineTrustError::Names(_)
            | EngineTrustError::NoPort { .. }
            | EngineTrustError::NotOurs { .. },
        ) => StatusCode::UNPROCESSABLE_ENTITY,
        Error::EngineTrust(EngineTrustError::Io { .. }) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.0.to_string() });
        (status_of(&self.0), Json(body)).into_response()
    }
}

type App<E> = State<Arc<Supervisor<E>>>;

pub fn router<E: Engine>(sup: Arc<Supervisor<E>>) -> Router {
    Router::new()
        .route("/v1/ping", get(ping::<E>))
        .route("/v1/projects", get(list_projects::<E>))
        .route(
            "/v1/projects/{name}",
            get(project_status::<E>)
                .put(apply_project::<E>)
                .delete(down::<E>),
        )
        .route("/v1/projects/{name}/plan", post(plan_project::<E>))
        .route(
            "/v1/projects/{name}/services/{service}/{action}",
            post(service_action::<E>),
        )
        .route("/v1/projects/{name}/logs", get(logs::<E>))
        .route("/v1/events", get(events::<E>))
        .route("/v1/names", get(names::<E>))
        .route("/v1/device", get(device::<E>))
        .with_state(sup)
}

/// Binds `path` (replacing a stale socket), mode 0600, and serves until
/// `shutdown` resolves.
pub async fn serve<E: Engine>(
    sup: Arc<Supervisor<E>>,
    path: &Path,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener = bind(path)?;
    axum::serve(listener, router(sup))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds the API socket with mode 0600. A socket file left by a dead daemon is
/// replaced; a live one is an error.
pub fn bind(path: &Path) -> std::io::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent()
        && !dir.exists()
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                format!(
                    "{} is in use: is another turtle daemon running?",
                    path.display()
                ),
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = tokio::net::UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

async fn ping<E: Engine>(State(sup): App<E>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "version": env!("CARGO_PKG_VERSION"),
        "build_id": crate::images::build_id(),
        "resyncs": sup.resyncs(),
    }))
}

async fn names<E: Engine>(State(sup): App<E>) -> Json<crate::mdns::MdnsStatus> {
    Json(sup.announcer().status())
}

async fn device<E: Engine>(State(sup): App<E>) -> Response {
    match sup.shedder() {
        Some(s) => Json(s.report()).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(serde_json::json!({ "error": "this supervisor has no device profile" })),
        )
            .into_response(),
    }
}

async fn list_projects<E: Engine>(State(sup): App<E>) -> Result<Response, ApiError> {
    let mut out = Vec::new();
    for name in sup.project_names().await? {
        match sup.status(&name).await {
            Ok(s) => out.push(s),
            Err(Error::UnknownProject(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Json(out).into_response())
}

async fn project_status<E: Engine>(
    State(sup): App<E>,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, ApiError> {
    Ok(Json(sup.status(&name).await?).into_response())
}

fn ndjson<T: Serialize>(v: &T) -> Bytes {
    let mut line = serde_json::to_vec(v).expect("API values always serialize");
    line.push(b'\n');
    line.into()
}

#[derive(Deserialize)]
struct UpQuery {
    #[serde(default)]
    build: bool,
    /// Seconds to wait for every service to be ready.
    wait: Option<u64>,
}

async fn apply_project<E: Engine>(
    State(sup): App<E>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<UpQuery>,
    Json(mut project): Json<Project>,
) -> Response {
    project.name = name;
    let opts = UpOptions {
        build: q.build,
        wait: q.wait.map(std::time::Duration::from_secs),
    };
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        let events_tx = tx.clone();
        let sink = move |e: apply::Event| {
            let v = serde_json::to_value(&e).unwrap_or_default();
            let _ = events_tx.send(ndjson(&ApplyLine::Event(v)));
        };
        let line = match sup.up(&project, &opts, &sink).await {
            Ok(report) => ApplyLine::Done(report),
            Err(e) => ApplyLine::Error(e.to_string()),
        };
        let _ = tx.send(ndjson(&line));
    });
    let body = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(body))
        .expect("static response parts")
}

async fn plan_project<E: Engine>(
    State(sup): App<E>,
    UrlPath(name): UrlPath<String>,
    Json(mut project): Json<Project>,
) -> Result<Response, ApiError> {
    project.name = name;
    Ok(Json(sup.plan(&project, Mode::Up).await?).into_response())
}

#[derive(Deserialize)]
struct DownQuery {
    #[serde(default)]
    volumes: bool,
}

async fn down<E: Engine>(
    State(sup): App<E>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<DownQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(sup.down(&name, q.volumes).await?).into_response())
}

async fn service_action<E: Engine>(
    State(sup): App<E>,
    UrlPath((name, service, action)): UrlPath<(String, String, ServiceAction)>,
) -> Result<Response, ApiError> {
    Ok(Json(sup.service_action(&name, &service, action).await?).into_response())
}

#[derive(Deserialize)]
struct LogsQuery {
    #[serde(default)]
    follow: bool,
    tail: Option<u64>,
    /// Comma-separated service names.
    #[serde(default)]
    services: String,
}

async fn logs<E: Engine>(
    State(sup): App<E>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<LogsQuery>,
) -> Result<Response, ApiError> {
    let services: Vec<String> = q
        .services
        .split(',')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let lines = crate::logs::lines(sup.engine(), &name, &services, q.follow, q.tail)
        .await
        .map_err(Error::from)?;
    // The stream borrows nothing from the request: hand it to the body.
    let body = lines.map(|l| match l {
        Ok(l) => Ok::<_, Infallible>(Bytes::from(l + "\n")),
        Err(e) => Ok(Bytes::from(format!("turtle: log stream failed: {e}\n"))),
    });
    Ok(Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from_stream(body))
        .expect("static response parts"))
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    follow: bool,
    after: Option<i64>,
    limit: Option<i64>,
}

async fn events<E: Engine>(
    State(sup): App<E>,
    Query(q): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let mut live = q.follow.then(|| sup.subscribe());
    let limit = q.limit.unwrap_or(100);
    let past = match q.after {
        Some(after) => sup.store().events_after(after, limit),
        None => sup.store().recent_events(limit),
    }
    .map_err(Error::from)?;
    let last = past.last().map(|e| e.id).unwrap_or(q.after.unwrap_or(0));
    let head =
        futures_util::stream::iter(past.into_iter().map(|e| Ok::<_, Infallible>(ndjson(&e))));
    let body: crate::engine::BoxStream<Result<Bytes, Infallible>> = match live.take() {
        None => Box::pin(head),
        Some(rx) => {
            let tail =
                tokio_stream::wrappers::BroadcastStream::new(rx).filter_map(move |e| async move {
                    match e {
                        Ok(e) if e.id > last => Some(Ok(ndjson(&e))),
                        _ => None,
                    }
                });
            Box::pin(head.chain(tail))
        }
    };
    Ok(Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(body))
        .expect("static response parts"))
}
