//! `GET /health`: 200 when the device is up and the peer list was synced
//! recently (the last success is younger than 3 sync intervals), 503
//! otherwise; the JSON says the peer count, each peer's handshake age, and
//! the last sync error. The verdict is pure ([`Status::report`] takes the
//! time), the route only reads the shared status.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::keys::Key;
use crate::peers::PeerSet;
use crate::uapi::DeviceState;

/// What the service knows about itself, updated by the sync loop.
#[derive(Debug, Clone)]
pub struct Status {
    pub interface: String,
    pub public_key: Key,
    pub listen_port: u16,
    pub interval: Duration,
    /// The device answered its last UAPI request.
    pub device_up: bool,
    pub last_success: Option<Instant>,
    pub last_error: Option<String>,
    /// The last good list from the api (device names for the report).
    pub wanted: Option<PeerSet>,
    /// The device's state at the last sync.
    pub device: DeviceState,
}

/// The status shared by the sync loop and the health route.
pub type Shared = Arc<Mutex<Status>>;

impl Status {
    pub fn new(interface: &str, public_key: Key, listen_port: u16, interval: Duration) -> Status {
        Status {
            interface: interface.to_string(),
            public_key,
            listen_port,
            interval,
            device_up: false,
            last_success: None,
            last_error: None,
            wanted: None,
            device: DeviceState::default(),
        }
    }

    /// Whether the service is healthy at `now`, and the report.
    pub fn report(&self, now: Instant) -> (bool, Value) {
        let sync_age = self.last_success.map(|t| now.saturating_duration_since(t));
        let fresh = sync_age.is_some_and(|a| a < self.interval * 3);
        let healthy = self.device_up && fresh;
        let peers: Vec<Value> = self
            .device
            .peers
            .iter()
            .map(|(key, p)| {
                let device = self
                    .wanted
                    .as_ref()
                    .and_then(|w| w.get(key))
                    .and_then(|s| s.device.clone());
                json!({
                    "public_key": key.to_base64(),
                    "device": device,
                    "allowed_ips": p.allowed_ips.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                    "endpoint": p.endpoint,
                    "last_handshake_age_secs": p.last_handshake.map(|d| d.as_secs()),
                    "rx_bytes": p.rx_bytes,
                    "tx_bytes": p.tx_bytes,
                })
            })
            .collect();
        let report = json!({
            "status": if healthy { "ok" } else { "unhealthy" },
            "interface": self.interface,
            "public_key": self.public_key.to_base64(),
            "listen_port": self.listen_port,
            "device_up": self.device_up,
            "last_sync_age_secs": sync_age.map(|a| a.as_secs_f64()),
            "last_sync_error": self.last_error,
            "peer_count": peers.len(),
            "peers": peers,
        });
        (healthy, report)
    }
}

/// The health router.
pub fn router(status: Shared) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(status)
}

async fn health(State(status): State<Shared>) -> (StatusCode, Json<Value>) {
    let (healthy, report) = status
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .report(Instant::now());
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(report))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peers::PeerSpec;
    use crate::uapi::DevicePeer;

    fn status() -> Status {
        Status::new("wg0", Key([9; 32]), 51820, Duration::from_secs(2))
    }

    #[test]
    fn unhealthy_before_the_first_sync() {
        let mut s = status();
        s.device_up = true;
        let (ok, r) = s.report(Instant::now());
        assert!(!ok);
        assert_eq!(r["status"], "unhealthy");
        assert_eq!(r["last_sync_age_secs"], Value::Null);
    }

    #[test]
    fn healthy_while_the_last_sync_is_younger_than_three_intervals() {
        let t0 = Instant::now();
        let mut s = status();
        s.device_up = true;
        s.last_success = Some(t0);
        assert!(s.report(t0 + Duration::from_secs(5)).0);
        // A failing api after a success: still healthy within the window...
        s.last_error = Some("the api at x is not reachable".into());
        let (ok, r) = s.report(t0 + Duration::from_millis(5999));
        assert!(ok);
        assert_eq!(r["last_sync_error"], "the api at x is not reachable");
        // ...and not after it.
        assert!(!s.report(t0 + Duration::from_secs(6)).0);
    }

    #[test]
    fn a_down_device_is_unhealthy() {
        let t0 = Instant::now();
        let mut s = status();
        s.last_success = Some(t0);
        assert!(!s.report(t0).0);
    }

    #[test]
    fn peers_show_their_device_and_handshake_age() {
        let t0 = Instant::now();
        let mut s = status();
        s.device_up = true;
        s.last_success = Some(t0);
        let ips: std::collections::BTreeSet<_> = ["10.99.0.2/32".parse().unwrap()].into();
        s.wanted = Some(PeerSet::from([(
            Key([1; 32]),
            PeerSpec {
                device: Some("dev-1".into()),
                allowed_ips: ips.clone(),
            },
        )]));
        s.device.peers.insert(
            Key([1; 32]),
            DevicePeer {
                allowed_ips: ips,
                last_handshake: Some(Duration::from_secs(12)),
                ..Default::default()
            },
        );
        s.device.peers.insert(Key([2; 32]), DevicePeer::default());
        let (_, r) = s.report(t0);
        assert_eq!(r["peer_count"], 2);
        assert_eq!(r["peers"][0]["device"], "dev-1");
        assert_eq!(r["peers"][0]["allowed_ips"], json!(["10.99.0.2/32"]));
        assert_eq!(r["peers"][0]["last_handshake_age_secs"], 12);
        assert_eq!(r["peers"][1]["device"], Value::Null);
        assert_eq!(r["peers"][1]["last_handshake_age_secs"], Value::Null);
    }
}
