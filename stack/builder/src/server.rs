//! The HTTP surface: routes, request checks, and the error -> status map.
//!
//! `POST /v1/builds` checks, in order and before the response starts: the
//! bearer token (401), the query (400: tags, `dockerfile=`), the body's size
//! (413) and that it arrived whole (400). Only then does it answer
//! `200 application/x-ndjson` and hand the job to a task; from there on
//! failures are the stream's last line (see [`crate::ndjson`]).

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, WWW_AUTHENTICATE,
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
use crate::spool::{self, SpoolError};
use turtle_units::ByteSize;

/// Lines buffered between a job and its client.
const LINE_BUFFER: usize = 256;

/// Everything the server needs, built by [`crate::Config`] or by a test.
#[derive(Debug)]
pub struct Server {
    pub tokens: Tokens,
    pub builder: Builder,
    pub max_context: ByteSize,
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
    Spool(#[from] SpoolError),
}

impl ApiError {
    fn status(&self) -> StatusCode {
        match self {
            ApiError::Auth(_) => StatusCode::UNAUTHORIZED,
            ApiError::Tag(_) | ApiError::Query(_) | ApiError::NoTag => StatusCode::BAD_REQUEST,
            ApiError::Spool(SpoolError::TooLarge { .. }) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Spool(SpoolError::Empty | SpoolError::Read(_)) => StatusCode::BAD_REQUEST,
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
    spool::check_declared(declared, s.max_context)?;
    let context = spool::spool(body.into_data_stream(), s.max_context).await?;
    tracing::info!(
        ?principal,
        images = ?query.refs.iter().map(ImageRef::full).collect::<Vec<_>>(),
        bytes = context.len(),
        "build requested"
    );
    let job = Job {
        refs: query.refs,
        dockerfile: query.dockerfile,
        context,
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
            ApiError::Spool(SpoolError::TooLarge { limit: ByteSize(1) }).status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
        assert_eq!(
            ApiError::Spool(SpoolError::Empty).status(),
            StatusCode::BAD_REQUEST
        );
        let resp = ApiError::Auth(AuthError::Missing).into_response();
        assert_eq!(
            resp.headers().get(WWW_AUTHENTICATE).unwrap(),
            r#"Bearer realm="turtle-builder""#
        );
    }
}
