//! Networks: the container's network mode and endpoints, and the create
//! requests of the project's networks and volumes.

use std::collections::HashMap;

use bollard_stubs::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkCreateRequest,
    VolumeCreateRequest,
};
use turtle_compose::{Network, NetworkMode, Project, Service, Volume};

use super::SpecError;
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

/// The service's `network_mode:`, or its networks with their aliases and
/// addresses.
pub(super) fn attachment(
    project: &Project,
    service_name: &str,
    service: &Service,
) -> Result<Attachment, SpecError> {
    let mut network_mode = None;
    let mut endpoints = HashMap::new();
    let mut extra_networks = Vec::new();
    match &service.network_mode {
        Some(mode) => {
            network_mode = Some(match mode {
                NetworkMode::Service(other) => {
                    let other_name = project
                        .services
                        .get(other.as_str())
                        .and_then(|s| s.container_name.clone())
                        .unwrap_or_else(|| names::container_name(&project.name, other, 1));
                    format!("container:{other_name}")
                }
                m => m.to_string(),
            });
        }
        None => {
            for (i, (key, sn)) in service.networks.iter().enumerate() {
                let net = project
                    .networks
                    .get(key)
                    .ok_or_else(|| SpecError::UnknownNetwork {
                        service: service_name.to_string(),
                        key: key.clone(),
                    })?;
                let mut aliases = vec![service_name.to_string()];
                for a in &sn.aliases {
                    if !aliases.contains(a) {
                        aliases.push(a.clone());
                    }
                }
                let ipam = (sn.ipv4_address.is_some() || sn.ipv6_address.is_some()).then(|| {
                    EndpointIpamConfig {
                        ipv4_address: sn.ipv4_address.clone(),
                        ipv6_address: sn.ipv6_address.clone(),
                        ..Default::default()
                    }
                });
                let endpoint = EndpointSettings {
                    aliases: Some(aliases),
                    ipam_config: ipam,
                    ..Default::default()
                };
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
        enable_ipv6: net.enable_ipv6.then_some(true),
        ipam: net.ipam.as_ref().map(|i| Ipam {
            driver: i.driver.clone(),
            config: (!i.config.is_empty()).then(|| {
                i.config
                    .iter()
                    .map(|p| IpamConfig {
                        subnet: p.subnet.clone(),
                        gateway: p.gateway.clone(),
                        ip_range: p.ip_range.clone(),
                        ..Default::default()
                    })
                    .collect()
            }),
            options: None,
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
