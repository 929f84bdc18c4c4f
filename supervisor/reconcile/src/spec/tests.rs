//! The spec of a container, field by field, from hand-built services.

use std::path::PathBuf;

use indexmap::IndexMap;
use turtle_compose::{
    ByteSize, Dependency, Duration, FileObject, FileRef, Healthcheck, Ipam, IpamPool, Logging,
    Mount, Port, Resources, ServiceNetwork, Ulimit,
};

use bollard_stubs::models::{
    DeviceMapping, HostConfig, MountType, PortBinding, RestartPolicyNameEnum,
};
use turtle_compose::{Condition, MountKind, Network, NetworkMode, RestartPolicy, Volume};

use super::ports::expose_keys;
use super::*;

pub(super) fn project(services: Vec<(&str, Service)>) -> Project {
    let mut networks = IndexMap::new();
    for key in ["default", "back"] {
        networks.insert(
            key.to_string(),
            Network {
                name: format!("demo_{key}"),
                ..Default::default()
            },
        );
    }
    let mut volumes = IndexMap::new();
    volumes.insert(
        "data".to_string(),
        Volume {
            name: "demo_data".to_string(),
            ..Default::default()
        },
    );
    Project {
        name: "demo".parse().unwrap(),
        working_dir: PathBuf::from("/srv/demo"),
        files: vec![
            PathBuf::from("/srv/demo/compose.yaml"),
            PathBuf::from("/srv/demo/compose.override.yaml"),
        ],
        services: services
            .into_iter()
            .map(|(n, s)| (n.parse().unwrap(), s))
            .collect(),
        networks,
        volumes,
        secrets: IndexMap::from([(
            "token".to_string(),
            FileObject {
                file: Some(PathBuf::from("/srv/demo/token.txt")),
                ..Default::default()
            },
        )]),
        configs: IndexMap::from([(
            "app".to_string(),
            FileObject {
                file: Some(PathBuf::from("/srv/demo/app.conf")),
                ..Default::default()
            },
        )]),
    }
}

pub(super) fn svc() -> Service {
    Service {
        image: Some("web:1".to_string()),
        networks: IndexMap::from([("default".to_string(), ServiceNetwork::default())]),
        replicas: 1,
        ..Default::default()
    }
}

pub(super) fn spec_of(s: Service) -> ContainerSpec {
    let p = project(vec![("web", s.clone())]);
    container_spec(&p, "web", &s, 2, "abc123", None).unwrap()
}

pub(super) fn hc(spec: &ContainerSpec) -> &HostConfig {
    spec.body.host_config.as_ref().unwrap()
}

#[test]
fn name_image_command_env() {
    let mut s = svc();
    s.command = Some(vec!["httpd".into(), "-f".into()]);
    s.entrypoint = Some(vec!["/bin/sh".into(), "-c".into()]);
    s.environment = IndexMap::from([("A".into(), "1".into()), ("B".into(), "x=y".into())]);
    let spec = spec_of(s.clone());
    assert_eq!(spec.name, "demo-web-2");
    assert_eq!(spec.body.image.as_deref(), Some("web:1"));
    assert_eq!(spec.body.cmd, s.command);
    assert_eq!(spec.body.entrypoint, s.entrypoint);
    assert_eq!(
        spec.body.env,
        Some(vec!["A=1".to_string(), "B=x=y".to_string()])
    );

    s.container_name = Some("custom".into());
    let p = project(vec![("web", s.clone())]);
    let spec = container_spec(&p, "web", &s, 1, "h", Some("sha256:feed")).unwrap();
    assert_eq!(spec.name, "custom");
    assert_eq!(spec.body.image.as_deref(), Some("sha256:feed"));

    s.image = None;
    let err = container_spec(&p, "web", &s, 1, "h", None).unwrap_err();
    assert!(matches!(err, SpecError::NoImage { .. }));
}

