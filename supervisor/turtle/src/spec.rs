//! From the model to engine requests (placeholder: the full mapping lands with
//! the bollard engine).

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, NetworkCreateRequest, VolumeCreateRequest};
use turtle_compose::Project;

use crate::engine::ContainerSpec;
use crate::names;

#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("service {0} has no image")]
    NoImage(String),
}

pub fn container_spec(project: &Project, service: &str, number: u32, hash: &str) -> Result<ContainerSpec, SpecError> {
    let s = &project.services[service];
    let mut labels: HashMap<String, String> = s.labels.clone().into_iter().collect();
    labels.insert(names::PROJECT.into(), project.name.clone());
    labels.insert(names::SERVICE.into(), service.into());
    labels.insert(names::NUMBER.into(), number.to_string());
    labels.insert(names::CONFIG_HASH.into(), hash.into());
    labels.insert(names::MANAGED.into(), "true".into());
    Ok(ContainerSpec {
        name: names::container_name(&project.name, service, number),
        body: ContainerCreateBody {
            image: Some(s.image.clone().ok_or_else(|| SpecError::NoImage(service.into()))?),
            cmd: s.command.clone(),
            labels: Some(labels),
            healthcheck: s.healthcheck.as_ref().map(|h| bollard::models::HealthConfig { test: Some(h.test.clone()), ..Default::default() }),
            host_config: Some(HostConfig::default()),
            ..Default::default()
        },
        extra_networks: vec![],
    })
}

pub fn network_request(project: &Project, key: &str) -> NetworkCreateRequest {
    NetworkCreateRequest { name: project.networks[key].name.clone(), ..Default::default() }
}

pub fn volume_request(project: &Project, key: &str) -> VolumeCreateRequest {
    VolumeCreateRequest { name: Some(project.volumes[key].name.clone()), ..Default::default() }
}
