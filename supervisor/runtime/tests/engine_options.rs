//! The options of issue 12 against the real engine: each is built by the
//! spec, created by [`turtle_engine::docker::Docker`], and read back with
//! inspect (or seen from inside a running container), so a field the spec
//! or the adapter loses fails here.
//!
//! Not started, only created and inspected: a container with a GPU request
//! (no GPU here) or a bind with shared propagation (its source would need a
//! shared mount). Unit-tested only (spec and adapter tests): the real-time
//! CPU settings (they need a kernel with RT group scheduling), block I/O
//! device limits (they need a real block device path), and everything this
//! engine (API 1.41) is too old for, which is refused here instead.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use indexmap::IndexMap;
use turtle_compose::{
    BindOptions, Blkio, Build, DeviceRequest, Ipam, IpamPool, Mount, MountKind, Network,
    NetworkMode, Project, Resources, Service, ServiceNetwork, Volume, VolumeOptions,
};
use turtle_engine::{Engine, EngineError, Progress, State};
use turtle_reconcile::spec::{build_spec, container_spec, network_request, volume_request};
use turtle_runtime::host_paths::prepare_host_paths;

mod common;
use common::{Cleanup, docker, test_image, unique};

/// A project `name` with network `default` (a fixed subnet, so an aux
/// address and a link-local address can be given), volume `data`, and the
/// services.
fn project(name: &str, subnet_byte: u8, services: Vec<(&str, Service)>) -> Project {
    let default = Network {
        name: format!("{name}_default"),
        attachable: true,
        ipam: Some(Ipam {
            config: vec![IpamPool {
                subnet: Some(format!("172.29.{subnet_byte}.0/24")),
                aux_addresses: IndexMap::from([(
                    "router".to_string(),
                    format!("172.29.{subnet_byte}.2"),
                )]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    Project {
        name: name.parse().unwrap(),
        working_dir: std::env::temp_dir(),
        files: vec![],
        services: services
            .into_iter()
            .map(|(n, s)| (n.parse().unwrap(), s))
            .collect(),
        networks: IndexMap::from([("default".to_string(), default)]),
        volumes: IndexMap::from([(
            "data".to_string(),
            Volume {
                name: format!("{name}_data"),
                ..Default::default()
            },
        )]),
        secrets: IndexMap::new(),
        configs: IndexMap::new(),
    }
}

fn busybox(command: &str) -> Service {
    Service {
        image: Some(test_image().to_string()),
        command: Some(vec!["sh".into(), "-c".into(), command.into()]),
        networks: IndexMap::from([("default".to_string(), ServiceNetwork::default())]),
        replicas: 1,
        ..Default::default()
    }
}

/// Creates the project's networks and volumes, registered for cleanup.
async fn create_resources(p: &Project, cleanup: &mut Cleanup) {
    let d = docker();
    for (key, net) in &p.networks {
        cleanup.networks.push(net.name.clone());
        d.create_network(&network_request(p, key, net))
            .await
            .expect("create network");
    }
    for (key, vol) in &p.volumes {
        cleanup.volumes.push(vol.name.clone());
        d.create_volume(&volume_request(p, key, vol))
            .await
            .expect("create volume");
    }
}

/// Creates container 1 of `service`, registered for cleanup.
async fn create(p: &Project, service: &str, cleanup: &mut Cleanup) -> String {
    let s = &p.services[service];
    prepare_host_paths(p, service, s).expect("host paths");
    let spec = container_spec(p, service, s, 1, "h", None).expect("spec");
    cleanup.containers.push(spec.name.clone());
    docker()
        .create_container(&spec)
        .await
        .unwrap_or_else(|e| panic!("create {service}: {e}"))
}

#[tokio::test]
async fn links_volumes_from_and_process_settings_reach_a_running_container() {
    let d = docker();
    let name = unique("opt");
    let mut cleanup = Cleanup::default();

    let mut db = busybox("mkdir -p /dbdata/x && exec sleep 60");
    db.volumes = vec![Mount {
        kind: MountKind::Volume,
        source: Some("data".into()),
        target: "/dbdata".into(),
        ..Default::default()
    }];
    // Each check prints its name before it runs, so the logs say which failed.
    let checks = [
        ("link", "ping -c1 -W5 database"),
        ("volumes_from", "test -d /dbdata/x && ! touch /dbdata/y"),
        ("dns_opt", "grep -q ndots:2 /etc/resolv.conf"),
        ("group_add", "id -G | grep -qw 1234"),
        (
            "oom_score_adj",
            "test \"$(cat /proc/self/oom_score_adj)\" = 500",
        ),
    ];
    let script = checks
        .iter()
        .map(|(what, cmd)| format!("echo {what} && {cmd}"))
        .collect::<Vec<_>>()
        .join(" && ");
    let mut app = busybox(&script);
    app.links = vec!["db:database".into()];
    app.volumes_from = vec!["db:ro".into()];
    app.dns_opt = vec!["ndots:2".into()];
    app.group_add = vec!["1234".into()];
    app.oom_score_adj = Some(500);
    let p = project(&name, 71, vec![("db", db), ("app", app)]);
    create_resources(&p, &mut cleanup).await;

    let db_id = create(&p, "db", &mut cleanup).await;
    d.start_container(&db_id).await.unwrap();
    let app_id = create(&p, "app", &mut cleanup).await;

    let raw = d.client().inspect_container(&app_id, None).await.unwrap();
    let hc = raw.host_config.unwrap();
    // On a user-defined network the engine keeps links on the endpoint
    // (DNS aliases), not in HostConfig.Links (the default bridge's form).
    let net_name = &p.networks["default"].name;
    let ep = &raw.network_settings.unwrap().networks.unwrap()[net_name];
    let links = ep.links.clone().unwrap_or_default();
    assert!(
        links
            .iter()
            .any(|l| l.contains(&format!("{name}-db-1")) && l.ends_with("database")),
        "{links:?}"
    );
    assert_eq!(hc.volumes_from, Some(vec![format!("{name}-db-1:ro")]));
    assert_eq!(hc.dns_options, Some(vec!["ndots:2".to_string()]));
    assert_eq!(hc.group_add, Some(vec!["1234".to_string()]));
    assert_eq!(hc.oom_score_adj, Some(500));

    d.start_container(&app_id).await.unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    let details = loop {
        let c = d.inspect_container(&app_id).await.unwrap();
        if c.state == State::Exited {
            break c;
        }
        assert!(Instant::now() < end, "app did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let logs: String = d
        .logs(&app_id, false, None)
        .map(|c| String::from_utf8_lossy(&c.unwrap().bytes).to_string())
        .collect()
        .await;
    assert_eq!(details.exit_code, Some(0), "checks run: {logs}");
}

#[tokio::test]
async fn host_resources_mounts_and_endpoint_options_are_created() {
    let d = docker();
    let name = unique("res");
    let mut cleanup = Cleanup::default();
    let shared = tempfile::tempdir().unwrap();

    let mut web = busybox("sleep 60");
    web.runtime = Some("runc".into());
    web.device_requests = vec![DeviceRequest {
        driver: Some("nvidia".into()),
        capabilities: vec!["gpu".into()],
        ..Default::default()
    }];
    web.device_cgroup_rules = vec!["c 1:3 mr".into()];
    web.cgroup = Some("private".into());
    web.cgroup_parent = Some(format!("/{name}"));
    web.oom_kill_disable = true;
    web.storage_opt = IndexMap::new();
    web.uts = Some("host".into());
    web.resources = Resources {
        memory_limit: Some(turtle_compose::ByteSize(64 << 20)),
        cpu_period: Some(100_000),
        cpu_quota: Some(50_000),
        mem_swappiness: Some(10),
        blkio: Some(Blkio {
            weight: Some(300),
            ..Default::default()
        }),
        ..Default::default()
    };
    web.volumes = vec![
        Mount {
            kind: MountKind::Tmpfs,
            target: "/scratch".into(),
            tmpfs_mode: Some(0o1770),
            ..Default::default()
        },
        Mount {
            kind: MountKind::Volume,
            source: Some("data".into()),
            target: "/data".into(),
            volume: Some(VolumeOptions {
                nocopy: true,
                subpath: None,
            }),
            ..Default::default()
        },
        Mount {
            kind: MountKind::Bind,
            source: Some(shared.path().display().to_string()),
            target: "/shared".into(),
            bind: Some(BindOptions {
                propagation: Some("rslave".into()),
                ..Default::default()
            }),
            ..Default::default()
        },
    ];
    web.networks.insert(
        "default".into(),
        ServiceNetwork {
            link_local_ips: vec!["169.254.7.7".into()],
            driver_opts: IndexMap::from([("com.example.turtle".into(), "yes".into())]),
            ..Default::default()
        },
    );
    let p = project(&name, 72, vec![("web", web)]);
    create_resources(&p, &mut cleanup).await;

    // The network, as created.
    let net_name = &p.networks["default"].name;
    let net = d.client().inspect_network(net_name, None).await.unwrap();
    assert_eq!(net.attachable, Some(true));
    let pool = &net.ipam.unwrap().config.unwrap()[0];
    assert_eq!(
        pool.auxiliary_addresses.clone().unwrap_or_default()["router"],
        "172.29.72.2"
    );

    // Created only: there is no GPU here.
    let id = create(&p, "web", &mut cleanup).await;
    let raw = d.client().inspect_container(&id, None).await.unwrap();
    let hc = raw.host_config.unwrap();
    assert_eq!(hc.runtime.as_deref(), Some("runc"));
    let req = &hc.device_requests.clone().unwrap()[0];
    assert_eq!(req.driver.as_deref(), Some("nvidia"));
    assert_eq!(req.count, Some(-1));
    assert_eq!(req.capabilities, Some(vec![vec!["gpu".to_string()]]));
    assert_eq!(hc.device_cgroup_rules, Some(vec!["c 1:3 mr".to_string()]));
    assert_eq!(
        hc.cgroupns_mode.map(|m| m.to_string()).as_deref(),
        Some("private")
    );
    assert_eq!(hc.cgroup_parent, Some(format!("/{name}")));
    assert_eq!(hc.oom_kill_disable, Some(true));
    assert_eq!(hc.uts_mode.as_deref(), Some("host"));
    assert_eq!((hc.cpu_period, hc.cpu_quota), (Some(100_000), Some(50_000)));
    assert_eq!(hc.memory_swappiness, Some(10));
    // blkio weight: sent, but an engine whose kernel has no blkio.weight
    // (no CFQ/BFQ scheduler, as here) drops it with a warning; the spec's
    // unit test checks it is sent.
    let mounts = hc.mounts.unwrap();
    let at = |t: &str| {
        mounts
            .iter()
            .find(|m| m.target.as_deref() == Some(t))
            .unwrap()
    };
    assert_eq!(
        at("/scratch").tmpfs_options.as_ref().unwrap().mode,
        Some(0o1770)
    );
    assert_eq!(
        at("/data").volume_options.as_ref().unwrap().no_copy,
        Some(true)
    );
    assert_eq!(
        at("/shared")
            .bind_options
            .as_ref()
            .unwrap()
            .propagation
            .map(|p| p.to_string())
            .as_deref(),
        Some("rslave")
    );
    let ep = &raw.network_settings.unwrap().networks.unwrap()[net_name];
    assert_eq!(
        ep.driver_opts.clone().unwrap_or_default()["com.example.turtle"],
        "yes"
    );
    assert_eq!(
        ep.ipam_config.as_ref().unwrap().link_local_ips,
        Some(vec!["169.254.7.7".to_string()])
    );
}

#[tokio::test]
async fn settings_this_engine_is_too_old_for_are_refused_not_dropped() {
    let d = docker();
    let api = d.api_version().await.unwrap();
    if api >= (1, 49) {
        eprintln!("engine API {api:?} takes every setting: nothing to refuse");
        return;
    }
    let name = unique("old");
    let mut cleanup = Cleanup::default();
    let mut annotated = busybox("true");
    annotated.networks.clear();
    annotated.network_mode = Some(NetworkMode::None);
    annotated.annotations = IndexMap::from([("com.example.a".into(), "b".into())]);
    let mut p = project(&name, 73, vec![("annotated", annotated)]);
    let s = &p.services["annotated"];
    let spec = container_spec(&p, "annotated", s, 1, "h", None).unwrap();
    cleanup.containers.push(spec.name.clone());
    if api < (1, 43) {
        let err = d.create_container(&spec).await.unwrap_err();
        assert!(matches!(err, EngineError::TooOld { .. }), "{err:?}");
        let msg = err.to_string();
        assert!(
            msg.contains("annotations (com.example.a)") && msg.contains("1.43"),
            "{msg}"
        );
        let gone = d.inspect_container(&spec.name).await.unwrap_err();
        assert!(gone.is_not_found(), "nothing is created: {gone:?}");
    }

    // A network the engine would create with IPv4 all the same.
    p.networks["default"].enable_ipv4 = Some(false);
    p.networks["default"].ipam = None;
    let net = &p.networks["default"];
    cleanup.networks.push(net.name.clone());
    if api < (1, 47) {
        let err = d
            .create_network(&network_request(&p, "default", net))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("enable_ipv4: false"), "{err}");
        assert!(d.find_network(&net.name).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn a_build_carries_inline_dockerfile_cache_labels_hosts_and_tags() {
    let d = docker();
    let base = test_image();
    let name = unique("bld");
    let mut cleanup = Cleanup::default();
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("hello.txt"), "hello").unwrap();
    // A Dockerfile on disk that would fail: the inline one must be used.
    std::fs::write(ctx.path().join("Dockerfile"), "FROM scratch\nRUN false\n").unwrap();
    let image = format!("{name}:latest");
    let also = format!("{name}:also");
    cleanup.images.extend([image.clone(), also.clone()]);
    let build = Build {
        context: ctx.path().to_path_buf(),
        dockerfile_inline: Some(format!(
            "FROM {base}\nCOPY hello.txt /\nRUN grep -q 'mirror' /etc/hosts && grep -q 10.1.2.3 /etc/hosts\n"
        )),
        cache_from: vec![base.to_string()],
        labels: IndexMap::from([("org.example.built".into(), "inline".into())]),
        extra_hosts: vec!["mirror:10.1.2.3".into()],
        tags: vec![also.clone()],
        no_cache: true,
        ..Default::default()
    };
    let p = project(&name, 74, vec![]);
    let spec = build_spec(&p, "web", &build, &image).unwrap();
    let progress: Vec<_> = tokio::time::timeout(
        Duration::from_secs(120),
        d.build_image(&spec).collect::<Vec<_>>(),
    )
    .await
    .expect("build finishes");
    let lines: Vec<String> = progress
        .into_iter()
        .map(|p| match p.expect("build progress") {
            Progress::Log(l) => l,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    let id = d.image_id(&image).await.unwrap().expect("built");
    assert_eq!(
        d.image_id(&also).await.unwrap().as_deref(),
        Some(id.as_str()),
        "the extra tag names the same image: {lines:?}"
    );
    let inspected = d.client().inspect_image(&image).await.unwrap();
    let labels = inspected.config.unwrap().labels.unwrap_or_default();
    assert_eq!(labels["org.example.built"], "inline");
    assert_eq!(labels[turtle_reconcile::names::PROJECT], name);
}
