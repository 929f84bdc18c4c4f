//! From the normalized compose model to engine requests.
//!
//! [`container_spec`] turns one service (and its replica number) into a
//! [`ContainerSpec`]: bollard's create body plus the networks to connect after
//! create. [`network_request`] and [`volume_request`] do the same for the
//! project's networks and volumes. Everything here is pure (no engine, no IO)
//! except [`prepare_host_paths`], which the applier calls before create.
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
//! - Bind mounts use the engine's `Mounts` (not `Binds`), which refuses a
//!   missing host path. Compose creates missing bind sources for the short
//!   syntax, and the model no longer tells short from long syntax, so
//!   [`prepare_host_paths`] creates every missing bind source as a directory
//!   and checks that secret and config files exist.
//! - Secrets and configs (file-backed only) are read-only bind mounts of the
//!   file at the target path. A `mode` cannot be applied to a bind mount and is
//!   ignored.

use std::collections::HashMap;
use std::path::Path;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointIpamConfig, EndpointSettings, HealthConfig,
    HostConfig, HostConfigLogConfig, Ipam, IpamConfig, Mount as EngineMount, MountTmpfsOptions,
    MountType, NetworkCreateRequest, NetworkingConfig, PortBinding, ResourcesUlimits,
    RestartPolicy as EngineRestart, RestartPolicyNameEnum, VolumeCreateRequest,
};
use turtle_compose::{
    Condition, MountKind, Network, NetworkMode, Project, RestartPolicy, Service, Volume,
};

