//! Networks: the container's network mode and endpoints, and the create
//! requests of the project's networks and volumes.

use std::collections::HashMap;

use bollard_stubs::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkCreateRequest,
    VolumeCreateRequest,
};
use turtle_compose::{Network, NetworkMode, Project, Service, ServiceNetwork, Volume};

use super::SpecError;
use super::refs::first_container;
use crate::names;

/// How a container joins its networks.
pub(super) struct Attachment {
    /// `HostConfig.NetworkMode`: the first network's name, or the mode.
    pub mode: Option<String>,
    /// The first network's endpoint (API < 1.44 takes one at create).
    pub endpoints: HashMap<String, EndpointSettings>,
    /// The other networks, connected after create.
    pub extra: Vec<(String, EndpointSettings)>,
}

/// The endpoint driver option compose sets for `interface_name:`.
const IFNAME_OPT: &str = "com.docker.network.endpoint.ifname";

/// The service's `network_mode:`, or its networks with their aliases,
/// addresses and endpoint options, highest `priority` first (the first is
/// the one in the create body; equal priorities keep the model's order).
/// `links` go on every endpoint, as compose does (on a user-defined network
/// they are DNS aliases). The service-level `mac_address` is the first
/// network's, as compose does from API 1.44 (the engine adapter refuses it
/// on older engines: see `turtle_engine::docker`).
pub(super) fn attachment(
    project: &Project,
    service_name: &str,
    service: &Service,
    links: &[String],
) -> Result<Attachment, SpecError> {
    let invalid = |message: String| SpecError::Invalid {
        service: service_name.to_string(),
        message,
    };
    let mut network_mode = None;
    let mut endpoints = HashMap::new();
    let mut extra_networks = Vec::new();
    match &service.network_mode {
        Some(mode) => {
            network_mode = Some(match mode {
                NetworkMode::Service(other) => {
                    format!("container:{}", first_container(project, other))
                }
                m => m.to_string(),
            });
            match (&service.mac_address, mode) {
                (None, _) => {}
                (Some(mac), NetworkMode::Bridge) => {
                    let endpoint = EndpointSettings {
                        mac_address: Some(mac.clone()),
                        links: non_empty(links),
                        ..Default::default()
                    };
                    endpoints.insert("bridge".to_string(), endpoint);
                }
                (Some(_), m) => {
                    return Err(invalid(format!(
                        "mac_address cannot apply with network_mode {m}: the container has no network of its own"
                    )));
                }
            }
        }
        None => {
            let mut ordered: Vec<_> = service.networks.iter().collect();
            // Stable: equal priorities keep the model's order.
            ordered.sort_by_key(|(_, sn)| std::cmp::Reverse(sn.priority.unwrap_or(0)));
            for (i, (key, sn)) in ordered.into_iter().enumerate() {
                let net = project
                    .networks
                    .get(key)
                    .ok_or_else(|| SpecError::UnknownNetwork {
                        service: service_name.to_string(),
                        key: key.clone(),
                    })?;
                let mut endpoint = endpoint(service_name, sn, links);
                if i == 0
                    && let Some(mac) = &service.mac_address
                {
                    match &endpoint.mac_address {
                        Some(own) if own != mac => {
                            return Err(invalid(format!(
                                "mac_address {mac} differs from the mac_address {own} of network {key}, its first network: set one of them"
                            )));
                        }
                        _ => endpoint.mac_address = Some(mac.clone()),
                    }
                }
                if i == 0 {
                    network_mode = Some(net.name.clone());
                    endpoints.insert(net.name.clone(), endpoint);
                } else {
                    extra_networks.push((net.name.clone(), endpoint));
                }
            }
        }
    }

    Ok(Attachment {
        mode: network_mode,
        endpoints,
        extra: extra_networks,
    })
}

