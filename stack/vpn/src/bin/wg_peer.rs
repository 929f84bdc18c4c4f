//! `turtle-wg-peer`: a WireGuard peer with no tun device and no kernel
//! module, for tests. It handshakes with a server, pings the server's
//! tunnel address, then (with `--serve-secs`) keeps answering pings that
//! come through the tunnel. Built on boringtun's `noise::Tunn`
//! (`turtle_vpn::client`).
//!
//! Output: one JSON line per event on stdout:
//! `{"event":"handshake",...}`, `{"event":"ping",...}`, then
//! `{"event":"echo",...}` per echo request answered. Errors go to stderr;
//! the exit status is 0 on success, 1 on failure, 2 on bad usage.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde_json::json;
use tokio::net::UdpSocket;
use tokio::time::Instant;
use turtle_vpn::client::{Client, Event};
use turtle_vpn::keys::Key;

/// A WireGuard test peer: handshake, ping the server through the tunnel,
/// answer pings; one JSON line per event.
#[derive(Debug, Parser)]
#[command(name = "turtle-wg-peer", version)]
struct Cli {
    /// Print a new key pair as {"private_key","public_key"} (base64) and exit.
    #[arg(long, exclusive = true)]
    generate_key: bool,
    /// The server's UDP endpoint, HOST:PORT (a name is resolved once).
    #[arg(long, required_unless_present = "generate_key")]
    endpoint: Option<String>,
    /// The server's public key (base64, or 64 hex characters).
    #[arg(long, required_unless_present = "generate_key")]
    server_public_key: Option<String>,
    /// File with our private key (base64 or 64 hex characters).
    #[arg(long, required_unless_present = "generate_key")]
    private_key_file: Option<PathBuf>,
    /// Our address in the tunnel (the one the server lists for our key).
    #[arg(long, required_unless_present = "generate_key")]
    address: Option<Ipv4Addr>,
    /// The server's address in the tunnel; the ping goes there.
    #[arg(long, default_value = "10.99.0.1")]
    server_address: Ipv4Addr,
    /// After the ping succeeded, keep answering echo requests for this many seconds.
    #[arg(long, default_value_t = 0)]
    serve_secs: u64,
    /// Give up when the handshake and the ping are not done within this many seconds.
    #[arg(long, default_value_t = 30)]
    timeout: u64,
    /// Persistent keepalive interval in seconds (0: off); keeps NAT
    /// mappings open so the server can reach us while serving.
    #[arg(long, default_value_t = 5)]
    keepalive: u16,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.generate_key {
        let k = Key::generate();
        println!(
            "{}",
            json!({"private_key": k.to_base64(), "public_key": k.public().to_base64()})
        );
        return ExitCode::SUCCESS;
    }
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("turtle-wg-peer: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    use anyhow::Context as _;
    // clap makes these present unless --generate-key, which returned above.
    let (Some(endpoint), Some(server_key), Some(key_file), Some(address)) = (
        cli.endpoint,
        cli.server_public_key,
        cli.private_key_file,
        cli.address,
    ) else {
        unreachable!("clap requires these flags without --generate-key")
    };
    let server_key: Key = server_key
        .parse()
        .context("--server-public-key: use the vpn's server_public_key from the api")?;
    let private_key = Key::from_file(&key_file)?;
    let endpoint: SocketAddr = tokio::net::lookup_host(&endpoint)
        .await
        .with_context(|| format!("--endpoint {endpoint}: cannot resolve it (write HOST:PORT)"))?
        .find(|a| a.is_ipv4())
        .with_context(|| format!("--endpoint {endpoint}: no IPv4 address"))?;
    let socket = UdpSocket::bind("0.0.0.0:0")
        .await
        .context("cannot open a UDP socket")?;
    let keepalive = (cli.keepalive > 0).then_some(cli.keepalive);
    let mut client = Client::new(
        socket,
        endpoint,
        &private_key,
        server_key,
        address,
        keepalive,
    );

    let started = Instant::now();
    let deadline = started + Duration::from_secs(cli.timeout);
    client.handshake(deadline).await?;
    line(json!({
        "event": "handshake",
        "endpoint": endpoint.to_string(),
        "public_key": client.public_key().to_base64(),
        "address": address.to_string(),
        "elapsed_ms": started.elapsed().as_millis() as u64,
    }));

    let rtt = client
        .ping(cli.server_address, deadline, report_echo)
        .await?;
    line(json!({
        "event": "ping",
        "from": cli.server_address.to_string(),
        "rtt_ms": rtt.as_secs_f64() * 1000.0,
    }));

    let until = Instant::now() + Duration::from_secs(cli.serve_secs);
    while let Some(event) = client.next_event(until).await? {
        report_echo(&event);
    }
    Ok(())
}

/// Prints a line for an answered echo request (other packets are ignored).
fn report_echo(event: &Event) {
    if let Event::EchoAnswered(e) = event {
        line(json!({
            "event": "echo",
            "from": e.src.to_string(),
            "id": e.id,
            "seq": e.seq,
        }));
    }
}

/// One JSON line on stdout, flushed at once (stdout may be a pipe).
fn line(v: serde_json::Value) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}