#[test]
fn labels() {
    let mut s = svc();
    s.labels = IndexMap::from([
        ("mine".into(), "yes".into()),
        (names::PROJECT.into(), "spoofed".into()),
    ]);
    s.depends_on = IndexMap::from([
        (
            "db".into(),
            Dependency {
                condition: Condition::ServiceHealthy,
                restart: true,
                required: true,
            },
        ),
        (
            "cache".into(),
            Dependency {
                condition: Condition::ServiceStarted,
                restart: false,
                required: true,
            },
        ),
    ]);
    let spec = spec_of(s);
    let l = spec.body.labels.unwrap();
    assert_eq!(l["mine"], "yes");
    assert_eq!(l[names::PROJECT], "demo");
    assert_eq!(l[names::SERVICE], "web");
    assert_eq!(l[names::NUMBER], "2");
    assert_eq!(l[names::ONEOFF], "False");
    assert_eq!(l[names::COMPOSE_HASH], "abc123");
    assert_eq!(l[names::CONFIG_HASH], "abc123");
    assert_eq!(l[names::COMPOSE_VERSION], names::COMPOSE_COMPAT_VERSION);
    assert_eq!(l[names::MANAGED], "true");
    assert_eq!(l["com.docker.compose.project.working_dir"], "/srv/demo");
    assert_eq!(
        l["com.docker.compose.project.config_files"],
        "/srv/demo/compose.yaml,/srv/demo/compose.override.yaml"
    );
    assert_eq!(
        l[names::COMPOSE_DEPENDS_ON],
        "db:service_healthy:true,cache:service_started:false"
    );
}

#[test]
fn ports_and_expose() {
    let mut s = svc();
    s.ports = vec![
        Port {
            target: 80,
            published: Some("8080".into()),
            host_ip: Some("127.0.0.1".into()),
            protocol: "tcp".into(),
            ..Default::default()
        },
        Port {
            target: 80,
            published: Some("9090".into()),
            host_ip: None,
            protocol: "tcp".into(),
            ..Default::default()
        },
        Port {
            target: 53,
            published: None,
            host_ip: None,
            protocol: "udp".into(),
            ..Default::default()
        },
        Port {
            target: 3000,
            published: Some("8000-8001".into()),
            host_ip: None,
            protocol: "tcp".into(),
            ..Default::default()
        },
    ];
    s.expose = vec!["9000".into(), "7000-7001/udp".into(), "80".into()];
    let spec = spec_of(s);
    assert_eq!(
        spec.body.exposed_ports.clone().unwrap(),
        [
            "80/tcp", "53/udp", "3000/tcp", "9000/tcp", "7000/udp", "7001/udp"
        ]
    );
    let b = hc(&spec).port_bindings.clone().unwrap();
    assert_eq!(
        b["80/tcp"].clone().unwrap(),
        vec![
            PortBinding {
                host_ip: Some("127.0.0.1".into()),
                host_port: Some("8080".into())
            },
            PortBinding {
                host_ip: None,
                host_port: Some("9090".into())
            }
        ]
    );
    assert_eq!(
        b["53/udp"].clone().unwrap()[0].host_port.as_deref(),
        Some("")
    );
    assert_eq!(
        b["3000/tcp"].clone().unwrap()[0].host_port.as_deref(),
        Some("8000-8001")
    );
    assert!(expose_keys("x").is_err());
    assert!(expose_keys("9-1").is_err());
}

