//! The JSON bodies the api accepts and the JSON answers it returns, with the wire
//! names of `stack/api/openapi.json` (each type names its schema there).
//!
//! Fields are declared in alphabetical order: serde writes a struct's fields in
//! declaration order, and the api's answers have always had their keys sorted (it
//! built them as `serde_json` maps, which sort), so an answer's bytes, and with
//! them the ETags of the target and the peer list, stay what they were. A unit
//! test holds every answer type to it.
//!
//! Times are RFC 3339 text in UTC (`2025-06-01T12:00:00.123456Z`), as the api
//! writes them; this crate does not parse them, so it needs no time library.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::FleetName;

/// A device's state report as the api keeps it: any JSON object (`PUT
/// /v1/device/state`).
pub type StateReport = serde_json::Map<String, serde_json::Value>;

/// Every error answer: `{"error": "<cause and fix>"}` (schema `Error`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// What went wrong and what to do about it.
    pub error: String,
}

/// Whether the api and its database answer (`GET /v1/health`, schema `Health`):
/// 200 with `ok`, 503 with `unhealthy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `"ok"`, or that the database does not answer (why is in the api's log:
    /// the route is public).
    pub database: String,
    pub status: HealthStatus,
}

/// The `status` of [`Health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    Ok,
    Unhealthy,
}

/// `POST /v1/fleets` (schema `NewFleet`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewFleet {
    /// 1 to 63 of `a-z`, `0-9`, `-`, starting and ending with a letter or a
    /// digit (see [`FleetName`]).
    pub name: FleetName,
}

/// A fleet: devices that run the same release (schema `Fleet`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fleet {
    pub created_at: String,
    pub id: i64,
    pub name: FleetName,
    /// The pinned release; `None` (null): the newest release is the target.
    pub target_release_id: Option<i64>,
}

/// A fleet as other answers name it (schema `FleetRef`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetRef {
    pub id: i64,
    pub name: FleetName,
}

/// `PUT /v1/fleets/{id}/target` (schema `SetTarget`). The field is always sent
/// (null unpins); the api takes a missing one as null.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetTarget {
    /// A release of this fleet, or `None` to follow the newest release.
    pub release_id: Option<i64>,
}

/// `POST /v1/fleets/{id}/releases` (schema `NewRelease`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRelease {
    /// The text of the compose file.
    pub compose: String,
    /// The image of each service, pinned by digest:
    /// `<repository>@sha256:<64 hex digits>`.
    pub images: BTreeMap<String, String>,
}

/// A release: a compose file and the digest-pinned image of each service
/// (schema `Release`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub compose: String,
    pub created_at: String,
    pub fleet_id: i64,
    pub id: i64,
    pub images: BTreeMap<String, String>,
    /// 1, 2, 3, ... per fleet.
    pub version: i32,
}

/// `POST /v1/fleets/{id}/provisioning-keys` (schema `NewProvisioningKey`); every
/// field is optional, and so is the body.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProvisioningKey {
    /// At most 1,024 bytes, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// 0 to 30 days; an hour when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_secs: Option<i64>,
    /// How many devices the key may register: 1 to 1,000; 1 when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_uses: Option<i32>,
}

/// A new provisioning key (schema `ProvisioningKey`): `key` is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningKey {
    pub description: String,
    pub expires_at: String,
    pub fleet_id: i64,
    pub id: i64,
    /// The key (64 hex characters); stored hashed.
    pub key: String,
    /// How many devices it may register.
    pub max_uses: i32,
}

/// A provisioning key as the fleet's list shows it, without the key (schema
/// `ProvisioningKeyInfo`). It registers devices while `uses < max_uses` and
/// before `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningKeyInfo {
    pub created_at: String,
    pub description: String,
    pub expires_at: String,
    pub fleet_id: i64,
    pub id: i64,
    pub max_uses: i32,
    /// Devices registered with it so far.
    pub uses: i32,
}

/// `POST /v1/devices/register` (schema `Registration`); it needs no
/// `Authorization`: the provisioning key is the credential.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// At most 253 bytes, no control characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub provisioning_key: String,
    /// base64 of the device's 32-byte WireGuard public key; with it the device
    /// gets a tunnel address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard_public_key: Option<String>,
    /// The device's own identity, made before it registers (a UUID, and 64
    /// hex characters), so that a registration sent again (a restart, a
    /// lost answer) answers the same device instead of making another.
    /// Both or neither; without them the api makes them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_key: Option<String>,
}

