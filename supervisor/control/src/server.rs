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
//! | POST | `/v1/projects/{name}/releases` | `PushRequest` | stream of `ReleaseLine`, ending in `{"done": Release}` or `{"error"}` |
//! | GET | `/v1/projects/{name}/releases` | | `[Release]`, newest first |
//! | POST | `/v1/projects/{name}/rollback` | `RollbackRequest` | stream of `ReleaseLine` |
//! | DELETE | `/v1/projects/{name}` | `?volumes=true` | `DownReport` |
//! | POST | `/v1/projects/{name}/services/{service}/{action}` | action: start, stop, restart | `[container]` |
//! | POST | `/v1/projects/{name}/services/{service}/exec` | `ExecRequest` | `ExecResult`: exit code, stdout, stderr |
//! | GET | `/v1/projects/{name}/logs` | `?follow&tail=N&services=a,b` | text stream |
//! | GET | `/v1/events` | `?follow&after=ID&limit=N` | stream of `EventRecord` |
//! | GET | `/v1/names` | | `MdnsStatus`: names published over mDNS, conflicts |
//! | GET | `/v1/device` | | `DeviceReport`: profile, swap, zram, temperatures, shedding |
//!
//! Every route calls one method of [`Control`]; nothing here decides
//! anything. Errors answer `{"error": "..."}` with the status of their
//! kind ([`ControlError::status`]).
//!
//! The names in a path (`{name}`, `{service}`) and the project in a body
//! (its name and its services' names) are parsed first: one that is not a
//! valid name is refused with 422 and the rule it breaks, and nothing is
//! called. The body's project takes the name in the path.

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

use crate::wire::{
    ApplyLine, EventsQuery, ExecRequest, LogsQuery, Project, ProjectName, PushRequest, Release,
    ReleaseLine, RollbackRequest, ServiceAction, ServiceName, UpOptions,
};
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
            "/v1/projects/{name}/releases",
            get(releases::<C>).post(push::<C>),
        )
        .route("/v1/projects/{name}/rollback", post(rollback::<C>))
        .route(
            "/v1/projects/{name}/services/{service}/exec",
            post(exec::<C>),
        )
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

/// The routes a device's daemon serves its fleet's operator over the VPN
/// (`turtle devices ps|logs|exec`): who answers, what runs and its
/// releases, the output, a command in a container, the box's facts.
/// Nothing that changes what runs (up, push, down) is among them: the
/// fleet changes that through releases.
pub fn operator_router<C: Control + 'static>(control: Arc<C>) -> Router {
    Router::new()
        .route("/v1/ping", get(ping::<C>))
        .route("/v1/projects", get(list_projects::<C>))
        .route("/v1/projects/{name}", get(project_status::<C>))
        .route("/v1/projects/{name}/releases", get(releases::<C>))
        .route(
            "/v1/projects/{name}/services/{service}/exec",
            post(exec::<C>),
        )
        .route("/v1/projects/{name}/logs", get(logs::<C>))
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

/// A name in the request's path, parsed before anything is called.
fn name<T: std::str::FromStr<Err = turtle_compose::NameError>>(
    raw: &str,
) -> Result<T, ControlError> {
    raw.parse()
        .map_err(|e: turtle_compose::NameError| ControlError::Invalid(e.to_string()))
}

/// The project in a request's body, its names parsed with it, named by the
/// path.
fn body_project(name: ProjectName, body: &[u8]) -> Result<Project, ControlError> {
    let mut project: Project = serde_json::from_slice(body)
        .map_err(|e| ControlError::Invalid(format!("the body is not a valid project: {e}")))?;
    project.name = name;
    Ok(project)
}

async fn project_status<C: Control>(State(c): App<C>, UrlPath(raw): UrlPath<String>) -> Answer {
    Ok(Json(c.status(&name(&raw)?).await?).into_response())
}

fn ndjson<T: Serialize>(v: &T) -> Bytes {
    let mut line = serde_json::to_vec(v).expect("API values always serialize");
    line.push(b'\n');
    line.into()
}

async fn releases<C: Control>(State(c): App<C>, UrlPath(raw): UrlPath<String>) -> Answer {
    Ok(Json(c.releases(&name(&raw)?).await?).into_response())
}

