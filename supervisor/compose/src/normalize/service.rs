//! One service, from its merged YAML mapping to [`Service`]. The image and
//! build, commands, healthcheck, restart policy, replicas and images' pull
//! policy are read here; the environment, ports, mounts, networks,
//! dependencies, resources, secrets/configs and the container's runtime
//! options by their own modules.
//!
//! [`service`] reads the keys in a fixed order, and the first error found is
//! the one reported: keep that order when adding a key.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde_norway::{Mapping, Value};

use super::values::{
    boolean, duration, get, int, opt_bool, size, string, string_map, strings, sub,
};
use super::{depends, env, networks, options, ports, resources, secrets, volumes};
use crate::context::Ctx;
use crate::error::LoadError;
use crate::model::*;
use crate::paths::resolve_path;
use crate::shell;

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
    s: &Mapping,
) -> Result<Service, LoadError> {
    let err = |m: String| LoadError::service(name, m);
    let mut out = Service {
        replicas: 1,
        ..Default::default()
    };

    // Image and build.
    out.build = build(ctx, name, s)?;
    out.image = match (string(s, "image"), &out.build) {
        (Some(i), _) => Some(i),
        (None, Some(_)) => Some(format!("{}-{name}", top.project)),
        (None, None) => return Err(err("needs image: or build:".into())),
    };
    out.pull_policy = string(s, "pull_policy")
        .map(|p| p.parse().map_err(err))
        .transpose()?;
    if out.pull_policy == Some(PullPolicy::Build) && out.build.is_none() {
        return Err(err("pull_policy: build needs a build: section".into()));
    }

    out.command = command(name, "command", get(s, "command"))?;
    out.entrypoint = command(name, "entrypoint", get(s, "entrypoint"))?;

    out.environment = env::environment(ctx, name, s)?;
    out.labels = env::label_files(ctx, name, s)?;
    out.labels.extend(string_map(s, "labels"));
    out.annotations = string_map(s, "annotations");

    out.ports = ports::ports(name, get(s, "ports"))?;
    out.expose = strings(s, "expose");

    out.volumes = volumes::mounts(ctx, name, s, top.volumes)?;
    out.tmpfs = volumes::tmpfs(s);
    out.volumes_from = strings(s, "volumes_from");

    (out.network_mode, out.networks) = networks::service_networks(name, s, top.networks)?;
    out.links = strings(s, "links");
    out.external_links = strings(s, "external_links");

    out.depends_on = depends::depends_on(name, s)?;

    out.healthcheck = sub(s, "healthcheck")
        .map(|h| healthcheck(name, h))
        .transpose()?;
    out.restart = restart(name, s)?;

    out.resources = resources::resources(name, s)?;
    out.ulimits = resources::ulimits(name, s)?;
    out.device_requests = resources::device_requests(name, s)?;
    options::runtime_options(&mut out, name, s)?;
    out.post_start = options::hooks(ctx, name, s, "post_start")?;
    out.pre_stop = options::hooks(ctx, name, s, "pre_stop")?;

    out.secrets = secrets::file_refs(name, "secrets", get(s, "secrets"), top.secrets)?;
    out.configs = secrets::file_refs(name, "configs", get(s, "configs"), top.configs)?;
    out.profiles = strings(s, "profiles");
    out.replicas = replicas(name, s)?;
    out.attach = opt_bool(s, "attach");
    Ok(out)
}

/// `build:`: a context, or the long form. A local context is made absolute;
/// a git context is kept as written.
fn build(ctx: &Ctx, name: &str, s: &Mapping) -> Result<Option<Build>, LoadError> {
    let context = |c: &str| {
        if c.contains("://") || c.starts_with("git@") {
            PathBuf::from(c)
        } else {
            resolve_path(&ctx.project_dir, c, &ctx.env)
        }
    };
    let b = match get(s, "build") {
        None => return Ok(None),
        Some(Value::Mapping(b)) => b,
        Some(other) => {
            let c = super::values::scalar(other).unwrap_or_default();
            return Ok(Some(Build {
                context: context(&c),
                ..Default::default()
            }));
        }
    };
    let mut args = IndexMap::new();
    env::key_values(
        ctx,
        super::values::key_values(b, "args").into_iter(),
        &mut args,
    );
    let dockerfile_inline = string(b, "dockerfile_inline");
    if dockerfile_inline.is_some() && string(b, "dockerfile").is_some() {
        return Err(LoadError::service(
            name,
            "build: dockerfile and dockerfile_inline cannot be used together",
        ));
    }
    Ok(Some(Build {
        context: context(&string(b, "context").unwrap_or_else(|| ".".into())),
        dockerfile: string(b, "dockerfile"),
        args,
        target: string(b, "target"),
        dockerfile_inline,
        cache_from: strings(b, "cache_from"),
        labels: string_map(b, "labels"),
        network: string(b, "network"),
        shm_size: size(name, "build.shm_size", string(b, "shm_size"))?,
        extra_hosts: options::extra_hosts(name, b)?,
        no_cache: boolean(b, "no_cache"),
        pull: boolean(b, "pull"),
        tags: strings(b, "tags"),
        isolation: string(b, "isolation"),
    }))
}

