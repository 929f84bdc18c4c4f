//! The HTTP surface: routes, request checks, and the error -> status map.
//!
//! `POST /v1/builds` checks, in order and before the response starts: the
//! bearer token (401), the query (400: tags, `dockerfile=`), the declared
//! length (413), a build slot (503 with `Retry-After` when the queue is full
//! or the wait is over, see [`crate::slots`]), then, reading the body: its
//! unpacked size (413), its compression (415) and that it arrived whole
//! (400). Only then does it answer `200 application/x-ndjson` and hand the job,
//! with its slot, to a task; from there on failures are the stream's last line
//! (see [`crate::ndjson`]).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, EXPECT, RETRY_AFTER,
    WWW_AUTHENTICATE,
};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::auth::{AuthError, Tokens};
use crate::build::{Builder, Job};
use crate::ndjson::Line;
use crate::reference::{ImageRef, Registry, TagError};
use crate::slots::SlotError;
use crate::spool::{SpoolError, Spooler};

/// Lines buffered between a job and its client.
const LINE_BUFFER: usize = 256;

/// `Retry-After` of a 503 for a busy builder, in seconds.
const RETRY_AFTER_SECS: &str = "60";

/// Everything the server needs, built by [`crate::Config`] or by a test.
#[derive(Debug)]
pub struct Server {
    pub tokens: Tokens,
    pub builder: Builder,
    pub spooler: Spooler,
}

/// A refused request: its status and a message naming the cause and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Tag(#[from] TagError),
    #[error("{0}")]
    Query(String),
    #[error("no tag= given: name the image to build, such as ?tag=fleet/app:1.0 (repeatable)")]
    NoTag,
    #[error(transparent)]
    Busy(#[from] SlotError),
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::Tag(_) | ApiError::Query(_) | ApiError::NoTag => StatusCode::BAD_REQUEST,
            ApiError::Busy(SlotError::QueueFull { .. } | SlotError::Timeout { .. }) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            ApiError::Spool(SpoolError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Spool(SpoolError::Compressed { .. } | SpoolError::CompressedTwice { .. }) => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::Spool(SpoolError::Empty | SpoolError::Read(_) | SpoolError::Gzip(_)) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Spool(SpoolError::Write { .. }) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut resp = (status, axum::Json(json!({ "error": self.to_string() }))).into_response();
        if let ApiError::Auth(e) = &self {
            let challenge = match e {
                AuthError::Missing => r#"Bearer realm="turtle-builder""#,
                AuthError::NotBearer | AuthError::Invalid => {
                    r#"Bearer realm="turtle-builder", error="invalid_token""#
                }
            };
            resp.headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if let ApiError::Busy(_) = &self {
            resp.headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        resp
    }
}

/// What a build request asks for, from its query.
#[derive(Debug, PartialEq, Eq)]
pub struct BuildQuery {
    pub refs: Vec<ImageRef>,
    pub dockerfile: Option<String>,
}

impl BuildQuery {
    /// Parses `tag=` (repeatable, at least one) and `dockerfile=` (optional).
    pub fn parse(pairs: &[(String, String)], registry: &Registry) -> Result<BuildQuery, ApiError> {
        let mut refs: Vec<ImageRef> = Vec::new();
        let mut dockerfile = None;
        for (key, value) in pairs {
            match key.as_str() {
                "tag" => {
                    let r = ImageRef::parse(registry, value)?;
                    if !refs.contains(&r) {
                        refs.push(r);
                    }
                }
                "dockerfile" if dockerfile.is_some() => {
                    return Err(ApiError::Query(
                        "dockerfile= is given twice: give it once".to_string(),
                    ));
                }
                "dockerfile" if value.trim().is_empty() => {
                    return Err(ApiError::Query(
                        "dockerfile= is empty: give the Dockerfile's path in the context, or leave \
                         it out for `Dockerfile`"
                            .to_string(),
                    ));
                }
                "dockerfile" => dockerfile = Some(value.trim().to_string()),
                other => {
                    return Err(ApiError::Query(format!(
                        "unknown query parameter {other:?}: a build takes tag= (repeatable) and \
                         dockerfile="
                    )));
                }
            }
        }
        if refs.is_empty() {
            return Err(ApiError::NoTag);
        }
        Ok(BuildQuery { refs, dockerfile })
    }
}

/// The builder's routes.
pub fn router(server: Arc<Server>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/builds", post(build))
        .fallback(not_found)
        // The context is spooled with its own limit (--max-context).
        .layer(DefaultBodyLimit::disable())
        .with_state(server)
}

/// Serves on `listener` until `shutdown` completes, then lets running
/// responses finish.
pub async fn serve(
    listener: TcpListener,
    server: Server,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(Arc::new(server)))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn health(State(s): State<Arc<Server>>) -> Response {
    match s.builder.engine().ping().await {
        Ok(()) => (
            StatusCode::OK,
            axum::Json(json!({"status": "ok", "engine": "ok"})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unhealthy", "engine": e})),
        )
            .into_response(),
    }
}

async fn not_found(uri: Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "error": format!(
                "no route {}: the builder serves POST /v1/builds and GET /v1/health",
                uri.path()
            )
        })),
    )
        .into_response()
}