#[test]
fn mounts_tmpfs_secrets_configs() {
    let mut s = svc();
    s.volumes = vec![
        Mount {
            kind: MountKind::Volume,
            source: Some("data".into()),
            target: "/data".into(),
            read_only: true,
            tmpfs_size: None,
            ..Default::default()
        },
        Mount {
            kind: MountKind::Volume,
            source: None,
            target: "/anon".into(),
            read_only: false,
            tmpfs_size: None,
            ..Default::default()
        },
        Mount {
            kind: MountKind::Bind,
            source: Some("/srv/demo/html".into()),
            target: "/var/www".into(),
            read_only: false,
            tmpfs_size: None,
            ..Default::default()
        },
        Mount {
            kind: MountKind::Tmpfs,
            source: None,
            target: "/cache".into(),
            read_only: false,
            tmpfs_size: Some(ByteSize(64 << 20)),
            ..Default::default()
        },
    ];
    s.tmpfs = vec!["/run".into(), "/tmp:size=1m,mode=1777".into()];
    s.secrets = vec![FileRef {
        source: "token".into(),
        target: "/run/secrets/token".into(),
        // A mode would copy the file instead (see spec/files.rs).
        mode: None,
        ..Default::default()
    }];
    s.configs = vec![FileRef {
        source: "app".into(),
        target: "/app.conf".into(),
        mode: None,
        ..Default::default()
    }];
    let spec = spec_of(s.clone());
    let m = hc(&spec).mounts.clone().unwrap();
    assert_eq!(m.len(), 6);
    assert_eq!(m[0].typ, Some(MountType::VOLUME));
    assert_eq!(m[0].source.as_deref(), Some("demo_data"));
    assert_eq!(m[0].target.as_deref(), Some("/data"));
    assert_eq!(m[0].read_only, Some(true));
    assert_eq!(m[1].typ, Some(MountType::VOLUME));
    assert_eq!(m[1].source, None);
    assert_eq!(m[2].typ, Some(MountType::BIND));
    assert_eq!(m[2].source.as_deref(), Some("/srv/demo/html"));
    assert_eq!(m[3].typ, Some(MountType::TMPFS));
    assert_eq!(
        m[3].tmpfs_options.as_ref().unwrap().size_bytes,
        Some(64 << 20)
    );
    assert_eq!(m[4].source.as_deref(), Some("/srv/demo/token.txt"));
    assert_eq!(m[4].target.as_deref(), Some("/run/secrets/token"));
    assert_eq!(m[4].read_only, Some(true));
    assert_eq!(m[5].source.as_deref(), Some("/srv/demo/app.conf"));
    assert_eq!(m[5].typ, Some(MountType::BIND));
    let t = hc(&spec).tmpfs.clone().unwrap();
    assert_eq!(t["/run"], "");
    assert_eq!(t["/tmp"], "size=1m,mode=1777");

    let mut bad = s.clone();
    bad.volumes[0].source = Some("nope".into());
    let p = project(vec![("web", bad.clone())]);
    assert!(matches!(
        container_spec(&p, "web", &bad, 1, "h", None),
        Err(SpecError::UnknownVolume { .. })
    ));
    let mut bad = s;
    bad.secrets[0].source = "nope".into();
    assert!(matches!(
        container_spec(&p, "web", &bad, 1, "h", None),
        Err(SpecError::UnknownSecret { .. })
    ));
}

#[test]
fn networks_first_in_body_rest_extra() {
    let mut s = svc();
    s.networks = IndexMap::from([
        (
            "back".to_string(),
            ServiceNetwork {
                aliases: vec!["api".into(), "web".into()],
                ipv4_address: Some("172.30.0.5".into()),
                ipv6_address: None,
                ..Default::default()
            },
        ),
        ("default".to_string(), ServiceNetwork::default()),
    ]);
    let spec = spec_of(s.clone());
    assert_eq!(hc(&spec).network_mode.as_deref(), Some("demo_back"));
    let eps = spec
        .body
        .networking_config
        .clone()
        .unwrap()
        .endpoints_config
        .unwrap();
    assert_eq!(eps.len(), 1);
    let ep = &eps["demo_back"];
    assert_eq!(ep.aliases.clone().unwrap(), ["web", "api"]);
    assert_eq!(
        ep.ipam_config.as_ref().unwrap().ipv4_address.as_deref(),
        Some("172.30.0.5")
    );
    assert_eq!(spec.extra_networks.len(), 1);
    assert_eq!(spec.extra_networks[0].0, "demo_default");
    assert_eq!(spec.extra_networks[0].1.aliases.clone().unwrap(), ["web"]);
    assert!(spec.extra_networks[0].1.ipam_config.is_none());

    s.networks.insert("ghost".into(), ServiceNetwork::default());
    let p = project(vec![("web", s.clone())]);
    assert!(matches!(
        container_spec(&p, "web", &s, 1, "h", None),
        Err(SpecError::UnknownNetwork { .. })
    ));
}

