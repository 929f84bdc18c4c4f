//! Networks: the top-level `networks:` (engine names, IPAM), a service's
//! `network_mode:` or `networks:` (which must be declared at the top level),
//! and the implicit `default` network.

use docker_compose_types as dct;
use indexmap::IndexMap;
use serde_norway::Value;

use super::values::{labels, opts_map, raw_string};
use crate::error::LoadError;
use crate::model::{Ipam, IpamPool, Network, NetworkMode, Service, ServiceNetwork};
use crate::name::ServiceName;

/// The top-level `networks:`, in file order. The engine name is `name:`,
/// else the key for an external network (or its `external.name`), else
/// `<project>_<key>`. `ipam` comes raw from the typed parse.
pub(super) fn top_level(
    project: &str,
    networks: &dct::ComposeNetworks,
    ipam: &IndexMap<String, Value>,
) -> IndexMap<String, Network> {
    let mut out = IndexMap::new();
    for (key, entry) in &networks.0 {
        let n: Option<dct::NetworkSettings> = entry.clone().into();
        let n = n.unwrap_or_default();
        let (external, ext_name) = match &n.external {
            Some(dct::ComposeNetwork::Bool(b)) => (*b, None),
            Some(dct::ComposeNetwork::Detailed(d)) => (true, Some(d.name.clone())),
            None => (false, None),
        };
        let engine_name = match (external, n.name.clone()) {
            (_, Some(given)) => given,
            (true, None) => ext_name.unwrap_or_else(|| key.clone()),
            (false, None) => format!("{project}_{key}"),
        };
        let ipam = ipam.get(key).map(|raw| Ipam {
            driver: raw.get("driver").and_then(raw_string),
            config: match raw.get("config") {
                Some(Value::Sequence(pools)) => pools
                    .iter()
                    .map(|p| IpamPool {
                        subnet: p.get("subnet").and_then(raw_string),
                        gateway: p.get("gateway").and_then(raw_string),
                        ip_range: p.get("ip_range").and_then(raw_string),
                        ..Default::default()
                    })
                    .collect(),
                _ => Vec::new(),
            },
            ..Default::default()
        });
        out.insert(
            key.clone(),
            Network {
                name: engine_name,
                driver: n.driver.clone(),
                driver_opts: opts_map(&n.driver_opts),
                internal: n.internal,
                external,
                enable_ipv6: n.enable_ipv6,
                ipam,
                labels: labels(&n.labels),
                ..Default::default()
            },
        );
    }
    out
}

/// A service's `network_mode:` and `networks:` (one or the other). Without
/// either, the service is on the `default` network.
pub(super) fn service_networks(
    service: &str,
    network_mode: Option<&str>,
    networks: &dct::Networks,
    declared: &IndexMap<String, Network>,
) -> Result<(Option<NetworkMode>, IndexMap<String, ServiceNetwork>), LoadError> {
    let err = |m: String| LoadError::service(service, m);
    let mode = network_mode
        .map(|m| m.parse::<NetworkMode>().map_err(err))
        .transpose()?;
    let nets: IndexMap<String, ServiceNetwork> = match networks {
        dct::Networks::Simple(l) => l
            .iter()
            .map(|n| (n.clone(), ServiceNetwork::default()))
            .collect(),
        dct::Networks::Advanced(a) => {
            a.0.iter()
                .map(|(k, v)| {
                    let sn = match v {
                        dct::MapOrEmpty::Map(m) => ServiceNetwork {
                            aliases: m.aliases.clone(),
                            ipv4_address: m.ipv4_address.clone(),
                            ipv6_address: m.ipv6_address.clone(),
                            ..Default::default()
                        },
                        dct::MapOrEmpty::Empty => ServiceNetwork::default(),
                    };
                    (k.clone(), sn)
                })
                .collect()
        }
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
