//! The VPN as the API sees it: tunnel addresses for devices, the peer list the vpn
//! service polls, and the server's identity for any caller.
//!
//! Addresses are given in `--vpn-subnet` from `.2` upwards, the lowest free one
//! first, by one SQL query run under a transaction-scoped advisory lock, so
//! concurrent registrations never get the same address (and the unique index on
//! `devices.vpn_address` would refuse it if they did). Once only
//! `--vpn-reserve-percent` of the addresses are left, registration with a
//! WireGuard key is refused (503) with what to do; deleting a device frees its
//! address. The peer list is read from `devices` at every call, so a deleted
//! device's peer is gone from the next answer.

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use deadpool_postgres::Transaction;
use turtle_fleet_api::{DeviceVpn, Peer, Peers, VpnInfo};

use crate::auth::{AnyCaller, VpnOrAdmin};
use crate::config::VpnServer;
use crate::error::{ApiError, ApiResult};
use crate::respond::json_with_etag;
use crate::state::AppState;

/// The advisory lock address allocation holds ("turtle" in ASCII, then 2).
const ALLOCATION_LOCK: i64 = 0x7475_7274_6c65_0002;

/// Checks a WireGuard public key: base64 of 32 bytes. Returns it re-encoded
/// canonically.
pub fn check_public_key(key: &str) -> ApiResult<String> {
    STANDARD
        .decode(key.trim())
        .ok()
        .filter(|bytes| bytes.len() == 32)
        .map(|bytes| STANDARD.encode(bytes))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "wireguard_public_key {key:?} is not a WireGuard public key: give the base64 \
                 of 32 bytes, as `wg pubkey` prints it"
            ))
        })
}

/// How many device addresses the subnet has (`.2` to the one before
/// broadcast), and how many of them are kept free: `reserve_percent` of them,
/// rounded down.
pub fn pool(server: &VpnServer) -> (i64, i64) {
    let capacity = server.subnet.last_offset() - 1;
    (capacity, capacity * i64::from(server.reserve_percent) / 100)
}

/// The lowest free device address of the subnet, as text (`10.99.0.2`), unless
/// only the reserve is left. Takes the allocation lock for the rest of the
/// transaction: insert the device in the same transaction.
pub async fn allocate(tx: &Transaction<'_>, server: &VpnServer) -> ApiResult<String> {
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&ALLOCATION_LOCK])
        .await?;
    let network = server.subnet.network().to_string();
    let subnet = server.subnet.to_string();
    let (capacity, reserve) = pool(server);
    let used: i64 = tx
        .query_one(
            "SELECT count(*) FROM devices WHERE vpn_address << $1::text::inet",
            &[&subnet],
        )
        .await?
        .get(0);
    let full = || {
        ApiError::Exhausted(format!(
            "the VPN subnet {subnet} has no address left for a new device: {used} of its \
             {capacity} device addresses are in use and {reserve} are kept free \
             (--vpn-reserve-percent {}): delete devices that are gone (DELETE \
             /v1/devices/{{uuid}}), or start the stack with a larger --vpn-subnet",
            server.reserve_percent
        ))
    };
    if used >= capacity - reserve {
        return Err(full());
    }
    let row = tx
        .query_opt(
            "SELECT host($1::text::inet + c.o) FROM (
                 SELECT 2::bigint AS o
                 UNION ALL
                 SELECT (vpn_address - $1::text::inet) + 1 FROM devices
                 WHERE vpn_address << $2::text::inet
             ) c
             WHERE c.o <= $3
               AND NOT EXISTS (SELECT 1 FROM devices d WHERE d.vpn_address = $1::text::inet + c.o)
             ORDER BY c.o LIMIT 1",
            &[&network, &subnet, &server.subnet.last_offset()],
        )
        .await?;
    row.map(|r| r.get(0)).ok_or_else(full)
}

/// What a device needs to bring its tunnel up.
pub fn device_config(server: &VpnServer, address: String) -> DeviceVpn {
    DeviceVpn {
        address,
        endpoint_host: server.host.clone(),
        endpoint_port: server.port,
        prefix: server.subnet.prefix(),
        server_address: server.subnet.server().to_string(),
        server_public_key: server.public_key.clone(),
    }
}

/// `GET /v1/vpn/peers`: every device with a tunnel, with an ETag.
pub async fn peers(
    _: VpnOrAdmin,
    State(state): State<AppState>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let client = state.pool.get().await?;
    let rows = client
        .query(
            "SELECT uuid::text, wireguard_public_key, host(vpn_address) FROM devices
             WHERE wireguard_public_key IS NOT NULL ORDER BY vpn_address",
            &[],
        )
        .await?;
    let peers = rows
        .iter()
        .map(|r| Peer {
            allowed_ips: vec![format!("{}/32", r.get::<_, String>(2))],
            device: r.get(0),
            public_key: r.get(1),
        })
        .collect();
    Ok(json_with_etag(&headers, &Peers { peers }))
}

/// `GET /v1/vpn`: the server's identity.
pub async fn info(_: AnyCaller, State(state): State<AppState>) -> Json<VpnInfo> {
    let server = &state.config.vpn;
    Json(VpnInfo {
        endpoint_host: server.host.clone(),
        endpoint_port: server.port,
        server_address: server.subnet.server().to_string(),
        server_public_key: server.public_key.clone(),
        subnet: server.subnet.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(subnet: &str, reserve_percent: u8) -> VpnServer {
        VpnServer {
            subnet: subnet.parse().unwrap(),
            public_key: String::new(),
            port: 51820,
            host: "t".into(),
            reserve_percent,
        }
    }

    #[test]
    fn the_pool_keeps_its_reserve() {
        assert_eq!(pool(&server("10.99.0.0/16", 1)), (65533, 655));
        assert_eq!(pool(&server("10.99.0.0/29", 1)), (5, 0));
        assert_eq!(pool(&server("10.99.0.0/29", 20)), (5, 1));
        assert_eq!(pool(&server("10.99.0.0/30", 0)), (1, 0));
    }

    #[test]
    fn public_keys_are_32_bytes_of_base64() {
        let key = STANDARD.encode([7u8; 32]);
        assert_eq!(check_public_key(&key).unwrap(), key);
        assert!(check_public_key(&STANDARD.encode([7u8; 31])).is_err());
        assert!(check_public_key("not base64!").is_err());
    }
}
