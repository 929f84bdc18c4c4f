//! The spec of the options compose-go knows beyond the basics: links,
//! volumes_from, device requests, cgroup and process settings, resources,
//! mount options, per-network endpoint options and network requests.

use std::collections::HashMap;

use bollard_stubs::models::{
    DeviceRequest as EngineDeviceRequest, HostConfigCgroupnsModeEnum, HostConfigIsolationEnum,
    MountBindOptionsPropagationEnum, MountType, ResourcesBlkioWeightDevice,
    ThrottleDevice as EngineThrottle,
};
use indexmap::IndexMap;
use turtle_compose::{
    BindOptions, Blkio, ByteSize, DeviceRequest, Ipam, IpamPool, Mount, MountKind, Network,
    NetworkMode, Port, Resources, ServiceNetwork, ThrottleDevice, VolumeOptions, WeightDevice,
};

use super::tests::{hc, project, spec_of, svc};
use super::*;

fn invalid_message(err: SpecError) -> String {
    match err {
        SpecError::Invalid { message, .. } => message,
        e => panic!("expected Invalid, got {e:?}"),
    }
}

#[test]
fn links_name_the_first_container_of_the_service() {
    let mut web = svc();
    web.links = vec!["db".into(), "cache:kv".into()];
    web.external_links = vec!["legacy".into(), "other_box:old".into()];
    let mut cache = svc();
    cache.container_name = Some("my-cache".into());
    let p = project(vec![("web", web.clone()), ("db", svc()), ("cache", cache)]);
    let spec = container_spec(&p, "web", &web, 2, "h", None).unwrap();
    let links = [
        "demo-db-1:db",
        "my-cache:kv",
        "legacy:legacy",
        "other_box:old",
    ]
    .map(String::from)
    .to_vec();
    assert_eq!(hc(&spec).links.as_ref(), Some(&links));
    // And on the endpoint, where a user-defined network makes them aliases.
    let eps = spec
        .body
        .networking_config
        .as_ref()
        .unwrap()
        .endpoints_config
        .as_ref()
        .unwrap();
    assert_eq!(eps["demo_default"].links.as_ref(), Some(&links));

    web.links = vec!["ghost".into()];
    let err = container_spec(&p, "web", &web, 1, "h", None).unwrap_err();
    assert!(invalid_message(err).contains("\"ghost\""));
    // No links: nothing sent.
    assert_eq!(hc(&spec_of(svc())).links, None);
}

#[test]
fn volumes_from_services_and_containers_keep_their_mode() {
    let mut web = svc();
    web.volumes_from = vec![
        "db".into(),
        "db:ro".into(),
        "container:backup".into(),
        "container:backup:rw".into(),
    ];
    let p = project(vec![("web", web.clone()), ("db", svc())]);
    let spec = container_spec(&p, "web", &web, 1, "h", None).unwrap();
    assert_eq!(
        hc(&spec).volumes_from,
        Some(
            ["demo-db-1", "demo-db-1:ro", "backup", "backup:rw"]
                .map(String::from)
                .to_vec()
        )
    );
    for bad in ["nope", "db:rx", "container:"] {
        web.volumes_from = vec![bad.into()];
        let err = container_spec(&p, "web", &web, 1, "h", None).unwrap_err();
        assert!(invalid_message(err).contains("volumes_from"), "{bad}");
    }
}

#[test]
fn device_requests_default_to_all_devices() {
    let mut s = svc();
    s.device_requests = vec![
        DeviceRequest {
            driver: Some("nvidia".into()),
            capabilities: vec!["gpu".into()],
            ..Default::default()
        },
        DeviceRequest {
            device_ids: vec!["0".into(), "1".into()],
            capabilities: vec!["gpu".into(), "utility".into()],
            options: IndexMap::from([("k".into(), "v".into())]),
            ..Default::default()
        },
        DeviceRequest {
            count: Some(2),
            ..Default::default()
        },
    ];
    let spec = spec_of(s);
    assert_eq!(
        hc(&spec).device_requests.clone().unwrap(),
        vec![
            EngineDeviceRequest {
                driver: Some("nvidia".into()),
                count: Some(-1),
                capabilities: Some(vec![vec!["gpu".into()]]),
                ..Default::default()
            },
            EngineDeviceRequest {
                device_ids: Some(vec!["0".into(), "1".into()]),
                capabilities: Some(vec![vec!["gpu".into(), "utility".into()]]),
                options: Some(HashMap::from([("k".into(), "v".into())])),
                ..Default::default()
            },
            EngineDeviceRequest {
                count: Some(2),
                ..Default::default()
            },
        ]
    );
}