#[test]
fn network_modes() {
    let db = Service {
        container_name: Some("the-db".into()),
        ..svc()
    };
    for (mode, want) in [
        (NetworkMode::Host, "host"),
        (NetworkMode::None, "none"),
        (NetworkMode::Bridge, "bridge"),
        (NetworkMode::Service("vpn".into()), "container:demo-vpn-1"),
        (NetworkMode::Service("db".into()), "container:the-db"),
        (NetworkMode::Container("abc".into()), "container:abc"),
    ] {
        let s = Service {
            network_mode: Some(mode),
            networks: IndexMap::new(),
            ..svc()
        };
        let p = project(vec![("web", s.clone()), ("db", db.clone()), ("vpn", svc())]);
        let spec = container_spec(&p, "web", &s, 1, "h", None).unwrap();
        assert_eq!(hc(&spec).network_mode.as_deref(), Some(want));
        assert!(spec.body.networking_config.is_none());
        assert!(spec.extra_networks.is_empty());
    }
}

#[test]
fn healthcheck_and_restart() {
    let mut s = svc();
    s.healthcheck = Some(Healthcheck {
        test: vec![
            "CMD-SHELL".into(),
            "wget -q -O /dev/null http://127.0.0.1/".into(),
        ],
        interval: Some(Duration::from_secs(5)),
        timeout: Some(Duration(1500)),
        retries: Some(3),
        start_period: Some(Duration::from_secs(10)),
        start_interval: Some(Duration::from_secs(1)),
        disable: false,
    });
    s.restart = RestartPolicy::OnFailure(4);
    let spec = spec_of(s.clone());
    let h = spec.body.healthcheck.clone().unwrap();
    assert_eq!(h.test.unwrap()[0], "CMD-SHELL");
    assert_eq!(h.interval, Some(5_000_000_000));
    assert_eq!(h.timeout, Some(1_500_000_000));
    assert_eq!(h.retries, Some(3));
    assert_eq!(h.start_period, Some(10_000_000_000));
    assert_eq!(h.start_interval, Some(1_000_000_000));
    let r = hc(&spec).restart_policy.clone().unwrap();
    assert_eq!(r.name, Some(RestartPolicyNameEnum::ON_FAILURE));
    assert_eq!(r.maximum_retry_count, Some(4));

    s.healthcheck.as_mut().unwrap().disable = true;
    s.restart = RestartPolicy::UnlessStopped;
    let spec = spec_of(s.clone());
    assert_eq!(
        spec.body.healthcheck.clone().unwrap().test,
        Some(vec!["NONE".to_string()])
    );
    assert_eq!(
        hc(&spec).restart_policy.clone().unwrap().name,
        Some(RestartPolicyNameEnum::UNLESS_STOPPED)
    );

    s.healthcheck = None;
    s.restart = RestartPolicy::No;
    let spec = spec_of(s);
    assert!(spec.body.healthcheck.is_none());
    assert_eq!(
        hc(&spec).restart_policy.clone().unwrap().name,
        Some(RestartPolicyNameEnum::NO)
    );
}

