//! The device's end of its fleet's VPN: a userspace WireGuard device
//! (boringtun, as the backend's vpn service runs) with the backend's
//! server as its one peer, and the daemon's operator listener on the
//! tunnel address (`turtle_control::remote::operator`), so the parent's
//! `turtle devices ps|logs|exec` reach this box through the tunnel and
//! nothing of it is open on the box's LAN.
//!
//! The server never reaches a device first (a device sits behind NAT): the
//! device sends a keepalive every [`KEEPALIVE_SECS`], which makes the
//! handshake as soon as the vpn service has synced this box's peer from
//! the api and keeps the mapping open.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use turtle_control::remote::{operator, tls::LeafResolver};
use turtle_engine::docker::Docker;
use turtle_fleet_api::DeviceVpn;
use turtle_runtime::supervisor::Supervisor;
use turtle_vpn::cidr::Cidr;
use turtle_vpn::device::{Device, DeviceSettings};
use turtle_vpn::keys::Key;

use super::identity::Identity;

/// The tunnel interface on a device.
pub const INTERFACE: &str = "turtle-vpn";
/// Seconds between keepalives (WireGuard's usual value for NAT).
pub const KEEPALIVE_SECS: u16 = 25;

/// A device's tunnel and its listener, up. Dropping it stops both.
pub struct Tunnel {
    pub address: IpAddr,
    pub port: u16,
    _device: Device,
    listener: tokio::task::JoinHandle<()>,
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

/// Brings the tunnel up and starts the operator listener on it.
pub async fn up(sup: &Arc<Supervisor<Docker>>, id: &Identity, port: u16) -> Result<Tunnel, String> {
    let (Some(vpn), Some(key)) = (&id.vpn, &id.wireguard_key) else {
        return Err("this box registered without a WireGuard key (agent.vpn was off, or it registered before Turtle had the VPN join): remove it from the fleet (turtle devices rm) and provision it again to join the VPN".into());
    };
    let key: Key = key
        .parse()
        .map_err(|e| format!("the WireGuard key of this box's identity: {e}"))?;
    let server: Key = vpn
        .server_public_key
        .parse()
        .map_err(|e| format!("the VPN server's public key: {e}"))?;
    let address: IpAddr = vpn
        .address
        .parse()
        .map_err(|e| format!("the tunnel address {:?}: {e}", vpn.address))?;
    let server_address: IpAddr = vpn
        .server_address
        .parse()
        .map_err(|e| format!("the VPN server's address {:?}: {e}", vpn.server_address))?;
    let endpoint = endpoint(vpn).await?;
    let settings = DeviceSettings {
        interface: INTERFACE.into(),
        private_key: key,
        listen_port: 0,
        address: Cidr {
            addr: address,
            prefix: vpn.prefix,
        },
        threads: 1,
    };
    let device = tokio::task::spawn_blocking(move || -> Result<Device, String> {
        let device = Device::create(&settings).map_err(|e| e.to_string())?;
        // Only the server may send through the tunnel: never another
        // device, even if the server forwarded.
        let host = Cidr {
            addr: server_address,
            prefix: if server_address.is_ipv4() { 32 } else { 128 },
        };
        device
            .add_server(&server, endpoint, host, KEEPALIVE_SECS)
            .map_err(|e| e.to_string())?;
        Ok(device)
    })
    .await
    .map_err(|e| format!("making the WireGuard device panicked: {e}"))??;
    let listen = SocketAddr::new(address, port);
    let trust = sup.trust().cloned().ok_or(
        "this box has no CA (trust is off): the operator listener serves a leaf of the box's CA",
    )?;
    let resolver = LeafResolver::new(trust, listen, operator::LEAF_ID)?;
    let tls = operator::server_config(resolver, &id.root_ca)?;
    let listener = operator::bind(listen, INTERFACE)
        .map_err(|e| format!("listening on {listen} (on {INTERFACE}): {e}"))?;
    let control = Arc::clone(sup);
    let listener = tokio::spawn(async move {
        if let Err(e) = operator::serve(listener, tls, control, std::future::pending()).await {
            tracing::error!("fleet agent: the vpn listener stopped: {e}");
        }
    });
    tracing::info!(
        address = %address,
        endpoint = %endpoint,
        server = %vpn.server_address,
        "fleet agent: joined the VPN; the fleet's operator reaches this box at {listen} through it"
    );
    Ok(Tunnel {
        address,
        port,
        _device: device,
        listener,
    })
}

/// The server's UDP endpoint: its host name resolved now (an IPv4 address
/// first: the backend publishes its port on IPv4).
async fn endpoint(vpn: &DeviceVpn) -> Result<SocketAddr, String> {
    let host = (vpn.endpoint_host.as_str(), vpn.endpoint_port);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(host)
        .await
        .map_err(|e| {
            format!(
                "resolving the VPN endpoint {}:{}: {e}",
                vpn.endpoint_host, vpn.endpoint_port
            )
        })?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("the VPN endpoint {} has no address", vpn.endpoint_host))
}
