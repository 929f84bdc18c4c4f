//! References between services: a service's `depends_on:` (short or long
//! form), then, across the project once every service is read
//! ([`check`]): dependencies on undefined or profile-disabled services
//! (optional ones are dropped with a warning), `network_mode:
//! service:NAME` naming no enabled service, and dependency cycles.

use std::collections::BTreeSet;

use docker_compose_types as dct;
use indexmap::IndexMap;

use crate::context::Ctx;
use crate::error::LoadError;
use crate::model::{Condition, Dependency, NetworkMode, Service};
use crate::name::ServiceName;

/// A service's `depends_on:`: a list of names (started, required), or a
/// mapping of names to `{condition, restart, required}`.
pub(super) fn depends_on(
    service: &str,
    d: &dct::DependsOnOptions,
) -> Result<IndexMap<String, Dependency>, LoadError> {
    Ok(match d {
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
                        return Err(LoadError::service(
                            service,
                            format!(
                                "depends_on.{k}.condition: unknown condition {other:?}: expected service_started, service_healthy or service_completed_successfully"
                            ),
                        ));
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
    })
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
        if let Some(NetworkMode::Service(other)) = &s.network_mode
            && !names.contains(other)
        {
            return Err(LoadError::service(
                sname,
                format!("network_mode: service:{other} names no enabled service"),
            ));
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