/// `POST /v1/fleets/{id}/provisioning-config` (schema
/// `NewProvisioningConfig`): a provisioning key as
/// [`NewProvisioningKey`], and the device profile the devices get.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewProvisioningConfig {
    /// The key's settings, as `provisioning-keys` takes them.
    #[serde(flatten)]
    pub key: NewProvisioningKey,
    /// A device profile name (`raspberrypi3`, `nuc`, ...); none: the device
    /// detects its own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_profile: Option<String>,
}

/// Everything a new device needs to join a fleet, in one file (schema
/// `ProvisioningConfig`). The device checks `root_ca` against
/// `root_sha256` and trusts only that root for the api and the registry;
/// it drops `provisioning_key` once registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvisioningConfig {
    /// The api's public URL (`https://api.<domain>[:port]`).
    pub api: String,
    /// The registry's name as image references write it
    /// (`registry.<domain>[:port]`).
    pub registry: String,
    pub fleet: FleetRef,
    /// The key (shown this once); `None` once the device registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_key: Option<String>,
    pub provisioning_key_id: i64,
    pub expires_at: String,
    pub max_uses: i32,
    /// The stack's root certificate (PEM).
    pub root_ca: String,
    /// SHA-256 of the root (DER) as uppercase hex pairs joined by `:`, as
    /// `turtle ca status` shows it.
    pub root_sha256: String,
    pub vpn: VpnEndpoint,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_profile: Option<String>,
}

/// Where devices reach the VPN server (schema `VpnEndpoint`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpnEndpoint {
    pub host: String,
    pub port: u16,
}

/// A registered device (schema `Registered`): `device_key` is shown this once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The device's key (64 hex characters), sent as `Authorization: Bearer`.
    pub device_key: String,
    pub fleet: FleetRef,
    pub uuid: String,
    /// `None` (null) when no WireGuard public key was sent.
    pub vpn: Option<DeviceVpn>,
}

/// What a device needs to bring its tunnel up (schema `DeviceVpn`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceVpn {
    /// The device's tunnel address (IPv4).
    pub address: String,
    pub endpoint_host: String,
    pub endpoint_port: u16,
    /// The VPN subnet's prefix length.
    pub prefix: u8,
    pub server_address: String,
    /// base64.
    pub server_public_key: String,
}

/// A device as admins see it (schema `Device`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Device {
    pub fleet: FleetRef,
    pub last_seen: Option<String>,
    pub name: Option<String>,
    pub registered_at: String,
    /// The device's last state report, as it sent it (a JSON object).
    pub state: Option<serde_json::Value>,
    pub state_reported_at: Option<String>,
    pub uuid: String,
    pub vpn_address: Option<String>,
    pub wireguard_public_key: Option<String>,
}

/// What a device runs (`GET /v1/device/target`, schema `Target`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub fleet: FleetRef,
    /// `None` (null) before the fleet's first release.
    pub release: Option<Release>,
}

/// A log line a device sends (`POST /v1/device/logs`, schema `LogLineIn`).
/// The api stores its text without terminal escape sequences and control
/// characters (line breaks become spaces, tabs stay), cut at 4 KiB (the
/// service at 255 bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLineIn {
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// RFC 3339; the api stamps a line without one with the time it arrived,
    /// and moves a time after its arrival to its arrival, and one before the
    /// log retention to the retention's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
}

/// A stored log line (`GET /v1/devices/{uuid}/logs`, schema `LogLine`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Increases in the order lines were received: the cursor of
    /// [`LogQuery::after`].
    pub id: i64,
    pub message: String,
    pub service: Option<String>,
    pub timestamp: String,
}

/// The query of `GET /v1/devices/{uuid}/logs`: with `since`, the first `limit`
/// lines stamped after it; with `after` (a line's id), the first `limit` lines
/// received after that one; with neither, the last `limit` lines. Oldest first
/// in every case; `since` and `after` exclude each other.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<i64>,
    /// 1 to 10,000; 100 when not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<String>,
}

impl LogQuery {
    /// The query string (without `?`; empty when nothing is set).
    pub fn to_query(&self) -> String {
        let mut q = crate::query::Query::default();
        q.opt("limit", self.limit);
        q.opt("since", self.since.as_deref());
        q.opt("after", self.after);
        q.finish()
    }
}

/// The query of `GET /v1/registry/token`, as Docker's token authentication
/// sends it; the credentials go as HTTP Basic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegistryTokenQuery {
    /// The registry's service name (`registry.<domain>[:port]`), the token's
    /// `aud`; the api refuses another one.
    pub service: Option<String>,
    /// `<type>:<name>:<action>,<action>`, such as `repository:prod/web:pull`;
    /// none (as `docker login` asks) gives a token with empty access.
    pub scopes: Vec<String>,
    /// The account Docker names (the api ignores it: the credentials decide).
    pub account: Option<String>,
}

