//! The typed parse: the merged YAML value goes through docker-compose-types.
//!
//! Two adjustments come first. Keys docker-compose-types lacks (it rejects
//! unknown keys) are lifted out and kept as raw values for normalization:
//! `cpus`, `cpu_shares`, `cpuset`, `memswap_limit`, `pids_limit`,
//! `deploy.resources.limits.pids`, `platform`, `dns_search`, `scale`,
//! `secrets`, `configs`, `env_file` and `ports` (it lacks long-form
//! `env_file` and cannot mix short and long ports), the top-level `secrets`/`configs`, and network
//! `ipam` (it lacks `ip_range`). And scalars YAML gives as numbers or
//! booleans where docker-compose-types wants strings (`expose: [80]`,
//! `labels: {port: 8080}`, `cpus: 0.5`, `interval: 30`) are written as strings.

use docker_compose_types as dct;
use indexmap::IndexMap;
use serde_norway::{Mapping, Value};

use crate::error::LoadError;
use crate::model::ByteSize;

/// Keys taken out of each service before the typed parse.
const LIFTED: &[&str] = &[
    "cpus",
    "cpu_shares",
    "cpuset",
    "memswap_limit",
    "pids_limit",
    "platform",
    "dns_search",
    "scale",
    "secrets",
    "configs",
    "extends",
    // docker-compose-types only knows the short (string) form.
    "env_file",
    // docker-compose-types wants all-short or all-long; compose allows a mix.
    "ports",
];

/// Raw key under which `deploy.resources.limits.pids` is kept.
pub const DEPLOY_PIDS: &str = "deploy.resources.limits.pids";

/// Service fields docker-compose-types wants as strings.
const STRINGS: &[&[&str]] = &[
    &["image"],
    &["user"],
    &["working_dir"],
    &["hostname"],
    &["domainname"],
    &["restart"],
    &["container_name"],
    &["stop_signal"],
    &["stop_grace_period"],
    &["shm_size"],
    &["mem_limit"],
    &["mem_reservation"],
    &["network_mode"],
    &["pid"],
    &["ipc"],
    &["labels", "*"],
    &["build", "args", "*"],
    &["build", "context"],
    &["build", "dockerfile"],
    &["build", "target"],
    &["expose", "*"],
    &["dns", "*"],
    &["command", "*"],
    &["entrypoint", "*"],
    &["environment", "*"],
    &["tmpfs", "*"],
    &["volumes", "*"],
    &["cap_add", "*"],
    &["cap_drop", "*"],
    &["devices", "*"],
    &["security_opt", "*"],
    &["profiles", "*"],
    &["extra_hosts", "*"],
    &["healthcheck", "test", "*"],
    &["healthcheck", "interval"],
    &["healthcheck", "timeout"],
    &["healthcheck", "start_period"],
    &["healthcheck", "start_interval"],
    &["deploy", "resources", "limits", "cpus"],
    &["deploy", "resources", "limits", "memory"],
    &["deploy", "resources", "reservations", "cpus"],
    &["deploy", "resources", "reservations", "memory"],
    &["networks", "*", "aliases", "*"],
    &["networks", "*", "ipv4_address"],
    &["networks", "*", "ipv6_address"],
];

/// Service keys whose scalar value means a one-item list.
const LISTS: &[&str] = &[
    "dns",
    "expose",
    "cap_add",
    "cap_drop",
    "devices",
    "security_opt",
    "profiles",
];

/// A service after the typed parse, with the keys lifted out of it.
pub struct TypedService {
    pub svc: dct::Service,
    pub raw: Mapping,
}

/// The whole project after the typed parse.
pub struct Typed {
    /// Top level without `services`, `secrets` and `configs`.
    pub compose: dct::Compose,
    pub services: IndexMap<String, TypedService>,
    pub secrets: Mapping,
    pub configs: Mapping,
    /// `ipam` of each top-level network.
    pub ipam: IndexMap<String, Value>,
}

fn scalar_to_string(v: &mut Value) {
    match v {
        Value::Number(n) => *v = Value::String(n.to_string()),
        Value::Bool(b) => *v = Value::String(b.to_string()),
        _ => {}
    }
}

fn stringify(v: &mut Value, path: &[&str]) {
    let Some((first, rest)) = path.split_first() else {
        scalar_to_string(v);
        return;
    };
    match (*first, v) {
        ("*", Value::Sequence(items)) => items.iter_mut().for_each(|i| stringify(i, rest)),
        ("*", Value::Mapping(m)) => m.values_mut().for_each(|i| stringify(i, rest)),
        (key, Value::Mapping(m)) => {
            if let Some(inner) = m.get_mut(key) {
                stringify(inner, rest);
            }
        }
        _ => {}
    }
}

