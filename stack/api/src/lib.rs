//! The management API of Turtle's backend stack (axum on PostgreSQL).
//!
//! Runs as `turtle backend api`: every image of the stack carries the one `turtle`
//! executable. It listens on plain HTTP behind the stack's proxy, which terminates
//! TLS for `api.<domain>` and `<domain>`. The routes are those of the stack's
//! contract (`/v1/openapi.json` describes each): fleets and their releases,
//! provisioning keys and device registration, what a device polls (its target
//! release) and reports (state, logs), the registry's token endpoint, and the VPN's
//! peer list.
//!
//! # Design
//!
//! - Start-up: read every file the flags name (secrets, the token key and chain,
//!   the VPN key) and fail at once on a bad one; wait for PostgreSQL up to
//!   `--db-wait`, logging what it waits for; apply the embedded migrations
//!   (`migrate`); then serve until SIGTERM or SIGINT and exit 0.
//! - The database is reached through a pool (`db`) that checks each connection
//!   before use, so a database restart needs no API restart: `/v1/health` is 503
//!   while it is down and 200 once it is back.
//! - Credentials (`auth`): the admin, builder and vpn tokens are shared secrets
//!   read from files and kept as SHA-256 digests; device and provisioning keys are
//!   random, handed out once and stored only as SHA-256 (`secret`).
//! - Errors are `{"error": "..."}` with a status chosen per variant (`error`).
//! - Every JSON body read and answer written is a type of `turtle-fleet-api`
//!   (`stack/fleet-api`), the crate the api's clients use too, so the wire
//!   names are spelled once; only the OpenAPI document is JSON built by hand.
//! - What callers send is bounded (`device`, `devices`, `logs`, `rate`): rate
//!   limits per device on logs and state reports and on registration (in all
//!   and per key), a state report of at most 64 KiB, logs kept by a retention
//!   and a per-device row cap, device timestamps clamped to their arrival,
//!   terminal escapes stripped from stored lines (`text`), no NUL in any JSON
//!   string (`extract`), registry scopes by Distribution's grammar (`scope`),
//!   fleet names a validated `FleetName`.
//! - Revocation: provisioning keys, devices and fleets can be deleted; a key or
//!   device is looked up at every call, so deletion takes effect at once (see
//!   `registry` for its tokens, which live 60 s).
//!
//! # Layout
//!
//! `routes` lists every route once (the router and the OpenAPI test both read it);
//! one module per resource: `fleets`, `releases`, `provisioning`, `devices` (admin
//! view, deletion and registration), `device` (a device's own calls), `logs`
//! (log storage, the row cap and the retention sweep), `registry` (tokens,
//! signed by `jwt`, scopes parsed by `scope`), `vpn`, `health`, `landing`,
//! `openapi`. `config` loads the flags' files, `subnet` parses the VPN subnet,
//! `rate` is the token buckets, `text` cleans and checks caller text, `extract`
//! and `respond` read requests and write answers.
//!
//! # Current limitations
//!
//! The rate limits live in the process: a restart refills every bucket, and
//! limits are per api process (the stack runs one). Registration is limited in
//! all, not per source address: a flood of bogus keys holds off real
//! registrations for its duration (per-source limits belong to the proxy).

pub mod auth;
pub mod config;
pub mod db;
mod device;
mod devices;
pub mod error;
mod extract;
mod fleets;
mod health;
pub mod jwt;
mod landing;
mod logs;
pub mod migrate;
mod openapi;
mod provisioning;
pub mod rate;
pub mod registry;
mod releases;
mod respond;
pub mod routes;
pub mod scope;
pub mod secret;
pub mod state;
pub mod subnet;
pub mod text;
mod vpn;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use tokio::net::TcpListener;

use crate::config::Config;
use crate::logs::Maintenance;
use crate::rate::Rate;
use crate::state::{AppState, Limiters};
use crate::subnet::Subnet;