use crate::engine::ContainerSpec;
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
    let invalid = |message: String| SpecError::Invalid {
        service: service_name.to_string(),
        message,
    };
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

    // Ports: exposed (targets + expose) and published bindings.
    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    for p in &service.ports {
        let key = format!("{}/{}", p.target, p.protocol);
        if !exposed.contains(&key) {
            exposed.push(key.clone());
        }
        let entry = bindings.entry(key).or_insert_with(|| Some(Vec::new()));
        entry.get_or_insert_with(Vec::new).push(PortBinding {
            host_ip: p.host_ip.clone().filter(|h| !h.is_empty()),
            // A range ("8000-8010") lets the engine pick a free host port in it.
            host_port: Some(p.published.clone().unwrap_or_default()),
        });
    }
    for e in &service.expose {
        for key in expose_keys(e).map_err(invalid)? {
            if !exposed.contains(&key) {
                exposed.push(key);
            }
        }
    }

    // Mounts: volumes, binds, tmpfs, then secrets and configs.
    let mut mounts = Vec::new();
    for m in &service.volumes {
        let mount =
            match m.kind {
                MountKind::Volume => {
                    let source = match &m.source {
                        Some(key) => Some(
                            project
                                .volumes
                                .get(key)
                                .ok_or_else(|| SpecError::UnknownVolume {
                                    service: service_name.to_string(),
                                    key: key.clone(),
                                })?
                                .name
                                .clone(),
                        ),
                        None => None,
                    };
                    EngineMount {
                        typ: Some(MountType::VOLUME),
                        source,
                        target: Some(m.target.clone()),
                        read_only: m.read_only.then_some(true),
                        ..Default::default()
                    }
                }
                MountKind::Bind => EngineMount {
                    typ: Some(MountType::BIND),
                    source: Some(m.source.clone().ok_or_else(|| {
                        invalid(format!("bind mount at {} has no source", m.target))
                    })?),
                    target: Some(m.target.clone()),
                    read_only: m.read_only.then_some(true),
                    ..Default::default()
                },
                MountKind::Tmpfs => EngineMount {
                    typ: Some(MountType::TMPFS),
                    target: Some(m.target.clone()),
                    read_only: m.read_only.then_some(true),
                    tmpfs_options: m.tmpfs_size.map(|s| MountTmpfsOptions {
                        size_bytes: Some(s.0 as i64),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
            };
        mounts.push(mount);
    }
    for s in &service.secrets {
        let obj = project
            .secrets
            .get(&s.source)
            .ok_or_else(|| SpecError::UnknownSecret {
                service: service_name.to_string(),
                key: s.source.clone(),
            })?;
        mounts.push(file_mount(&obj.file, &s.target));
    }
    for c in &service.configs {
        let obj = project
            .configs
            .get(&c.source)
            .ok_or_else(|| SpecError::UnknownConfig {
                service: service_name.to_string(),
                key: c.source.clone(),
            })?;
        mounts.push(file_mount(&obj.file, &c.target));
    }
    let tmpfs: HashMap<String, String> = service
        .tmpfs
        .iter()
        .map(|t| match t.split_once(':') {
            Some((path, opts)) => (path.to_string(), opts.to_string()),
            None => (t.clone(), String::new()),
        })
        .collect();

    // Networks, or a network mode.
    let mut network_mode = None;
    let mut endpoints = HashMap::new();
    let mut extra_networks = Vec::new();
    match &service.network_mode {
        Some(mode) => {
            network_mode = Some(match mode {
                NetworkMode::Service(other) => {
                    let other_name = project
                        .services
                        .get(other)
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

    let healthcheck = service.healthcheck.as_ref().map(|h| HealthConfig {
        test: if h.disable {
            Some(vec!["NONE".to_string()])
        } else if h.test.is_empty() {
            // No test: the engine keeps the image's and applies the timings.
            None
        } else {
            Some(h.test.clone())
        },
        interval: h.interval.map(|d| d.as_nanos()),
        timeout: h.timeout.map(|d| d.as_nanos()),
        retries: h.retries.map(i64::from),
        start_period: h.start_period.map(|d| d.as_nanos()),
        // Dropped by the engine adapter for API < 1.44.
        start_interval: h.start_interval.map(|d| d.as_nanos()),
    });

    let restart_policy = Some(match service.restart {
        RestartPolicy::No => EngineRestart {
            name: Some(RestartPolicyNameEnum::NO),
            maximum_retry_count: None,
        },
        RestartPolicy::Always => EngineRestart {
            name: Some(RestartPolicyNameEnum::ALWAYS),
            maximum_retry_count: None,
        },
        RestartPolicy::UnlessStopped => EngineRestart {
            name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
            maximum_retry_count: None,
        },
        RestartPolicy::OnFailure(n) => EngineRestart {
            name: Some(RestartPolicyNameEnum::ON_FAILURE),
            maximum_retry_count: (n > 0).then_some(i64::from(n)),
        },
    });

    let r = &service.resources;
    let nano_cpus = r
        .cpus
        .as_deref()
        .map(nano_cpus)
        .transpose()
        .map_err(invalid)?;
    let devices = service
        .devices
        .iter()
        .map(|d| device_mapping(d))
        .collect::<Result<Vec<_>, _>>()
        .map_err(invalid)?;

    let host_config = HostConfig {
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        mounts: (!mounts.is_empty()).then_some(mounts),
        tmpfs: (!tmpfs.is_empty()).then_some(tmpfs),
        network_mode,
        restart_policy,
        memory: r.memory_limit.map(|b| b.0 as i64),
        memory_reservation: r.memory_reservation.map(|b| b.0 as i64),
        memory_swap: r.memswap_limit.map(|b| b.0 as i64),
        nano_cpus,
        cpu_shares: r.cpu_shares,
        cpuset_cpus: r.cpuset.clone(),
        pids_limit: r.pids_limit,
        cap_add: non_empty(&service.cap_add),
        cap_drop: non_empty(&service.cap_drop),
        devices: (!devices.is_empty()).then_some(devices),
        privileged: service.privileged.then_some(true),
        extra_hosts: non_empty(&service.extra_hosts),
        dns: non_empty(&service.dns),
        dns_search: non_empty(&service.dns_search),
        sysctls: (!service.sysctls.is_empty()).then(|| {
            service
                .sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        }),
        ulimits: (!service.ulimits.is_empty()).then(|| {
            service
                .ulimits
                .iter()
                .map(|(name, u)| ResourcesUlimits {
                    name: Some(name.clone()),
                    soft: Some(u.soft),
                    hard: Some(u.hard),
                })
                .collect()
        }),
        init: service.init.then_some(true),
        readonly_rootfs: service.read_only.then_some(true),
        shm_size: service.shm_size.map(|b| b.0 as i64),
        log_config: service.logging.as_ref().map(|l| HostConfigLogConfig {
            typ: l.driver.clone(),
            config: (!l.options.is_empty()).then(|| {
                l.options
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            }),
        }),
        security_opt: non_empty(&service.security_opt),
        pid_mode: service.pid.clone(),
        ipc_mode: service.ipc.clone(),
        ..Default::default()
    };

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
        extra_networks,
    })
}

/// The labels of container `number` of a service: the service's own labels,
/// then compose's and Turtle's (which win).
pub fn container_labels(
    project: &Project,
    service_name: &str,
    service: &Service,
    number: u32,
    config_hash: &str,
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = service
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let files = project
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect::<Vec<_>>()
        .join(",");
    let depends_on = service
        .depends_on
        .iter()
        .map(|(svc, d)| {
            let condition = match d.condition {
                Condition::ServiceStarted => "service_started",
                Condition::ServiceHealthy => "service_healthy",
                Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
            };
            format!("{svc}:{condition}:{}", d.restart)
        })
        .collect::<Vec<_>>()
        .join(",");
    for (k, v) in [
        (names::PROJECT, project.name.clone()),
        (names::SERVICE, service_name.to_string()),
        (names::NUMBER, number.to_string()),
        (names::ONEOFF, "False".to_string()),
        (names::COMPOSE_HASH, config_hash.to_string()),
        (names::CONFIG_HASH, config_hash.to_string()),
        (
            names::COMPOSE_VERSION,
            names::COMPOSE_COMPAT_VERSION.to_string(),
        ),
        (names::MANAGED, "true".to_string()),
        (
            "com.docker.compose.project.working_dir",
            project.working_dir.display().to_string(),
        ),
        ("com.docker.compose.project.config_files", files),
        (names::COMPOSE_DEPENDS_ON, depends_on),
    ] {
        labels.insert(k.to_string(), v);
    }
    labels
}

/// The create request of the project's network `key`. Meaningless for an
/// `external` network, which the supervisor must find, not create.
pub fn network_request(project: &Project, key: &str, net: &Network) -> NetworkCreateRequest {
    let mut labels: HashMap<String, String> = net
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    labels.insert(names::PROJECT.to_string(), project.name.clone());
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
    labels.insert(names::PROJECT.to_string(), project.name.clone());
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

/// Readies the host side of a service's mounts: creates every missing bind
/// source as a directory (compose does so for the short syntax; the engine's
/// `Mounts` API would refuse a missing path), and checks that the files behind
/// its secrets and configs exist.
pub fn prepare_host_paths(
    project: &Project,
    service_name: &str,
    service: &Service,
) -> Result<(), SpecError> {
    let host_err = |path: &Path, message: String| SpecError::HostPath {
        service: service_name.to_string(),
        path: path.display().to_string(),
        message,
    };
    for m in &service.volumes {
        if m.kind != MountKind::Bind {
            continue;
        }
        let Some(src) = &m.source else { continue };
        let path = Path::new(src);
        if !path.is_absolute() {
            return Err(host_err(path, "bind source is not absolute".to_string()));
        }
        if !path.exists() {
            std::fs::create_dir_all(path)
                .map_err(|e| host_err(path, format!("cannot create bind source: {e}")))?;
        }
    }
    let files = service
        .secrets
        .iter()
        .map(|s| project.secrets.get(&s.source))
        .chain(
            service
                .configs
                .iter()
                .map(|c| project.configs.get(&c.source)),
        );
    for obj in files.flatten() {
        if !obj.file.is_file() {
            return Err(host_err(&obj.file, "file not found".to_string()));
        }
    }
    Ok(())
}

fn file_mount(file: &Path, target: &str) -> EngineMount {
    EngineMount {
        typ: Some(MountType::BIND),
        source: Some(file.display().to_string()),
        target: Some(target.to_string()),
        read_only: Some(true),
        ..Default::default()
    }
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
}

/// `"80"`, `"80/udp"`, `"8000-8002/tcp"` -> `["80/tcp"]`, ... (ranges expanded).
fn expose_keys(e: &str) -> Result<Vec<String>, String> {
    let (ports, proto) = e.split_once('/').unwrap_or((e, "tcp"));
    let bad = || format!("invalid expose {e:?}: expected PORT[-PORT][/PROTOCOL]");
    let (lo, hi) = match ports.split_once('-') {
        Some((a, b)) => (
            a.trim().parse::<u16>().map_err(|_| bad())?,
            b.trim().parse::<u16>().map_err(|_| bad())?,
        ),
        None => {
            let p = ports.trim().parse::<u16>().map_err(|_| bad())?;
            (p, p)
        }
    };
    if lo > hi {
        return Err(bad());
    }
    Ok((lo..=hi).map(|p| format!("{p}/{proto}")).collect())
}

/// `"1.5"` -> 1_500_000_000 (exact decimal, no float rounding).
pub fn nano_cpus(cpus: &str) -> Result<i64, String> {
    let bad = || format!("invalid cpus {cpus:?}: expected a decimal number such as 0.5");
    let t = cpus.trim();
    let (int, frac) = t.split_once('.').unwrap_or((t, ""));
    if (int.is_empty() && frac.is_empty())
        || !int.chars().all(|c| c.is_ascii_digit())
        || !frac.chars().all(|c| c.is_ascii_digit())
        || frac.len() > 9
    {
        return Err(bad());
    }
    let int: i64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| bad())?
    };
    let frac_ns: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| bad())?
    };
    int.checked_mul(1_000_000_000)
        .and_then(|n| n.checked_add(frac_ns))
        .ok_or_else(bad)
}

/// `host[:container[:perms]]` (or `host:perms`) -> a device mapping.
fn device_mapping(d: &str) -> Result<DeviceMapping, String> {
    let is_perms = |s: &str| !s.is_empty() && s.chars().all(|c| matches!(c, 'r' | 'w' | 'm'));
    let parts: Vec<&str> = d.split(':').collect();
    let (host, container, perms) = match parts.as_slice() {
        [h] => (*h, *h, "rwm"),
        [h, p] if is_perms(p) => (*h, *h, *p),
        [h, c] => (*h, *c, "rwm"),
        [h, c, p] if is_perms(p) => (*h, *c, *p),
        _ => {
            return Err(format!(
                "invalid device {d:?}: expected HOST[:CONTAINER[:PERMISSIONS]]"
            ));
        }
    };
    if host.is_empty() || container.is_empty() {
        return Err(format!("invalid device {d:?}: empty path"));
    }
    Ok(DeviceMapping {
        path_on_host: Some(host.to_string()),
        path_in_container: Some(container.to_string()),
        cgroup_permissions: Some(perms.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use indexmap::IndexMap;
    use turtle_compose::{
        ByteSize, Dependency, Duration, FileObject, FileRef, Healthcheck, Ipam, IpamPool, Logging,
        Mount, Port, Resources, ServiceNetwork, Ulimit,
    };

    use super::*;

    fn project(services: Vec<(&str, Service)>) -> Project {
        let mut networks = IndexMap::new();
        for key in ["default", "back"] {
            networks.insert(
                key.to_string(),
                Network {
                    name: format!("demo_{key}"),
                    ..Default::default()
                },
            );
        }
        let mut volumes = IndexMap::new();
        volumes.insert(
            "data".to_string(),
            Volume {
                name: "demo_data".to_string(),
                ..Default::default()
            },
        );
        Project {
            name: "demo".to_string(),
            working_dir: PathBuf::from("/srv/demo"),
            files: vec![
                PathBuf::from("/srv/demo/compose.yaml"),
                PathBuf::from("/srv/demo/compose.override.yaml"),
            ],
            services: services
                .into_iter()
                .map(|(n, s)| (n.to_string(), s))
                .collect(),
            networks,
            volumes,
            secrets: IndexMap::from([(
                "token".to_string(),
                FileObject {
                    file: PathBuf::from("/srv/demo/token.txt"),
                },
            )]),
            configs: IndexMap::from([(
                "app".to_string(),
                FileObject {
                    file: PathBuf::from("/srv/demo/app.conf"),
                },
            )]),
        }
    }

    fn svc() -> Service {
        Service {
            image: Some("web:1".to_string()),
            networks: IndexMap::from([("default".to_string(), ServiceNetwork::default())]),
            replicas: 1,
            ..Default::default()
        }
    }

    fn spec_of(s: Service) -> ContainerSpec {
        let p = project(vec![("web", s.clone())]);
        container_spec(&p, "web", &s, 2, "abc123", None).unwrap()
    }

    fn hc(spec: &ContainerSpec) -> &HostConfig {
        spec.body.host_config.as_ref().unwrap()
    }

    #[test]
    fn name_image_command_env() {
        let mut s = svc();
        s.command = Some(vec!["httpd".into(), "-f".into()]);
        s.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]);
        s.environment = IndexMap::from([("A".into(), "1".into()), ("B".into(), "x=y".into())]);
        let spec = spec_of(s.clone());
        assert_eq!(spec.name, "demo-web-2");
        assert_eq!(spec.body.image.as_deref(), Some("web:1"));
        assert_eq!(spec.body.cmd, s.command);
        assert_eq!(spec.body.entrypoint, s.entrypoint);
        assert_eq!(
            spec.body.env,
            Some(vec!["A=1".to_string(), "B=x=y".to_string()])
        );

        s.container_name = Some("custom".into());
        let p = project(vec![("web", s.clone())]);
        let spec = container_spec(&p, "web", &s, 1, "h", Some("sha256:feed")).unwrap();
        assert_eq!(spec.name, "custom");
        assert_eq!(spec.body.image.as_deref(), Some("sha256:feed"));

        s.image = None;
        let err = container_spec(&p, "web", &s, 1, "h", None).unwrap_err();
        assert!(matches!(err, SpecError::NoImage { .. }));
    }

    #[test]
    fn labels() {
        let mut s = svc();
        s.labels = IndexMap::from([
            ("mine".into(), "yes".into()),
            (names::PROJECT.into(), "spoofed".into()),
        ]);
        s.depends_on = IndexMap::from([
            (
                "db".into(),
                Dependency {
                    condition: Condition::ServiceHealthy,
                    restart: true,
                    required: true,
                },
            ),
            (
                "cache".into(),
                Dependency {
                    condition: Condition::ServiceStarted,
                    restart: false,
                    required: true,
                },
            ),
        ]);
        let spec = spec_of(s);
        let l = spec.body.labels.unwrap();
        assert_eq!(l["mine"], "yes");
        assert_eq!(l[names::PROJECT], "demo");
        assert_eq!(l[names::SERVICE], "web");
        assert_eq!(l[names::NUMBER], "2");
        assert_eq!(l[names::ONEOFF], "False");
        assert_eq!(l[names::COMPOSE_HASH], "abc123");
        assert_eq!(l[names::CONFIG_HASH], "abc123");
        assert_eq!(l[names::COMPOSE_VERSION], names::COMPOSE_COMPAT_VERSION);
        assert_eq!(l[names::MANAGED], "true");
        assert_eq!(l["com.docker.compose.project.working_dir"], "/srv/demo");
        assert_eq!(
            l["com.docker.compose.project.config_files"],
            "/srv/demo/compose.yaml,/srv/demo/compose.override.yaml"
        );
        assert_eq!(
            l[names::COMPOSE_DEPENDS_ON],
            "db:service_healthy:true,cache:service_started:false"
        );
    }

    #[test]
    fn ports_and_expose() {
        let mut s = svc();
        s.ports = vec![
            Port {
                target: 80,
                published: Some("8080".into()),
                host_ip: Some("127.0.0.1".into()),
                protocol: "tcp".into(),
            },
            Port {
                target: 80,
                published: Some("9090".into()),
                host_ip: None,
                protocol: "tcp".into(),
            },
            Port {
                target: 53,
                published: None,
                host_ip: None,
                protocol: "udp".into(),
            },
            Port {
                target: 3000,
                published: Some("8000-8001".into()),
                host_ip: None,
                protocol: "tcp".into(),
            },
        ];
        s.expose = vec!["9000".into(), "7000-7001/udp".into(), "80".into()];
        let spec = spec_of(s);
        assert_eq!(
            spec.body.exposed_ports.clone().unwrap(),
            [
                "80/tcp", "53/udp", "3000/tcp", "9000/tcp", "7000/udp", "7001/udp"
            ]
        );
        let b = hc(&spec).port_bindings.clone().unwrap();
        assert_eq!(
            b["80/tcp"].clone().unwrap(),
            vec![
                PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    host_port: Some("8080".into())
                },
                PortBinding {
                    host_ip: None,
                    host_port: Some("9090".into())
                }
            ]
        );
        assert_eq!(
            b["53/udp"].clone().unwrap()[0].host_port.as_deref(),
            Some("")
        );
        assert_eq!(
            b["3000/tcp"].clone().unwrap()[0].host_port.as_deref(),
            Some("8000-8001")
        );
        assert!(expose_keys("x").is_err());
        assert!(expose_keys("9-1").is_err());
    }

    #[test]
    fn mounts_tmpfs_secrets_configs() {
        let mut s = svc();
        s.volumes = vec![
            Mount {
                kind: MountKind::Volume,
                source: Some("data".into()),
                target: "/data".into(),
                read_only: true,
                tmpfs_size: None,
            },
            Mount {
                kind: MountKind::Volume,
                source: None,
                target: "/anon".into(),
                read_only: false,
                tmpfs_size: None,
            },
            Mount {
                kind: MountKind::Bind,
                source: Some("/srv/demo/html".into()),
                target: "/var/www".into(),
                read_only: false,
                tmpfs_size: None,
            },
            Mount {
                kind: MountKind::Tmpfs,
                source: None,
                target: "/cache".into(),
                read_only: false,
                tmpfs_size: Some(ByteSize(64 << 20)),
            },
        ];
        s.tmpfs = vec!["/run".into(), "/tmp:size=1m,mode=1777".into()];
        s.secrets = vec![FileRef {
            source: "token".into(),
            target: "/run/secrets/token".into(),
            mode: Some(0o400),
        }];
        s.configs = vec![FileRef {
            source: "app".into(),
            target: "/app.conf".into(),
            mode: None,
        }];
        let spec = spec_of(s.clone());
        let m = hc(&spec).mounts.clone().unwrap();
        assert_eq!(m.len(), 6);
        assert_eq!(m[0].typ, Some(MountType::VOLUME));
        assert_eq!(m[0].source.as_deref(), Some("demo_data"));
        assert_eq!(m[0].target.as_deref(), Some("/data"));
        assert_eq!(m[0].read_only, Some(true));
        assert_eq!(m[1].typ, Some(MountType::VOLUME));
        assert_eq!(m[1].source, None);
        assert_eq!(m[2].typ, Some(MountType::BIND));
        assert_eq!(m[2].source.as_deref(), Some("/srv/demo/html"));
        assert_eq!(m[3].typ, Some(MountType::TMPFS));
        assert_eq!(
            m[3].tmpfs_options.as_ref().unwrap().size_bytes,
            Some(64 << 20)
        );
        assert_eq!(m[4].source.as_deref(), Some("/srv/demo/token.txt"));
        assert_eq!(m[4].target.as_deref(), Some("/run/secrets/token"));
        assert_eq!(m[4].read_only, Some(true));
        assert_eq!(m[5].source.as_deref(), Some("/srv/demo/app.conf"));
        assert_eq!(m[5].typ, Some(MountType::BIND));
        let t = hc(&spec).tmpfs.clone().unwrap();
        assert_eq!(t["/run"], "");
        assert_eq!(t["/tmp"], "size=1m,mode=1777");

        let mut bad = s.clone();
        bad.volumes[0].source = Some("nope".into());
        let p = project(vec![("web", bad.clone())]);
        assert!(matches!(
            container_spec(&p, "web", &bad, 1, "h", None),
            Err(SpecError::UnknownVolume { .. })
        ));
        let mut bad = s;
        bad.secrets[0].source = "nope".into();
        assert!(matches!(
            container_spec(&p, "web", &bad, 1, "h", None),
            Err(SpecError::UnknownSecret { .. })
        ));
    }

    #[test]
    fn networks_first_in_body_rest_extra() {
        let mut s = svc();
        s.networks = IndexMap::from([
            (
                "back".to_string(),
                ServiceNetwork {
                    aliases: vec!["api".into(), "web".into()],
                    ipv4_address: Some("172.30.0.5".into()),
                    ipv6_address: None,
                },
            ),
            ("default".to_string(), ServiceNetwork::default()),
        ]);
        let spec = spec_of(s.clone());
        assert_eq!(hc(&spec).network_mode.as_deref(), Some("demo_back"));
        let eps = spec
            .body
            .networking_config
            .clone()
            .unwrap()
            .endpoints_config
            .unwrap();
        assert_eq!(eps.len(), 1);
        let ep = &eps["demo_back"];
        assert_eq!(ep.aliases.clone().unwrap(), ["web", "api"]);
        assert_eq!(
            ep.ipam_config.as_ref().unwrap().ipv4_address.as_deref(),
            Some("172.30.0.5")
        );
        assert_eq!(spec.extra_networks.len(), 1);
        assert_eq!(spec.extra_networks[0].0, "demo_default");
        assert_eq!(spec.extra_networks[0].1.aliases.clone().unwrap(), ["web"]);
        assert!(spec.extra_networks[0].1.ipam_config.is_none());

        s.networks.insert("ghost".into(), ServiceNetwork::default());
        let p = project(vec![("web", s.clone())]);
        assert!(matches!(
            container_spec(&p, "web", &s, 1, "h", None),
            Err(SpecError::UnknownNetwork { .. })
        ));
    }

    #[test]
    fn network_modes() {
        let db = Service {
            container_name: Some("the-db".into()),
            ..svc()
        };
        for (mode, want) in [
            (NetworkMode::Host, "host"),
            (NetworkMode::None, "none"),
            (NetworkMode::Bridge, "bridge"),
            (NetworkMode::Service("vpn".into()), "container:demo-vpn-1"),
            (NetworkMode::Service("db".into()), "container:the-db"),
            (NetworkMode::Container("abc".into()), "container:abc"),
        ] {
            let s = Service {
                network_mode: Some(mode),
                networks: IndexMap::new(),
                ..svc()
            };
            let p = project(vec![("web", s.clone()), ("db", db.clone()), ("vpn", svc())]);
            let spec = container_spec(&p, "web", &s, 1, "h", None).unwrap();
            assert_eq!(hc(&spec).network_mode.as_deref(), Some(want));
            assert!(spec.body.networking_config.is_none());
            assert!(spec.extra_networks.is_empty());
        }
    }

    #[test]
    fn healthcheck_and_restart() {
        let mut s = svc();
        s.healthcheck = Some(Healthcheck {
            test: vec![
                "CMD-SHELL".into(),
                "wget -q -O /dev/null http://127.0.0.1/".into(),
            ],
            interval: Some(Duration::from_secs(5)),
            timeout: Some(Duration(1500)),
            retries: Some(3),
            start_period: Some(Duration::from_secs(10)),
            start_interval: Some(Duration::from_secs(1)),
            disable: false,
        });
        s.restart = RestartPolicy::OnFailure(4);
        let spec = spec_of(s.clone());
        let h = spec.body.healthcheck.clone().unwrap();
        assert_eq!(h.test.unwrap()[0], "CMD-SHELL");
        assert_eq!(h.interval, Some(5_000_000_000));
        assert_eq!(h.timeout, Some(1_500_000_000));
        assert_eq!(h.retries, Some(3));
        assert_eq!(h.start_period, Some(10_000_000_000));
        assert_eq!(h.start_interval, Some(1_000_000_000));
        let r = hc(&spec).restart_policy.clone().unwrap();
        assert_eq!(r.name, Some(RestartPolicyNameEnum::ON_FAILURE));
        assert_eq!(r.maximum_retry_count, Some(4));

        s.healthcheck.as_mut().unwrap().disable = true;
        s.restart = RestartPolicy::UnlessStopped;
        let spec = spec_of(s.clone());
        assert_eq!(
            spec.body.healthcheck.clone().unwrap().test,
            Some(vec!["NONE".to_string()])
        );
        assert_eq!(
            hc(&spec).restart_policy.clone().unwrap().name,
            Some(RestartPolicyNameEnum::UNLESS_STOPPED)
        );

        s.healthcheck = None;
        s.restart = RestartPolicy::No;
        let spec = spec_of(s);
        assert!(spec.body.healthcheck.is_none());
        assert_eq!(
            hc(&spec).restart_policy.clone().unwrap().name,
            Some(RestartPolicyNameEnum::NO)
        );
    }

    #[test]
    fn resources_caps_devices() {
        let mut s = svc();
        s.resources = Resources {
            memory_limit: Some(ByteSize(512 << 20)),
            memory_reservation: Some(ByteSize(256 << 20)),
            memswap_limit: Some(ByteSize(1 << 30)),
            cpus: Some("1.5".into()),
            cpu_shares: Some(512),
            cpuset: Some("0-1".into()),
            pids_limit: Some(100),
        };
        s.cap_add = vec!["NET_ADMIN".into()];
        s.cap_drop = vec!["ALL".into()];
        s.devices = vec![
            "/dev/fuse".into(),
            "/dev/sda:/dev/xvda:r".into(),
            "/dev/tun:rw".into(),
            "/dev/a:/dev/b".into(),
        ];
        s.privileged = true;
        let spec = spec_of(s.clone());
        let h = hc(&spec);
        assert_eq!(h.memory, Some(512 << 20));
        assert_eq!(h.memory_reservation, Some(256 << 20));
        assert_eq!(h.memory_swap, Some(1 << 30));
        assert_eq!(h.nano_cpus, Some(1_500_000_000));
        assert_eq!(h.cpu_shares, Some(512));
        assert_eq!(h.cpuset_cpus.as_deref(), Some("0-1"));
        assert_eq!(h.pids_limit, Some(100));
        assert_eq!(h.cap_add.clone().unwrap(), ["NET_ADMIN"]);
        assert_eq!(h.cap_drop.clone().unwrap(), ["ALL"]);
        assert_eq!(h.privileged, Some(true));
        let d = h.devices.clone().unwrap();
        let triple = |m: &DeviceMapping| {
            (
                m.path_on_host.clone().unwrap(),
                m.path_in_container.clone().unwrap(),
                m.cgroup_permissions.clone().unwrap(),
            )
        };
        assert_eq!(
            triple(&d[0]),
            ("/dev/fuse".into(), "/dev/fuse".into(), "rwm".into())
        );
        assert_eq!(
            triple(&d[1]),
            ("/dev/sda".into(), "/dev/xvda".into(), "r".into())
        );
        assert_eq!(
            triple(&d[2]),
            ("/dev/tun".into(), "/dev/tun".into(), "rw".into())
        );
        assert_eq!(
            triple(&d[3]),
            ("/dev/a".into(), "/dev/b".into(), "rwm".into())
        );

        assert_eq!(nano_cpus("0.5"), Ok(500_000_000));
        assert_eq!(nano_cpus("2"), Ok(2_000_000_000));
        assert_eq!(nano_cpus(".25"), Ok(250_000_000));
        assert_eq!(nano_cpus("0.000000001"), Ok(1));
        assert!(nano_cpus("1.2.3").is_err());
        assert!(nano_cpus("-1").is_err());
        assert!(nano_cpus("").is_err());

        s.resources.cpus = Some("lots".into());
        let p = project(vec![("web", s.clone())]);
        assert!(matches!(
            container_spec(&p, "web", &s, 1, "h", None),
            Err(SpecError::Invalid { .. })
        ));
        s.resources.cpus = None;
        s.devices = vec!["a:b:c:d".into()];
        assert!(container_spec(&p, "web", &s, 1, "h", None).is_err());
    }

    #[test]
    fn process_and_host_settings() {
        let mut s = svc();
        s.user = Some("1000:1000".into());
        s.working_dir = Some("/app".into());
        s.hostname = Some("web".into());
        s.domainname = Some("example.internal".into());
        s.extra_hosts = vec!["db:10.0.0.2".into()];
        s.dns = vec!["10.0.0.53".into()];
        s.dns_search = vec!["internal".into()];
        s.sysctls = IndexMap::from([("net.core.somaxconn".into(), "1024".into())]);
        s.ulimits = IndexMap::from([(
            "nofile".into(),
            Ulimit {
                soft: 1024,
                hard: 2048,
            },
        )]);
        s.stop_signal = Some("SIGINT".into());
        s.stop_grace_period = Some(Duration(1500));
        s.init = true;
        s.read_only = true;
        s.tty = true;
        s.stdin_open = true;
        s.shm_size = Some(ByteSize(64 << 20));
        s.logging = Some(Logging {
            driver: Some("json-file".into()),
            options: IndexMap::from([("max-size".into(), "10m".into())]),
        });
        s.security_opt = vec!["no-new-privileges:true".into()];
        s.pid = Some("host".into());
        s.ipc = Some("shareable".into());
        s.platform = Some("linux/amd64".into());
        let spec = spec_of(s);
        let b = &spec.body;
        assert_eq!(b.user.as_deref(), Some("1000:1000"));
        assert_eq!(b.working_dir.as_deref(), Some("/app"));
        assert_eq!(b.hostname.as_deref(), Some("web"));
        assert_eq!(b.domainname.as_deref(), Some("example.internal"));
        assert_eq!(b.stop_signal.as_deref(), Some("SIGINT"));
        assert_eq!(b.stop_timeout, Some(2));
        assert_eq!(b.tty, Some(true));
        assert_eq!(b.open_stdin, Some(true));
        let h = hc(&spec);
        assert_eq!(h.extra_hosts.clone().unwrap(), ["db:10.0.0.2"]);
        assert_eq!(h.dns.clone().unwrap(), ["10.0.0.53"]);
        assert_eq!(h.dns_search.clone().unwrap(), ["internal"]);
        assert_eq!(h.sysctls.clone().unwrap()["net.core.somaxconn"], "1024");
        let u = &h.ulimits.clone().unwrap()[0];
        assert_eq!(
            (u.name.as_deref(), u.soft, u.hard),
            (Some("nofile"), Some(1024), Some(2048))
        );
        assert_eq!(h.init, Some(true));
        assert_eq!(h.readonly_rootfs, Some(true));
        assert_eq!(h.shm_size, Some(64 << 20));
        let l = h.log_config.clone().unwrap();
        assert_eq!(l.typ.as_deref(), Some("json-file"));
        assert_eq!(l.config.unwrap()["max-size"], "10m");
        assert_eq!(h.security_opt.clone().unwrap(), ["no-new-privileges:true"]);
        assert_eq!(h.pid_mode.as_deref(), Some("host"));
        assert_eq!(h.ipc_mode.as_deref(), Some("shareable"));

        // Defaults stay unset, so the engine's defaults apply.
        let spec = spec_of(svc());
        let h = hc(&spec);
        assert_eq!(h.init, None);
        assert_eq!(h.privileged, None);
        assert_eq!(h.readonly_rootfs, None);
        assert_eq!(spec.body.stop_timeout, None);
        assert_eq!(spec.body.exposed_ports, None);
        assert_eq!(h.mounts, None);
    }

    #[test]
    fn network_and_volume_requests() {
        let p = project(vec![]);
        let net = Network {
            name: "demo_back".into(),
            driver: Some("bridge".into()),
            driver_opts: IndexMap::from([(
                "com.docker.network.bridge.name".into(),
                "br-demo".into(),
            )]),
            internal: true,
            external: false,
            enable_ipv6: false,
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: vec![IpamPool {
                    subnet: Some("172.30.0.0/24".into()),
                    gateway: Some("172.30.0.1".into()),
                    ip_range: None,
                }],
            }),
            labels: IndexMap::from([("team".into(), "a".into())]),
        };
        let r = network_request(&p, "back", &net);
        assert_eq!(r.name, "demo_back");
        assert_eq!(r.driver.as_deref(), Some("bridge"));
        assert_eq!(r.internal, Some(true));
        assert_eq!(r.enable_ipv6, None);
        assert_eq!(
            r.options.clone().unwrap()["com.docker.network.bridge.name"],
            "br-demo"
        );
        let ipam = r.ipam.clone().unwrap();
        assert_eq!(ipam.driver.as_deref(), Some("default"));
        let pool = &ipam.config.unwrap()[0];
        assert_eq!(pool.subnet.as_deref(), Some("172.30.0.0/24"));
        assert_eq!(pool.gateway.as_deref(), Some("172.30.0.1"));
        let l = r.labels.unwrap();
        assert_eq!(l["team"], "a");
        assert_eq!(l[names::PROJECT], "demo");
        assert_eq!(l[names::COMPOSE_NETWORK], "back");
        assert_eq!(l[names::MANAGED], "true");

        let vol = Volume {
            name: "demo_data".into(),
            driver: Some("local".into()),
            driver_opts: IndexMap::from([("type".into(), "tmpfs".into())]),
            external: false,
            labels: IndexMap::from([("backup".into(), "yes".into())]),
        };
        let r = volume_request(&p, "data", &vol);
        assert_eq!(r.name.as_deref(), Some("demo_data"));
        assert_eq!(r.driver.as_deref(), Some("local"));
        assert_eq!(r.driver_opts.clone().unwrap()["type"], "tmpfs");
        let l = r.labels.unwrap();
        assert_eq!(l["backup"], "yes");
        assert_eq!(l[names::PROJECT], "demo");
        assert_eq!(l[names::COMPOSE_VOLUME], "data");
        assert_eq!(l[names::MANAGED], "true");
    }

    #[test]
    fn host_paths_are_prepared() {
        let dir = tempfile::tempdir().unwrap();
        let bind = dir.path().join("a/b");
        let secret = dir.path().join("token.txt");
        let mut p = project(vec![]);
        p.secrets["token"].file = secret.clone();
        let mut s = svc();
        s.volumes = vec![Mount {
            kind: MountKind::Bind,
            source: Some(bind.display().to_string()),
            target: "/x".into(),
            read_only: false,
            tmpfs_size: None,
        }];
        s.secrets = vec![FileRef {
            source: "token".into(),
            target: "/run/secrets/token".into(),
            mode: None,
        }];
        let err = prepare_host_paths(&p, "web", &s).unwrap_err();
        assert!(matches!(err, SpecError::HostPath { .. }), "{err}");
        std::fs::write(&secret, "s3cret").unwrap();
        prepare_host_paths(&p, "web", &s).unwrap();
        assert!(bind.is_dir());
    }
}
