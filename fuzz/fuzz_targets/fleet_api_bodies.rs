//! The fleet api's JSON bodies, through the api's own router
//! (`turtle_api::App::without_database`): each request is read exactly as the
//! api reads it (its JSON extractor, the types of `turtle-fleet-api`) and
//! checked as its handler checks it, up to the handler's first query, which
//! fails with 503 (no PostgreSQL answers).
//!
//! The api's setup (flags, secret files, rate limits out of the way) is
//! `turtle_fuzz::api`. Routes: `POST /v1/fleets`, `PUT /v1/fleets/1/target`, `POST
//! /v1/fleets/1/releases`, `POST /v1/fleets/1/provisioning-keys` (admin), and
//! `POST /v1/devices/register`. A device's own routes (`PUT /v1/device/state`,
//! `POST /v1/device/logs`) look the device key up in the database before they
//! read the body, so a router without one never reaches their parsing: fuzz
//! their checks here once they are functions the api exports.
//!
//! Input: the first byte picks the route, the rest is the body. Beyond "no
//! panic": a bad body is the caller's error (4xx), never a 500; a 503 is only
//! the missing database.
#![no_main]

use axum::body::Body;
use axum::http::{Method, Request};
use libfuzzer_sys::fuzz_target;
use turtle_fuzz::api::{self, ADMIN_TOKEN};

const ROUTES: [(Method, &str, bool); 5] = [
    (Method::POST, "/v1/fleets", true),
    (Method::PUT, "/v1/fleets/1/target", true),
    (Method::POST, "/v1/fleets/1/releases", true),
    (Method::POST, "/v1/fleets/1/provisioning-keys", true),
    (Method::POST, "/v1/devices/register", false),
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let (method, uri, admin) = &ROUTES[usize::from(pick) % ROUTES.len()];
    let mut request = Request::builder()
        .method(method.clone())
        .uri(*uri)
        .header("content-type", "application/json");
    if *admin {
        request = request.header("authorization", format!("Bearer {ADMIN_TOKEN}"));
    }
    let request = request
        .body(Body::from(body.to_vec()))
        .expect("a valid request");
    let (status, answer) = turtle_fuzz::call(api::router(), request);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        api::acceptable(status, &answer),
        "{status} for {method} {uri}: {answer}"
    );
});