async fn build(
    State(s): State<Arc<Server>>,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = s.tokens.check(headers.get(AUTHORIZATION))?;
    let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&uri)
        .map_err(|e| ApiError::Query(format!("the query does not parse: {e}")))?;
    let query = BuildQuery::parse(&pairs, s.builder.registry())?;
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    s.spooler.check_declared(declared)?;
    let mut body = body.into_data_stream();
    // The slot first: a context is read only when it can be built, so at
    // most --max-builds of them are on disk.
    let slot = match s.builder.slots().acquire().await {
        Ok(slot) => slot,
        Err(e) => {
            tracing::info!(?principal, "build refused: {e}");
            // A client waiting for `100 Continue` has sent nothing: reading
            // would ask it for the body.
            if !expects_continue(&headers) {
                drain(&mut body).await;
            }
            return Err(e.into());
        }
    };
    let context = match s.spooler.spool(&mut body).await {
        Ok(c) => c,
        Err(e) => {
            drain(&mut body).await;
            return Err(e.into());
        }
    };
    tracing::info!(
        ?principal,
        images = ?query.refs.iter().map(ImageRef::full).collect::<Vec<_>>(),
        bytes = context.len(),
        received = context.received(),
        "build requested"
    );
    let job = Job {
        refs: query.refs,
        dockerfile: query.dockerfile,
        context,
        slot,
    };
    let (tx, rx) = mpsc::channel(LINE_BUFFER);
    let task = tokio::spawn({
        let s = s.clone();
        let tx = tx.clone();
        async move { s.builder.run(job, tx).await }
    });
    // A job that panics still ends its response with a final line.
    tokio::spawn(async move {
        if let Err(e) = task.await
            && e.is_panic()
        {
            tracing::error!("build task panicked: {e}");
            let _ = tx
                .send(Line::error(
                    "internal error: the build task panicked; see the builder's log",
                ))
                .await;
        }
    });
    let lines = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|line| (Ok::<_, Infallible>(line.encode()), rx))
    });
    let mut resp = Response::new(Body::from_stream(lines));
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

/// Most of a refused body read and dropped, so a client still sending it
/// reads the refusal instead of a reset connection.
const DRAIN_BYTES: u64 = 256 * 1024;

/// How long a refused body is drained at most.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(1);

/// Whether the client waits for `100 Continue` before it sends the body.
fn expects_continue(headers: &HeaderMap) -> bool {
    headers
        .get(EXPECT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("100-continue"))
}

/// Reads and drops up to [`DRAIN_BYTES`] of what is left of a refused body
/// for up to [`DRAIN_TIME`]: closing a connection with unread bytes resets it,
/// and a client still writing would see the reset rather than the answer.
async fn drain<S, E>(body: &mut S)
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, E>> + Unpin,
{
    use futures_util::StreamExt;
    let mut left = DRAIN_BYTES;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(chunk)) = body.next().await {
            left = left.saturating_sub(chunk.len() as u64);
            if left == 0 {
                break;
            }
        }
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(q: &[(&str, &str)]) -> Vec<(String, String)> {
        q.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn reg() -> Registry {
        Registry::parse("registry.t.local:8443").unwrap()
    }

    #[test]
    fn tags_repeat_and_dockerfile_is_optional() {
        let q = BuildQuery::parse(
            &pairs(&[("tag", "f/a:1"), ("tag", "f/a:latest"), ("tag", "f/a:1")]),
            &reg(),
        )
        .unwrap();
        let names: Vec<String> = q.refs.iter().map(ImageRef::full).collect();
        assert_eq!(
            names,
            [
                "registry.t.local:8443/f/a:1",
                "registry.t.local:8443/f/a:latest"
            ]
        );
        assert_eq!(q.dockerfile, None);
        let q = BuildQuery::parse(
            &pairs(&[("dockerfile", "docker/Dockerfile.prod"), ("tag", "a")]),
            &reg(),
        )
        .unwrap();
        assert_eq!(q.dockerfile.as_deref(), Some("docker/Dockerfile.prod"));
    }

    #[test]
    fn bad_queries_are_400_with_a_reason() {
        for (q, want) in [
            (vec![], "no tag="),
            (vec![("dockerfile", "D")], "no tag="),
            (
                vec![("tag", "a"), ("bogus", "1")],
                "unknown query parameter \"bogus\"",
            ),
            (
                vec![("tag", "a"), ("dockerfile", "")],
                "dockerfile= is empty",
            ),
            (
                vec![("tag", "a"), ("dockerfile", "x"), ("dockerfile", "y")],
                "given twice",
            ),
            (
                vec![("tag", "ghcr.io/x/y")],
                "names a registry host (ghcr.io)",
            ),
        ] {
            let e = BuildQuery::parse(&pairs(&q), &reg()).unwrap_err();
            assert_eq!(e.status(), StatusCode::BAD_REQUEST, "{q:?}");
            assert!(e.to_string().contains(want), "{q:?}: {e}");
        }
    }

    #[test]
    fn every_error_has_its_status() {
        assert_eq!(
            ApiError::Auth(AuthError::Invalid).status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            ApiError::Spool(SpoolError::TooLarge {
                limit: turtle_units::ByteSize(1)
            })
            .status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            ApiError::Spool(SpoolError::Empty).status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ApiError::Spool(SpoolError::Compressed { format: "xz" }).status(),
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );
        let busy = ApiError::Busy(SlotError::QueueFull {
            max_builds: 1,
            max_queued: 0,
        });
        assert_eq!(busy.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            busy.into_response().headers().get(RETRY_AFTER).unwrap(),
            "60"
        );
        let resp = ApiError::Auth(AuthError::Missing).into_response();
        assert_eq!(
            resp.headers().get(WWW_AUTHENTICATE).unwrap(),
            r#"Bearer realm="turtle-builder""#
        );
    }
}