/// Command-line arguments of `turtle backend api`. Every flag can also be set by
/// the environment variable named in its help.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address to listen on (plain HTTP: the stack's proxy terminates TLS).
    #[arg(long, env = "TURTLE_API_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// PostgreSQL to use, without the password: postgres://<user>@<host>:<port>/<database>
    /// (a unix socket: postgres://<user>@/<database>?host=/run/postgresql).
    #[arg(
        long,
        env = "TURTLE_API_DATABASE_URL",
        default_value = "postgres://turtle@db:5432/turtle"
    )]
    pub database_url: String,
    /// File holding the database password (the db-password secret; whitespace is trimmed).
    #[arg(
        long,
        env = "TURTLE_API_DATABASE_PASSWORD_FILE",
        default_value = "/run/turtle/secrets/db-password"
    )]
    pub database_password_file: PathBuf,
    /// How long to wait at start for the database to answer before giving up
    /// (seconds, or with a unit: 90s, 2m).
    #[arg(long, env = "TURTLE_API_DB_WAIT", default_value = "60s", value_parser = parse_duration)]
    pub db_wait: Duration,
    /// File holding the admin token (`Authorization: Bearer` for admin routes).
    #[arg(
        long,
        env = "TURTLE_API_ADMIN_TOKEN_FILE",
        default_value = "/run/turtle/secrets/admin-token"
    )]
    pub admin_token_file: PathBuf,
    /// File holding the builder's token (registry pull and push for the builder).
    #[arg(
        long,
        env = "TURTLE_API_BUILDER_TOKEN_FILE",
        default_value = "/run/turtle/secrets/builder-token"
    )]
    pub builder_token_file: PathBuf,
    /// File holding the vpn service's token (for GET /v1/vpn/peers).
    #[arg(
        long,
        env = "TURTLE_API_VPN_TOKEN_FILE",
        default_value = "/run/turtle/secrets/vpn-token"
    )]
    pub vpn_token_file: PathBuf,
    /// File holding the VPN server's WireGuard public key (base64), which the API
    /// hands to devices; the private key stays with the vpn.
    #[arg(
        long,
        env = "TURTLE_API_VPN_PUBLIC_KEY_FILE",
        default_value = "/run/turtle/secrets/vpn-key.pub"
    )]
    pub vpn_public_key_file: PathBuf,
    /// The stack's domain, such as turtle.local (when unset: the stack-wide TURTLE_DOMAIN).
    #[arg(long, env = "TURTLE_API_DOMAIN")]
    pub domain: Option<String>,
    /// The public HTTPS port, put into public URLs unless 443 (when unset: the
    /// stack-wide TURTLE_HTTPS_PORT, else 443).
    #[arg(long, env = "TURTLE_API_HTTPS_PORT")]
    pub https_port: Option<u16>,
    /// The public UDP port of the VPN, given to devices (when unset: the stack-wide
    /// TURTLE_VPN_PORT, else 51820).
    #[arg(long, env = "TURTLE_API_VPN_PORT")]
    pub vpn_port: Option<u16>,
    /// The VPN's IPv4 subnet: .1 is the server, devices get .2 onwards.
    #[arg(long, env = "TURTLE_API_VPN_SUBNET", default_value = "10.99.0.0/16")]
    pub vpn_subnet: Subnet,
    /// The key registry tokens are signed with (PKCS#8 PEM, ECDSA P-256: the api's TLS leaf key).
    #[arg(
        long,
        env = "TURTLE_API_TOKEN_KEY",
        default_value = "/etc/turtle/tls/key.pem"
    )]
    pub token_key: PathBuf,
    /// The certificates of that key, leaf first (PEM); they go into each token's x5c
    /// header (a self-signed root in the file is left out).
    #[arg(
        long,
        env = "TURTLE_API_TOKEN_CHAIN",
        default_value = "/etc/turtle/tls/fullchain.pem"
    )]
    pub token_chain: PathBuf,
    /// The `iss` claim of registry tokens (the registry's auth.token.issuer).
    #[arg(long, env = "TURTLE_API_TOKEN_ISSUER", default_value = "turtle-api")]
    pub token_issuer: String,
    /// The `aud` claim of registry tokens (the registry's auth.token.service)
    /// (default: registry.<domain>, with :<https-port> unless 443).
    #[arg(long, env = "TURTLE_API_REGISTRY_SERVICE")]
    pub registry_service: Option<String>,
    /// Turtle's root certificate, served at /ca.pem for people to trust.
    #[arg(
        long,
        env = "TURTLE_API_CA_FILE",
        default_value = "/etc/turtle/trust/root.pem"
    )]
    pub ca_file: PathBuf,
    /// Log data one device may send, as <amount>/<period>: a burst of the amount,
    /// refilled at the amount per period. A line counts its message and service
    /// bytes (as stored) plus 64. Past it: 429 with Retry-After.
    #[arg(long, env = "TURTLE_API_DEVICE_LOG_LIMIT", default_value = "1MiB/m")]
    pub device_log_limit: Rate,
    /// State reports one device may send, as <count>/<period> (a burst of the
    /// count). Past it: 429 with Retry-After.
    #[arg(long, env = "TURTLE_API_DEVICE_STATE_LIMIT", default_value = "12/m")]
    pub device_state_limit: Rate,
    /// Registrations the api takes in all, as <count>/<period> (unknown keys count too).
    #[arg(long, env = "TURTLE_API_REGISTRATION_LIMIT", default_value = "60/m")]
    pub registration_limit: Rate,
    /// Registrations one provisioning key may make, as <count>/<period>.
    #[arg(
        long,
        env = "TURTLE_API_REGISTRATION_KEY_LIMIT",
        default_value = "10/m"
    )]
    pub registration_key_limit: Rate,
    /// How long device log lines are kept, counted from when they arrived
    /// (168h: a week).
    #[arg(long, env = "TURTLE_API_LOG_RETENTION", default_value = "168h", value_parser = parse_positive_duration)]
    pub log_retention: Duration,
    /// The most log lines kept per device: past it, the oldest go.
    #[arg(long, env = "TURTLE_API_LOG_MAX_LINES", default_value = "10000",
          value_parser = clap::value_parser!(i64).range(1..=10_000_000))]
    pub log_max_lines: i64,
    /// How often lines past the retention are deleted (a device's lines past
    /// the row cap go at each of its posts).
    #[arg(long, env = "TURTLE_API_LOG_SWEEP_INTERVAL", default_value = "10m", value_parser = parse_positive_duration)]
    pub log_sweep_interval: Duration,
    /// The share of the VPN subnet's device addresses kept free (0 to 50, a
    /// percentage, rounded down to whole addresses): registration with a
    /// WireGuard key is refused once only these are left.
    #[arg(long, env = "TURTLE_API_VPN_RESERVE_PERCENT", default_value = "1",
          value_parser = clap::value_parser!(u8).range(0..=50))]
    pub vpn_reserve_percent: u8,
}

