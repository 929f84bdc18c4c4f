//! Networks: the top-level `networks:` (engine names, IPAM), a service's
//! `network_mode:` or `networks:` (which must be declared at the top level),
//! and the implicit `default` network.

use indexmap::IndexMap;
use serde_norway::{Mapping, Value};

use super::values::{boolean, engine_name, get, int, opt_bool, string, string_map, strings, sub};
use crate::error::LoadError;
use crate::model::{Ipam, IpamPool, Network, NetworkMode, Service, ServiceNetwork};
use crate::name::ServiceName;

/// The top-level `networks:`, in file order.
pub(super) fn top_level(project: &str, networks: &Mapping) -> IndexMap<String, Network> {
    let empty = Mapping::new();
    let mut out = IndexMap::new();
    for (key, entry) in networks {
        let key = crate::keys::key_string(key);
        let n = entry.as_mapping().unwrap_or(&empty);
        let (name, external) = engine_name(project, &key, n);
        let ipam = sub(n, "ipam").map(|i| Ipam {
            driver: string(i, "driver"),
            config: match get(i, "config") {
                Some(Value::Sequence(pools)) => pools
                    .iter()
                    .filter_map(Value::as_mapping)
                    .map(|p| IpamPool {
                        subnet: string(p, "subnet"),
                        gateway: string(p, "gateway"),
                        ip_range: string(p, "ip_range"),
                        aux_addresses: string_map(p, "aux_addresses"),
                    })
                    .collect(),
                _ => Vec::new(),
            },
            options: string_map(i, "options"),
        });
        out.insert(
            key,
            Network {
                name,
                driver: string(n, "driver"),
                driver_opts: string_map(n, "driver_opts"),
                internal: boolean(n, "internal"),
                external,
                enable_ipv6: boolean(n, "enable_ipv6"),
                enable_ipv4: opt_bool(n, "enable_ipv4").filter(|on| !on),
                attachable: boolean(n, "attachable"),
                ipam,
                labels: string_map(n, "labels"),
            },
        );
    }
    out
}

/// One entry of a service's `networks:` mapping.
fn service_network(m: &Mapping) -> ServiceNetwork {
    ServiceNetwork {
        aliases: strings(m, "aliases"),
        ipv4_address: string(m, "ipv4_address"),
        ipv6_address: string(m, "ipv6_address"),
        priority: int(m, "priority"),
        gw_priority: int(m, "gw_priority"),
        link_local_ips: strings(m, "link_local_ips"),
        driver_opts: string_map(m, "driver_opts"),
        mac_address: string(m, "mac_address"),
        interface_name: string(m, "interface_name"),
    }
}

/// A service's `network_mode:` and `networks:` (one or the other). Without
/// either, the service is on the `default` network.
pub(super) fn service_networks(
    service: &str,
    svc: &Mapping,
    declared: &IndexMap<String, Network>,
) -> Result<(Option<NetworkMode>, IndexMap<String, ServiceNetwork>), LoadError> {
    let err = |m: String| LoadError::service(service, m);
    let mode = string(svc, "network_mode")
        .map(|m| m.parse::<NetworkMode>().map_err(err))
        .transpose()?;
    let nets: IndexMap<String, ServiceNetwork> = match get(svc, "networks") {
        Some(Value::Sequence(_)) => strings(svc, "networks")
            .into_iter()
            .map(|n| (n, ServiceNetwork::default()))
            .collect(),
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| {
                let sn = v.as_mapping().map(service_network).unwrap_or_default();
                (crate::keys::key_string(k), sn)
            })
            .collect(),
        _ => IndexMap::new(),
    };
    let mut out = IndexMap::new();
    if mode.is_some() {
        if !nets.is_empty() {
            return Err(err(
                "network_mode and networks cannot be used together: keep one".into(),
            ));
        }
    } else if nets.is_empty() {
        out.insert("default".into(), ServiceNetwork::default());
    } else {
        for n in nets.keys() {
            if n != "default" && !declared.contains_key(n) {
                return Err(err(format!(
                    "uses network {n:?}, which is not declared in the top-level networks: section"
                )));
            }
        }
        out = nets;
    }
    Ok((mode, out))
}

/// Adds the `default` network (`<project>_default`) when a service is on it
/// and the file does not define it.
pub(super) fn add_default(
    project: &str,
    services: &IndexMap<ServiceName, Service>,
    networks: &mut IndexMap<String, Network>,
) {
    if services
        .values()
        .any(|s| s.networks.contains_key("default"))
        && !networks.contains_key("default")
    {
        networks.insert(
            "default".into(),
            Network {
                name: format!("{project}_default"),
                ..Default::default()
            },
        );
    }
}
