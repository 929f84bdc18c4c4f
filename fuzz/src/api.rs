//! The fleet api as the fuzz targets drive it: its own router
//! (`turtle_api::App::without_database`), configured from its flags as
//! `turtle backend api` parses them, with throwaway secret files and CA, and
//! a database URL where nothing listens (a request's first query answers
//! 503). The rate limits are raised out of the way: a fuzzer sends thousands
//! of registrations a second, and a 429 would hide the checks behind it.

use std::sync::LazyLock;

use axum::Router;
use clap::Parser;

pub const ADMIN_TOKEN: &str = "admin-fuzz-0123456789abcdef0123456789abcdef0123456789abcdef01";
pub const BUILDER_TOKEN: &str = "builder-fuzz-0123456789abcdef0123456789abcdef0123456789ab";
const VPN_TOKEN: &str = "vpn-fuzz-0123456789abcdef0123456789abcdef0123456789abcdef01";
/// RFC 7748's test public key, as a vpn-key.pub secret holds it.
const VPN_PUBLIC_KEY: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";
pub const DOMAIN: &str = "fuzz.test";

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
        ("builder-token", BUILDER_TOKEN),
        ("vpn-token", VPN_TOKEN),
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
    let unlimited = "1000000000/1ms";
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
        "--registration-limit".into(),
        unlimited.into(),
        "--registration-key-limit".into(),
        unlimited.into(),
    ];
    let args = Cli::try_parse_from(argv).expect("the api's flags").args;
    let app = turtle_api::App::without_database(&args, &|_| None).expect("the api's config");
    Api {
        router: app.router(),
        _dir: dir,
    }
});

/// The api's router (made at the first call).
pub fn router() -> &'static Router {
    &API.router
}

/// Whether an answer is one a caller's request may get: anything but a 5xx,
/// except the 503 of the missing database.
pub fn acceptable(status: axum::http::StatusCode, answer: &str) -> bool {
    !status.is_server_error() || (status == 503 && answer.contains("database unavailable"))
}