/// One network's endpoint: aliases (the service name first), addresses,
/// link-local addresses, driver options (with `interface_name` as compose
/// passes it), MAC address, gateway priority, links.
fn endpoint(service_name: &str, sn: &ServiceNetwork, links: &[String]) -> EndpointSettings {
    let mut aliases = vec![service_name.to_string()];
    for a in &sn.aliases {
        if !aliases.contains(a) {
            aliases.push(a.clone());
        }
    }
    let ipam =
        (sn.ipv4_address.is_some() || sn.ipv6_address.is_some() || !sn.link_local_ips.is_empty())
            .then(|| EndpointIpamConfig {
                ipv4_address: sn.ipv4_address.clone(),
                ipv6_address: sn.ipv6_address.clone(),
                link_local_ips: non_empty(&sn.link_local_ips),
            });
    let mut driver_opts: HashMap<String, String> = sn
        .driver_opts
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // Compose lets interface_name win over the same driver option.
    if let Some(ifname) = &sn.interface_name {
        driver_opts.insert(IFNAME_OPT.to_string(), ifname.clone());
    }
    EndpointSettings {
        aliases: Some(aliases),
        ipam_config: ipam,
        links: non_empty(links),
        mac_address: sn.mac_address.clone(),
        driver_opts: (!driver_opts.is_empty()).then_some(driver_opts),
        gw_priority: sn.gw_priority,
        ..Default::default()
    }
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// The create request of the project's network `key`. Meaningless for an
/// `external` network, which the supervisor must find, not create.
pub fn network_request(project: &Project, key: &str, net: &Network) -> NetworkCreateRequest {
    let mut labels: HashMap<String, String> = net
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(names::PROJECT.to_string(), project.name.to_string());
    labels.insert(names::COMPOSE_NETWORK.to_string(), key.to_string());
    labels.insert(
        names::COMPOSE_VERSION.to_string(),
        names::COMPOSE_COMPAT_VERSION.to_string(),
    );
    labels.insert(names::MANAGED.to_string(), "true".to_string());
    NetworkCreateRequest {
        name: net.name.clone(),
        driver: net.driver.clone(),
        internal: net.internal.then_some(true),
        attachable: net.attachable.then_some(true),
        enable_ipv6: net.enable_ipv6.then_some(true),
        // Sent only when false (API 1.47+; the adapter refuses it on older
        // engines, which always enable IPv4).
        enable_ipv4: net.enable_ipv4.filter(|on| !on),
        ipam: net.ipam.as_ref().map(|i| Ipam {
            driver: i.driver.clone(),
            config: (!i.config.is_empty()).then(|| {
                i.config
                    .iter()
                    .map(|p| IpamConfig {
                        subnet: p.subnet.clone(),
                        gateway: p.gateway.clone(),
                        ip_range: p.ip_range.clone(),
                        auxiliary_addresses: (!p.aux_addresses.is_empty()).then(|| {
                            p.aux_addresses
                                .iter()
                                .map(|(k, v)| (k.clone(), v.clone()))
                                .collect()
                        }),
                    })
                    .collect()
            }),
            options: (!i.options.is_empty()).then(|| {
                i.options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
        }),
        options: (!net.driver_opts.is_empty()).then(|| {
            net.driver_opts
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        labels: Some(labels),
        ..Default::default()
    }
}

/// The create request of the project's volume `key`. Meaningless for an
/// `external` volume.
pub fn volume_request(project: &Project, key: &str, vol: &Volume) -> VolumeCreateRequest {
    let mut labels: HashMap<String, String> = vol
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(names::PROJECT.to_string(), project.name.to_string());
    labels.insert(names::COMPOSE_VOLUME.to_string(), key.to_string());
    labels.insert(
        names::COMPOSE_VERSION.to_string(),
        names::COMPOSE_COMPAT_VERSION.to_string(),
    );
    labels.insert(names::MANAGED.to_string(), "true".to_string());
    VolumeCreateRequest {
        name: Some(vol.name.clone()),
        driver: vol.driver.clone(),
        driver_opts: (!vol.driver_opts.is_empty()).then(|| {
            vol.driver_opts
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        labels: Some(labels),
        ..Default::default()
    }
}