/// `command:`/`entrypoint:`: a string is split into words as a shell would.
pub(super) fn command(
    service: &str,
    key: &str,
    v: Option<&Value>,
) -> Result<Option<Vec<String>>, LoadError> {
    match v {
        None => Ok(None),
        Some(Value::Sequence(items)) => Ok(Some(
            items.iter().filter_map(super::values::scalar).collect(),
        )),
        Some(v) => shell::split(&super::values::scalar(v).unwrap_or_default())
            .map(Some)
            .map_err(|e| LoadError::service(service, format!("{key}: {e}"))),
    }
}

/// `healthcheck:`: a string test runs in a shell; `disable: true` or a `NONE`
/// test turns the image's healthcheck off.
fn healthcheck(name: &str, h: &Mapping) -> Result<Healthcheck, LoadError> {
    let mut test = match get(h, "test") {
        None => Vec::new(),
        Some(Value::Sequence(_)) => strings(h, "test"),
        Some(_) => vec![
            "CMD-SHELL".to_string(),
            string(h, "test").unwrap_or_default(),
        ],
    };
    let disable = boolean(h, "disable") || test.first().is_some_and(|t| t == "NONE");
    if disable {
        test = vec!["NONE".into()];
    }
    let retries = match int(h, "retries") {
        None => None,
        Some(r) => Some(u32::try_from(r).map_err(|_| {
            LoadError::service(name, format!("healthcheck.retries: {r} must be 0 or more"))
        })?),
    };
    let d = |key: &str| duration(name, &format!("healthcheck.{key}"), string(h, key));
    Ok(Healthcheck {
        test,
        interval: d("interval")?,
        timeout: d("timeout")?,
        retries: retries.filter(|r| *r > 0),
        start_period: d("start_period")?,
        start_interval: d("start_interval")?,
        disable,
    })
}

/// `restart:`, else `deploy.restart_policy` mapped to the engine's policy as
/// docker compose v2 maps it (`none` -> `no`, `on-failure` with
/// `max_attempts`, `any` -> `always`).
fn restart(name: &str, s: &Mapping) -> Result<RestartPolicy, LoadError> {
    let err = |m: String| LoadError::service(name, m);
    if let Some(r) = string(s, "restart") {
        return r.parse().map_err(err);
    }
    let Some(p) = sub(s, "deploy").and_then(|d| sub(d, "restart_policy")) else {
        return Ok(RestartPolicy::No);
    };
    let attempts = int(p, "max_attempts").unwrap_or(0);
    let attempts = u32::try_from(attempts).map_err(|_| {
        err(format!(
            "deploy.restart_policy.max_attempts: {attempts} must be 0 or more"
        ))
    })?;
    match string(p, "condition").as_deref() {
        None | Some("any") => Ok(RestartPolicy::Always),
        Some("none") => Ok(RestartPolicy::No),
        Some("on-failure") => Ok(RestartPolicy::OnFailure(attempts)),
        Some(other) => Err(err(format!(
            "deploy.restart_policy.condition: unknown condition {other:?}: expected none, on-failure or any"
        ))),
    }
}

/// `scale:`, else `deploy.replicas`, else 1. `deploy.mode: global` means one
/// container on a single engine.
fn replicas(name: &str, s: &Mapping) -> Result<u32, LoadError> {
    let deploy = sub(s, "deploy");
    let replicas = int(s, "scale").or_else(|| deploy.and_then(|d| int(d, "replicas")));
    match deploy.and_then(|d| string(d, "mode")).as_deref() {
        None | Some("replicated") => {}
        Some("global") => {
            if replicas.is_some_and(|r| r != 1) {
                return Err(LoadError::service(
                    name,
                    "deploy.mode: global runs one container per engine; remove replicas",
                ));
            }
        }
        Some(other) => {
            return Err(LoadError::service(
                name,
                format!("deploy.mode: unknown mode {other:?}: expected replicated or global"),
            ));
        }
    }
    match replicas {
        None => Ok(1),
        Some(n) => u32::try_from(n)
            .map_err(|_| LoadError::service(name, format!("replicas: {n} must be 0 or more"))),
    }
}
