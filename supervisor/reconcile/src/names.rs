//! Names and labels of the engine objects Turtle owns.
//!
//! Containers are `<project>-<service>-<n>`, networks and volumes
//! `<project>_<key>`, as docker compose v2 names them, and they carry compose's
//! `com.docker.compose.*` labels so `docker compose -p NAME ps` and
//! `docker ps --filter label=...` show them. Turtle's own `io.turtle.*` labels
//! carry the config hash and ownership.

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const COMPOSE_HASH: &str = "com.docker.compose.config-hash";
pub const COMPOSE_VERSION: &str = "com.docker.compose.version";
pub const COMPOSE_NETWORK: &str = "com.docker.compose.network";
pub const COMPOSE_VOLUME: &str = "com.docker.compose.volume";
pub const COMPOSE_DEPENDS_ON: &str = "com.docker.compose.depends_on";

/// Marks every object Turtle created (value `true`).
pub const MANAGED: &str = "io.turtle.managed";
/// Config hash of the service the container was created from.
pub const CONFIG_HASH: &str = "io.turtle.config-hash";
/// Set by the user on a service: `false` turns off restarting it when unhealthy.
pub const AUTOHEAL: &str = "io.turtle.autoheal";

/// The compose version we tell `docker compose` we are compatible with.
pub const COMPOSE_COMPAT_VERSION: &str = "2.20.0";

/// `<project>-<service>-<n>`.
pub fn container_name(project: &str, service: &str, number: u32) -> String {
    format!("{project}-{service}-{number}")
}

/// Label filter selecting everything of one project that Turtle manages.
pub fn project_filter(project: &str) -> Vec<String> {
    vec![format!("{PROJECT}={project}"), format!("{MANAGED}=true")]
}

/// Label filter selecting the containers of one service of a project.
pub fn service_filter(project: &str, service: &str) -> Vec<String> {
    let mut f = project_filter(project);
    f.push(format!("{SERVICE}={service}"));
    f
}

/// Label filter selecting everything Turtle manages.
pub fn managed_filter() -> Vec<String> {
    vec![format!("{MANAGED}=true")]
}