#[test]
fn process_and_cgroup_settings() {
    let mut s = svc();
    s.runtime = Some("runsc".into());
    s.device_cgroup_rules = vec!["c 1:3 mr".into()];
    s.group_add = vec!["audio".into(), "1001".into()];
    s.dns_opt = vec!["ndots:2".into()];
    s.userns_mode = Some("host".into());
    s.uts = Some("host".into());
    s.cgroup = Some("private".into());
    s.cgroup_parent = Some("/turtle".into());
    s.isolation = Some("default".into());
    s.storage_opt = IndexMap::from([("size".into(), "1G".into())]);
    s.annotations = IndexMap::from([("com.example.a".into(), "b".into())]);
    s.oom_kill_disable = true;
    s.oom_score_adj = Some(-500);
    let spec = spec_of(s.clone());
    let h = hc(&spec);
    assert_eq!(h.runtime.as_deref(), Some("runsc"));
    assert_eq!(h.device_cgroup_rules, Some(vec!["c 1:3 mr".to_string()]));
    assert_eq!(h.group_add, Some(vec!["audio".into(), "1001".into()]));
    assert_eq!(h.dns_options, Some(vec!["ndots:2".to_string()]));
    assert_eq!(h.userns_mode.as_deref(), Some("host"));
    assert_eq!(h.uts_mode.as_deref(), Some("host"));
    assert_eq!(h.cgroupns_mode, Some(HostConfigCgroupnsModeEnum::PRIVATE));
    assert_eq!(h.cgroup_parent.as_deref(), Some("/turtle"));
    assert_eq!(h.isolation, Some(HostConfigIsolationEnum::DEFAULT));
    assert_eq!(
        h.storage_opt,
        Some(HashMap::from([("size".into(), "1G".into())]))
    );
    assert_eq!(
        h.annotations,
        Some(HashMap::from([("com.example.a".into(), "b".into())]))
    );
    assert_eq!(h.oom_kill_disable, Some(true));
    assert_eq!(h.oom_score_adj, Some(-500));

    // Unset: nothing sent (the engine's defaults stay).
    let plain = spec_of(svc());
    let h = hc(&plain);
    assert_eq!(
        (h.runtime.clone(), h.cgroupns_mode, h.oom_kill_disable),
        (None, None, None)
    );
    assert_eq!((h.annotations.clone(), h.storage_opt.clone()), (None, None));

    let mut bad = s.clone();
    bad.cgroup = Some("shared".into());
    let p = project(vec![("web", bad.clone())]);
    let err = container_spec(&p, "web", &bad, 1, "h", None).unwrap_err();
    assert!(invalid_message(err).contains("cgroup \"shared\""));
    let mut bad = s;
    bad.isolation = Some("vm".into());
    let p = project(vec![("web", bad.clone())]);
    let err = container_spec(&p, "web", &bad, 1, "h", None).unwrap_err();
    assert!(invalid_message(err).contains("isolation \"vm\""));
}

