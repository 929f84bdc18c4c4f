//! The fleet api's JSON bodies, through the api's own router
//! (`turtle_api::App::without_database`): each request is read exactly as the
//! api reads it (its JSON extractor, the types of `turtle-fleet-api`) and
//! checked as its handler checks it, up to the handler's first query, which
//! fails with 503 (no PostgreSQL answers).
//!
//! Routes: `POST /v1/fleets`, `PUT /v1/fleets/1/target`, `POST
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

use std::sync::LazyLock;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request};
use clap::Parser;
use libfuzzer_sys::fuzz_target;

const ADMIN_TOKEN: &str = "admin-fuzz-0123456789abcdef0123456789abcdef0123456789abcdef01";
/// RFC 7748's test public key, as a vpn-key.pub secret holds it.
const VPN_PUBLIC_KEY: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
const DOMAIN: &str = "fuzz.test";

const ROUTES: [(Method, &str, bool); 5] = [
    (Method::POST, "/v1/fleets", true),
    (Method::PUT, "/v1/fleets/1/target", true),
    (Method::POST, "/v1/fleets/1/releases", true),
    (Method::POST, "/v1/fleets/1/provisioning-keys", true),
    (Method::POST, "/v1/devices/register", false),
];

/// The flags as `turtle backend api` parses them.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: turtle_api::Args,
}

struct Api {
    router: Router,
    _dir: tempfile::TempDir,
}

static API: LazyLock<Api> = LazyLock::new(|| {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = |name: &str| dir.path().join(name).display().to_string();
    for (name, value) in [
        ("admin-token", ADMIN_TOKEN),
        (
            "builder-token",
            "builder-fuzz-0123456789abcdef0123456789abcdef0123456789ab",
        ),
        (
            "vpn-token",
            "vpn-fuzz-0123456789abcdef0123456789abcdef0123456789abcdef01",
        ),
        ("vpn-key.pub", VPN_PUBLIC_KEY),
        ("db-password", "unused"),
    ] {
        std::fs::write(path(name), value).expect("a secret file");
    }
    let now = std::time::SystemTime::now();
    let ca = turtle_certs::Authority::open_or_create(
        &dir.path().join("ca"),
        &turtle_certs::CaConfig::new(DOMAIN),
        now,
    )
    .expect("a throwaway CA");
    let leaf = ca
        .issue(&[format!("api.{DOMAIN}")], &[], now)
        .expect("the api's leaf");
    std::fs::write(path("key.pem"), &leaf.key_pem).expect("key.pem");
    std::fs::write(path("fullchain.pem"), &leaf.fullchain_pem).expect("fullchain.pem");
    std::fs::write(path("root.pem"), ca.root_pem()).expect("root.pem");
    // A socket directory with no socket in it: every connection fails at once.
    std::fs::create_dir(path("no-db")).expect("no-db");
    let argv = [
        "api".to_string(),
        "--database-url".into(),
        format!("postgres://turtle@/turtle?host={}", path("no-db")),
        "--database-password-file".into(),
        path("db-password"),
        "--admin-token-file".into(),
        path("admin-token"),
        "--builder-token-file".into(),
        path("builder-token"),
        "--vpn-token-file".into(),
        path("vpn-token"),
        "--vpn-public-key-file".into(),
        path("vpn-key.pub"),
        "--domain".into(),
        DOMAIN.into(),
        "--token-key".into(),
        path("key.pem"),
        "--token-chain".into(),
        path("fullchain.pem"),
        "--ca-file".into(),
        path("root.pem"),
    ];
    let args = Cli::try_parse_from(argv).expect("the api's flags").args;
    let app = turtle_api::App::without_database(&args, &|_| None).expect("the api's config");
    Api {
        router: app.router(),
        _dir: dir,
    }
});

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let api = &*API;
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
    let (status, answer) = turtle_fuzz::call(&api.router, request);
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        !status.is_server_error() || (status == 503 && answer.contains("database unavailable")),
        "{status} for {method} {uri}: {answer}"
    );
});
