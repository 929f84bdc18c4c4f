//! One service, from its typed parse to [`Service`]. The image and build,
//! commands, healthcheck, restart policy, replicas and the container's runtime
//! options are read here; the environment, ports, mounts, networks,
//! dependencies, resources and secrets/configs by their own modules.
//!
//! [`service`] reads the keys in a fixed order, and the first error found is
//! the one reported: keep that order when adding a key.

use std::path::PathBuf;

use docker_compose_types as dct;
use indexmap::IndexMap;
use serde_norway::Mapping;

use super::values::{
    duration, labels, opts_map, raw_int, raw_list, raw_string, single, size, split_kv,
};
use super::{depends, env, networks, ports, resources, secrets, volumes};
use crate::context::Ctx;
use crate::error::LoadError;
use crate::model::*;
use crate::paths::resolve_path;
use crate::shell;
use crate::typed::TypedService;

/// The top-level objects of the project, which services refer to.
pub(super) struct Top<'a> {
    pub(super) project: &'a str,
    pub(super) networks: &'a IndexMap<String, Network>,
    pub(super) volumes: &'a IndexMap<String, Volume>,
    pub(super) secrets: &'a IndexMap<String, FileObject>,
    pub(super) configs: &'a IndexMap<String, FileObject>,
}

/// Normalizes one (enabled) service.
pub(super) fn service(
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
    out.build = build(ctx, s.build_.as_ref());
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

    out.environment = env::environment(ctx, name, raw.get("env_file"), &s.environment)?;
    out.labels = labels(&s.labels);

    out.ports = ports::ports(name, raw.get("ports"))?;
    out.expose = s.expose.clone();

    out.volumes = volumes::mounts(ctx, name, &s.volumes, top.volumes)?;
    out.tmpfs = volumes::tmpfs(s.tmpfs.as_ref());

    (out.network_mode, out.networks) =
        networks::service_networks(name, s.network_mode.as_deref(), &s.networks, top.networks)?;

    out.depends_on = depends::depends_on(name, &s.depends_on)?;

    out.healthcheck = s
        .healthcheck
        .as_ref()
        .map(|h| healthcheck(name, h))
        .transpose()?;
    out.restart = match &s.restart {
        Some(r) => r.parse().map_err(err)?,
        None => RestartPolicy::No,
    };

    out.resources = resources::resources(name, &s, &raw)?;
    runtime_options(&mut out, name, &s, &raw)?;

    out.secrets = secrets::file_refs(name, "secrets", raw.get("secrets"), top.secrets)?;
    out.configs = secrets::file_refs(name, "configs", raw.get("configs"), top.configs)?;
    out.profiles = s.profiles.clone();
    out.replicas = replicas(name, &s, &raw)?;
    Ok(out)
}

/// `build:`: a context, or `{context, dockerfile, args, target}`. A local
/// context is made absolute; a git context is kept as written.
fn build(ctx: &Ctx, b: Option<&dct::BuildStep>) -> Option<Build> {
    match b {
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
                    env::key_values(ctx, std::iter::once(split_kv(a)), &mut args)
                }
                Some(dct::BuildArgs::List(l)) => {
                    env::key_values(ctx, l.iter().map(|a| split_kv(a)), &mut args)
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
                ..Default::default()
            })
        }
    }
}

/// `command:`/`entrypoint:`: a string is split into words as a shell would.
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

/// `healthcheck:`: a string test runs in a shell; `disable: true` or a `NONE`
/// test turns the image's healthcheck off.
fn healthcheck(name: &str, h: &dct::Healthcheck) -> Result<Healthcheck, LoadError> {
    let mut test = match &h.test {
        None => Vec::new(),
        Some(dct::HealthcheckTest::Single(t)) => vec!["CMD-SHELL".to_string(), t.clone()],
        Some(dct::HealthcheckTest::Multiple(l)) => l.clone(),
    };
    let disable = h.disable || test.first().is_some_and(|t| t == "NONE");
    if disable {
        test = vec!["NONE".into()];
    }
    Ok(Healthcheck {
        test,
        interval: duration(name, "healthcheck.interval", &h.interval)?,
        timeout: duration(name, "healthcheck.timeout", &h.timeout)?,
        retries: (h.retries > 0).then_some(h.retries as u32),
        start_period: duration(name, "healthcheck.start_period", &h.start_period)?,
        start_interval: duration(name, "healthcheck.start_interval", &h.start_interval)?,
        disable,
    })
}

/// What the container runs with: capabilities and devices, user and
/// identity, hosts and DNS, sysctls and ulimits, stopping, terminal, logging,
/// namespaces, platform.
fn runtime_options(
    out: &mut Service,
    name: &str,
    s: &dct::Service,
    raw: &Mapping,
) -> Result<(), LoadError> {
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
    out.ulimits = resources::ulimits(name, &s.ulimits)?;
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
    Ok(())
}

/// `scale:`, else `deploy.replicas`, else 1.
fn replicas(name: &str, s: &dct::Service, raw: &Mapping) -> Result<u32, LoadError> {
    let replicas = match raw_int(name, "scale", raw.get("scale"))? {
        Some(n) => Some(n),
        None => s.deploy.as_ref().and_then(|d| d.replicas),
    };
    match replicas {
        None => Ok(1),
        Some(n) => u32::try_from(n)
            .map_err(|_| LoadError::service(name, format!("replicas: {n} must be 0 or more"))),
    }
}
