//! The OpenAPI 3 document (`openapi.json` next to `Cargo.toml`, written by hand),
//! served at `/v1/openapi.json` with this stack's public API URL as its server.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use crate::state::AppState;

/// The document as written.
pub const DOCUMENT: &str = include_str!("../openapi.json");

/// The document with `servers` set to `api_url`.
pub fn with_server(api_url: &str) -> String {
    let mut doc: serde_json::Value =
        serde_json::from_str(DOCUMENT).expect("openapi.json is JSON (a unit test checks)");
    doc["servers"] = serde_json::json!([{ "url": api_url }]);
    serde_json::to_string_pretty(&doc).expect("a JSON value serializes")
}

/// `GET /v1/openapi.json`.
pub async fn document(State(state): State<AppState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        state.openapi.as_str().to_owned(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde::Serialize;
    use serde_json::Value;
    use turtle_fleet_api::*;

    use super::DOCUMENT;

    fn keys(value: &impl Serialize) -> BTreeSet<String> {
        match serde_json::to_value(value).unwrap() {
            Value::Object(map) => map.keys().cloned().collect(),
            other => panic!("not an object: {other}"),
        }
    }

    /// The schema at `pointer` names exactly the properties `full` (every
    /// optional field set) writes, and `minimal` (every optional field unset)
    /// writes at least the required ones.
    fn check(doc: &Value, pointer: &str, full: &impl Serialize, minimal: &impl Serialize) {
        let schema = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("no {pointer}"));
        let documented: BTreeSet<String> = schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("{pointer} has no properties"))
            .keys()
            .cloned()
            .collect();
        assert_eq!(keys(full), documented, "{pointer}");
        let written = keys(minimal);
        for required in schema["required"].as_array().into_iter().flatten() {
            let required = required.as_str().unwrap();
            assert!(written.contains(required), "{pointer}: {required}");
        }
    }

    /// The parameter names of an operation (`in: query`).
    fn query_parameters(doc: &Value, path: &str) -> BTreeSet<String> {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["in"] == "query")
            .map(|p| p["name"].as_str().unwrap().to_string())
            .collect()
    }

    /// The types of turtle-fleet-api and the document's schemas name the same
    /// properties: the document, the api and its clients cannot drift apart.
    #[test]
    fn the_wire_types_write_the_documented_properties() {
        let doc: Value = serde_json::from_str(DOCUMENT).unwrap();
        let schema = |name: &str| format!("/components/schemas/{name}");
        let prod = FleetName::parse("prod").unwrap();
        let fleet_ref = FleetRef {
            id: 1,
            name: prod.clone(),
        };
        let release = Release {
            compose: "c".into(),
            created_at: "t".into(),
            fleet_id: 1,
            id: 1,
            images: BTreeMap::new(),
            version: 1,
        };
        let vpn = DeviceVpn {
            address: "a".into(),
            endpoint_host: "h".into(),
            endpoint_port: 1,
            prefix: 16,
            server_address: "s".into(),
            server_public_key: "k".into(),
        };
        let error = ErrorBody { error: "e".into() };
        check(&doc, &schema("Error"), &error, &error);
        let health = Health {
            database: "ok".into(),
            status: HealthStatus::Ok,
        };
        check(&doc, &schema("Health"), &health, &health);
        let statuses: Vec<Value> = [HealthStatus::Ok, HealthStatus::Unhealthy]
            .iter()
            .map(|s| serde_json::to_value(s).unwrap())
            .collect();
        assert_eq!(
            doc.pointer("/components/schemas/Health/properties/status/enum")
                .unwrap()
                .as_array()
                .unwrap(),
            &statuses
        );
        let new_fleet = NewFleet { name: prod.clone() };
        check(&doc, &schema("NewFleet"), &new_fleet, &new_fleet);
        let fleet = Fleet {
            created_at: "t".into(),
            id: 1,
            name: prod.clone(),
            target_release_id: None,
        };
        check(&doc, &schema("Fleet"), &fleet, &fleet);
        check(&doc, &schema("FleetRef"), &fleet_ref, &fleet_ref);
        let set = SetTarget { release_id: None };
        check(&doc, &schema("SetTarget"), &set, &set);
        let new_release = NewRelease {
            compose: "c".into(),
            images: BTreeMap::new(),
        };
        check(&doc, &schema("NewRelease"), &new_release, &new_release);
        check(&doc, &schema("Release"), &release, &release);
        check(
            &doc,
            &schema("NewProvisioningKey"),
            &NewProvisioningKey {
                description: Some("d".into()),
                expires_in_secs: Some(1),
                max_uses: Some(1),
            },
            &NewProvisioningKey::default(),
        );
        let key = ProvisioningKey {
            description: "d".into(),
            expires_at: "t".into(),
            fleet_id: 1,
            id: 1,
            key: "k".into(),
            max_uses: 1,
        };
        check(&doc, &schema("ProvisioningKey"), &key, &key);
        let info = ProvisioningKeyInfo {
            created_at: "t".into(),
            description: "d".into(),
            expires_at: "t".into(),
            fleet_id: 1,
            id: 1,
            max_uses: 2,
            uses: 1,
        };
        check(&doc, &schema("ProvisioningKeyInfo"), &info, &info);
        check(
            &doc,
            &schema("Registration"),
            &Registration {
                name: Some("n".into()),
                provisioning_key: "k".into(),
                wireguard_public_key: Some("w".into()),
                uuid: Some("u".into()),
                device_key: Some("k".into()),
            },
            &Registration {
                name: None,
                provisioning_key: "k".into(),
                wireguard_public_key: None,
                uuid: None,
                device_key: None,
            },
        );
        check(
            &doc,
            &schema("NewProvisioningConfig"),
            &NewProvisioningConfig {
                key: NewProvisioningKey {
                    description: Some("d".into()),
                    expires_in_secs: Some(1),
                    max_uses: Some(1),
                },
                device_profile: Some("p".into()),
            },
            &NewProvisioningConfig::default(),
        );
        let endpoint = VpnEndpoint {
            host: "h".into(),
            port: 1,
        };
        check(&doc, &schema("VpnEndpoint"), &endpoint, &endpoint);
        let config = ProvisioningConfig {
            api: "a".into(),
            registry: "r".into(),
            fleet: fleet_ref.clone(),
            provisioning_key: Some("k".into()),
            provisioning_key_id: 1,
            expires_at: "t".into(),
            max_uses: 1,
            root_ca: "c".into(),
            root_sha256: "s".into(),
            vpn: endpoint,
            device_profile: Some("p".into()),
        };
        let registered_config = ProvisioningConfig {
            provisioning_key: None,
            device_profile: None,
            ..config.clone()
        };
        check(
            &doc,
            &schema("ProvisioningConfig"),
            &config,
            &registered_config,
        );
        check(&doc, &schema("DeviceVpn"), &vpn, &vpn);
        check(
            &doc,
            &schema("Registered"),
            &Registered {
                device_key: "k".into(),
                fleet: fleet_ref.clone(),
                uuid: "u".into(),
                vpn: Some(vpn),
            },
            &Registered {
                device_key: "k".into(),
                fleet: fleet_ref.clone(),
                uuid: "u".into(),
                vpn: None,
            },
        );
        let device = Device {
            fleet: fleet_ref.clone(),
            last_seen: None,
            name: None,
            registered_at: "t".into(),
            state: None,
            state_reported_at: None,
            uuid: "u".into(),
            vpn_address: None,
            wireguard_public_key: None,
        };
        check(&doc, &schema("Device"), &device, &device);
        let target = Target {
            fleet: fleet_ref,
            release: None,
        };
        check(&doc, &schema("Target"), &target, &target);
        check(
            &doc,
            &schema("LogLineIn"),
            &LogLineIn {
                message: "m".into(),
                service: Some("s".into()),
                timestamp: Some("t".into()),
            },
            &LogLineIn {
                message: "m".into(),
                service: None,
                timestamp: None,
            },
        );
        let line = LogLine {
            id: 1,
            message: "m".into(),
            service: None,
            timestamp: "t".into(),
        };
        check(&doc, &schema("LogLine"), &line, &line);
        let token = RegistryToken {
            access_token: "t".into(),
            expires_in: 300,
            issued_at: "t".into(),
            token: "t".into(),
        };
        check(&doc, &schema("RegistryToken"), &token, &token);
        let peer = Peer {
            allowed_ips: vec![],
            device: "u".into(),
            public_key: "k".into(),
        };
        let peers = Peers { peers: vec![] };
        check(&doc, &schema("Peers"), &peers, &peers);
        check(
            &doc,
            "/components/schemas/Peers/properties/peers/items",
            &peer,
            &peer,
        );
        let info = VpnInfo {
            endpoint_host: "h".into(),
            endpoint_port: 1,
            server_address: "s".into(),
            server_public_key: "k".into(),
            subnet: "n".into(),
        };
        check(&doc, &schema("VpnInfo"), &info, &info);

        // The query strings the client writes use the documented parameters.
        let logs = LogQuery {
            after: Some(1),
            limit: Some(1),
            since: Some("t".into()),
        };
        assert_eq!(
            keys(&logs),
            query_parameters(&doc, "/v1/devices/{uuid}/logs")
        );
        let token_query = RegistryTokenQuery {
            service: Some("s".into()),
            scopes: vec!["repository:f/web:pull".into()],
            account: Some("a".into()),
        }
        .to_query();
        let names: BTreeSet<String> = token_query
            .split('&')
            .map(|pair| pair.split('=').next().unwrap().to_string())
            .collect();
        assert_eq!(names, query_parameters(&doc, "/v1/registry/token"));
    }
}