/// Parses `60`, `60s`, `2m`, `500ms` or `1h` (Turtle's one duration syntax).
fn parse_duration(text: &str) -> Result<Duration, String> {
    text.parse::<turtle_units::Duration>()
        .map(|d| d.as_std())
        .map_err(|e| e.to_string())
}

/// As [`parse_duration`], more than zero.
fn parse_positive_duration(text: &str) -> Result<Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err(format!("{text:?}: give a duration of more than zero")),
        d => Ok(d),
    }
}

/// The service, ready to serve: configuration loaded, database reached, schema
/// current, and its maintenance task (the log retention) running until the
/// `App` is dropped.
pub struct App {
    state: AppState,
    /// `None` without a database ([`App::without_database`]).
    _maintenance: Option<Maintenance>,
}

impl App {
    /// Loads the configuration (stack-wide variables from the process environment),
    /// waits for the database and applies the migrations.
    pub async fn start(args: &Args) -> anyhow::Result<App> {
        App::start_with_env(args, &|name| std::env::var(name).ok()).await
    }

    /// As [`App::start`], with the stack-wide variables looked up by `env`.
    pub async fn start_with_env(
        args: &Args,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> anyhow::Result<App> {
        let (config, target) = Config::load(args, env)?;
        let pool = target.pool();
        db::wait(&pool, &target, args.db_wait).await?;
        let mut client = pool.get().await.map_err(|e| {
            anyhow::anyhow!(
                "the database at {}: {}",
                target.display,
                db::describe_pool_error(&e)
            )
        })?;
        let applied = migrate::apply(&mut client, migrate::MIGRATIONS).await?;
        drop(client);
        let version = migrate::MIGRATIONS.len();
        if applied.is_empty() {
            tracing::info!("database schema is current (version {version})");
        } else {
            tracing::info!(
                "database schema migrated to version {version}: applied {}",
                applied.join(", ")
            );
        }
        let state = App::state(config, pool);
        let maintenance = logs::maintain(state.clone());
        Ok(App {
            state,
            _maintenance: Some(maintenance),
        })
    }

    /// The handlers' state over `pool`.
    fn state(config: Config, pool: deadpool_postgres::Pool) -> AppState {
        let api_url = config.public_url(&format!("api.{}", config.domain));
        AppState {
            pool,
            openapi: Arc::new(openapi::with_server(&api_url)),
            limiters: Arc::new(Limiters::new(&config.limits)),
            config: Arc::new(config),
            healthy: Arc::new(AtomicBool::new(true)),
            targets: Arc::default(),
        }
    }

    /// The router of every route, over this app's pool and configuration.
    pub fn router(&self) -> axum::Router {
        routes::router(self.state.clone())
    }

    /// The app over a pool that has not reached its database (nothing is
    /// waited for, nothing migrated): a request runs through its route's
    /// parsing and checks up to its first query, which fails with 503; no
    /// maintenance task runs. For the fuzzer (`fuzz/`), which drives the
    /// routes without PostgreSQL.
    pub fn without_database(
        args: &Args,
        env: &(dyn Fn(&str) -> Option<String> + Sync),
    ) -> anyhow::Result<App> {
        let (config, target) = Config::load(args, env)?;
        Ok(App {
            state: App::state(config, target.pool()),
            _maintenance: None,
        })
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets requests in
/// flight finish.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| anyhow::anyhow!("serving HTTP failed: {e}"))
}

/// Runs the service until SIGTERM or SIGINT. Logs go through `tracing`; the
/// binary (`turtle backend`) installs the subscriber.
pub async fn run(args: Args) -> anyhow::Result<()> {
    let mut shutdown = Box::pin(turtle_stack_common::on_shutdown()?);
    let app = tokio::select! {
        app = App::start(&args) => app?,
        () = &mut shutdown => {
            tracing::info!("stopped before the service was ready");
            return Ok(());
        }
    };
    let listener = TcpListener::bind(args.listen).await.map_err(|e| {
        anyhow::anyhow!(
            "cannot listen on {} ({e}): is another process using it? pick another --listen",
            args.listen
        )
    })?;
    tracing::info!("turtle-api listening on http://{}", args.listen);
    serve(listener, app.router(), shutdown).await?;
    tracing::info!("turtle-api stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("60").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1h").unwrap(), Duration::from_secs(3600));
        assert!(parse_duration("s").unwrap_err().contains("500ms"));
        assert!(
            parse_positive_duration("0s")
                .unwrap_err()
                .contains("more than zero")
        );
        assert_eq!(
            parse_positive_duration("168h").unwrap(),
            Duration::from_secs(604_800)
        );
    }

    /// Every flag has an environment variable and help.
    #[test]
    fn flags_have_env_and_help() {
        use clap::CommandFactory;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let cmd = Cli::command();
        for arg in cmd.get_arguments() {
            if arg.get_id() == "help" {
                continue;
            }
            let env = arg.get_env().expect("every flag has an env var");
            assert!(
                env.to_str().unwrap().starts_with("TURTLE_API_"),
                "{:?}",
                arg.get_id()
            );
            assert!(arg.get_help().is_some(), "{:?} has no help", arg.get_id());
        }
    }
}
