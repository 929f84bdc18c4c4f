//! Engine integration tests: [`turtle_engine::docker::Docker`] against the
//! machine's real Docker engine.
//!
//! They need a running dockerd on the default socket and no registry: every
//! container runs `turtle-test-busybox:latest`, built once per test binary by
//! `images/test-busybox/build.sh` (a `FROM scratch` static busybox). Each test
//! names what it creates `tt-<pid>-<nanos>-...` and removes it through a
//! [`Cleanup`] guard (docker CLI commands run from `Drop`, so a failing test
//! cleans up too). Waits poll with deadlines; there are no fixed sleeps.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use indexmap::IndexMap;
use turtle_compose::{
    ByteSize, Duration as ComposeDuration, FileObject, FileRef, Healthcheck, Mount, MountKind,
    Network, Port, Project, Resources, RestartPolicy, Service, ServiceNetwork, Ulimit, Volume,
};
use turtle_engine::docker::Docker;
use turtle_engine::{BuildSpec, Engine, EngineError, EngineEvent, Health, Progress, State};
use turtle_reconcile::names;
use turtle_reconcile::spec::{container_spec, network_request, volume_request};
use turtle_runtime::host_paths::prepare_host_paths;

mod common;
use common::{Cleanup, IMAGE, docker, test_image, unique};

/// A project with networks `default` and `back`, volume `data`, and the
/// given services.
fn project(name: &str, services: Vec<(&str, Service)>) -> Project {
    let networks = ["default", "back"]
        .into_iter()
        .map(|k| {
            (
                k.to_string(),
                Network {
                    name: format!("{name}_{k}"),
                    ..Default::default()
                },
            )
        })
        .collect();
    let volumes = IndexMap::from([(
        "data".to_string(),
        Volume {
            name: format!("{name}_data"),
            ..Default::default()
        },
    )]);
    Project {
        name: name.parse().unwrap(),
        working_dir: std::env::temp_dir(),
        files: vec![std::env::temp_dir().join("compose.yaml")],
        services: services
            .into_iter()
            .map(|(n, s)| (n.parse().unwrap(), s))
            .collect(),
        networks,
        volumes,
        secrets: IndexMap::new(),
        configs: IndexMap::new(),
    }
}

fn busybox_service(command: &[&str]) -> Service {
    Service {
        image: Some(test_image().to_string()),
        command: Some(command.iter().map(|s| s.to_string()).collect()),
        networks: IndexMap::from([("default".to_string(), ServiceNetwork::default())]),
        replicas: 1,
        ..Default::default()
    }
}

