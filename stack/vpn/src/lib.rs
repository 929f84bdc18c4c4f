//! The userspace WireGuard service of Turtle's backend stack.
//!
//! Runs as `turtle backend vpn` (every image of the stack carries the one
//! `turtle` executable). It needs `/dev/net/tun`, NET_ADMIN and iproute2's
//! `ip`; no WireGuard kernel module.
//!
//! # Design
//!
//! Start-up: read the vpn-token and the server's private key, bind the
//! health endpoint, create the device ([`device`]: boringtun's userspace
//! tunnel, configured over its UAPI on a socketpair; address and link set
//! with `ip`, [`iface`]). Then the loop ([`service`]): every
//! `--sync-interval`, a conditional GET of the api's `/v1/vpn/peers`
//! ([`api`]), parsed into the wanted peer set and diffed against what the
//! device reports ([`peers`]); the difference goes to the device as one
//! UAPI `set` ([`uapi`]). Peers that stay are never touched, so their
//! sessions survive every sync. `GET /health` ([`health`]) reports the
//! device, the last sync and each peer's handshake age. SIGTERM or SIGINT
//! stops the loop and the device; the kernel removes the interface.
//!
//! The pure parts (UAPI text, diff, ETag, health verdict, packets) are unit
//! tested; `tests/tunnel.rs` runs the device in a network namespace against
//! a WireGuard peer built on boringtun's `noise::Tunn` ([`client`], also
//! the `turtle-wg-peer` binary the stack's end-to-end test uses).
//!
//! # Current limitations
//!
//! - IPv4 only inside the tunnel for the test client (the service itself
//!   passes whatever allowed IPs the api lists).
//! - No preshared keys and no per-peer keepalive on the server: peers keep
//!   their own sessions alive.
//! - The api's list is trusted for allowed IPs; overlapping allowed IPs of
//!   two peers go to whichever boringtun stored last.

pub mod api;
mod args;
pub mod cidr;
pub mod client;
pub mod device;
pub mod health;
pub mod icmp;
pub mod iface;
pub mod keys;
pub mod peers;
pub mod service;
pub mod uapi;

use std::time::Duration;

use anyhow::Context as _;

pub use args::{Args, Interval};

use crate::api::ApiClient;
use crate::device::{Device, DeviceSettings};
use crate::keys::Key;

/// How long one GET of the peer list may take.
const API_TIMEOUT: Duration = Duration::from_secs(10);

/// boringtun worker threads (the box is small; two keep one busy peer from
/// stalling the rest).
const THREADS: usize = 2;

/// Runs the service until SIGTERM or SIGINT, then stops the device.
pub async fn run(args: Args) -> anyhow::Result<()> {
    // Signals first: one that arrives during start-up still stops us cleanly.
    let shutdown =
        turtle_stack_common::on_shutdown().context("cannot handle SIGTERM and SIGINT")?;
    let token = turtle_stack_common::read_secret("vpn token", "--token-file", &args.token_file)?;
    let key = Key::from_file(&args.key_file)?;
    let api = ApiClient::new(&args.api, &token, API_TIMEOUT)?;
    let health = tokio::net::TcpListener::bind(args.health_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {} for the health endpoint: choose another --health-listen",
                args.health_listen
            )
        })?;
    let settings = DeviceSettings {
        interface: args.interface.clone(),
        private_key: key,
        listen_port: args.listen_port,
        address: args.address,
        threads: THREADS,
    };
    let device = tokio::task::spawn_blocking(move || Device::create(&settings))
        .await
        .context("creating the device panicked")??;
    tracing::info!(
        interface = device.interface(),
        address = %args.address,
        listen_port = device.listen_port(),
        public_key = %device.public_key(),
        api = %api.url(),
        health = %args.health_listen,
        "vpn up"
    );
    service::serve(device, api, args.sync_interval.0, health, shutdown).await?;
    Ok(())
}