#[test]
fn cpu_memory_and_blkio_resources() {
    let mut s = svc();
    s.resources = Resources {
        cpu_count: Some(2),
        cpu_percent: Some(50),
        cpu_period: Some(100_000),
        cpu_quota: Some(50_000),
        cpu_rt_period: Some(1_000_000),
        cpu_rt_runtime: Some(950_000),
        mem_swappiness: Some(0),
        blkio: Some(Blkio {
            weight: Some(300),
            weight_device: vec![WeightDevice {
                path: "/dev/sda".into(),
                weight: 400,
            }],
            device_read_bps: vec![ThrottleDevice {
                path: "/dev/sda".into(),
                rate: 1 << 20,
            }],
            device_read_iops: vec![ThrottleDevice {
                path: "/dev/sda".into(),
                rate: 100,
            }],
            device_write_bps: vec![ThrottleDevice {
                path: "/dev/sdb".into(),
                rate: 2 << 20,
            }],
            device_write_iops: vec![ThrottleDevice {
                path: "/dev/sdb".into(),
                rate: 200,
            }],
        }),
        ..Default::default()
    };
    let spec = spec_of(s.clone());
    let h = hc(&spec);
    assert_eq!((h.cpu_count, h.cpu_percent), (Some(2), Some(50)));
    assert_eq!((h.cpu_period, h.cpu_quota), (Some(100_000), Some(50_000)));
    assert_eq!(
        (h.cpu_realtime_period, h.cpu_realtime_runtime),
        (Some(1_000_000), Some(950_000))
    );
    // 0 is a real swappiness (never swap), so it is sent.
    assert_eq!(h.memory_swappiness, Some(0));
    assert_eq!(h.blkio_weight, Some(300));
    assert_eq!(
        h.blkio_weight_device,
        Some(vec![ResourcesBlkioWeightDevice {
            path: Some("/dev/sda".into()),
            weight: Some(400),
        }])
    );
    let t = |path: &str, rate: i64| {
        Some(vec![EngineThrottle {
            path: Some(path.into()),
            rate: Some(rate),
        }])
    };
    assert_eq!(h.blkio_device_read_bps, t("/dev/sda", 1 << 20));
    assert_eq!(h.blkio_device_read_iops, t("/dev/sda", 100));
    assert_eq!(h.blkio_device_write_bps, t("/dev/sdb", 2 << 20));
    assert_eq!(h.blkio_device_write_iops, t("/dev/sdb", 200));

    s.resources.blkio.as_mut().unwrap().weight = Some(5);
    let p = project(vec![("web", s.clone())]);
    let err = container_spec(&p, "web", &s, 1, "h", None).unwrap_err();
    assert!(invalid_message(err).contains("weight 5"));
}