/// Polls `check` until it yields a value or `deadline` passes.
async fn wait_for<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn container_lifecycle_with_network_volume_and_health() {
    let d = docker();
    d.ping().await.expect("ping");
    let name = unique("life");
    let mut cleanup = Cleanup::default();

    let mut web = busybox_service(&["httpd", "-f", "-p", "80", "-h", "/var/www"]);
    web.networks.insert(
        "back".to_string(),
        ServiceNetwork {
            aliases: vec!["api".to_string()],
            ..Default::default()
        },
    );
    web.volumes = vec![Mount {
        kind: MountKind::Volume,
        source: Some("data".to_string()),
        target: "/data".to_string(),
        read_only: false,
        tmpfs_size: None,
        ..Default::default()
    }];
    web.labels = IndexMap::from([("test.label".to_string(), "yes".to_string())]);
    web.environment = IndexMap::from([("GREETING".to_string(), "hi".to_string())]);
    web.healthcheck = Some(Healthcheck {
        test: vec![
            "CMD-SHELL".to_string(),
            "wget -q -O /dev/null http://127.0.0.1/".to_string(),
        ],
        interval: Some(ComposeDuration(500)),
        timeout: Some(ComposeDuration::from_secs(2)),
        retries: Some(3),
        start_period: None,
        // Not supported by API 1.41: the engine adapter must drop it.
        start_interval: Some(ComposeDuration(200)),
        disable: false,
    });
    // A spread of the other fields, to see the engine accept the body.
    let host_dir = tempfile::tempdir().unwrap();
    let bind_src = host_dir.path().join("site");
    let secret_file = host_dir.path().join("token.txt");
    std::fs::write(&secret_file, "s3cret").unwrap();
    web.volumes.push(Mount {
        kind: MountKind::Bind,
        source: Some(bind_src.display().to_string()),
        target: "/site".to_string(),
        read_only: true,
        tmpfs_size: None,
        ..Default::default()
    });
    web.volumes.push(Mount {
        kind: MountKind::Tmpfs,
        source: None,
        target: "/scratch".to_string(),
        read_only: false,
        tmpfs_size: Some(ByteSize(1 << 20)),
        ..Default::default()
    });
    web.secrets = vec![FileRef {
        source: "token".to_string(),
        target: "/run/secrets/token".to_string(),
        mode: None,
        ..Default::default()
    }];
    web.ports = vec![Port {
        target: 80,
        published: None,
        host_ip: Some("127.0.0.1".to_string()),
        protocol: "tcp".to_string(),
        ..Default::default()
    }];
    web.expose = vec!["8080".to_string()];
    web.resources = Resources {
        memory_limit: Some(ByteSize(64 << 20)),
        cpus: Some("0.5".to_string()),
        pids_limit: Some(100),
        ..Default::default()
    };
    web.cap_drop = vec!["NET_RAW".to_string()];
    web.ulimits = IndexMap::from([(
        "nofile".to_string(),
        Ulimit {
            soft: 1024,
            hard: 2048,
        },
    )]);
    web.init = true;
    web.stop_grace_period = Some(ComposeDuration::from_secs(3));
    web.restart = RestartPolicy::UnlessStopped;
    let mut p = project(&name, vec![("web", web.clone())]);
    p.secrets.insert(
        "token".to_string(),
        FileObject {
            file: Some(secret_file.clone()),
            ..Default::default()
        },
    );
    prepare_host_paths(&p, "web", &web).expect("host paths");
    assert!(bind_src.is_dir());

    // Networks and the volume.
    for (key, net) in &p.networks {
        cleanup.networks.push(net.name.clone());
        d.create_network(&network_request(&p, key, net))
            .await
            .expect("create network");
    }
    let (vkey, vol) = p.volumes.first().unwrap();
    cleanup.volumes.push(vol.name.clone());
    d.create_volume(&volume_request(&p, vkey, vol))
        .await
        .expect("create volume");

    let default_net = &p.networks["default"];
    let again = d
        .create_network(&network_request(&p, "default", default_net))
        .await
        .unwrap_err();
    assert!(matches!(again, EngineError::Conflict { .. }), "{again:?}");
    let found = d.find_network(&default_net.name).await.unwrap().unwrap();
    assert_eq!(found.labels[names::COMPOSE_NETWORK], "default");
    assert!(
        d.find_network(&format!("{name}_nope"))
            .await
            .unwrap()
            .is_none()
    );
    let nets = d
        .list_networks(&names::project_filter(&name))
        .await
        .unwrap();
    assert_eq!(nets.len(), 2, "{nets:?}");
    let vols = d.list_volumes(&names::project_filter(&name)).await.unwrap();
    assert_eq!(vols.len(), 1, "{vols:?}");
    assert_eq!(vols[0].labels[names::COMPOSE_VOLUME], "data");
    assert!(d.find_volume(&vol.name).await.unwrap().is_some());

    // The container.
    let spec = container_spec(&p, "web", &web, 1, "hash-1", None).unwrap();
    assert_eq!(spec.extra_networks.len(), 1);
    cleanup.containers.push(spec.name.clone());
    let id = d.create_container(&spec).await.expect("create container");
    let dup = d.create_container(&spec).await.unwrap_err();
    assert!(matches!(dup, EngineError::Conflict { .. }), "{dup:?}");
    d.start_container(&id).await.expect("start");
    d.start_container(&id).await.expect("start again is fine");

    let details = d.inspect_container(&id).await.unwrap();
    assert_eq!(details.name, format!("{name}-web-1"));
    assert_eq!(details.state, State::Running);
    assert!(details.pid.is_some());
    assert!(details.started_at.is_some());
    assert_eq!(details.finished_at, None);
    assert_eq!(details.labels[names::PROJECT], name);
    assert_eq!(details.labels[names::SERVICE], "web");
    assert_eq!(details.labels[names::CONFIG_HASH], "hash-1");
    assert_eq!(details.labels["test.label"], "yes");
    assert_eq!(details.image_id, d.image_id(IMAGE).await.unwrap().unwrap());

    // Mounts and networks, as the engine sees them.
    let raw = d.client().inspect_container(&id, None).await.unwrap();
    let mounts = raw.mounts.unwrap_or_default();
    assert!(
        mounts
            .iter()
            .any(|m| m.name.as_deref() == Some(vol.name.as_str())
                && m.destination.as_deref() == Some("/data")),
        "{mounts:?}"
    );
    let attached = raw.network_settings.unwrap().networks.unwrap_or_default();
    let back = &attached[&p.networks["back"].name];
    assert!(
        back.aliases
            .clone()
            .unwrap_or_default()
            .contains(&"api".to_string()),
        "{back:?}"
    );
    assert!(attached.contains_key(&default_net.name), "{attached:?}");
    let config = raw.config.unwrap();
    let env = config.env.unwrap_or_default();
    assert!(env.contains(&"GREETING=hi".to_string()), "{env:?}");
    let exposed = config.exposed_ports.unwrap_or_default();
    assert!(exposed.contains(&"80/tcp".to_string()), "{exposed:?}");
    assert!(exposed.contains(&"8080/tcp".to_string()), "{exposed:?}");
    assert_eq!(config.stop_timeout, Some(3));
    for (target, kind) in [
        ("/site", "bind"),
        ("/run/secrets/token", "bind"),
        ("/data", "volume"),
    ] {
        assert!(
            mounts
                .iter()
                .any(|m| m.destination.as_deref() == Some(target)
                    && m.typ.as_ref().map(|t| t.to_string()).as_deref() == Some(kind)),
            "{target}: {mounts:?}"
        );
    }
    let hc = raw.host_config.unwrap();
    assert_eq!(hc.memory, Some(64 << 20));
    assert_eq!(hc.nano_cpus, Some(500_000_000));
    assert_eq!(hc.pids_limit, Some(100));
    assert_eq!(hc.init, Some(true));
    assert_eq!(hc.cap_drop, Some(vec!["NET_RAW".to_string()]));
    assert_eq!(hc.ulimits.unwrap_or_default().len(), 1);
    assert_eq!(
        hc.restart_policy
            .and_then(|r| r.name)
            .map(|n| n.to_string()),
        Some("unless-stopped".to_string())
    );
    let published = &hc.port_bindings.unwrap_or_default()["80/tcp"];
    assert_eq!(
        published.as_ref().unwrap()[0].host_ip.as_deref(),
        Some("127.0.0.1")
    );

    // Health.
    wait_for("healthy (inspect)", Duration::from_secs(30), || async {
        let h = d.inspect_container(&id).await.unwrap().health;
        assert_ne!(h, Some(Health::Unhealthy));
        (h == Some(Health::Healthy)).then_some(())
    })
    .await;
    let listed = d
        .list_containers(&names::project_filter(&name))
        .await
        .unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].id, id);
    assert_eq!(listed[0].name, spec.name);
    assert_eq!(listed[0].state, State::Running);
    assert_eq!(listed[0].health, Some(Health::Healthy));
    assert_eq!(listed[0].image, IMAGE);

    // Restart, stop, remove.
    d.restart_container(&id, Some(1)).await.expect("restart");
    assert_eq!(
        d.inspect_container(&id).await.unwrap().state,
        State::Running
    );
    d.stop_container(&id, Some(1)).await.expect("stop");
    d.stop_container(&id, Some(1))
        .await
        .expect("stop again is fine");
    let stopped = d.inspect_container(&id).await.unwrap();
    assert_eq!(stopped.state, State::Exited);
    assert!(stopped.finished_at.is_some());
    d.remove_container(&id, true).await.expect("remove");
    d.remove_container(&id, true)
        .await
        .expect("remove again is fine");
    let gone = d.inspect_container(&id).await.unwrap_err();
    assert!(gone.is_not_found(), "{gone:?}");
    assert!(gone.to_string().contains(&id), "{gone}");
    let missing = d.start_container(&id).await.unwrap_err();
    assert!(missing.is_not_found(), "{missing:?}");

    for net in p.networks.values() {
        d.remove_network(&net.name).await.expect("remove network");
        d.remove_network(&net.name)
            .await
            .expect("remove network again");
        assert!(d.find_network(&net.name).await.unwrap().is_none());
    }
    d.remove_volume(&vol.name).await.expect("remove volume");
    d.remove_volume(&vol.name)
        .await
        .expect("remove volume again");
    assert!(d.find_volume(&vol.name).await.unwrap().is_none());
}

