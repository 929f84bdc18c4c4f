//! The small HTML page of `https://<domain>/` and the CA's root at `/ca.pem`, so a
//! person can trust the stack's certificates before using anything else.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `GET /`.
pub async fn page(State(state): State<AppState>) -> Html<String> {
    let c = &state.config;
    let api = c.public_url(&format!("api.{}", c.domain));
    let registry = c.registry_service.clone();
    let domain = escape(&c.domain);
    Html(format!(
        "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>Turtle: {domain}</title></head>
<body>
<h1>Turtle backend for {domain}</h1>
<ul>
<li><a href=\"/ca.pem\">Turtle's root certificate</a> (<code>ca.pem</code>): trust it to use
the services below without warnings.</li>
<li>The management API: <a href=\"{api}/v1/openapi.json\">{api}</a>
(<a href=\"/v1/openapi.json\">OpenAPI document</a>, <a href=\"/v1/health\">health</a>).</li>
<li>The image registry: <code>{registry}</code>.</li>
</ul>
</body>
</html>
",
        api = escape(&api),
        registry = escape(&registry),
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// `GET /ca.pem`: Turtle's root certificate (`--ca-file`), read at each request so
/// it is current.
pub async fn ca(State(state): State<AppState>) -> ApiResult<Response> {
    let path = &state.config.ca_file;
    let pem = tokio::fs::read(path).await.map_err(|e| {
        ApiError::NotFound(format!(
            "the CA's root certificate is not readable at {} ({e}): on the box, \
             `turtle ca export` prints it",
            path.display()
        ))
    })?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-pem-file"),
        )],
        pem,
    )
        .into_response())
}
