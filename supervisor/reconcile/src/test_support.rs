//! Fixtures shared by unit tests, here and in the crates above this one
//! (feature `test-support`).

use turtle_compose::{
    Condition, Dependency, Healthcheck, Network, Project, Service, ServiceNetwork,
};

/// A project named `name` with `services` and compose's implicit `default`
/// network (engine name `<name>_default`).
pub fn project(name: &str, services: Vec<(&str, Service)>) -> Project {
    Project {
        name: name.parse().expect("a valid project name"),
        working_dir: "/tmp".into(),
        files: vec![],
        services: services
            .into_iter()
            .map(|(n, s)| (n.parse().expect("a valid service name"), s))
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

/// One replica of `image` on the `default` network.
pub fn service(image: &str) -> Service {
    Service {
        image: Some(image.into()),
        replicas: 1,
        networks: [("default".to_string(), ServiceNetwork::default())].into(),
        ..Default::default()
    }
}

/// `s` with a healthcheck (`CMD true`).
pub fn healthy(mut s: Service) -> Service {
    s.healthcheck = Some(Healthcheck {
        test: vec!["CMD".into(), "true".into()],
        ..Default::default()
    });
    s
}

/// `s` depending on `on`.
pub fn depends(mut s: Service, on: &str, condition: Condition, restart: bool) -> Service {
    s.depends_on.insert(
        on.into(),
        Dependency {
            condition,
            restart,
            required: true,
        },
    );
    s
}