fn prepare_service(m: &mut Mapping) -> Mapping {
    let mut raw = Mapping::new();
    for key in LIFTED {
        if let Some(v) = m.remove(*key) {
            raw.insert((*key).into(), v);
        }
    }
    if let Some(pids) = m
        .get_mut("deploy")
        .and_then(|d| d.get_mut("resources"))
        .and_then(|r| r.get_mut("limits"))
        .and_then(Value::as_mapping_mut)
        .and_then(|l| l.remove("pids"))
    {
        raw.insert(DEPLOY_PIDS.into(), pids);
    }
    for key in LISTS {
        if let Some(v) = m.get_mut(*key)
            && !v.is_sequence()
            && !v.is_null()
        {
            *v = Value::Sequence(vec![v.clone()]);
        }
    }
    // `extra_hosts: {host: ip}` -> `[host:ip]`.
    if let Some(Value::Mapping(hosts)) = m.get("extra_hosts") {
        let list = hosts
            .iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                scalar_to_string(&mut v);
                Value::String(format!(
                    "{}:{}",
                    crate::keys::key_string(k),
                    v.as_str().unwrap_or_default()
                ))
            })
            .collect();
        m.insert("extra_hosts".into(), Value::Sequence(list));
    }
    let mut v = Value::Mapping(std::mem::take(m));
    for path in STRINGS {
        stringify(&mut v, path);
    }
    let Value::Mapping(mut back) = v else {
        unreachable!()
    };
    // depends_on long form: condition defaults to service_started.
    if let Some(Value::Mapping(deps)) = back.get_mut("depends_on") {
        for d in deps.values_mut() {
            if d.is_null() {
                *d = Value::Mapping(Mapping::new());
            }
            if let Value::Mapping(dm) = d
                && !dm.contains_key("condition")
            {
                dm.insert("condition".into(), "service_started".into());
            }
        }
    }
    // tmpfs size as a byte count.
    if let Some(Value::Sequence(vols)) = back.get_mut("volumes") {
        for vol in vols {
            if let Some(size) = vol.get_mut("tmpfs").and_then(|t| t.get_mut("size"))
                && let Some(s) = size.as_str()
                && let Ok(b) = s.parse::<ByteSize>()
            {
                *size = Value::Number(b.0.into());
            }
        }
    }
    *m = back;
    raw
}

/// Runs the typed parse on the merged value.
pub fn parse(merged: Value) -> Result<Typed, LoadError> {
    let Value::Mapping(mut top) = merged else {
        return Err(LoadError::project("the compose file must be a mapping"));
    };
    let take_map = |top: &mut Mapping, key: &str| -> Result<Mapping, LoadError> {
        match top.remove(key) {
            None | Some(Value::Null) => Ok(Mapping::new()),
            Some(Value::Mapping(m)) => Ok(m),
            Some(_) => Err(LoadError::project(format!(
                "top-level {key}: must be a mapping of names to definitions"
            ))),
        }
    };
    let raw_services = take_map(&mut top, "services")?;
    let secrets = take_map(&mut top, "secrets")?;
    let configs = take_map(&mut top, "configs")?;
    let mut ipam = IndexMap::new();
    if let Some(Value::Mapping(nets)) = top.get_mut("networks") {
        for (k, v) in nets.iter_mut() {
            stringify(v, &["name"]);
            stringify(v, &["labels", "*"]);
            if let Some(i) = v.as_mapping_mut().and_then(|m| m.remove("ipam")) {
                ipam.insert(crate::keys::key_string(k), i);
            }
        }
    }
    if let Some(Value::Mapping(vols)) = top.get_mut("volumes") {
        for v in vols.values_mut() {
            stringify(v, &["name"]);
            stringify(v, &["labels", "*"]);
        }
    }
    if let Some(n) = top.get_mut("name") {
        scalar_to_string(n);
    }
    if let Some(n) = top.get_mut("version") {
        scalar_to_string(n);
    }
    let compose: dct::Compose = serde_norway::from_value(Value::Mapping(top))
        .map_err(|e| LoadError::project(format!("invalid top-level definition: {e}")))?;
    let mut services = IndexMap::new();
    for (k, v) in raw_services {
        let name = crate::keys::key_string(&k);
        let mut m = match v {
            Value::Null => Mapping::new(),
            Value::Mapping(m) => m,
            _ => return Err(LoadError::service(&name, "must be a mapping of settings")),
        };
        let raw = prepare_service(&mut m);
        let svc: dct::Service = serde_norway::from_value(Value::Mapping(m))
            .map_err(|e| LoadError::service(&name, format!("invalid definition: {e}")))?;
        services.insert(name, TypedService { svc, raw });
    }
    Ok(Typed {
        compose,
        services,
        secrets,
        configs,
        ipam,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifts_and_coerces_before_docker_compose_types() {
        let v: Value = serde_norway::from_str(
            "services:\n  web:\n    image: x\n    cpus: 0.5\n    platform: linux/amd64\n    pids_limit: 10\n    expose: 80\n    labels: {port: 8080, on: true}\n    deploy: {resources: {limits: {cpus: 1, memory: 512m, pids: 5}}}\n    healthcheck: {test: [CMD, x], interval: 30}\n    depends_on: {db: {required: false}}\n    extra_hosts: {a: 1.2.3.4}\n  db:\n",
        )
        .unwrap();
        let t = parse(v).unwrap();
        let web = &t.services["web"];
        assert_eq!(web.raw["cpus"], Value::from(0.5));
        assert_eq!(web.raw[DEPLOY_PIDS], Value::from(5));
        assert_eq!(web.svc.expose, vec!["80"]);
        assert_eq!(web.svc.extra_hosts, vec!["a:1.2.3.4"]);
        assert!(t.services.contains_key("db"));
    }
}