#[tokio::test]
async fn events_and_logs() {
    let d = docker();
    let name = unique("ev");
    let mut cleanup = Cleanup::default();
    let mut svc = busybox_service(&["sh", "-c", "echo hello-out; echo hello-err >&2; exit 3"]);
    svc.networks.clear();
    svc.network_mode = Some(turtle_compose::NetworkMode::None);
    let p = project(&name, vec![("job", svc.clone())]);
    let spec = container_spec(&p, "job", &svc, 1, "h", None).unwrap();
    cleanup.containers.push(spec.name.clone());
    let id = d.create_container(&spec).await.unwrap();

    // Collect events in a task; the subscription starts when it is first
    // polled, so start the container until a start and a die are both seen
    // (a start before the subscription is simply repeated).
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<EngineEvent>();
    let mut events = d.events(&names::project_filter(&name));
    let collector = tokio::spawn(async move {
        while let Some(ev) = events.next().await {
            if tx.send(ev.expect("event")).is_err() {
                break;
            }
        }
    });
    let mut seen: Vec<EngineEvent> = Vec::new();
    let mut done = false;
    for _attempt in 0..5 {
        d.start_container(&id).await.unwrap();
        let until = tokio::time::Instant::now() + Duration::from_secs(5);
        while let Ok(Some(ev)) = tokio::time::timeout_at(until, rx.recv()).await {
            let die = ev.action == "die";
            seen.push(ev);
            if die {
                break;
            }
        }
        let start = seen.iter().any(|e| e.action == "start" && e.id == id);
        let die = seen.iter().find(|e| e.action == "die" && e.id == id);
        if let (true, Some(die)) = (start, die) {
            assert_eq!(die.attributes["exitCode"], "3");
            assert_eq!(die.attributes[names::SERVICE], "job");
            assert_eq!(die.attributes["name"], spec.name);
            assert!(die.time_nano > 1_600_000_000_000_000_000);
            done = true;
            break;
        }
        // Wait for the run to end before starting again.
        wait_for("exit", Duration::from_secs(10), || async {
            (d.inspect_container(&id).await.unwrap().state == State::Exited).then_some(())
        })
        .await;
    }
    collector.abort();
    assert!(done, "no start+die events seen: {seen:?}");

    wait_for("exit", Duration::from_secs(10), || async {
        (d.inspect_container(&id).await.unwrap().state == State::Exited).then_some(())
    })
    .await;
    let details = d.inspect_container(&id).await.unwrap();
    assert_eq!(details.exit_code, Some(3));

    let chunks: Vec<_> = d.logs(&id, false, None).collect().await;
    let mut out = String::new();
    let mut err = String::new();
    for c in chunks {
        let c = c.expect("log chunk");
        let text = String::from_utf8_lossy(&c.bytes).to_string();
        if c.stderr {
            err.push_str(&text);
        } else {
            out.push_str(&text);
        }
    }
    assert!(out.contains("hello-out"), "stdout: {out:?}");
    assert!(!out.contains("hello-err"), "stdout: {out:?}");
    assert!(err.contains("hello-err"), "stderr: {err:?}");
    let last: Vec<_> = d.logs(&id, false, Some(1)).collect().await;
    assert_eq!(last.len(), 1, "{last:?}");

    // Following a running container ends when it stops.
    let mut svc2 = svc.clone();
    svc2.command = Some(vec![
        "sh".to_string(),
        "-c".to_string(),
        "echo first; sleep 1; echo second".to_string(),
    ]);
    let spec2 = container_spec(&p, "job", &svc2, 2, "h", None).unwrap();
    cleanup.containers.push(spec2.name.clone());
    let id2 = d.create_container(&spec2).await.unwrap();
    d.start_container(&id2).await.unwrap();
    let followed = tokio::time::timeout(
        Duration::from_secs(30),
        d.logs(&id2, true, None).collect::<Vec<_>>(),
    )
    .await
    .expect("follow ends when the container stops");
    let text: String = followed
        .into_iter()
        .map(|c| String::from_utf8_lossy(&c.unwrap().bytes).to_string())
        .collect();
    assert!(
        text.contains("first") && text.contains("second"),
        "{text:?}"
    );

    let missing: Vec<_> = d.logs(&format!("{name}-nope"), false, None).collect().await;
    assert!(
        matches!(missing.as_slice(), [Err(e)] if e.is_not_found()),
        "{missing:?}"
    );
}

