//! From the typed parse to [`model::Project`]: every short syntax expanded,
//! paths made absolute, profiles applied, references checked.

mod env;
mod ports;
mod secrets;
mod values;
mod volumes;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use docker_compose_types as dct;
use indexmap::IndexMap;
use serde_norway::Value;

use crate::context::Ctx;
use crate::error::LoadError;
use crate::model::*;
use crate::paths::resolve_path;
use crate::shell;
use crate::typed::{self, DEPLOY_PIDS, TypedService};
pub use env::{EnvFileEntry, EnvFileFormat, env_file_entries};
use env::{env_files, key_values};
pub use ports::parse_port;
use ports::ports;
use secrets::{file_objects, file_refs};
use values::{
    duration, labels, opts_map, raw_int, raw_list, raw_size, raw_string, single, size, split_kv,
};
pub use volumes::parse_volume;

/// Lowercase, only `[a-z0-9_-]`, no leading `_` or `-` (compose's rule).
pub fn normalize_project_name(s: &str) -> String {
    s.to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect::<String>()
        .trim_start_matches(['_', '-'])
        .to_string()
}

/// `-p`, then `COMPOSE_PROJECT_NAME`, then `name:`, then the directory name.
pub fn project_name(
    cli: Option<&str>,
    env: Option<&str>,
    top: Option<&str>,
    dir: &Path,
) -> Result<String, LoadError> {
    let dir_name = dir.file_name().map(|n| n.to_string_lossy().to_string());
    let raw = [cli, env, top, dir_name.as_deref()]
        .into_iter()
        .flatten()
        .find(|s| !s.is_empty())
        .unwrap_or_default();
    let name = normalize_project_name(raw);
    if name.is_empty() {
        return Err(LoadError::project(format!(
            "invalid project name {raw:?}: it must contain a lowercase letter or a digit (use -p NAME)"
        )));
    }
    Ok(name)
}

/// Is a service with these profiles enabled by `active`?
pub fn profile_enabled(service_profiles: &[String], active: &[String]) -> bool {
    service_profiles.is_empty()
        || active.iter().any(|a| a == "*")
        || service_profiles.iter().any(|p| active.contains(p))
}

fn command(
    service: &str,
    key: &str,
    simple: Option<&String>,
    list: Option<&Vec<String>>,
) -> Result<Option<Vec<String>>, LoadError> {
    if let Some(s) = simple {
        return shell::split(s)
            .map(Some)
            .map_err(|e| LoadError::service(service, format!("{key}: {e}")));
    }
    Ok(list.cloned())
}

struct Top<'a> {
    project: &'a str,
    networks: &'a IndexMap<String, Network>,
    volumes: &'a IndexMap<String, Volume>,
    secrets: &'a IndexMap<String, FileObject>,
    configs: &'a IndexMap<String, FileObject>,
}

