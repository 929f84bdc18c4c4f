//! `turtle backend`: the services of the backend stack (stack/), the probe
//! their healthchecks use, and the port forwarder of hand-over services. Every image of the stack carries this one
//! executable, so an upgrade of Turtle is one binary.

use std::time::Duration;

use clap::{Args, Subcommand};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::context::Failure;

#[derive(Debug, Args)]
pub struct BackendArgs {
    #[command(subcommand)]
    pub service: Backend,
}

#[derive(Debug, Subcommand)]
pub enum Backend {
    /// The management API (fleets, releases, devices, registry tokens, VPN peers) on PostgreSQL.
    Api(Box<turtle_api::Args>),
    /// The image builder: build contexts in over HTTPS, images pushed to the registry.
    Builder(turtle_builder::Args),
    /// The userspace WireGuard VPN whose peers come from the API.
    Vpn(turtle_vpn::Args),
    /// Exit 0 when an HTTP URL answers 2xx within the timeout (for healthchecks).
    Probe(ProbeArgs),
    /// The port forwarder of a hand-over service (its `<service>-ports`
    /// companion runs this): listens on the ports TURTLE_FORWARD names
    /// (`80=web:80,...`) and forwards each connection to the service by
    /// name, steered during a hand-over through TURTLE_FORWARD_DIR.
    Forward,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The URL to GET, plain HTTP (e.g. http://127.0.0.1:8080/v1/health).
    pub url: String,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 5)]
    pub timeout: u64,
}

pub async fn run(a: BackendArgs) -> Result<(), Failure> {
    if !matches!(a.service, Backend::Probe(_)) {
        // Logs to stderr, which the engine keeps (`turtle logs`).
        super::daemon::init_logging(false);
    }
    let served = match a.service {
        Backend::Api(args) => turtle_api::run(*args).await,
        Backend::Builder(args) => turtle_builder::run(args).await,
        Backend::Vpn(args) => turtle_vpn::run(args).await,
        Backend::Probe(args) => return probe(&args).await,
        Backend::Forward => {
            return turtle_runtime::forward::serve_from_env()
                .await
                .map_err(Failure::op);
        }
    };
    served.map_err(|e| Failure::op(format!("{e:#}")))
}

async fn probe(a: &ProbeArgs) -> Result<(), Failure> {
    let uri: hyper::Uri = a
        .url
        .parse()
        .map_err(|e| Failure::input(format!("{}: not a URL: {e}", a.url)))?;
    let client: Client<_, Empty<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let get = async {
        let resp = client.get(uri).await?;
        let status = resp.status();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok::<_, anyhow::Error>((status, body))
    };
    match tokio::time::timeout(Duration::from_secs(a.timeout), get).await {
        Err(_) => Err(Failure::op(format!(
            "{}: no answer within {} s",
            a.url, a.timeout
        ))),
        Ok(Err(e)) => Err(Failure::op(format!("{}: {e:#}", a.url))),
        Ok(Ok((status, _))) if status.is_success() => Ok(()),
        Ok(Ok((status, body))) => Err(Failure::op(format!(
            "{}: {status}: {}",
            a.url,
            String::from_utf8_lossy(&body).trim()
        ))),
    }
}