#[tokio::test]
async fn build_image_from_context_with_dockerignore() {
    let d = docker();
    let base = test_image();
    let mut cleanup = Cleanup::default();
    let tag = format!("{}:latest", unique("img"));
    cleanup.images.push(tag.clone());

    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile.test"),
        format!(
            "FROM {base}\nARG MSG=unset\nCOPY . /ctx\n\
             RUN test -e /ctx/hello.txt && test ! -e /ctx/junk && test ! -e /ctx/logs/a.log\n\
             RUN test \"$(cat /ctx/bin/added)\" = from-outside && test -x /ctx/bin/added\n\
             RUN echo \"$MSG\" > /msg\nCMD [\"cat\", \"/msg\"]\n"
        ),
    )
    .unwrap();
    std::fs::write(ctx.path().join(".dockerignore"), "junk\nlogs/*.log\n").unwrap();
    std::fs::write(ctx.path().join("hello.txt"), "hello").unwrap();
    std::fs::write(ctx.path().join("junk"), "junk").unwrap();
    std::fs::create_dir(ctx.path().join("logs")).unwrap();
    std::fs::write(ctx.path().join("logs/a.log"), "log").unwrap();
    // A file from outside the context (how the stack's images get the
    // turtle executable), kept executable.
    let outside = tempfile::tempdir().unwrap();
    let added = outside.path().join("added");
    std::fs::write(&added, "from-outside").unwrap();
    std::fs::set_permissions(&added, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let spec = BuildSpec {
        tag: tag.clone(),
        context: ctx.path().to_path_buf(),
        dockerfile: "Dockerfile.test".to_string(),
        args: HashMap::from([("MSG".to_string(), "built-by-turtle".to_string())]),
        target: None,
        labels: HashMap::from([("io.turtle.test".to_string(), "yes".to_string())]),
        files: vec![("bin/added".to_string(), added.clone())],
        ..Default::default()
    };
    let progress: Vec<_> = tokio::time::timeout(
        Duration::from_secs(120),
        d.build_image(&spec).collect::<Vec<_>>(),
    )
    .await
    .expect("build finishes");
    let mut lines = Vec::new();
    for p in progress {
        match p.expect("build progress") {
            Progress::Log(l) => lines.push(l),
            other => panic!("unexpected progress {other:?}"),
        }
    }
    assert!(lines.iter().any(|l| l.starts_with("Step 1/")), "{lines:?}");
    let id = d.image_id(&tag).await.unwrap().expect("built image exists");
    assert!(id.starts_with("sha256:"), "{id}");
    let inspected = d.client().inspect_image(&tag).await.unwrap();
    let labels = inspected.config.unwrap().labels.unwrap_or_default();
    assert_eq!(labels["io.turtle.test"], "yes");

    // A failing step is a Build error naming the image, and ends the stream.
    std::fs::write(
        ctx.path().join("Dockerfile.test"),
        format!("FROM {base}\nRUN exit 7\n"),
    )
    .unwrap();
    let failing = BuildSpec {
        tag: format!("{}:latest", unique("bad")),
        ..spec.clone()
    };
    cleanup.images.push(failing.tag.clone());
    let progress: Vec<_> = tokio::time::timeout(
        Duration::from_secs(120),
        d.build_image(&failing).collect::<Vec<_>>(),
    )
    .await
    .expect("failed build finishes");
    match progress.last() {
        Some(Err(EngineError::Build { image, message })) => {
            assert_eq!(image, &failing.tag);
            assert!(message.contains('7'), "{message}");
        }
        other => panic!("expected a build error, got {other:?}"),
    }
    assert!(d.image_id(&failing.tag).await.unwrap().is_none());

    // A missing context is a Build error too.
    let nowhere = BuildSpec {
        context: ctx.path().join("nope"),
        ..spec
    };
    let progress: Vec<_> = d.build_image(&nowhere).collect().await;
    assert!(
        matches!(progress.as_slice(), [Err(EngineError::Build { .. })]),
        "{progress:?}"
    );
}