impl RegistryTokenQuery {
    /// The query string (without `?`): one `scope` parameter per scope.
    pub fn to_query(&self) -> String {
        let mut q = crate::query::Query::default();
        q.opt("service", self.service.as_deref());
        for scope in &self.scopes {
            q.pair("scope", scope);
        }
        q.opt("account", self.account.as_deref());
        q.finish()
    }
}

/// A registry token (`GET /v1/registry/token`, schema `RegistryToken`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistryToken {
    /// The same token (its OAuth2 name).
    pub access_token: String,
    /// Seconds: 60 for a device (so a deleted device's tokens die soon), 300
    /// for the admin and the builder.
    pub expires_in: u64,
    pub issued_at: String,
    /// A JWT (ES256) with `x5c` = [leaf, intermediate] in its header.
    pub token: String,
}

/// The VPN's peer list (`GET /v1/vpn/peers`, schema `Peers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peers {
    pub peers: Vec<Peer>,
}

/// A device with a tunnel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peer {
    /// Its tunnel address as `10.99.0.N/32`.
    pub allowed_ips: Vec<String>,
    /// The device's UUID.
    pub device: String,
    /// base64.
    pub public_key: String,
}

/// The VPN server's identity (`GET /v1/vpn`, schema `VpnInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpnInfo {
    pub endpoint_host: String,
    pub endpoint_port: u16,
    pub server_address: String,
    /// base64.
    pub server_public_key: String,
    /// Such as `10.99.0.0/16`.
    pub subnet: String,
}

#[cfg(test)]
mod tests {
    use serde::Serialize;
    use serde::de::DeserializeOwned;
    use serde_json::json;

    use super::*;

