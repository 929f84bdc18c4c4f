//! The host side of a container: healthcheck, restart policy, resources,
//! devices, and the rest of `HostConfig`.

use std::collections::HashMap;

use bollard_stubs::models::{
    DeviceMapping, HealthConfig, HostConfig, HostConfigLogConfig, Mount as EngineMount,
    PortBinding, ResourcesUlimits, RestartPolicy as EngineRestart, RestartPolicyNameEnum,
};
use turtle_compose::{RestartPolicy, Service};

use super::{SpecError, resources};

/// What the other parts of the spec contribute to `HostConfig`.
pub(super) struct Wiring {
    pub bindings: HashMap<String, Option<Vec<PortBinding>>>,
    pub mounts: Vec<EngineMount>,
    pub tmpfs: HashMap<String, String>,
    pub network_mode: Option<String>,
    /// Bind mounts the `Mounts` API cannot carry (SELinux labels).
    pub binds: Vec<String>,
    pub links: Vec<String>,
    pub volumes_from: Vec<String>,
}

/// The service's healthcheck as the engine takes it.
pub(super) fn healthcheck(service: &Service) -> Option<HealthConfig> {
    service.healthcheck.as_ref().map(|h| HealthConfig {
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
    })
}

fn restart_policy(service: &Service) -> EngineRestart {
    match service.restart {
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
    }
}

/// `HostConfig`: the wiring plus the service's resources and process settings.
pub(super) fn host_config(
    service_name: &str,
    service: &Service,
    wiring: Wiring,
) -> Result<HostConfig, SpecError> {
    let invalid = |message: String| SpecError::Invalid {
        service: service_name.to_string(),
        message,
    };
    let Wiring {
        bindings,
        mounts,
        tmpfs,
        network_mode,
        binds,
        links,
        volumes_from,
    } = wiring;
    let restart_policy = Some(restart_policy(service));
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
    let device_requests = resources::device_requests(&service.device_requests);
    let blkio = resources::blkio(r.blkio.as_ref()).map_err(invalid)?;
    let cgroupns_mode = service
        .cgroup
        .as_deref()
        .map(resources::cgroupns)
        .transpose()
        .map_err(invalid)?;
    let isolation = service
        .isolation
        .as_deref()
        .map(resources::isolation)
        .transpose()
        .map_err(invalid)?;

    Ok(HostConfig {
        port_bindings: (!bindings.is_empty()).then_some(bindings),
        mounts: (!mounts.is_empty()).then_some(mounts),
        binds: non_empty(&binds),
        links: non_empty(&links),
        volumes_from: non_empty(&volumes_from),
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
        cpu_count: r.cpu_count,
        cpu_percent: r.cpu_percent,
        cpu_period: r.cpu_period,
        cpu_quota: r.cpu_quota,
        cpu_realtime_period: r.cpu_rt_period,
        cpu_realtime_runtime: r.cpu_rt_runtime,
        memory_swappiness: r.mem_swappiness,
        blkio_weight: blkio.weight,
        blkio_weight_device: blkio.weight_device,
        blkio_device_read_bps: blkio.read_bps,
        blkio_device_read_iops: blkio.read_iops,
        blkio_device_write_bps: blkio.write_bps,
        blkio_device_write_iops: blkio.write_iops,
        device_requests: (!device_requests.is_empty()).then_some(device_requests),
        device_cgroup_rules: non_empty(&service.device_cgroup_rules),
        group_add: non_empty(&service.group_add),
        dns_options: non_empty(&service.dns_opt),
        userns_mode: service.userns_mode.clone(),
        uts_mode: service.uts.clone(),
        cgroupns_mode,
        cgroup_parent: service.cgroup_parent.clone(),
        isolation,
        storage_opt: string_map(&service.storage_opt),
        // API 1.43+: the engine adapter refuses them on older engines.
        annotations: string_map(&service.annotations),
        oom_kill_disable: service.oom_kill_disable.then_some(true),
        oom_score_adj: service.oom_score_adj,
        runtime: service.runtime.clone(),
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
    })
}

/// A map of the model as the engine's, `None` when empty.
fn string_map<'a, M>(m: &'a M) -> Option<HashMap<String, String>>
where
    &'a M: IntoIterator<Item = (&'a String, &'a String)>,
{
    let out: HashMap<String, String> = m.into_iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    (!out.is_empty()).then_some(out)
}

fn non_empty(v: &[String]) -> Option<Vec<String>> {
    (!v.is_empty()).then(|| v.to_vec())
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