#[tokio::test]
async fn pull_of_a_missing_image_fails_without_hanging() {
    let d = docker();
    let reference = format!("turtle-no-such-image-{}:v1", std::process::id());
    assert!(d.image_id(&reference).await.unwrap().is_none());
    let items: Vec<_> = tokio::time::timeout(
        Duration::from_secs(90),
        d.pull_image(&reference).collect::<Vec<_>>(),
    )
    .await
    .expect("pull ends");
    let err = items
        .iter()
        .find_map(|i| i.as_ref().err())
        .unwrap_or_else(|| panic!("no error in {items:?}"));
    assert!(
        err.to_string().contains("turtle-no-such-image"),
        "the error names the image: {err}"
    );
    assert!(
        matches!(items.last(), Some(Err(_))),
        "the error ends the stream: {items:?}"
    );
}

#[tokio::test]
async fn missing_socket_is_unreachable() {
    let err = match Docker::connect(Some("/nonexistent.sock")) {
        Err(e) => e,
        Ok(d) => d.ping().await.unwrap_err(),
    };
    assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("dockerd"), "{msg}");
    assert!(msg.contains("/nonexistent.sock"), "{msg}");
}

#[tokio::test]
async fn socket_that_refuses_is_unreachable() {
    // A unix socket file nobody listens on: connect() succeeds, ping fails.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let d = Docker::connect(Some(path.to_str().unwrap())).unwrap();
    let err = d.ping().await.unwrap_err();
    assert!(matches!(err, EngineError::Unreachable { .. }), "{err:?}");
    assert!(err.to_string().contains("dockerd"), "{err}");
}