    /// Serializes `value`, checks its keys are sorted at every level (the bytes
    /// of a `serde_json` map), and that it reads back as itself.
    fn canonical<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
        let direct = serde_json::to_string(value).unwrap();
        let sorted = serde_json::to_string(&serde_json::to_value(value).unwrap()).unwrap();
        assert_eq!(direct, sorted, "fields are not in alphabetical order");
        let back: T = serde_json::from_str(&direct).unwrap();
        assert_eq!(&back, value);
    }

    fn name(text: &str) -> FleetName {
        FleetName::parse(text).unwrap()
    }

    fn fleet_ref() -> FleetRef {
        FleetRef {
            id: 1,
            name: name("prod"),
        }
    }

    fn release() -> Release {
        Release {
            compose: "services: {}\n".into(),
            created_at: "2025-06-01T12:00:00Z".into(),
            fleet_id: 1,
            id: 2,
            images: BTreeMap::from([("web".into(), "r/prod/web@sha256:aa".into())]),
            version: 1,
        }
    }

    #[test]
    fn answers_are_written_with_sorted_keys() {
        canonical(&ErrorBody { error: "x".into() });
        canonical(&Health {
            database: "ok".into(),
            status: HealthStatus::Ok,
        });
        canonical(&Fleet {
            created_at: "t".into(),
            id: 1,
            name: name("prod"),
            target_release_id: Some(2),
        });
        canonical(&release());
        canonical(&ProvisioningKey {
            description: String::new(),
            expires_at: "t".into(),
            fleet_id: 1,
            id: 1,
            key: "k".into(),
            max_uses: 1,
        });
        canonical(&ProvisioningKeyInfo {
            created_at: "t".into(),
            description: String::new(),
            expires_at: "t".into(),
            fleet_id: 1,
            id: 1,
            max_uses: 3,
            uses: 1,
        });
        let vpn = DeviceVpn {
            address: "10.99.0.2".into(),
            endpoint_host: "turtle.local".into(),
            endpoint_port: 51820,
            prefix: 16,
            server_address: "10.99.0.1".into(),
            server_public_key: "pk".into(),
        };
        canonical(&Registered {
            device_key: "k".into(),
            fleet: fleet_ref(),
            uuid: "u".into(),
            vpn: Some(vpn),
        });
        canonical(&Device {
            fleet: fleet_ref(),
            last_seen: Some("t".into()),
            name: Some("pi".into()),
            registered_at: "t".into(),
            state: Some(json!({"b": 1, "a": {"d": 2, "c": 3}})),
            state_reported_at: Some("t".into()),
            uuid: "u".into(),
            vpn_address: Some("10.99.0.2".into()),
            wireguard_public_key: Some("wg".into()),
        });
        canonical(&Target {
            fleet: fleet_ref(),
            release: Some(release()),
        });
        canonical(&LogLine {
            id: 1,
            message: "m".into(),
            service: Some("web".into()),
            timestamp: "t".into(),
        });
        canonical(&RegistryToken {
            access_token: "t".into(),
            expires_in: 300,
            issued_at: "t".into(),
            token: "t".into(),
        });
        canonical(&Peers {
            peers: vec![Peer {
                allowed_ips: vec!["10.99.0.2/32".into()],
                device: "u".into(),
                public_key: "pk".into(),
            }],
        });
        canonical(&VpnInfo {
            endpoint_host: "h".into(),
            endpoint_port: 1,
            server_address: "a".into(),
            server_public_key: "k".into(),
            subnet: "s".into(),
        });
        // Requests too, so what the client sends reads the same way.
        canonical(&NewFleet { name: name("a") });
        canonical(&SetTarget { release_id: None });
        canonical(&NewRelease {
            compose: "c".into(),
            images: BTreeMap::new(),
        });
        canonical(&NewProvisioningKey {
            description: Some("d".into()),
            expires_in_secs: Some(1),
            max_uses: Some(2),
        });
        canonical(&Registration {
            name: Some("n".into()),
            provisioning_key: "k".into(),
            wireguard_public_key: Some("w".into()),
            ..Default::default()
        });
        canonical(&LogLineIn {
            message: "m".into(),
            service: Some("s".into()),
            timestamp: Some("t".into()),
        });
    }

    /// The wire names and nulls of the contract, spelled out once.
    #[test]
    fn wire_names_and_nulls() {
        assert_eq!(
            serde_json::to_value(Target {
                fleet: fleet_ref(),
                release: None
            })
            .unwrap(),
            json!({"fleet": {"id": 1, "name": "prod"}, "release": null})
        );
        assert_eq!(
            serde_json::to_value(SetTarget { release_id: None }).unwrap(),
            json!({"release_id": null}),
            "null unpins: the field is sent"
        );
        assert_eq!(
            serde_json::from_value::<SetTarget>(json!({})).unwrap(),
            SetTarget { release_id: None },
            "the api takes a missing release_id as null"
        );
        assert_eq!(
            serde_json::to_value(NewProvisioningKey::default()).unwrap(),
            json!({})
        );
        assert_eq!(
            serde_json::to_value(Registration {
                name: None,
                provisioning_key: "k".into(),
                wireguard_public_key: None,
                ..Default::default()
            })
            .unwrap(),
            json!({"provisioning_key": "k"})
        );
        assert_eq!(
            serde_json::to_value(Health {
                database: "down".into(),
                status: HealthStatus::Unhealthy,
            })
            .unwrap(),
            json!({"database": "down", "status": "unhealthy"})
        );
        let device: Device = serde_json::from_value(json!({
            "uuid": "u", "name": null, "fleet": {"id": 1, "name": "prod"},
            "vpn_address": null, "wireguard_public_key": null,
            "registered_at": "t", "last_seen": null, "state": null,
            "state_reported_at": null,
        }))
        .unwrap();
        assert!(device.state.is_none() && device.last_seen.is_none());
        let fields = serde_json::to_value(&device).unwrap();
        assert_eq!(fields.as_object().unwrap().len(), 9, "nulls are written");
    }

    #[test]
    fn query_strings() {
        assert_eq!(LogQuery::default().to_query(), "");
        assert_eq!(
            LogQuery {
                limit: Some(2),
                since: Some("2025-06-01T12:00:00+02:00".into()),
                after: None,
            }
            .to_query(),
            "limit=2&since=2025-06-01T12%3A00%3A00%2B02%3A00"
        );
        assert_eq!(
            RegistryTokenQuery {
                service: Some("registry.t.local:8443".into()),
                scopes: vec![
                    "repository:f/web:pull,push".into(),
                    "repository:f/db:pull registry:catalog:*".into(),
                ],
                account: None,
            }
            .to_query(),
            "service=registry.t.local%3A8443&scope=repository%3Af%2Fweb%3Apull%2Cpush\
             &scope=repository%3Af%2Fdb%3Apull%20registry%3Acatalog%3A%2A"
        );
    }
}

/// What the stack's builder pushed (its last answer line).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Built {
    pub digest: String,
    /// `<registry>/<path>@sha256:...`, one per tag.
    pub images: Vec<String>,
}
