//! References between services: a service's `depends_on:` (short or long
//! form), then, across the project once every service is read
//! ([`check`]): dependencies on undefined or profile-disabled services
//! (optional ones are dropped with a warning), `network_mode:
//! service:NAME` naming no enabled service, and dependency cycles.

use std::collections::BTreeSet;

use indexmap::IndexMap;
use serde_norway::{Mapping, Value};

use super::values::{get, string, strings};
use crate::context::Ctx;
use crate::error::LoadError;
use crate::model::{Condition, Dependency, NetworkMode, Service};
use crate::name::ServiceName;

/// A service's `depends_on:`: a list of names (started, required), or a
/// mapping of names to `{condition, restart, required}`; then the
/// dependencies other keys imply, as compose adds them: `links`,
/// `volumes_from: SERVICE`, and `network_mode`, `ipc`, `pid`, `uts` or
/// `cgroup` set to `service:NAME`.
pub(super) fn depends_on(
    service: &str,
    svc: &Mapping,
) -> Result<IndexMap<String, Dependency>, LoadError> {
    let started = Dependency {
        condition: Condition::ServiceStarted,
        restart: false,
        required: true,
    };
    let mut out = IndexMap::new();
    match get(svc, "depends_on") {
        Some(Value::Sequence(_)) => {
            for d in strings(svc, "depends_on") {
                out.insert(d, started.clone());
            }
        }
        Some(Value::Mapping(m)) => {
            for (k, c) in m {
                let k = crate::keys::key_string(k);
                let empty = Mapping::new();
                let c = c.as_mapping().unwrap_or(&empty);
                let condition = match string(c, "condition").as_deref() {
                    None | Some("service_started") => Condition::ServiceStarted,
                    Some("service_healthy") => Condition::ServiceHealthy,
                    Some("service_completed_successfully") => {
                        Condition::ServiceCompletedSuccessfully
                    }
                    Some(other) => {
                        return Err(LoadError::service(
                            service,
                            format!(
                                "depends_on.{k}.condition: unknown condition {other:?}: expected service_started, service_healthy or service_completed_successfully"
                            ),
                        ));
                    }
                };
                out.insert(
                    k,
                    Dependency {
                        condition,
                        restart: super::values::boolean(c, "restart"),
                        required: super::values::opt_bool(c, "required").unwrap_or(true),
                    },
                );
            }
        }
        _ => {}
    }
    // As compose-go adds them: links and shared namespaces restart with
    // the service they name, volumes_from does not.
    let named = |v: String| v.split(':').next().unwrap_or_default().to_string();
    let restarting = strings(svc, "links").into_iter().map(named).chain(
        ["network_mode", "ipc", "pid", "uts", "cgroup"]
            .iter()
            .filter_map(|k| string(svc, k))
            .filter_map(|v| v.strip_prefix("service:").map(str::to_string)),
    );
    let mounting = strings(svc, "volumes_from")
        .into_iter()
        .filter(|v| !v.starts_with("container:"))
        .map(named);
    let implied = restarting
        .map(|d| (d, true))
        .chain(mounting.map(|d| (d, false)));
    for (dep, restart) in implied {
        if dep != service {
            out.entry(dep).or_insert_with(|| Dependency {
                restart,
                ..started.clone()
            });
        }
    }
    Ok(out)
}

/// Checks the references between the enabled `services` (`disabled`: the
/// services their profiles turned off), dropping optional dependencies on
/// services that are not enabled.
pub(super) fn check(
    ctx: &mut Ctx,
    services: &mut IndexMap<ServiceName, Service>,
    disabled: &BTreeSet<ServiceName>,
) -> Result<(), LoadError> {
    let names: BTreeSet<String> = services.keys().map(|k| k.to_string()).collect();
    for (sname, s) in services.iter_mut() {
        if let Some(NetworkMode::Service(other)) = &s.network_mode
            && !names.contains(other)
        {
            return Err(LoadError::service(
                sname,
                format!("network_mode: service:{other} names no enabled service"),
            ));
        }
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
                if disabled.contains(dep.as_str()) {
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
    }
    check_cycles(services)
}

/// Fails on a `depends_on` cycle, naming it.
fn check_cycles(services: &IndexMap<ServiceName, Service>) -> Result<(), LoadError> {
    fn visit(
        name: &str,
        services: &IndexMap<ServiceName, Service>,
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
