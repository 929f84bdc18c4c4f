//! Fixtures shared by the unit tests.

use turtle_compose::{Network, Project, Service};

/// A project named `name` with `services` and compose's implicit `default`
/// network (engine name `<name>_default`).
pub fn project(name: &str, services: Vec<(&str, Service)>) -> Project {
    Project {
        name: name.into(),
        working_dir: "/tmp".into(),
        files: vec![],
        services: services
            .into_iter()
            .map(|(n, s)| (n.to_string(), s))
            .collect(),
        networks: [(
            "default".to_string(),
            Network {
                name: format!("{name}_default"),
                ..Default::default()
            },
        )]
        .into(),
        volumes: Default::default(),
        secrets: Default::default(),
        configs: Default::default(),
    }
}