fn service(
    ctx: &mut Ctx,
    top: &Top<'_>,
    name: &str,
    ts: TypedService,
) -> Result<Service, LoadError> {
    let TypedService { svc: s, raw } = ts;
    let err = |m: String| LoadError::service(name, m);
    let mut out = Service {
        replicas: 1,
        ..Default::default()
    };

    // Image and build.
    out.build = match &s.build_ {
        None => None,
        Some(dct::BuildStep::Simple(c)) => Some(Build {
            context: resolve_path(&ctx.project_dir, c, &ctx.env),
            ..Default::default()
        }),
        Some(dct::BuildStep::Advanced(b)) => {
            let mut args = IndexMap::new();
            match &b.args {
                None => {}
                Some(dct::BuildArgs::Simple(a)) => {
                    key_values(ctx, std::iter::once(split_kv(a)), &mut args)
                }
                Some(dct::BuildArgs::List(l)) => {
                    key_values(ctx, l.iter().map(|a| split_kv(a)), &mut args)
                }
                Some(dct::BuildArgs::KvPair(m)) => {
                    args = m.clone();
                }
            }
            let context = if b.context.contains("://") || b.context.starts_with("git@") {
                PathBuf::from(&b.context)
            } else {
                resolve_path(&ctx.project_dir, &b.context, &ctx.env)
            };
            Some(Build {
                context,
                dockerfile: b.dockerfile.clone(),
                args,
                target: b.target.clone(),
            })
        }
    };
    out.image = match (&s.image, &out.build) {
        (Some(i), _) => Some(i.clone()),
        (None, Some(_)) => Some(format!("{}-{name}", top.project)),
        (None, None) => return Err(err("needs image: or build:".into())),
    };

    out.command = match &s.command {
        None => None,
        Some(dct::Command::Simple(c)) => command(name, "command", Some(c), None)?,
        Some(dct::Command::Args(a)) => command(name, "command", None, Some(a))?,
    };
    out.entrypoint = match &s.entrypoint {
        None => None,
        Some(dct::Entrypoint::Simple(c)) => command(name, "entrypoint", Some(c), None)?,
        Some(dct::Entrypoint::List(a)) => command(name, "entrypoint", None, Some(a))?,
    };

    // Environment: env_file first, environment over it.
    if let Some(f) = raw.get("env_file") {
        out.environment = env_files(ctx, name, f)?;
    }
    match &s.environment {
        dct::Environment::List(l) => {
            key_values(ctx, l.iter().map(|e| split_kv(e)), &mut out.environment)
        }
        dct::Environment::KvPair(m) => key_values(
            ctx,
            m.iter().map(|(k, v)| (k.clone(), v.as_ref().map(single))),
            &mut out.environment,
        ),
    }
    out.labels = labels(&s.labels);

    out.ports = ports(name, raw.get("ports"))?;
    out.expose = s.expose.clone();

    for v in &s.volumes {
        let m = match v {
            dct::Volumes::Simple(spec) => {
                parse_volume(spec, &ctx.project_dir, &ctx.env).map_err(err)?
            }
            dct::Volumes::Advanced(a) => {
                let kind = match a._type.as_str() {
                    "volume" => MountKind::Volume,
                    "bind" => MountKind::Bind,
                    "tmpfs" => MountKind::Tmpfs,
                    other => {
                        return Err(err(format!(
                            "volume type {other:?} is not supported: use volume, bind or tmpfs"
                        )));
                    }
                };
                let source = match (kind, &a.source) {
                    (MountKind::Bind, Some(src)) => Some(
                        resolve_path(&ctx.project_dir, src, &ctx.env)
                            .display()
                            .to_string(),
                    ),
                    (MountKind::Bind, None) => {
                        return Err(err(format!("bind mount to {} needs source:", a.target)));
                    }
                    (MountKind::Volume, src) => src.clone().filter(|s| !s.is_empty()),
                    (MountKind::Tmpfs, _) => None,
                };
                Mount {
                    kind,
                    source,
                    target: a.target.clone(),
                    read_only: a.read_only,
                    tmpfs_size: a.tmpfs.as_ref().map(|t| ByteSize(t.size)),
                }
            }
        };
        if m.kind == MountKind::Volume
            && let Some(src) = &m.source
            && !top.volumes.contains_key(src)
        {
            return Err(err(format!(
                "uses volume {src:?}, which is not declared in the top-level volumes: section (declare it, or use ./{src} for a bind mount)"
            )));
        }
        out.volumes.push(m);
    }
    out.tmpfs = match &s.tmpfs {
        None => Vec::new(),
        Some(dct::Tmpfs::Simple(t)) => vec![t.clone()],
        Some(dct::Tmpfs::List(l)) => l.clone(),
    };

    // Networks.
    out.network_mode = s
        .network_mode
        .as_deref()
        .map(|m| m.parse::<NetworkMode>().map_err(err))
        .transpose()?;
    let nets: IndexMap<String, ServiceNetwork> = match &s.networks {
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
                        },
                        dct::MapOrEmpty::Empty => ServiceNetwork::default(),
                    };
                    (k.clone(), sn)
                })
                .collect()
        }
    };
    if out.network_mode.is_some() {
        if !nets.is_empty() {
            return Err(err(
                "network_mode and networks cannot be used together: keep one".into(),
            ));
        }
    } else if nets.is_empty() {
        out.networks
            .insert("default".into(), ServiceNetwork::default());
    } else {
        for n in nets.keys() {
            if n != "default" && !top.networks.contains_key(n) {
                return Err(err(format!(
                    "uses network {n:?}, which is not declared in the top-level networks: section"
                )));
            }
        }
        out.networks = nets;
    }

    out.depends_on = match &s.depends_on {
        dct::DependsOnOptions::Simple(l) => l
            .iter()
            .map(|d| {
                (
                    d.clone(),
                    Dependency {
                        condition: Condition::ServiceStarted,
                        restart: false,
                        required: true,
                    },
                )
            })
            .collect(),
        dct::DependsOnOptions::Conditional(m) => {
            let mut out = IndexMap::new();
            for (k, c) in m {
                let condition = match c.condition.as_str() {
                    "service_started" => Condition::ServiceStarted,
                    "service_healthy" => Condition::ServiceHealthy,
                    "service_completed_successfully" => Condition::ServiceCompletedSuccessfully,
                    other => {
                        return Err(err(format!(
                            "depends_on.{k}.condition: unknown condition {other:?}: expected service_started, service_healthy or service_completed_successfully"
                        )));
                    }
                };
                out.insert(
                    k.clone(),
                    Dependency {
                        condition,
                        restart: c.restart.unwrap_or(false),
                        required: c.required.unwrap_or(true),
                    },
                );
            }
            out
        }
    };

    if let Some(h) = &s.healthcheck {
        let mut test = match &h.test {
            None => Vec::new(),
            Some(dct::HealthcheckTest::Single(t)) => vec!["CMD-SHELL".to_string(), t.clone()],
            Some(dct::HealthcheckTest::Multiple(l)) => l.clone(),
        };
        let disable = h.disable || test.first().is_some_and(|t| t == "NONE");
        if disable {
            test = vec!["NONE".into()];
        }
        out.healthcheck = Some(Healthcheck {
            test,
            interval: duration(name, "healthcheck.interval", &h.interval)?,
            timeout: duration(name, "healthcheck.timeout", &h.timeout)?,
            retries: (h.retries > 0).then_some(h.retries as u32),
            start_period: duration(name, "healthcheck.start_period", &h.start_period)?,
            start_interval: duration(name, "healthcheck.start_interval", &h.start_interval)?,
            disable,
        });
    }
    out.restart = match &s.restart {
        Some(r) => r.parse().map_err(err)?,
        None => RestartPolicy::No,
    };

    // Resources: deploy.resources, then the legacy keys over them.
    let limits = s
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.limits.as_ref());
    let reservations = s
        .deploy
        .as_ref()
        .and_then(|d| d.resources.as_ref())
        .and_then(|r| r.reservations.as_ref());
    let res = &mut out.resources;
    res.memory_limit = size(name, "mem_limit", s.mem_limit.clone())?.or(size(
        name,
        "deploy.resources.limits.memory",
        limits.and_then(|l| l.memory.clone()),
    )?);
    res.memory_reservation = size(name, "mem_reservation", s.mem_reservation.clone())?.or(size(
        name,
        "deploy.resources.reservations.memory",
        reservations.and_then(|l| l.memory.clone()),
    )?);
    res.memswap_limit = raw_size(name, "memswap_limit", raw.get("memswap_limit"))?;
    res.cpus = raw
        .get("cpus")
        .and_then(raw_string)
        .or_else(|| limits.and_then(|l| l.cpus.clone()));
    if let Some(c) = &res.cpus
        && c.parse::<f64>().map_or(true, |f| f < 0.0)
    {
        return Err(err(format!(
            "cpus: {c:?} is not a number of CPUs, e.g. 0.5"
        )));
    }
    res.cpu_shares = raw_int(name, "cpu_shares", raw.get("cpu_shares"))?;
    res.cpuset = raw.get("cpuset").and_then(raw_string);
    res.pids_limit = match raw_int(name, "pids_limit", raw.get("pids_limit"))? {
        Some(p) => Some(p),
        None => raw_int(name, DEPLOY_PIDS, raw.get(DEPLOY_PIDS))?,
    };

    out.cap_add = s.cap_add.clone();
    out.cap_drop = s.cap_drop.clone();
    out.devices = s.devices.clone();
    out.privileged = s.privileged;
    out.user = s.user.clone();
    out.working_dir = s.working_dir.clone();
    out.hostname = s.hostname.clone();
    out.domainname = s.domainname.clone();
    out.extra_hosts = s
        .extra_hosts
        .iter()
        .map(|h| match h.split_once('=') {
            Some((k, v)) => format!("{k}:{v}"),
            None => h.clone(),
        })
        .collect();
    out.dns = s.dns.clone();
    out.dns_search = raw_list(raw.get("dns_search"));
    out.sysctls = match &s.sysctls {
        dct::SysCtls::List(l) => l
            .iter()
            .map(|e| {
                let (k, v) = split_kv(e);
                (k, v.unwrap_or_default())
            })
            .collect(),
        dct::SysCtls::Map(m) => opts_map(m),
    };
    for (k, u) in &s.ulimits.0 {
        let num = |v: &dct::StringOrUnsigned| -> Result<i64, LoadError> {
            match v {
                dct::StringOrUnsigned::Unsigned(n) => Ok(*n),
                dct::StringOrUnsigned::String(s) => s
                    .parse()
                    .map_err(|_| err(format!("ulimits.{k}: {s:?} is not a number"))),
            }
        };
        let ul = match u {
            dct::Ulimit::Single(n) => {
                let n = num(n)?;
                Ulimit { soft: n, hard: n }
            }
            dct::Ulimit::SoftHard { soft, hard } => Ulimit {
                soft: num(soft)?,
                hard: num(hard)?,
            },
        };
        out.ulimits.insert(k.clone(), ul);
    }
    out.stop_signal = s.stop_signal.clone();
    out.stop_grace_period = duration(name, "stop_grace_period", &s.stop_grace_period)?;
    out.init = s.init;
    out.read_only = s.read_only;
    out.tty = s.tty;
    out.stdin_open = s.stdin_open;
    out.shm_size = size(name, "shm_size", s.shm_size.clone())?;
    out.logging = s.logging.as_ref().map(|l| Logging {
        driver: l.driver.clone(),
        options: l
            .options
            .as_ref()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), single(v))).collect())
            .unwrap_or_default(),
    });
    out.security_opt = s.security_opt.clone();
    out.pid = s.pid.clone();
    out.ipc = s.ipc.clone();
    out.container_name = s.container_name.clone();
    out.platform = raw.get("platform").and_then(raw_string);
    out.secrets = file_refs(name, "secrets", raw.get("secrets"), top.secrets)?;
    out.configs = file_refs(name, "configs", raw.get("configs"), top.configs)?;
    out.profiles = s.profiles.clone();
    let replicas = match raw_int(name, "scale", raw.get("scale"))? {
        Some(n) => Some(n),
        None => s.deploy.as_ref().and_then(|d| d.replicas),
    };
    out.replicas = match replicas {
        None => 1,
        Some(n) => u32::try_from(n).map_err(|_| err(format!("replicas: {n} must be 0 or more")))?,
    };
    Ok(out)
}

