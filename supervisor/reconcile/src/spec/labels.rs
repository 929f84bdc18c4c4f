//! The labels of a container: compose's (so `docker compose -p NAME ps`
//! shows it) and Turtle's own.

use std::collections::HashMap;

use turtle_compose::{Condition, Project, Service};

use crate::names;

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
        (names::PROJECT, project.name.to_string()),
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