/// Runs a push or rollback in its own task (a client that goes away does
/// not cut an update short) and streams its lines.
pub(crate) fn release_response<F>(run: F) -> Response
where
    F: for<'a> FnOnce(
            &'a (dyn Fn(crate::wire::Event) + Send + Sync),
        ) -> crate::BoxFuture<'a, Result<Release, ControlError>>
        + Send
        + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    tokio::spawn(async move {
        let events_tx = tx.clone();
        let progress = move |e| {
            let _ = events_tx.send(ndjson(&ReleaseLine::Event(e)));
        };
        let line = match run(&progress).await {
            Ok(r) => ReleaseLine::Done(Box::new(r)),
            Err(e) => ReleaseLine::Error(e),
        };
        let _ = tx.send(ndjson(&line));
    });
    let body = tokio_stream::wrappers::UnboundedReceiverStream::new(rx).map(Ok::<_, Infallible>);
    Response::builder()
        .header("content-type", "application/x-ndjson")
        .body(Body::from_stream(body))
        .expect("a valid response")
}

async fn push<C: Control + 'static>(
    State(c): App<C>,
    UrlPath(raw): UrlPath<String>,
    body: Bytes,
) -> Response {
    let request = name(&raw).and_then(|n| {
        let mut r: PushRequest = serde_json::from_slice(&body)
            .map_err(|e| ControlError::Invalid(format!("the body is not a valid push: {e}")))?;
        // The project's names are checked as in PUT /v1/projects/{name}.
        let json = serde_json::to_vec(&r.project).expect("projects always serialize");
        r.project = body_project(n, &json)?;
        Ok(r)
    });
    let r = match request {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    release_response(move |progress| {
        Box::pin(async move { c.push(&r.project, &r.options, progress).await })
    })
}

async fn rollback<C: Control + 'static>(
    State(c): App<C>,
    UrlPath(raw): UrlPath<String>,
    body: Bytes,
) -> Response {
    let request = name::<ProjectName>(&raw).and_then(|n| {
        let r: RollbackRequest = if body.is_empty() {
            RollbackRequest::default()
        } else {
            serde_json::from_slice(&body).map_err(|e| {
                ControlError::Invalid(format!("the body is not a valid rollback: {e}"))
            })?
        };
        Ok((n, r))
    });
    let (n, r) = match request {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    release_response(move |progress| {
        Box::pin(async move { c.rollback(&n, r.to.as_deref(), &r.options, progress).await })
    })
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
    UrlPath(raw): UrlPath<String>,
    Query(q): Query<UpQuery>,
    body: Bytes,
) -> Response {
    let project = match name(&raw).and_then(|n| body_project(n, &body)) {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
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
    UrlPath(raw): UrlPath<String>,
    body: Bytes,
) -> Answer {
    let project = body_project(name(&raw)?, &body)?;
    Ok(Json(c.plan(&project).await?).into_response())
}

#[derive(Deserialize)]
struct DownQuery {
    #[serde(default)]
    volumes: bool,
}

async fn down<C: Control>(
    State(c): App<C>,
    UrlPath(raw): UrlPath<String>,
    Query(q): Query<DownQuery>,
) -> Answer {
    Ok(Json(c.down(&name(&raw)?, q.volumes).await?).into_response())
}

async fn service_action<C: Control>(
    State(c): App<C>,
    UrlPath((project, service, action)): UrlPath<(String, String, ServiceAction)>,
) -> Answer {
    let (project, service): (ProjectName, ServiceName) = (name(&project)?, name(&service)?);
    Ok(Json(c.service_action(&project, &service, action).await?).into_response())
}

async fn exec<C: Control>(
    State(c): App<C>,
    UrlPath((project, service)): UrlPath<(String, String)>,
    body: Bytes,
) -> Answer {
    let (project, service): (ProjectName, ServiceName) = (name(&project)?, name(&service)?);
    let request: ExecRequest = serde_json::from_slice(&body)
        .map_err(|e| ControlError::Invalid(format!("the body is not a valid exec: {e}")))?;
    Ok(Json(c.exec(&project, &service, &request).await?).into_response())
}

async fn logs<C: Control>(
    State(c): App<C>,
    UrlPath(raw): UrlPath<String>,
    Query(q): Query<LogsQuery>,
) -> Answer {
    let lines = c.logs(&name(&raw)?, &q).await?;
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use turtle_engine::fake::FakeEngine;
    use turtle_runtime::secrets::Secrets;
    use turtle_runtime::store::Store;
    use turtle_runtime::supervisor::{BoxParts, Config, Supervisor};

    use super::*;

    /// One request on the socket: the status and the body.
    async fn request(socket: &Path, method: &str, path: &str, body: &str) -> (u16, String) {
        let mut s = tokio::net::UnixStream::connect(socket).await.unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: turtle\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        s.write_all(head.as_bytes()).await.unwrap();
        s.write_all(body.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        let status = out[9..12].parse().unwrap();
        let body = out.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }

    /// A project whose service `service` lists a secret, as JSON.
    fn body(name: &str, service: &str) -> String {
        serde_json::json!({
            "name": name,
            "working_dir": "/tmp",
            "services": {service: {
                "image": "busybox",
                "labels": {"io.turtle.secrets": "token"},
            }},
        })
        .to_string()
    }

    /// The attack of issue 11 and its variants on every route that takes a
    /// name: each is refused with 422 naming the rule, before the engine,
    /// the store or the file system is touched.
    #[tokio::test]
    async fn names_that_are_not_names_are_refused_before_anything_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).unwrap();
        let engine = Arc::new(FakeEngine::new());
        engine.add_image("busybox");
        let store = Arc::new(Store::open(&state).unwrap());
        let sup = Supervisor::with_box(
            engine.clone(),
            store.clone(),
            Config::default(),
            BoxParts {
                secrets: Some(Secrets::new(&state)),
                ..Default::default()
            },
        );
        let socket = tmp.path().join("turtle.sock");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(bind(&socket).unwrap(), sup, async {
            let _ = stopped.await;
        }));

        let attack = "..%2F..%2Fvictim";
        let refused = [
            (
                "PUT",
                format!("/v1/projects/{attack}"),
                body("ok", "web"),
                "invalid project name \"../../victim\"",
            ),
            (
                "PUT",
                "/v1/projects/ok".into(),
                body("ok", "../../victim"),
                "the body is not a valid project: invalid service name \"../../victim\"",
            ),
            (
                "PUT",
                "/v1/projects/ok".into(),
                body("../../victim", "web"),
                "invalid project name \"../../victim\"",
            ),
            (
                "PUT",
                "/v1/projects/..".into(),
                body("ok", "web"),
                "invalid project name \"..\"",
            ),
            (
                "POST",
                format!("/v1/projects/{attack}/plan"),
                body("ok", "web"),
                "invalid project name",
            ),
            (
                "GET",
                format!("/v1/projects/{attack}"),
                String::new(),
                "invalid project name",
            ),
            (
                "GET",
                format!("/v1/projects/{attack}/logs"),
                String::new(),
                "invalid project name",
            ),
            (
                "DELETE",
                format!("/v1/projects/{attack}"),
                String::new(),
                "invalid project name",
            ),
            (
                "POST",
                format!("/v1/projects/ok/services/{attack}/stop"),
                String::new(),
                "invalid service name \"../../victim\"",
            ),
            (
                "POST",
                "/v1/projects/ok/services/%2E%2E/stop".into(),
                String::new(),
                "invalid service name \"..\"",
            ),
        ];
        for (method, path, body, message) in &refused {
            let (status, answer) = request(&socket, method, path, body).await;
            assert_eq!(status, 422, "{method} {path}: {answer}");
            let error: serde_json::Value = serde_json::from_str(&answer).unwrap();
            let error = error["error"].as_str().unwrap();
            assert!(error.contains(message), "{method} {path}: {error}");
            assert!(
                error.contains("letters, digits"),
                "{method} {path}: {error}"
            );
        }
        assert!(engine.calls().is_empty(), "{:?}", engine.calls());
        assert!(store.projects().unwrap().is_empty());
        assert!(!state.join("secrets").exists());
        let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);

        // The same request with a name is carried out.
        let (status, answer) = request(&socket, "PUT", "/v1/projects/ok", &body("x", "web")).await;
        assert_eq!(status, 200, "{answer}");
        assert!(answer.contains("\"done\""), "{answer}");
        assert!(state.join("secrets/ok/token").is_file());
        assert_eq!(store.projects().unwrap()[0].name, "ok");

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }
}
