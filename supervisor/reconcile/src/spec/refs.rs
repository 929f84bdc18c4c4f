//! What a container takes from other containers by name: legacy `links`,
//! `external_links` and `volumes_from`.
//!
//! A service is named by its first container, as docker compose v2 does
//! (`container_name:` when set, else `<project>-<service>-1`): the engine
//! takes names, so the spec stays pure (no look-up of IDs). Compose also
//! resolves `volumes_from: [svc]` to that one container, and links one
//! alias per container of the linked service; with `replicas` > 1 only the
//! first is linked here (an alias names one container).

use turtle_compose::{Project, Service};

use super::SpecError;
use crate::names;

/// The container name of `service`'s first container.
pub(super) fn first_container(project: &Project, service: &str) -> String {
    project
        .services
        .get(service)
        .and_then(|s| s.container_name.clone())
        .unwrap_or_else(|| names::container_name(&project.name, service, 1))
}

/// `HostConfig.Links` (and every endpoint's `Links`): `service[:alias]` as
/// `<its first container>:<alias>`, the alias defaulting to the service
/// name; `external_links` `container[:alias]` as `container:<alias>`.
pub(super) fn links(
    project: &Project,
    service_name: &str,
    service: &Service,
) -> Result<Vec<String>, SpecError> {
    let mut links = Vec::new();
    for link in &service.links {
        let (other, alias) = link.split_once(':').unwrap_or((link, link));
        if other.is_empty() || alias.is_empty() {
            return Err(invalid(
                service_name,
                format!("invalid link {link:?}: expected SERVICE[:ALIAS]"),
            ));
        }
        if !project.services.contains_key(other) {
            return Err(invalid(
                service_name,
                format!(
                    "links: service {other:?} is not in the project (declare it, or enable its profile)"
                ),
            ));
        }
        links.push(format!("{}:{alias}", first_container(project, other)));
    }
    for link in &service.external_links {
        let (container, alias) = link.split_once(':').unwrap_or((link, link));
        if container.is_empty() || alias.is_empty() {
            return Err(invalid(
                service_name,
                format!("invalid external link {link:?}: expected CONTAINER[:ALIAS]"),
            ));
        }
        links.push(format!("{container}:{alias}"));
    }
    Ok(links)
}

/// `HostConfig.VolumesFrom`: `service[:ro|rw]` as `<its first
/// container>[:mode]`, `container:NAME[:ro|rw]` as `NAME[:mode]`. (Compose
/// drops the mode when it resolves the name; the engine takes it, so it is
/// kept.)
pub(super) fn volumes_from(
    project: &Project,
    service_name: &str,
    service: &Service,
) -> Result<Vec<String>, SpecError> {
    service
        .volumes_from
        .iter()
        .map(|entry| {
            let bad = || {
                invalid(
                    service_name,
                    format!(
                        "invalid volumes_from {entry:?}: expected SERVICE[:ro|rw] or container:NAME[:ro|rw]"
                    ),
                )
            };
            let (container, rest) = match entry.strip_prefix("container:") {
                Some(rest) => {
                    let (name, mode) = split_mode(rest);
                    (name.to_string(), mode)
                }
                None => {
                    let (other, mode) = split_mode(entry);
                    if !other.is_empty() && !project.services.contains_key(other) {
                        return Err(invalid(
                            service_name,
                            format!(
                                "volumes_from: service {other:?} is not in the project (declare it, enable its profile, or write container:{other} for a container outside it)"
                            ),
                        ));
                    }
                    (first_container(project, other), mode)
                }
            };
            let mode = rest.map_err(|_| bad())?;
            if container.is_empty() {
                return Err(bad());
            }
            Ok(match mode {
                Some(m) => format!("{container}:{m}"),
                None => container,
            })
        })
        .collect()
}

/// `name[:ro|rw]` -> the name and the mode (an error for another suffix).
fn split_mode(s: &str) -> (&str, Result<Option<&str>, ()>) {
    match s.rsplit_once(':') {
        Some((name, m @ ("ro" | "rw"))) => (name, Ok(Some(m))),
        Some((name, _)) => (name, Err(())),
        None => (s, Ok(None)),
    }
}

fn invalid(service: &str, message: String) -> SpecError {
    SpecError::Invalid {
        service: service.to_string(),
        message,
    }
}