#[test]
fn resources_caps_devices() {
    let mut s = svc();
    s.resources = Resources {
        memory_limit: Some(ByteSize(512 << 20)),
        memory_reservation: Some(ByteSize(256 << 20)),
        memswap_limit: Some(ByteSize(1 << 30)),
        cpus: Some("1.5".into()),
        cpu_shares: Some(512),
        cpuset: Some("0-1".into()),
        pids_limit: Some(100),
        ..Default::default()
    };
    s.cap_add = vec!["NET_ADMIN".into()];
    s.cap_drop = vec!["ALL".into()];
    s.devices = vec![
        "/dev/fuse".into(),
        "/dev/sda:/dev/xvda:r".into(),
        "/dev/tun:rw".into(),
        "/dev/a:/dev/b".into(),
    ];
    s.privileged = true;
    let spec = spec_of(s.clone());
    let h = hc(&spec);
    assert_eq!(h.memory, Some(512 << 20));
    assert_eq!(h.memory_reservation, Some(256 << 20));
    assert_eq!(h.memory_swap, Some(1 << 30));
    assert_eq!(h.nano_cpus, Some(1_500_000_000));
    assert_eq!(h.cpu_shares, Some(512));
    assert_eq!(h.cpuset_cpus.as_deref(), Some("0-1"));
    assert_eq!(h.pids_limit, Some(100));
    assert_eq!(h.cap_add.clone().unwrap(), ["NET_ADMIN"]);
    assert_eq!(h.cap_drop.clone().unwrap(), ["ALL"]);
    assert_eq!(h.privileged, Some(true));
    let d = h.devices.clone().unwrap();
    let triple = |m: &DeviceMapping| {
        (
            m.path_on_host.clone().unwrap(),
            m.path_in_container.clone().unwrap(),
            m.cgroup_permissions.clone().unwrap(),
        )
    };
    assert_eq!(
        triple(&d[0]),
        ("/dev/fuse".into(), "/dev/fuse".into(), "rwm".into())
    );
    assert_eq!(
        triple(&d[1]),
        ("/dev/sda".into(), "/dev/xvda".into(), "r".into())
    );
    assert_eq!(
        triple(&d[2]),
        ("/dev/tun".into(), "/dev/tun".into(), "rw".into())
    );
    assert_eq!(
        triple(&d[3]),
        ("/dev/a".into(), "/dev/b".into(), "rwm".into())
    );

    assert_eq!(nano_cpus("0.5"), Ok(500_000_000));
    assert_eq!(nano_cpus("2"), Ok(2_000_000_000));
    assert_eq!(nano_cpus(".25"), Ok(250_000_000));
    assert_eq!(nano_cpus("0.000000001"), Ok(1));
    assert!(nano_cpus("1.2.3").is_err());
    assert!(nano_cpus("-1").is_err());
    assert!(nano_cpus("").is_err());

    s.resources.cpus = Some("lots".into());
    let p = project(vec![("web", s.clone())]);
    assert!(matches!(
        container_spec(&p, "web", &s, 1, "h", None),
        Err(SpecError::Invalid { .. })
    ));
    s.resources.cpus = None;
    s.devices = vec!["a:b:c:d".into()];
    assert!(container_spec(&p, "web", &s, 1, "h", None).is_err());
}

