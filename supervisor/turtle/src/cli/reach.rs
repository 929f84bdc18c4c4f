//! How the parent reaches a device's daemon: through the backend's
//! WireGuard server, from inside the vpn service's network namespace (the
//! only place on this box with a route into the tunnel; the service
//! forwards nothing), over TLS with both sides checked.
//!
//! - The device's tunnel address comes from the api (it gave it); the
//!   listener's port, the name its leaf is for and the device's root come
//!   from the device's last state report (sent with its device key).
//! - This box presents a certificate its CA issues now for
//!   `turtle-operator.<domain>`, kept in memory only: the device pinned
//!   this CA's root when it was provisioned and takes that name alone.
//! - Each connection is opened by a thread of its own that entered the vpn
//!   container's network namespace (setns(2) needs root, as the engine's
//!   socket does); the socket stays in that namespace, the thread ends.

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::Duration;

use turtle_control::client::{Client, Dialer, Io};
use turtle_control::remote::operator;
use turtle_engine::Engine;
use turtle_engine::docker::Docker;
use turtle_fleet_api::Device;
use turtle_runtime::trust::Trust;

use super::GlobalArgs;
use super::context::{self, Failure};
use super::fleet::Backend;

/// The stack's WireGuard service.
const VPN_SERVICE: &str = "vpn";
/// How long a connection to a device may take (a handshake through the
/// tunnel included).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// A client of device `d`'s daemon, through the tunnel.
pub async fn device_daemon(
    g: &GlobalArgs,
    b: &Backend,
    stack: &turtle_compose::ProjectName,
    d: &Device,
) -> Result<Client, Failure> {
    let who = d.name.clone().unwrap_or_else(|| d.uuid.clone());
    let address = d.vpn_address.as_deref().ok_or_else(|| {
        Failure::input(format!(
            "device {who} has no tunnel: it registered without a WireGuard key (agent.vpn off, or an older turtle)"
        ))
    })?;
    let vpn = d
        .state
        .as_ref()
        .map(|s| s["vpn"].clone())
        .filter(|v| !v.is_null())
        .ok_or_else(|| {
            Failure::op(format!(
                "device {who} has not reported its tunnel up yet (see its logs: `turtle devices logs {who}`, and `turtle events` on it)"
            ))
        })?;
    let (Some(port), Some(server_name), Some(root)) = (
        vpn["port"].as_u64().and_then(|p| u16::try_from(p).ok()),
        vpn["server_name"].as_str(),
        vpn["root_ca"].as_str(),
    ) else {
        return Err(Failure::op(format!(
            "device {who} reported its tunnel without a port, name and root: {vpn}"
        )));
    };
    let addr: SocketAddr = format!("{address}:{port}")
        .parse()
        .map_err(|e| Failure::op(format!("device {who}'s tunnel address {address}: {e}")))?;
    let netns = vpn_netns(g, stack).await?;
    let config = context::supervisor_config(g)?;
    let trust =
        Trust::open(&g.state_dir, &config, std::time::SystemTime::now()).map_err(Failure::op)?;
    let leaf = trust
        .authority()
        .issue(
            &[format!("{}.{}", operator::OPERATOR_NAME, b.domain)],
            &[],
            std::time::SystemTime::now(),
        )
        .map_err(|e| Failure::op(format!("issuing the operator's certificate: {e}")))?;
    let tls = operator::client_config(root, &leaf.chain_pem, &leaf.key_pem).map_err(Failure::op)?;
    let server_name = rustls::pki_types::ServerName::try_from(server_name.to_string())
        .map_err(|e| Failure::op(format!("device {who}'s name {server_name:?}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(tls);
    let netns = Arc::new(netns);
    let dial: Dialer = Arc::new(move || {
        let (netns, connector, server_name) =
            (Arc::clone(&netns), connector.clone(), server_name.clone());
        Box::pin(async move {
            let tcp = connect_in(netns, addr).await?;
            let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(server_name, tcp))
                .await
                .map_err(|_| std::io::Error::other("the TLS handshake timed out"))??;
            Ok(Box::new(tls) as Box<dyn Io>)
        })
    });
    Client::dial(format!("device {who} at {addr} (through the VPN)"), dial)
        .await
        .map_err(Failure::from)
}

/// The network namespace of the stack's running vpn container.
async fn vpn_netns(
    g: &GlobalArgs,
    stack: &turtle_compose::ProjectName,
) -> Result<std::fs::File, Failure> {
    let engine = Docker::connect(g.docker_socket.as_deref()).map_err(Failure::op)?;
    let filter = turtle_reconcile::names::service_filter(stack, VPN_SERVICE);
    let containers = engine.list_containers(&filter).await.map_err(Failure::op)?;
    let running = containers
        .iter()
        .find(|c| c.state == turtle_engine::State::Running)
        .ok_or_else(|| {
            Failure::op(format!(
                "the backend stack {stack} has no running {VPN_SERVICE} service: devices are reached through it (`turtle ps -p {stack}`)"
            ))
        })?;
    let pid = engine
        .inspect_container(&running.id)
        .await
        .map_err(Failure::op)?
        .pid
        .ok_or_else(|| Failure::op(format!("{} has no process", running.name)))?;
    let path = format!("/proc/{pid}/ns/net");
    std::fs::File::open(&path).map_err(|e| {
        Failure::op(format!(
            "{path} ({}'s network namespace): {e}: reaching devices needs root",
            running.name
        ))
    })
}

/// A TCP connection to `addr` made from inside `netns`.
async fn connect_in(
    netns: Arc<std::fs::File>,
    addr: SocketAddr,
) -> std::io::Result<tokio::net::TcpStream> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    // A thread of its own: it is left in the namespace, so it must not be
    // one a pool hands out again.
    std::thread::spawn(move || {
        let connected = rustix::thread::move_into_link_name_space(
            netns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map_err(|e| std::io::Error::other(format!("entering the vpn service's namespace: {e}")))
        .and_then(|()| std::net::TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT))
        .and_then(|s| s.set_nonblocking(true).map(|()| s));
        let _ = tx.send(connected);
    });
    let stream = rx
        .await
        .map_err(|_| std::io::Error::other("the connecting thread died"))??;
    tokio::net::TcpStream::from_std(stream)
}
