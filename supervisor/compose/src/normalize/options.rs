//! What the container runs with beyond its image, command and wiring:
//! capabilities and devices, user and identity, hosts and DNS, sysctls,
//! namespaces and cgroups, stopping, terminal, logging, platform, and the
//! lifecycle hooks.

use serde_norway::{Mapping, Value};

use super::values::{boolean, duration, get, int, scalar, size, string, string_map, strings};
use crate::context::Ctx;
use crate::error::LoadError;
use crate::model::{Hook, Logging, Service};

/// The service's runtime options, into `out`.
pub(super) fn runtime_options(out: &mut Service, name: &str, s: &Mapping) -> Result<(), LoadError> {
    out.cap_add = strings(s, "cap_add");
    out.cap_drop = strings(s, "cap_drop");
    out.devices = devices(name, s)?;
    out.device_cgroup_rules = strings(s, "device_cgroup_rules");
    out.privileged = boolean(s, "privileged");
    out.user = string(s, "user");
    out.group_add = strings(s, "group_add");
    out.working_dir = string(s, "working_dir");
    out.hostname = string(s, "hostname");
    out.domainname = string(s, "domainname");
    out.mac_address = string(s, "mac_address");
    out.extra_hosts = extra_hosts(name, s)?;
    out.dns = strings(s, "dns");
    out.dns_search = strings(s, "dns_search");
    out.dns_opt = strings(s, "dns_opt");
    out.sysctls = string_map(s, "sysctls");
    out.stop_signal = string(s, "stop_signal");
    out.stop_grace_period = duration(name, "stop_grace_period", string(s, "stop_grace_period"))?;
    out.init = boolean(s, "init");
    out.read_only = boolean(s, "read_only");
    out.tty = boolean(s, "tty");
    out.stdin_open = boolean(s, "stdin_open");
    out.oom_kill_disable = boolean(s, "oom_kill_disable");
    out.oom_score_adj = int(s, "oom_score_adj");
    if let Some(adj) = out.oom_score_adj
        && !(-1000..=1000).contains(&adj)
    {
        return Err(LoadError::service(
            name,
            format!("oom_score_adj: {adj} is not between -1000 and 1000"),
        ));
    }
    out.shm_size = size(name, "shm_size", string(s, "shm_size"))?;
    out.logging = super::values::sub(s, "logging").map(|l| Logging {
        driver: string(l, "driver"),
        options: string_map(l, "options"),
    });
    out.security_opt = strings(s, "security_opt");
    out.pid = string(s, "pid");
    out.ipc = string(s, "ipc");
    out.uts = string(s, "uts");
    out.userns_mode = string(s, "userns_mode");
    out.cgroup = string(s, "cgroup");
    if let Some(c) = &out.cgroup
        && c != "host"
        && c != "private"
    {
        return Err(LoadError::service(
            name,
            format!("cgroup: {c:?}: expected host or private"),
        ));
    }
    out.cgroup_parent = string(s, "cgroup_parent");
    out.isolation = string(s, "isolation");
    out.runtime = string(s, "runtime");
    out.storage_opt = string_map(s, "storage_opt");
    out.container_name = string(s, "container_name");
    out.platform = string(s, "platform");
    Ok(())
}

/// `extra_hosts:` as `host:ip` entries: a list of `host:ip` or `host=ip`
/// (several addresses separated by commas), or a mapping of hosts to an
/// address or a list of them.
pub(super) fn extra_hosts(name: &str, m: &Mapping) -> Result<Vec<String>, LoadError> {
    let mut out = Vec::new();
    let mut add = |host: &str, ips: &str| -> Result<(), LoadError> {
        for ip in ips.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            out.push(format!("{host}:{ip}"));
        }
        if ips.trim().is_empty() {
            return Err(LoadError::service(
                name,
                format!("extra_hosts: {host:?} has no address"),
            ));
        }
        Ok(())
    };
    match get(m, "extra_hosts") {
        Some(Value::Mapping(hosts)) => {
            for (h, ips) in hosts {
                let h = crate::keys::key_string(h);
                match ips {
                    Value::Sequence(list) => {
                        for ip in list.iter().filter_map(scalar) {
                            add(&h, &ip)?;
                        }
                    }
                    other => add(&h, &scalar(other).unwrap_or_default())?,
                }
            }
        }
        Some(_) => {
            for entry in strings(m, "extra_hosts") {
                // `host=ip` is the unambiguous form (IPv6 addresses hold colons).
                let (h, ips) = entry
                    .split_once('=')
                    .or_else(|| entry.split_once(':'))
                    .unwrap_or((entry.as_str(), ""));
                add(h, ips)?;
            }
        }
        None => {}
    }
    Ok(out)
}

/// `devices:` as `host:container:permissions`, from the short form (a lone
/// path maps to itself; permissions default to `rwm`, as in compose-go) or
/// the long `{source, target, permissions}`.
fn devices(name: &str, s: &Mapping) -> Result<Vec<String>, LoadError> {
    let Some(Value::Sequence(items)) = get(s, "devices") else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|item| {
            let (source, target, permissions) = match item {
                Value::Mapping(d) => {
                    let source = string(d, "source").ok_or_else(|| {
                        LoadError::service(name, "devices: every long entry needs source:")
                    })?;
                    (source, string(d, "target"), string(d, "permissions"))
                }
                other => {
                    let short = scalar(other).unwrap_or_default();
                    let mut parts = short.splitn(3, ':').map(str::to_string);
                    let source = parts.next().unwrap_or_default();
                    (source, parts.next(), parts.next())
                }
            };
            if source.is_empty() {
                return Err(LoadError::service(
                    name,
                    "devices: an entry has no host path",
                ));
            }
            let target = target
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| source.clone());
            let permissions = permissions.unwrap_or_else(|| "rwm".into());
            Ok(format!("{source}:{target}:{permissions}"))
        })
        .collect()
}

/// `post_start:` or `pre_stop:`.
pub(super) fn hooks(ctx: &Ctx, name: &str, s: &Mapping, key: &str) -> Result<Vec<Hook>, LoadError> {
    let Some(Value::Sequence(items)) = get(s, key) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for h in items.iter().filter_map(Value::as_mapping) {
        let command = super::service::command(name, &format!("{key}.command"), get(h, "command"))?
            .filter(|c| !c.is_empty())
            .ok_or_else(|| LoadError::service(name, format!("{key}: every hook needs command:")))?;
        let mut environment = indexmap::IndexMap::new();
        super::env::key_values(
            ctx,
            super::values::key_values(h, "environment").into_iter(),
            &mut environment,
        );
        out.push(Hook {
            command,
            user: string(h, "user"),
            privileged: boolean(h, "privileged"),
            working_dir: string(h, "working_dir"),
            environment,
        });
    }
    Ok(out)
}