fn check_cycles(services: &IndexMap<String, Service>) -> Result<(), LoadError> {
    fn visit(
        name: &str,
        services: &IndexMap<String, Service>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Result<(), LoadError> {
        if done.contains(name) {
            return Ok(());
        }
        if let Some(i) = path.iter().position(|p| p == name) {
            let mut cycle = path[i..].to_vec();
            cycle.push(name.to_string());
            return Err(LoadError::project(format!(
                "dependency cycle: {}: remove one of these depends_on",
                cycle.join(" -> ")
            )));
        }
        path.push(name.to_string());
        if let Some(s) = services.get(name) {
            for d in s.depends_on.keys() {
                visit(d, services, path, done)?;
            }
        }
        path.pop();
        done.insert(name.to_string());
        Ok(())
    }
    let mut done = BTreeSet::new();
    for name in services.keys() {
        visit(name, services, &mut Vec::new(), &mut done)?;
    }
    Ok(())
}

/// Builds the project from the merged value.
pub(crate) fn project(
    ctx: &mut Ctx,
    merged: Value,
    files: &[PathBuf],
    cli_name: Option<&str>,
    profiles: &[String],
) -> Result<Project, LoadError> {
    let t = typed::parse(merged)?;
    let name = project_name(
        cli_name,
        ctx.env.get("COMPOSE_PROJECT_NAME").map(String::as_str),
        t.compose.name.as_deref(),
        &ctx.project_dir,
    )?;

    let mut networks = IndexMap::new();
    for (key, entry) in &t.compose.networks.0 {
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
            (false, None) => format!("{name}_{key}"),
        };
        let ipam = t.ipam.get(key).map(|raw| Ipam {
            driver: raw.get("driver").and_then(raw_string),
            config: match raw.get("config") {
                Some(Value::Sequence(pools)) => pools
                    .iter()
                    .map(|p| IpamPool {
                        subnet: p.get("subnet").and_then(raw_string),
                        gateway: p.get("gateway").and_then(raw_string),
                        ip_range: p.get("ip_range").and_then(raw_string),
                    })
                    .collect(),
                _ => Vec::new(),
            },
        });
        networks.insert(
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
            },
        );
    }
    let mut volumes = IndexMap::new();
    for (key, entry) in &t.compose.volumes.0 {
        let v: Option<dct::ComposeVolume> = entry.clone().into();
        let (external, ext_name, given, driver, driver_opts, vlabels) = match &v {
            None => (false, None, None, None, IndexMap::new(), IndexMap::new()),
            Some(v) => {
                let (external, ext_name) = match &v.external {
                    Some(dct::ExternalVolume::Bool(b)) => (*b, None),
                    Some(dct::ExternalVolume::Name { name }) => (true, Some(name.clone())),
                    None => (false, None),
                };
                (
                    external,
                    ext_name,
                    v.name.clone(),
                    v.driver.clone(),
                    opts_map(&v.driver_opts),
                    labels(&v.labels),
                )
            }
        };
        let engine_name = match (external, given) {
            (_, Some(g)) => g,
            (true, None) => ext_name.unwrap_or_else(|| key.clone()),
            (false, None) => format!("{name}_{key}"),
        };
        volumes.insert(
            key.clone(),
            Volume {
                name: engine_name,
                driver,
                driver_opts,
                external,
                labels: vlabels,
            },
        );
    }
    volumes.sort_keys();
    let secrets = file_objects(ctx, "secrets", &t.secrets)?;
    let configs = file_objects(ctx, "configs", &t.configs)?;

    let top = Top {
        project: &name,
        networks: &networks,
        volumes: &volumes,
        secrets: &secrets,
        configs: &configs,
    };
    let mut services = IndexMap::new();
    let mut disabled = BTreeSet::new();
    for (sname, ts) in t.services {
        if !profile_enabled(&ts.svc.profiles, profiles) {
            disabled.insert(sname);
            continue;
        }
        let s = service(ctx, &top, &sname, ts)?;
        services.insert(sname, s);
    }
    services.sort_keys();

    // References between services.
    let names: BTreeSet<String> = services.keys().cloned().collect();
    for (sname, s) in services.iter_mut() {
        let mut dropped = Vec::new();
        for (dep, d) in &s.depends_on {
            if names.contains(dep) {
                continue;
            }
            if !d.required {
                dropped.push(dep.clone());
                continue;
            }
            return Err(LoadError::service(
                sname,
                if disabled.contains(dep) {
                    format!(
                        "depends on {dep:?}, which is disabled by its profiles: enable one with --profile, or set required: false on the dependency"
                    )
                } else {
                    format!(
                        "depends on undefined service {dep:?}: define it or remove it from depends_on"
                    )
                },
            ));
        }
        for d in dropped {
            ctx.warnings.push(format!(
                "service {sname:?}: optional dependency {d:?} is not enabled, ignoring it"
            ));
            s.depends_on.shift_remove(&d);
        }
        if let Some(NetworkMode::Service(other)) = &s.network_mode
            && !names.contains(other)
        {
            return Err(LoadError::service(
                sname,
                format!("network_mode: service:{other} names no enabled service"),
            ));
        }
    }
    check_cycles(&services)?;

    if services
        .values()
        .any(|s| s.networks.contains_key("default"))
        && !networks.contains_key("default")
    {
        networks.insert(
            "default".into(),
            Network {
                name: format!("{name}_default"),
                ..Default::default()
            },
        );
    }
    networks.sort_keys();

    Ok(Project {
        name,
        working_dir: ctx.project_dir.clone(),
        files: files.to_vec(),
        services,
        networks,
        volumes,
        secrets,
        configs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names() {
        let d = Path::new("/x/My App.v2");
        assert_eq!(project_name(None, None, None, d).unwrap(), "myappv2");
        assert_eq!(project_name(None, None, Some("Top"), d).unwrap(), "top");
        assert_eq!(
            project_name(None, Some("env"), Some("Top"), d).unwrap(),
            "env"
        );
        assert_eq!(
            project_name(Some("_Cli-1"), Some("env"), None, d).unwrap(),
            "cli-1"
        );
        assert_eq!(project_name(Some(""), None, Some("t"), d).unwrap(), "t");
        assert!(project_name(Some("!!!"), None, None, d).is_err());
    }

    #[test]
    fn profiles() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(profile_enabled(&[], &[]));
        assert!(!profile_enabled(&p(&["debug"]), &[]));
        assert!(profile_enabled(&p(&["debug", "x"]), &p(&["x"])));
        assert!(profile_enabled(&p(&["debug"]), &p(&["*"])));
        assert!(!profile_enabled(&p(&["debug"]), &p(&["other"])));
    }
}
