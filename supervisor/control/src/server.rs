//! The daemon's local HTTP API, served on a unix socket (mode 0600).
//!
//! Routes (JSON unless said otherwise; streams are newline-delimited JSON or text):
//!
//! | method | path | body / query | answer |
//! |---|---|---|---|
//! | GET | `/v1/ping` | | `Ping`: `{"version", "build_id", "resyncs"}` |
//! | GET | `/v1/projects` | | `[ProjectStatus]` |
//! | GET | `/v1/projects/{name}` | | `ProjectStatus` |
//! | PUT | `/v1/projects/{name}` | `Project`; `?build=true&wait=SECS` | stream of `ApplyLine`: `{"event": ...}` lines, then `{"done": Report}` or `{"error": {"kind", "message"}}` |
//! | POST | `/v1/projects/{name}/plan` | `Project` | `Plan` |
//! | DELETE | `/v1/projects/{name}` | `?volumes=true` | `DownReport` |
//! | POST | `/v1/projects/{name}/services/{service}/{action}` | action: start, stop, restart | `[container]` |
//! | GET | `/v1/projects/{name}/logs` | `?follow&tail=N&services=a,b` | text stream |
//! | GET | `/v1/events` | `?follow&after=ID&limit=N` | stream of `EventRecord` |
//! | GET | `/v1/names` | | `MdnsStatus`: names published over mDNS, conflicts |
//! | GET | `/v1/device` | | `DeviceReport`: profile, swap, zram, temperatures, shedding |
//!
//! Every route calls one method of [`Control`]; nothing here decides
//! anything. Errors answer `{"error": "..."}` with the status of their
//! kind ([`ControlError::status`]).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::wire::{ApplyLine, EventsQuery, LogsQuery, Project, ServiceAction, UpOptions};
use crate::{Control, ControlError};

impl IntoResponse for ControlError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::json!({ "error": self.to_string() });
        (status, Json(body)).into_response()
    }
}

type App<C> = State<Arc<C>>;
type Answer = Result<Response, ControlError>;

/// The routes, each on one method of `control`.
pub fn router<C: Control + 'static>(control: Arc<C>) -> Router {
    Router::new()
        .route("/v1/ping", get(ping::<C>))
        .route("/v1/projects", get(list_projects::<C>))
        .route(
            "/v1/projects/{name}",
            get(project_status::<C>)
                .put(apply_project::<C>)
                .delete(down::<C>),
        )
        .route("/v1/projects/{name}/plan", post(plan_project::<C>))
        .route(
            "/v1/projects/{name}/services/{service}/{action}",
            post(service_action::<C>),
        )
        .route("/v1/projects/{name}/logs", get(logs::<C>))
        .route("/v1/events", get(events::<C>))
        .route("/v1/names", get(names::<C>))
        .route("/v1/device", get(device::<C>))
        .with_state(control)
}

/// Serves `control` on `listener` until `shutdown` resolves.
pub async fn serve<C: Control + 'static>(
    listener: tokio::net::UnixListener,
    control: Arc<C>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(control))
        .with_graceful_shutdown(shutdown)
        .await
}

/// Binds the API socket with mode 0600. A socket file left by a dead daemon is
/// replaced; a live one is an error.
pub fn bind(path: &std::path::Path) -> std::io::Result<tokio::net::UnixListener> {
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

async fn ping<C: Control>(State(c): App<C>) -> Answer {
    Ok(Json(c.ping().await?).into_response())
}

async fn names<C: Control>(State(c): App<C>) -> Answer {
    Ok(Json(c.names().await?).into_response())
}

async fn device<C: Control>(State(c): App<C>) -> Answer {
    Ok(Json(c.device().await?).into_response())
}

async fn list_projects<C: Control>(State(c): App<C>) -> Answer {
    Ok(Json(c.projects().await?).into_response())
}

async fn project_status<C: Control>(State(c): App<C>, UrlPath(name): UrlPath<String>) -> Answer {
    Ok(Json(c.status(&name).await?).into_response())
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

async fn apply_project<C: Control + 'static>(
    State(c): App<C>,
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
        let progress = move |e| {
            let _ = events_tx.send(ndjson(&ApplyLine::Event(e)));
        };
        let line = match c.up(&project, &opts, &progress).await {
            Ok(report) => ApplyLine::Done(report),
            Err(e) => ApplyLine::Error(e),
        };
        let _ = tx.send(ndjson(&line));
    });
    let body = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(body))
        .expect("static response parts")
}

async fn plan_project<C: Control>(
    State(c): App<C>,
    UrlPath(name): UrlPath<String>,
    Json(mut project): Json<Project>,
) -> Answer {
    project.name = name;
    Ok(Json(c.plan(&project).await?).into_response())
}

#[derive(Deserialize)]
struct DownQuery {
    #[serde(default)]
    volumes: bool,
}

async fn down<C: Control>(
    State(c): App<C>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<DownQuery>,
) -> Answer {
    Ok(Json(c.down(&name, q.volumes).await?).into_response())
}

async fn service_action<C: Control>(
    State(c): App<C>,
    UrlPath((name, service, action)): UrlPath<(String, String, ServiceAction)>,
) -> Answer {
    Ok(Json(c.service_action(&name, &service, action).await?).into_response())
}

async fn logs<C: Control>(
    State(c): App<C>,
    UrlPath(name): UrlPath<String>,
    Query(q): Query<LogsQuery>,
) -> Answer {
    let lines = c.logs(&name, &q).await?;
    let body = lines.map(|l| match l {
        Ok(l) => Ok::<_, Infallible>(Bytes::from(l + "\n")),
        Err(e) => Ok(Bytes::from(format!("turtle: log stream failed: {e}\n"))),
    });
    Ok(Response::builder()
        .header("content-type", "text/plain; charset=utf-8")
        .body(Body::from_stream(body))
        .expect("static response parts"))
}

async fn events<C: Control>(State(c): App<C>, Query(q): Query<EventsQuery>) -> Answer {
    let events = c.events(&q).await?;
    // A failed read of the store ends the stream.
    let body = events
        .take_while(|e| std::future::ready(e.is_ok()))
        .map(|e| Ok::<_, Infallible>(ndjson(&e.expect("errors end the stream"))));
    Ok(Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(body))
        .expect("static response parts"))
}
