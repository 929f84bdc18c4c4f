//! What the engine has now, for one project.
//!
//! Observed state is always read from the engine, never trusted from the
//! store. One observation costs one container list, one lookup per network,
//! volume and distinct image, and one inspect per container that is not
//! running (to read its exit code).

use std::collections::HashMap;

use futures_util::future::try_join_all;
use turtle_compose::Project;

use crate::names;
use turtle_engine::{ContainerSummary, Engine, Result, State};

#[derive(Debug, Clone, Default)]
pub struct Observed {
    /// Containers carrying this project's label and Turtle's.
    pub containers: Vec<ContainerSummary>,
    /// Exit codes of the containers that are not running, by container ID.
    pub exit_codes: HashMap<String, i64>,
    /// Engine names of the project's networks that exist.
    pub networks: Vec<String>,
    /// Engine names of the project's volumes that exist.
    pub volumes: Vec<String>,
    /// Image ID of each image reference the project uses (`None`: missing).
    pub images: HashMap<String, Option<String>>,
}

impl Observed {
    /// Containers of one service, sorted by container number.
    pub fn service_containers(&self, service: &str) -> Vec<&ContainerSummary> {
        let mut v: Vec<_> = self
            .containers
            .iter()
            .filter(|c| c.labels.get(names::SERVICE).map(String::as_str) == Some(service))
            .collect();
        v.sort_by_key(|c| number_of(c));
        v
    }
}

/// The container number label, 0 when absent or garbled.
pub fn number_of(c: &ContainerSummary) -> u32 {
    c.labels
        .get(names::NUMBER)
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Reads the engine's state of everything `project` owns or uses.
pub async fn observe<E: Engine>(engine: &E, project: &Project) -> Result<Observed> {
    let filter = names::project_filter(&project.name);
    let containers = engine.list_containers(&filter);
    let networks = try_join_all(
        project
            .networks
            .values()
            .map(|n| engine.find_network(&n.name)),
    );
    let volumes = try_join_all(
        project
            .volumes
            .values()
            .map(|v| engine.find_volume(&v.name)),
    );
    let mut refs: Vec<&str> = project
        .services
        .values()
        .filter_map(|s| s.image.as_deref())
        .collect();
    refs.sort_unstable();
    refs.dedup();
    let images = try_join_all(refs.iter().map(|r| engine.image_id(r)));
    let (containers, networks, volumes, images) =
        futures_util::try_join!(containers, networks, volumes, images)?;

    let stopped: Vec<&ContainerSummary> = containers
        .iter()
        .filter(|c| matches!(c.state, State::Exited | State::Dead | State::Created))
        .collect();
    let details = try_join_all(stopped.iter().map(|c| async {
        match engine.inspect_container(&c.id).await {
            Ok(d) => Ok(d.exit_code.map(|code| (c.id.clone(), code))),
            // Removed between list and inspect: nothing to read.
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }))
    .await?;

    Ok(Observed {
        exit_codes: details.into_iter().flatten().collect(),
        containers,
        networks: networks.into_iter().flatten().map(|n| n.name).collect(),
        volumes: volumes.into_iter().flatten().map(|v| v.name).collect(),
        images: refs.iter().map(|r| r.to_string()).zip(images).collect(),
    })
}