#[test]
fn process_and_host_settings() {
    let mut s = svc();
    s.user = Some("1000:1000".into());
    s.working_dir = Some("/app".into());
    s.hostname = Some("web".into());
    s.domainname = Some("example.internal".into());
    s.extra_hosts = vec!["db:10.0.0.2".into()];
    s.dns = vec!["10.0.0.53".into()];
    s.dns_search = vec!["internal".into()];
    s.sysctls = IndexMap::from([("net.core.somaxconn".into(), "1024".into())]);
    s.ulimits = IndexMap::from([(
        "nofile".into(),
        Ulimit {
            soft: 1024,
            hard: 2048,
        },
    )]);
    s.stop_signal = Some("SIGINT".into());
    s.stop_grace_period = Some(Duration(1500));
    s.init = true;
    s.read_only = true;
    s.tty = true;
    s.stdin_open = true;
    s.shm_size = Some(ByteSize(64 << 20));
    s.logging = Some(Logging {
        driver: Some("json-file".into()),
        options: IndexMap::from([("max-size".into(), "10m".into())]),
    });
    s.security_opt = vec!["no-new-privileges:true".into()];
    s.pid = Some("host".into());
    s.ipc = Some("shareable".into());
    s.platform = Some("linux/amd64".into());
    let spec = spec_of(s);
    let b = &spec.body;
    assert_eq!(b.user.as_deref(), Some("1000:1000"));
    assert_eq!(b.working_dir.as_deref(), Some("/app"));
    assert_eq!(b.hostname.as_deref(), Some("web"));
    assert_eq!(b.domainname.as_deref(), Some("example.internal"));
    assert_eq!(b.stop_signal.as_deref(), Some("SIGINT"));
    assert_eq!(b.stop_timeout, Some(2));
    assert_eq!(b.tty, Some(true));
    assert_eq!(b.open_stdin, Some(true));
    let h = hc(&spec);
    assert_eq!(h.extra_hosts.clone().unwrap(), ["db:10.0.0.2"]);
    assert_eq!(h.dns.clone().unwrap(), ["10.0.0.53"]);
    assert_eq!(h.dns_search.clone().unwrap(), ["internal"]);
    assert_eq!(h.sysctls.clone().unwrap()["net.core.somaxconn"], "1024");
    let u = &h.ulimits.clone().unwrap()[0];
    assert_eq!(
        (u.name.as_deref(), u.soft, u.hard),
        (Some("nofile"), Some(1024), Some(2048))
    );
    assert_eq!(h.init, Some(true));
    assert_eq!(h.readonly_rootfs, Some(true));
    assert_eq!(h.shm_size, Some(64 << 20));
    let l = h.log_config.clone().unwrap();
    assert_eq!(l.typ.as_deref(), Some("json-file"));
    assert_eq!(l.config.unwrap()["max-size"], "10m");
    assert_eq!(h.security_opt.clone().unwrap(), ["no-new-privileges:true"]);
    assert_eq!(h.pid_mode.as_deref(), Some("host"));
    assert_eq!(h.ipc_mode.as_deref(), Some("shareable"));

    // Defaults stay unset, so the engine's defaults apply.
    let spec = spec_of(svc());
    let h = hc(&spec);
    assert_eq!(h.init, None);
    assert_eq!(h.privileged, None);
    assert_eq!(h.readonly_rootfs, None);
    assert_eq!(spec.body.stop_timeout, None);
    assert_eq!(spec.body.exposed_ports, None);
    assert_eq!(h.mounts, None);
}

#[test]
fn network_and_volume_requests() {
    let p = project(vec![]);
    let net = Network {
        name: "demo_back".into(),
        driver: Some("bridge".into()),
        driver_opts: IndexMap::from([("com.docker.network.bridge.name".into(), "br-demo".into())]),
        internal: true,
        external: false,
        enable_ipv6: false,
        ipam: Some(Ipam {
            driver: Some("default".into()),
            config: vec![IpamPool {
                subnet: Some("172.30.0.0/24".into()),
                gateway: Some("172.30.0.1".into()),
                ip_range: None,
                ..Default::default()
            }],
            ..Default::default()
        }),
        labels: IndexMap::from([("team".into(), "a".into())]),
        ..Default::default()
    };
    let r = network_request(&p, "back", &net);
    assert_eq!(r.name, "demo_back");
    assert_eq!(r.driver.as_deref(), Some("bridge"));
    assert_eq!(r.internal, Some(true));
    assert_eq!(r.enable_ipv6, None);
    assert_eq!(
        r.options.clone().unwrap()["com.docker.network.bridge.name"],
        "br-demo"
    );
    let ipam = r.ipam.clone().unwrap();
    assert_eq!(ipam.driver.as_deref(), Some("default"));
    let pool = &ipam.config.unwrap()[0];
    assert_eq!(pool.subnet.as_deref(), Some("172.30.0.0/24"));
    assert_eq!(pool.gateway.as_deref(), Some("172.30.0.1"));
    let l = r.labels.unwrap();
    assert_eq!(l["team"], "a");
    assert_eq!(l[names::PROJECT], "demo");
    assert_eq!(l[names::COMPOSE_NETWORK], "back");
    assert_eq!(l[names::MANAGED], "true");

    let vol = Volume {
        name: "demo_data".into(),
        driver: Some("local".into()),
        driver_opts: IndexMap::from([("type".into(), "tmpfs".into())]),
        external: false,
        labels: IndexMap::from([("backup".into(), "yes".into())]),
    };
    let r = volume_request(&p, "data", &vol);
    assert_eq!(r.name.as_deref(), Some("demo_data"));
    assert_eq!(r.driver.as_deref(), Some("local"));
    assert_eq!(r.driver_opts.clone().unwrap()["type"], "tmpfs");
    let l = r.labels.unwrap();
    assert_eq!(l["backup"], "yes");
    assert_eq!(l[names::PROJECT], "demo");
    assert_eq!(l[names::COMPOSE_VOLUME], "data");
    assert_eq!(l[names::MANAGED], "true");
}

