//! From the normalized compose model to engine requests.
//!
//! [`container_spec`] turns one service (and its replica number) into a
//! [`ContainerSpec`]: bollard's create body plus the networks to connect after
//! create. [`network_request`] and [`volume_request`] do the same for the
//! project's networks and volumes. Everything here is pure (no engine, no IO)
//! the host side (bind sources, secret files) is the runtime's job before
//! create.
//!
//! # Design
//!
//! - Names and labels follow docker compose v2 (see [`crate::names`]), so
//!   `docker compose -p NAME ps` shows what Turtle runs.
//! - Every field of [`Service`] is mapped; the ones the engine cannot take at
//!   create are noted where they are handled (`platform`, secret `mode`).
//! - The first of the service's networks goes into the create body (and is the
//!   `HostConfig.NetworkMode`, as compose does); the others into
//!   [`ContainerSpec::extra_networks`]. API < 1.44 takes one network at create.
//! - `network_mode: service:x` becomes `container:<x's container name>`
//!   (`container_name:` of x, else `<project>-x-1`); the engine accepts names.
//! - Healthcheck `start_interval` is kept in the body; the engine adapter drops
//!   it for servers older than API 1.44.
//! - Networks are joined highest `priority` first (equal ones in the model's
//!   order); the service-level `mac_address` is the first network's endpoint
//!   MAC (compose's form from API 1.44). `links` and `volumes_from` name the
//!   other service's first container ([`refs`]).
//! - Fields newer than the engine are kept in the body; the engine adapter
//!   drops or refuses them by API version (`turtle_engine::docker`):
//!   annotations (1.43), endpoint MAC addresses (1.44), volume `subpath`
//!   (1.45), image mounts and `enable_ipv4: false` (1.47), `gw_priority`
//!   (1.48), `interface_name` (1.49).
//! - Bind mounts use the engine's `Mounts` (not `Binds`), which refuses a
//!   missing host path. Compose creates missing bind sources for the short
//!   syntax, and the model no longer tells short from long syntax, so the
//!   runtime creates every missing bind source as a directory before create
//!   and checks that secret and config files exist (a bind with
//!   `create_host_path: false` must exist already). A bind with an SELinux
//!   label (`z`, `Z`) goes to `Binds` as `SRC:DST:rw,z`, as compose does:
//!   `Mounts` has no label.
//! - Secrets and configs: a `file:` object without `mode`, `uid` or `gid` is a
//!   read-only bind mount of the file at the target path; the others
//!   (content-backed, or asking for a mode or owner) are copied into the
//!   container by the runtime after create ([`copied_files`] says which and
//!   how; see [`files`]).

mod build;
pub mod files;
mod host;
mod labels;
mod mounts;
mod networks;
mod ports;
mod refs;
mod resources;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_options;

pub use build::build_spec;
pub use files::{CopiedFile, CopiedSource, copied_files};
pub use host::nano_cpus;
pub use labels::container_labels;
pub use networks::{network_request, volume_request};

use bollard_stubs::models::{ContainerCreateBody, NetworkingConfig};
use turtle_compose::{Project, Service};
use turtle_engine::ContainerSpec;

use crate::names;

/// Why a service cannot be turned into a container.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SpecError {
    #[error("service {service}: no image (set image: or build:)")]
    NoImage { service: String },
    #[error("service {service}: volume {key:?} is not declared in the top-level volumes:")]
    UnknownVolume { service: String, key: String },
    #[error("service {service}: network {key:?} is not declared in the top-level networks:")]
    UnknownNetwork { service: String, key: String },
    #[error("service {service}: secret {key:?} is not declared in the top-level secrets:")]
    UnknownSecret { service: String, key: String },
    #[error("service {service}: config {key:?} is not declared in the top-level configs:")]
    UnknownConfig { service: String, key: String },
    #[error("service {service}: {message}")]
    Invalid { service: String, message: String },
    #[error("service {service}: {path}: {message}")]
    HostPath {
        service: String,
        path: String,
        message: String,
    },
}

/// The create request for container `number` of service `service_name`.
///
/// `config_hash` is the service's config hash (stored in two labels: compose's
/// and Turtle's). `image_override` replaces `service.image`, e.g. with the
/// image ID the planner resolved.
pub fn container_spec(
    project: &Project,
    service_name: &str,
    service: &Service,
    number: u32,
    config_hash: &str,
    image_override: Option<&str>,
) -> Result<ContainerSpec, SpecError> {
    let image = image_override
        .map(str::to_string)
        .or_else(|| service.image.clone())
        .ok_or_else(|| SpecError::NoImage {
            service: service_name.to_string(),
        })?;
    let name = service
        .container_name
        .clone()
        .unwrap_or_else(|| names::container_name(&project.name, service_name, number));
    let (exposed, bindings) = ports::ports(service_name, service)?;
    let links = refs::links(project, service_name, service)?;
    let net = networks::attachment(project, service_name, service, &links)?;
    let wiring = host::Wiring {
        bindings,
        mounts: mounts::mounts(project, service_name, service)?,
        tmpfs: mounts::tmpfs(service),
        network_mode: net.mode,
        binds: mounts::binds(service_name, service)?,
        links,
        volumes_from: refs::volumes_from(project, service_name, service)?,
    };
    let host_config = host::host_config(service_name, service, wiring)?;
    let endpoints = net.endpoints;
    let healthcheck = host::healthcheck(service);
    let body = ContainerCreateBody {
        image: Some(image),
        // `platform:` is not applied at create: the engine would need the
        // `platform` query parameter (API 1.41+) and an image of that platform,
        // which only matters for pulls and builds. Images here are local.
        cmd: service.command.clone(),
        entrypoint: service.entrypoint.clone(),
        env: (!service.environment.is_empty()).then(|| {
            service
                .environment
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect()
        }),
        labels: Some(container_labels(
            project,
            service_name,
            service,
            number,
            config_hash,
        )),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        healthcheck,
        user: service.user.clone(),
        working_dir: service.working_dir.clone(),
        hostname: service.hostname.clone(),
        domainname: service.domainname.clone(),
        stop_signal: service.stop_signal.clone(),
        // Whole seconds, rounded up so a grace period is never shortened.
        stop_timeout: service
            .stop_grace_period
            .map(|d| d.as_millis().div_ceil(1000) as i64),
        tty: service.tty.then_some(true),
        open_stdin: service.stdin_open.then_some(true),
        host_config: Some(host_config),
        networking_config: (!endpoints.is_empty()).then_some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    };

    Ok(ContainerSpec {
        name,
        body,
        extra_networks: net.extra,
    })
}
