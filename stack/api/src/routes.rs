//! Every route of the API, listed once: the router is built from this list, and a
//! test holds it against the OpenAPI document both ways.

use axum::Router;
use axum::extract::Request;
use axum::handler::Handler;
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use turtle_fleet_api::ErrorBody;

use crate::error::ApiError;
use crate::state::AppState;
use crate::{
    device, devices, fleets, health, landing, openapi, provisioning, registry, releases, vpn,
};

/// One route: a method on a path (axum's `{param}` syntax, as OpenAPI writes it).
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    handler: MethodRouter<AppState>,
}

fn route<H, T>(method: Method, path: &'static str, handler: H) -> Route
where
    H: Handler<T, AppState>,
    T: 'static,
{
    let filter = MethodFilter::try_from(method.clone()).expect("a standard method");
    Route {
        method,
        path,
        handler: on(filter, handler),
    }
}

/// The routes, in the order of the contract.
pub fn table() -> Vec<Route> {
    use Method as M;
    vec![
        route(M::GET, "/", landing::page),
        route(M::GET, "/ca.pem", landing::ca),
        route(M::GET, "/v1/health", health::health),
        route(M::GET, "/v1/openapi.json", openapi::document),
        route(M::POST, "/v1/fleets", fleets::create),
        route(M::GET, "/v1/fleets", fleets::list),
        route(M::GET, "/v1/fleets/{id}", fleets::get),
        route(M::DELETE, "/v1/fleets/{id}", fleets::delete),
        route(M::PUT, "/v1/fleets/{id}/target", fleets::set_target),
        route(M::POST, "/v1/fleets/{id}/releases", releases::create),
        route(M::GET, "/v1/fleets/{id}/releases", releases::list),
        route(
            M::POST,
            "/v1/fleets/{id}/provisioning-keys",
            provisioning::create,
        ),
        route(
            M::GET,
            "/v1/fleets/{id}/provisioning-keys",
            provisioning::list,
        ),
        route(
            M::DELETE,
            "/v1/fleets/{id}/provisioning-keys/{key}",
            provisioning::delete,
        ),
        route(
            M::POST,
            "/v1/fleets/{id}/provisioning-config",
            provisioning::config,
        ),
        route(M::POST, "/v1/devices/register", devices::register),
        route(M::GET, "/v1/devices", devices::list),
        route(M::GET, "/v1/devices/{uuid}", devices::get),
        route(M::DELETE, "/v1/devices/{uuid}", devices::delete),
        route(M::GET, "/v1/devices/{uuid}/logs", devices::logs),
        route(M::GET, "/v1/device/target", device::target),
        route(M::PUT, "/v1/device/state", device::report_state),
        route(M::POST, "/v1/device/logs", device::post_logs),
        route(M::GET, "/v1/registry/token", registry::token),
        route(M::GET, "/v1/vpn/peers", vpn::peers),
        route(M::GET, "/v1/vpn", vpn::info),
    ]
}

/// The application: every route of [`table`], JSON answers for unknown paths and
/// methods, a debug line per request.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for r in table() {
        router = router.route(r.path, r.handler);
    }
    router
        .fallback(unknown_route)
        .method_not_allowed_fallback(wrong_method)
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn unknown_route(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no route {method} {}: /v1/openapi.json lists the routes",
        uri.path()
    ))
}

async fn wrong_method(method: Method, uri: axum::http::Uri) -> Response {
    let body = ErrorBody {
        error: format!(
            "{} does not take {method}: /v1/openapi.json lists the methods of each route",
            uri.path()
        ),
    };
    (axum::http::StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// One debug line per request (failures are logged where they happen, at warn or
/// error).
async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let response = next.run(request).await;
    tracing::debug!("{method} {path} -> {}", response.status().as_u16());
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

    /// Every route of the router is in the OpenAPI document, and every operation of
    /// the document is a route.
    #[test]
    fn the_openapi_document_lists_exactly_the_routes() {
        let doc: serde_json::Value = serde_json::from_str(openapi::DOCUMENT).unwrap();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let mut documented = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (key, operation) in item.as_object().unwrap() {
                if METHODS.contains(&key.as_str()) {
                    assert!(
                        operation["responses"].is_object() && operation["summary"].is_string(),
                        "{key} {path} needs a summary and responses"
                    );
                    documented.insert((key.to_uppercase(), path.clone()));
                }
            }
        }
        let routed: BTreeSet<(String, String)> = table()
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from openapi.json: {undocumented:?}"
        );
        assert!(
            unrouted.is_empty(),
            "openapi.json operations with no route: {unrouted:?}"
        );
        assert_eq!(routed.len(), table().len(), "a route is listed twice");
    }

    /// Every `$ref` of the document points at a schema it defines.
    #[test]
    fn the_openapi_references_resolve() {
        let doc: serde_json::Value = serde_json::from_str(openapi::DOCUMENT).unwrap();
        fn walk(v: &serde_json::Value, doc: &serde_json::Value) {
            match v {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                        let pointer = r.strip_prefix('#').expect("local references only");
                        assert!(doc.pointer(pointer).is_some(), "dangling $ref {r}");
                    }
                    map.values().for_each(|v| walk(v, doc));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, doc)),
                _ => {}
            }
        }
        walk(&doc, &doc);
    }
}