#[test]
fn content_backed_and_owned_objects_are_copied_not_bound() {
    use crate::spec::{CopiedSource, copied_files};
    let mut s = Service {
        image: Some("app".into()),
        ..Default::default()
    };
    s.secrets = vec![
        // file:, nothing asked: bound.
        FileRef {
            source: "token".into(),
            target: "/run/secrets/token".into(),
            ..Default::default()
        },
        // content:, owner and mode: copied.
        FileRef {
            source: "inline".into(),
            target: "/run/secrets/inline".into(),
            mode: Some(0o400),
            uid: Some("1000".into()),
            gid: Some("1001".into()),
        },
    ];
    // file: with a mode: copied (compose would ignore the mode).
    s.configs = vec![FileRef {
        source: "app".into(),
        target: "/app.conf".into(),
        mode: Some(0o440),
        ..Default::default()
    }];
    let mut p = project(vec![("web", s.clone())]);
    p.secrets.insert(
        "inline".into(),
        FileObject {
            content: Some("s3cret".into()),
            ..Default::default()
        },
    );
    let spec = container_spec(&p, "web", &s, 1, "h", None).unwrap();
    let targets: Vec<_> = hc(&spec)
        .mounts
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|m| m.target)
        .collect();
    assert_eq!(targets, ["/run/secrets/token"]);
    let copied = copied_files(&p, "web", &s).unwrap();
    assert_eq!(copied.len(), 2);
    assert_eq!(copied[0].target, "/run/secrets/inline");
    assert_eq!(copied[0].source, CopiedSource::Content("s3cret"));
    assert_eq!(
        (copied[0].mode, copied[0].uid, copied[0].gid),
        (0o400, 1000, 1001)
    );
    assert_eq!(
        copied[1].source,
        CopiedSource::File(std::path::Path::new("/srv/demo/app.conf"))
    );
    assert_eq!((copied[1].mode, copied[1].uid), (0o440, 0));

    // A name where an id is needed, and a read-only service, are refused.
    let mut named = s.clone();
    named.secrets[1].uid = Some("postgres".into());
    let e = copied_files(&p, "web", &named).unwrap_err().to_string();
    assert!(e.contains("\"postgres\" is not a number"), "{e}");
    let mut ro = s.clone();
    ro.read_only = true;
    let e = copied_files(&p, "web", &ro).unwrap_err().to_string();
    assert!(e.contains("read_only"), "{e}");
    // Read-only: a file: object with a mode stays bound.
    ro.secrets.truncate(1);
    assert!(copied_files(&p, "web", &ro).unwrap().is_empty());
    let spec = container_spec(&p, "web", &ro, 1, "h", None).unwrap();
    assert_eq!(hc(&spec).mounts.as_ref().unwrap().len(), 2);
}

#[test]
fn an_external_secret_is_refused_where_a_container_uses_it() {
    let mut p = project(vec![]);
    p.secrets.insert(
        "vault".into(),
        FileObject {
            external: true,
            ..Default::default()
        },
    );
    let mut s = svc();
    s.secrets = vec![FileRef {
        source: "vault".into(),
        target: "/run/secrets/vault".into(),
        // With a mode it would be copied: refused all the same.
        mode: Some(0o400),
        ..Default::default()
    }];
    let e = container_spec(&p, "web", &s, 1, "h", None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("secret \"vault\" is external") && e.contains("file:"),
        "{e}"
    );
    assert!(copied_files(&p, "web", &s).is_err());
}