#[test]
fn mount_options() {
    let mut s = svc();
    s.volumes = vec![
        Mount {
            kind: MountKind::Tmpfs,
            target: "/t".into(),
            tmpfs_mode: Some(0o1770),
            ..Default::default()
        },
        Mount {
            kind: MountKind::Bind,
            source: Some("/srv/shared".into()),
            target: "/shared".into(),
            bind: Some(BindOptions {
                propagation: Some("rshared".into()),
                create_host_path: Some(false),
                selinux: None,
            }),
            ..Default::default()
        },
        Mount {
            kind: MountKind::Volume,
            source: Some("data".into()),
            target: "/data".into(),
            volume: Some(VolumeOptions {
                nocopy: true,
                subpath: Some("sub/dir".into()),
            }),
            ..Default::default()
        },
        Mount {
            kind: MountKind::Image,
            source: Some("tools:1".into()),
            target: "/tools".into(),
            read_only: true,
            ..Default::default()
        },
        Mount {
            kind: MountKind::Bind,
            source: Some("/srv/labelled".into()),
            target: "/labelled".into(),
            read_only: true,
            bind: Some(BindOptions {
                selinux: Some("Z".into()),
                propagation: Some("rslave".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    let spec = spec_of(s.clone());
    let h = hc(&spec);
    let m = h.mounts.clone().unwrap();
    assert_eq!(m.len(), 4, "the labelled bind is in Binds: {m:?}");
    assert_eq!(m[0].tmpfs_options.as_ref().unwrap().mode, Some(0o1770));
    assert_eq!(m[0].tmpfs_options.as_ref().unwrap().size_bytes, None);
    assert_eq!(
        m[1].bind_options.as_ref().unwrap().propagation,
        Some(MountBindOptionsPropagationEnum::RSHARED)
    );
    let vo = m[2].volume_options.as_ref().unwrap();
    assert_eq!(vo.no_copy, Some(true));
    assert_eq!(vo.subpath.as_deref(), Some("sub/dir"));
    assert_eq!(m[2].source.as_deref(), Some("demo_data"));
    assert_eq!(m[3].typ, Some(MountType::IMAGE));
    assert_eq!(m[3].source.as_deref(), Some("tools:1"));
    assert_eq!(
        h.binds,
        Some(vec!["/srv/labelled:/labelled:ro,Z,rslave".to_string()])
    );

    // Plain mounts carry no options.
    let plain = spec_of(svc());
    assert_eq!(hc(&plain).binds, None);

    let refused = |m: Mount| {
        let mut s = svc();
        s.volumes = vec![m];
        let p = project(vec![("web", s.clone())]);
        invalid_message(container_spec(&p, "web", &s, 1, "h", None).unwrap_err())
    };
    let npipe = refused(Mount {
        kind: MountKind::Npipe,
        source: Some(r"\\.\pipe\docker_engine".into()),
        target: r"\\.\pipe\docker_engine".into(),
        ..Default::default()
    });
    assert!(npipe.contains("Windows"), "{npipe}");
    let bad_prop = refused(Mount {
        kind: MountKind::Bind,
        source: Some("/x".into()),
        target: "/x".into(),
        bind: Some(BindOptions {
            propagation: Some("sideways".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert!(bad_prop.contains("propagation \"sideways\""), "{bad_prop}");
    let bad_label = refused(Mount {
        kind: MountKind::Bind,
        source: Some("/x".into()),
        target: "/x".into(),
        bind: Some(BindOptions {
            selinux: Some("q".into()),
            ..Default::default()
        }),
        ..Default::default()
    });
    assert!(bad_label.contains("selinux \"q\""), "{bad_label}");
}

#[test]
fn networks_by_priority_with_endpoint_options() {
    let mut s = svc();
    s.networks = IndexMap::from([
        ("default".to_string(), ServiceNetwork::default()),
        (
            "back".to_string(),
            ServiceNetwork {
                priority: Some(10),
                gw_priority: Some(5),
                link_local_ips: vec!["169.254.10.10".into()],
                driver_opts: IndexMap::from([("com.example.opt".into(), "1".into())]),
                mac_address: Some("02:42:ac:11:00:99".into()),
                interface_name: Some("eth7".into()),
                ..Default::default()
            },
        ),
    ]);
    let spec = spec_of(s.clone());
    // `back` has the higher priority: it is the first network.
    assert_eq!(hc(&spec).network_mode.as_deref(), Some("demo_back"));
    let eps = spec
        .body
        .networking_config
        .as_ref()
        .unwrap()
        .endpoints_config
        .as_ref()
        .unwrap();
    let back = &eps["demo_back"];
    assert_eq!(back.gw_priority, Some(5));
    assert_eq!(
        back.ipam_config.as_ref().unwrap().link_local_ips,
        Some(vec!["169.254.10.10".to_string()])
    );
    assert_eq!(back.mac_address.as_deref(), Some("02:42:ac:11:00:99"));
    assert_eq!(
        back.driver_opts,
        Some(HashMap::from([
            ("com.example.opt".into(), "1".into()),
            ("com.docker.network.endpoint.ifname".into(), "eth7".into()),
        ]))
    );
    assert_eq!(spec.extra_networks.len(), 1);
    assert_eq!(spec.extra_networks[0].0, "demo_default");
    assert_eq!(spec.extra_networks[0].1.driver_opts, None);

    // The service's mac_address is the first network's; a different one there
    // is refused.
    s.mac_address = Some("02:42:ac:11:00:01".into());
    let p = project(vec![("web", s.clone())]);
    let err = container_spec(&p, "web", &s, 1, "h", None).unwrap_err();
    assert!(invalid_message(err).contains("differs"));
    s.networks["back"].mac_address = None;
    let spec = spec_of(s.clone());
    let eps = spec
        .body
        .networking_config
        .as_ref()
        .unwrap()
        .endpoints_config
        .clone()
        .unwrap();
    assert_eq!(
        eps["demo_back"].mac_address.as_deref(),
        Some("02:42:ac:11:00:01")
    );
    assert_eq!(spec.extra_networks[0].1.mac_address, None);

    // On network_mode: bridge, on the bridge's endpoint; host has none.
    s.networks.clear();
    s.network_mode = Some(NetworkMode::Bridge);
    let spec = spec_of(s.clone());
    let eps = spec
        .body
        .networking_config
        .as_ref()
        .unwrap()
        .endpoints_config
        .clone()
        .unwrap();
    assert_eq!(
        eps["bridge"].mac_address.as_deref(),
        Some("02:42:ac:11:00:01")
    );
    s.network_mode = Some(NetworkMode::Host);
    let p = project(vec![("web", s.clone())]);
    let err = container_spec(&p, "web", &s, 1, "h", None).unwrap_err();
    assert!(invalid_message(err).contains("network_mode host"));
}

#[test]
fn equal_priorities_keep_the_model_order() {
    let mut s = svc();
    s.networks = IndexMap::from([
        ("back".to_string(), ServiceNetwork::default()),
        (
            "default".to_string(),
            ServiceNetwork {
                priority: Some(0),
                ..Default::default()
            },
        ),
    ]);
    let spec = spec_of(s);
    assert_eq!(hc(&spec).network_mode.as_deref(), Some("demo_back"));
}

#[test]
fn network_request_options() {
    let p = project(vec![]);
    let net = Network {
        name: "demo_v6only".into(),
        attachable: true,
        enable_ipv6: true,
        enable_ipv4: Some(false),
        ipam: Some(Ipam {
            driver: None,
            options: IndexMap::from([("opt".into(), "x".into())]),
            config: vec![IpamPool {
                subnet: Some("172.31.0.0/24".into()),
                aux_addresses: IndexMap::from([("router".into(), "172.31.0.2".into())]),
                ..Default::default()
            }],
        }),
        ..Default::default()
    };
    let req = network_request(&p, "v6only", &net);
    assert_eq!(req.attachable, Some(true));
    assert_eq!(req.enable_ipv4, Some(false));
    let ipam = req.ipam.unwrap();
    assert_eq!(
        ipam.options,
        Some(HashMap::from([("opt".into(), "x".into())]))
    );
    assert_eq!(
        ipam.config.unwrap()[0].auxiliary_addresses,
        Some(HashMap::from([("router".into(), "172.31.0.2".into())]))
    );
    // enable_ipv4: true is the default: not sent (an old engine refuses the
    // field, whatever its value).
    let on = Network {
        enable_ipv4: Some(true),
        ..net
    };
    assert_eq!(network_request(&p, "v6only", &on).enable_ipv4, None);
    let plain = network_request(&p, "default", &p.networks["default"]);
    assert_eq!((plain.attachable, plain.enable_ipv4), (None, None));
}

#[test]
fn port_metadata_is_not_sent() {
    let mut s = svc();
    s.ports = vec![Port {
        target: 80,
        published: Some("8080".into()),
        protocol: "tcp".into(),
        name: Some("web".into()),
        app_protocol: Some("http".into()),
        ..Default::default()
    }];
    let with_meta = spec_of(s.clone());
    for p in &mut s.ports {
        p.name = None;
        p.app_protocol = None;
    }
    let without = spec_of(s);
    assert_eq!(
        hc(&with_meta).port_bindings,
        hc(&without).port_bindings,
        "name and app_protocol change nothing the engine sees"
    );
    assert_eq!(with_meta.body.exposed_ports, without.body.exposed_ports);
}

#[test]
fn tmpfs_size_and_mode_together() {
    let mut s = svc();
    s.volumes = vec![Mount {
        kind: MountKind::Tmpfs,
        target: "/t".into(),
        tmpfs_size: Some(ByteSize(1 << 20)),
        tmpfs_mode: Some(0o700),
        ..Default::default()
    }];
    let spec = spec_of(s);
    let o = hc(&spec).mounts.clone().unwrap()[0]
        .tmpfs_options
        .clone()
        .unwrap();
    assert_eq!((o.size_bytes, o.mode), (Some(1 << 20), Some(0o700)));
}

#[test]
fn build_options_reach_the_build_request() {
    let p = project(vec![]);
    let build = turtle_compose::Build {
        context: "/srv/demo/web".into(),
        dockerfile_inline: Some("FROM scratch\n".into()),
        cache_from: vec!["web:cache".into()],
        labels: IndexMap::from([
            ("org.example".into(), "yes".into()),
            (names::PROJECT.into(), "spoofed".into()),
        ]),
        network: Some("host".into()),
        shm_size: Some(ByteSize(64 << 20)),
        extra_hosts: vec!["mirror:10.0.0.5".into()],
        no_cache: true,
        pull: true,
        tags: vec!["web:1".into(), "web:stable".into()],
        isolation: Some("default".into()),
        ..Default::default()
    };
    let b = build_spec(&p, "web", &build, "web:1").unwrap();
    assert_eq!(b.tag, "web:1");
    assert_eq!(b.dockerfile, "Dockerfile");
    assert_eq!(b.dockerfile_inline.as_deref(), Some("FROM scratch\n"));
    assert_eq!(b.cache_from, ["web:cache"]);
    assert_eq!(b.labels["org.example"], "yes");
    assert_eq!(b.labels[names::PROJECT], "demo", "the project's label wins");
    assert_eq!(b.network.as_deref(), Some("host"));
    assert_eq!(b.shm_size, Some(64 << 20));
    assert_eq!(b.extra_hosts, ["mirror:10.0.0.5"]);
    assert!(b.no_cache && b.pull);
    // The image's own reference is the build's tag, not an extra one.
    assert_eq!(b.extra_tags, ["web:stable"]);

    let windows = turtle_compose::Build {
        isolation: Some("hyperv".into()),
        ..build
    };
    let err = build_spec(&p, "web", &windows, "web:1").unwrap_err();
    assert!(invalid_message(err).contains("Windows"));
}
