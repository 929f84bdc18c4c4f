//! The supervisor core against the real Docker engine: up, idempotence,
//! targeted recreation, orphans, keep-alive (crash, unhealthy, removal),
//! adoption after SIGKILL, down and volumes, and bad input.

use std::time::Duration;

use serde_json::Value;
use turtle_e2e::{
    DockerProxy, Env, IMAGE, docker, inspect, kill9, now_stamp, stdout_lines, wait_until,
};

const LONG: Duration = Duration::from_secs(60);

/// A stack with a one-shot, a healthchecked server and a dependent of both.
fn ordered_stack() -> String {
    format!(
        r#"
services:
  setup:
    image: {IMAGE}
    command: ["sh", "-c", "sleep 1; echo ready > /data/flag"]
    volumes: ["data:/data"]
  server:
    image: {IMAGE}
    command: ["sh", "-c", "test -f /data/flag && exec httpd -f -p 8080 -h /data"]
    volumes: ["data:/data"]
    depends_on:
      setup: {{condition: service_completed_successfully}}
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:8080/flag"]
      interval: 1s
      timeout: 2s
      retries: 3
    restart: unless-stopped
  client:
    image: {IMAGE}
    command: ["sh", "-c", "wget -q -O - http://server:8080/flag && exec sleep 3600"]
    depends_on:
      server: {{condition: service_healthy}}
    restart: always
volumes:
  data: {{}}
"#
    )
}

fn time_of(v: &Value) -> String {
    v.as_str().expect("a timestamp").to_string()
}

#[test]
fn up_honours_depends_on_conditions_and_a_second_up_changes_nothing() {
    let mut env = Env::new("order");
    env.compose(&ordered_stack());
    env.start_daemon();
    env.ok(&["up"]);

    for s in ["server", "client"] {
        assert!(env.running(s), "{s} is not running");
    }
    let setup = env.state("setup").unwrap();
    assert_eq!(setup["ExitCode"], 0);
    let server = env.state("server").unwrap();
    // server started only after setup finished (RFC 3339 strings in UTC compare as text).
    assert!(
        time_of(&server["StartedAt"]) > time_of(&setup["FinishedAt"]),
        "server started before setup completed"
    );
    // client started only once server's own check passed (probed by the
    // supervisor, issue 13: the engine's first check may come later): its
    // command fetches the flag from server and exits otherwise, so a first
    // run that never restarted saw server ready.
    let client = inspect(&env.container("client")).unwrap();
    assert_eq!(
        client["RestartCount"], 0,
        "client ran before server was ready"
    );
    assert_eq!(client["State"]["Status"], "running");
    wait_until("the engine to report server healthy", LONG, || {
        env.healthy("server")
    });

    // Second up: an empty plan, and no state-changing engine event.
    let since = now_stamp();
    let ids = ["setup", "server", "client"].map(|s| env.id(s));
    let plan = env.ok(&["up", "--dry-run"]);
    assert!(plan.contains("nothing to do"), "{plan}");
    env.ok(&["up"]);
    assert_eq!(ids, ["setup", "server", "client"].map(|s| env.id(s)));
    let events = env.mutating_events(&since);
    assert!(
        events.is_empty(),
        "a no-op up touched the engine: {events:?}"
    );

    // compose's tooling sees our containers.
    let listed = docker(&[
        "ps",
        "--filter",
        &format!("label=com.docker.compose.project={}", env.project),
        "--format",
        "{{.Names}}",
    ]);
    assert!(listed.contains(&env.container("server")), "{listed}");
    if let Some(listed) = compose_ps(&env) {
        assert!(
            listed.contains(&env.container("server")),
            "docker-compose ps: {listed}"
        );
    }
}

/// `docker compose ps` (or docker-compose's) output for the env's project,
/// when a compose tool is installed.
fn compose_ps(env: &Env) -> Option<String> {
    let file = env.dir.path().join("compose.yaml");
    let file = file.to_str().unwrap();
    let tries: [&[&str]; 2] = [&["docker", "compose"], &["docker-compose"]];
    for base in tries {
        let out = std::process::Command::new(base[0])
            .args(&base[1..])
            .args(["-f", file, "-p", &env.project, "ps"])
            .output();
        if let Ok(out) = out
            && out.status.success()
        {
            return Some(String::from_utf8_lossy(&out.stdout).into_owned());
        }
    }
    eprintln!("no compose tool found: skipping the docker compose ps check");
    None
}

#[test]
fn changing_one_service_recreates_only_it_and_removed_services_go_but_volumes_stay() {
    let mut env = Env::new("change");
    let stack = |a_env: &str, with_b: bool| {
        let b = if with_b {
            format!(
                "  b:\n    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\n    volumes: [\"keep:/keep\"]\n"
            )
        } else {
            String::new()
        };
        format!(
            "services:\n  a:\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", \"test -f /anon/born || date +%s%N > /anon/born; exec sleep 3600\"]\n    volumes: [\"/anon\"]\n    stop_grace_period: 1s\n    environment:\n      MODE: {a_env}\n{b}  c:\n    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\nvolumes:\n  keep: {{}}\n"
        )
    };
    env.compose(&stack("one", true));
    env.start_daemon();
    env.ok(&["up"]);
    let (a1, b1, c1) = (
        env.id("a").unwrap(),
        env.id("b").unwrap(),
        env.id("c").unwrap(),
    );
    let born = || docker(&["exec", &env.container("a"), "cat", "/anon/born"]);
    let a_born = born();

    env.compose(&stack("two", true));
    let plan = env.ok(&["up", "--dry-run"]);
    assert!(
        plan.contains(&format!("recreate container {}", env.container("a"))),
        "{plan}"
    );
    env.ok(&["up"]);
    let a2 = env.id("a").unwrap();
    assert_ne!(a1, a2, "a was not recreated");
    assert_eq!(env.id("b").unwrap(), b1, "b was recreated");
    assert_eq!(env.id("c").unwrap(), c1, "c was recreated");
    let mode = docker(&["exec", &env.container("a"), "sh", "-c", "echo $MODE"]);
    assert_eq!(mode, "two");
    assert_eq!(
        born(),
        a_born,
        "the anonymous volume did not carry over the recreate"
    );

    env.compose(&stack("two", false));
    env.ok(&["up"]);
    assert!(env.id("b").is_none(), "the orphan b is still there");
    assert_eq!(env.id("a").unwrap(), a2);
    assert!(
        inspect(&format!("{}_keep", env.project)).is_some(),
        "the named volume went with its service"
    );

    // down --volumes takes the carried-over anonymous volume too.
    let anon = inspect(&env.container("a")).unwrap()["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/anon")
        .unwrap()["Name"]
        .as_str()
        .unwrap()
        .to_string();
    env.ok(&["down", "--volumes"]);
    assert!(
        inspect(&anon).is_none(),
        "down --volumes left the anonymous volume {anon}"
    );
}

#[test]
fn crashed_unhealthy_and_removed_containers_come_back() {
    let mut env = Env::new("alive");
    env.compose(&format!(
        r#"
services:
  crasher:
    image: {IMAGE}
    command: ["sleep", "3600"]
    restart: always
  sick:
    image: {IMAGE}
    command: ["sh", "-c", "touch /tmp/ok; exec sleep 3600"]
    init: true
    restart: unless-stopped
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ok"]
      interval: 1s
      timeout: 1s
      retries: 2
  plain:
    image: {IMAGE}
    command: ["sleep", "3600"]
  follower:
    image: {IMAGE}
    command: ["sleep", "3600"]
    depends_on:
      sick: {{condition: service_started, restart: true}}
"#
    ));
    env.start_daemon();
    env.ok(&["up"]);
    wait_until("sick healthy", LONG, || env.healthy("sick"));

    // kill -9 the main process: the engine's policy restarts it, the restart is counted.
    let pid = env.state("crasher").unwrap()["Pid"].as_i64().unwrap();
    let id = env.id("crasher").unwrap();
    kill9(pid);
    wait_until("crasher restarted", LONG, || {
        env.state("crasher")
            .is_some_and(|s| s["Running"] == true && s["Pid"].as_i64() != Some(pid))
    });
    assert_eq!(env.id("crasher").unwrap(), id, "a crash must not recreate");
    wait_until("the restart shows in ps", LONG, || {
        env.ps()["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["service"] == "crasher" && c["restarts"].as_i64() >= Some(1))
    });

    // Unhealthy: the engine would leave it; the supervisor restarts it, and
    // the dependent that asked for `restart: true` with it.
    let started = env.state("sick").unwrap()["StartedAt"].clone();
    let follower_started = env.state("follower").unwrap()["StartedAt"].clone();
    docker(&["exec", &env.container("sick"), "rm", "/tmp/ok"]);
    wait_until("sick restarted by the supervisor", LONG, || {
        env.state("sick")
            .is_some_and(|s| s["StartedAt"] != started && s["Running"] == true)
    });
    wait_until("sick healthy again", LONG, || env.healthy("sick"));
    wait_until("follower restarted with sick", LONG, || {
        env.state("follower")
            .is_some_and(|s| s["StartedAt"] != follower_started && s["Running"] == true)
    });
    let events = env.ok(&["events", "--json", "-n", "1000"]);
    assert!(events.contains("unhealthy-restart"), "{events}");

    // Removed behind the supervisor's back: re-created.
    let old = env.id("plain").unwrap();
    docker(&["rm", "-f", &env.container("plain")]);
    wait_until("plain re-created", LONG, || {
        env.id("plain").is_some_and(|id| id != old) && env.running("plain")
    });
}

#[test]
fn a_killed_daemon_adopts_the_running_containers_without_touching_them() {
    let mut env = Env::new("adopt");
    env.compose(&ordered_stack());
    env.start_daemon();
    env.ok(&["up"]);
    let before: Vec<_> = ["server", "client"]
        .map(|s| {
            (
                env.id(s).unwrap(),
                env.state(s).unwrap()["StartedAt"].clone(),
            )
        })
        .into();
    env.kill_daemon();
    let since = now_stamp();
    env.start_daemon();
    // The new daemon resyncs at once on start; `up` then goes through it too.
    env.ok(&["up"]);
    let after: Vec<_> = ["server", "client"]
        .map(|s| {
            (
                env.id(s).unwrap(),
                env.state(s).unwrap()["StartedAt"].clone(),
            )
        })
        .into();
    assert_eq!(
        before, after,
        "containers were touched after the daemon restarted"
    );
    let events = env.mutating_events(&since);
    assert!(events.is_empty(), "adoption touched the engine: {events:?}");
}

#[test]
fn down_keeps_volumes_unless_asked_and_data_survives() {
    let mut env = Env::new("down");
    env.compose(&format!(
        r#"
services:
  store:
    image: {IMAGE}
    command: ["sh", "-c", "test -f /data/born || date +%s%N > /data/born; exec sleep 3600"]
    volumes: ["data:/data"]
volumes:
  data: {{}}
"#
    ));
    env.start_daemon();
    env.ok(&["up"]);
    let read = |env: &Env| docker(&["exec", &env.container("store"), "cat", "/data/born"]);
    let born = read(&env);
    let volume = format!("{}_data", env.project);

    env.ok(&["down"]);
    assert!(env.id("store").is_none());
    assert!(inspect(&volume).is_some(), "down removed the volume");
    env.ok(&["up"]);
    assert_eq!(read(&env), born, "the data did not survive down/up");

    env.ok(&["down", "--volumes"]);
    assert!(inspect(&volume).is_none(), "down --volumes kept the volume");
    // The daemon does not bring a project back once it is down.
    env.ok(&["ps", "--all"]);
    assert!(env.id("store").is_none());
}

#[test]
fn a_bad_compose_file_is_refused_with_its_line_and_the_stack_is_untouched() {
    let mut env = Env::new("bad");
    let good = format!("services:\n  a:\n    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\n");
    env.compose(&good);
    env.start_daemon();
    env.ok(&["up"]);
    let id = env.id("a").unwrap();

    env.compose(&format!("{good}    restart_policy: always\n"));
    let out = env.turtle(&["up"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("compose.yaml:5"), "{err}");
    assert!(err.contains("services.a.restart_policy"), "{err}");
    assert_eq!(env.id("a").unwrap(), id);
    assert!(env.running("a"));

    env.compose("services:\n  a:\n    image: [unclosed\n");
    let out = env.turtle(&["config", "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("compose.yaml"));
}

#[test]
fn an_unreachable_engine_is_named() {
    let env = Env::new("noengine");
    env.compose(&format!("services:\n  a:\n    image: {IMAGE}\n"));
    let out = env
        .command(&[
            "--docker-socket",
            "/nonexistent/docker.sock",
            "ps",
            "-p",
            &env.project,
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/nonexistent/docker.sock") && err.contains("is dockerd running"),
        "{err}"
    );
}

#[test]
fn up_detach_starts_a_daemon_that_keeps_the_project_alive() {
    let env = Env::new("detach");
    // b waits for a's healthcheck; the config (given by --config only, not
    // in the environment) turns probing off, so the daemon `up --detach`
    // starts must have read it to wait for the engine's check.
    env.compose(&format!(
        "services:\n  a:\n    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\n    healthcheck: {{test: [\"CMD\", \"true\"], interval: 1s}}\n  b:\n    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\n    depends_on: {{a: {{condition: service_healthy}}}}\n"
    ));
    let config = env.dir.path().join("detached.yaml");
    std::fs::write(
        &config,
        format!("{}health: {{probe: false}}\n", turtle_e2e::DEFAULT_CONFIG),
    )
    .unwrap();
    let out = env
        .command(&["up", "--detach", "-p", &env.project, "--config"])
        .arg(&config)
        .env_remove("TURTLE_CONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid_file = env.state_dir().join("daemon.pid");
    let pid: i64 = std::fs::read_to_string(&pid_file)
        .expect("daemon.pid")
        .trim()
        .parse()
        .unwrap();
    let guard = KillOnDrop(pid);
    let events = env.ok(&["events", "-n", "100"]);
    let said = format!("{}-a-1 healthy (engine check)", env.project);
    assert!(events.contains(&said), "{said}\n--- in ---\n{events}");
    let old = env.id("a").unwrap();
    docker(&["rm", "-f", &env.container("a")]);
    wait_until("a re-created by the detached daemon", LONG, || {
        env.id("a").is_some_and(|id| id != old)
    });
    drop(guard);
}

struct KillOnDrop(i64);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        kill9(self.0);
    }
}

#[test]
fn builds_logs_held_services_and_crash_loops() {
    let mut env = Env::new("ops");
    let app = env.dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nRUN echo built > /built\nCMD [\"sh\", \"-c\", \"cat /built; echo hello-$GREETING; exec sleep 3600\"]\n"
        ),
    )
    .unwrap();
    env.compose(&format!(
        r#"
services:
  app:
    build: ./app
    environment: {{GREETING: world}}
    restart: always
  looper:
    image: {IMAGE}
    command: ["sh", "-c", "echo boom; exit 3"]
    restart: always
"#
    ));
    env.start_daemon();
    env.ok(&["up"]);
    let image = format!("{}-app", env.project);
    assert!(inspect(&image).is_some(), "image {image} was not built");
    wait_until("app's output", LONG, || {
        let logs = env.ok(&["logs", "app"]);
        logs.contains("app-1 | built") && logs.contains("app-1 | hello-world")
    });
    let tail = env.ok(&["logs", "--tail", "1", "app"]);
    assert_eq!(tail.trim(), "app-1 | hello-world");

    // A changed build context: plain up keeps the image, up --build rebuilds
    // and recreates only that service; a second --build is a cache hit.
    let (app_id, looper_id) = (env.id("app").unwrap(), env.id("looper").unwrap());
    std::fs::write(
        app.join("Dockerfile"),
        format!(
            "FROM {IMAGE}\nRUN echo rebuilt > /built\nCMD [\"sh\", \"-c\", \"cat /built; echo hello-$GREETING; exec sleep 3600\"]\n"
        ),
    )
    .unwrap();
    env.ok(&["up"]);
    assert_eq!(env.id("app").unwrap(), app_id, "plain up rebuilt");
    env.ok(&["up", "--build"]);
    let rebuilt = env.id("app").unwrap();
    assert_ne!(rebuilt, app_id, "up --build did not replace app");
    assert_eq!(
        env.id("looper").unwrap(),
        looper_id,
        "up --build touched looper"
    );
    assert_eq!(
        docker(&["exec", &env.container("app"), "cat", "/built"]),
        "rebuilt"
    );
    env.ok(&["up", "--build"]);
    assert_eq!(
        env.id("app").unwrap(),
        rebuilt,
        "an unchanged source recreated app"
    );

    // A service stopped on purpose stays stopped through resyncs.
    env.ok(&["stop", "app"]);
    let seen = env.resyncs();
    wait_until("two more resyncs", LONG, || env.resyncs() >= seen + 2);
    assert!(
        !env.running("app"),
        "the supervisor restarted a stopped service"
    );
    let ps = env.ps();
    let app_status = ps["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["service"] == "app")
        .unwrap()
        .clone();
    assert_eq!(app_status["held"], true, "{app_status}");
    env.ok(&["start", "app"]);
    assert!(env.running("app"));

    // A service that keeps crashing is flagged.
    wait_until("looper flagged as crash-looping", LONG, || {
        env.ps()["containers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["service"] == "looper" && c["crash_loop"] == true)
    });
    let events = env.ok(&["events", "-n", "1000"]);
    assert!(events.contains("crash-loop"), "{events}");
    assert!(
        !events.contains("app crashed"),
        "a requested stop counted as a crash: {events}"
    );
}

#[test]
fn after_the_engine_connection_drops_the_daemon_resyncs_what_it_missed() {
    let mut env = Env::new("reconnect");
    env.compose(&format!(
        "services:\n  a:\n    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\n"
    ));
    let mut proxy = DockerProxy::start(&env.dir.path().join("docker.sock"));
    let socket = proxy.path().to_str().unwrap().to_string();
    // No periodic resync during the test: only the reconnect can repair.
    env.start_daemon_with(&["--resync-interval", "3600", "--docker-socket", &socket]);
    env.ok(&["up"]);
    let old = env.id("a").unwrap();

    proxy.cut();
    docker(&["rm", "-f", &env.container("a")]);
    assert!(env.id("a").is_none());
    proxy.restore();
    wait_until("a re-created after the reconnect", LONG, || {
        env.id("a").is_some_and(|id| id != old) && env.running("a")
    });
    let log = env.daemon_log();
    assert!(log.contains("engine reachable again"), "{log}");
}

#[test]
fn foreground_up_supervises_serves_a_private_socket_and_leaves_containers_on_sigterm() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new("fg");
    env.compose(&format!(
        "services:\n  a:\n    image: {IMAGE}\n    command: [\"sh\", \"-c\", \"echo up-and-running; exec sleep 3600\"]\n    restart: always\n"
    ));
    let mut child = env
        .command(&["up", "-p", &env.project])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as i64;
    let guard = KillOnDrop(pid);
    wait_until("a running", LONG, || env.running("a"));
    let socket = env.state_dir().join("turtle.sock");
    wait_until("the socket", LONG, || socket.exists());
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "socket mode {mode:o}");

    // The other commands reach the foreground supervisor; logs -f streams.
    let mut logs = env
        .command(&["logs", "-f", "-p", &env.project])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let logs_guard = KillOnDrop(logs.id() as i64);
    let rx = stdout_lines(&mut logs);
    let line = rx.recv_timeout(LONG).expect("a line from logs -f");
    assert_eq!(line, "a-1 | up-and-running");

    // events --follow shows the repair as it happens.
    let mut events = env
        .command(&[
            "events",
            "--follow",
            "--json",
            "-n",
            "0",
            "-p",
            &env.project,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let events_guard = KillOnDrop(events.id() as i64);
    let erx = stdout_lines(&mut events);
    let old = env.id("a").unwrap();
    docker(&["rm", "-f", &env.container("a")]);
    let deadline = std::time::Instant::now() + LONG;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let line = erx
            .recv_timeout(left)
            .expect("a repair event from events --follow");
        if line.contains("\"kind\":\"repair\"") {
            break;
        }
    }
    wait_until("a re-created by the foreground supervisor", LONG, || {
        env.id("a").is_some_and(|id| id != old) && env.running("a")
    });

    // SIGTERM ends supervision, not the stack.
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    std::mem::forget(guard);
    assert!(status.success(), "foreground up exited with {status}");
    assert!(env.running("a"), "SIGTERM stopped the stack");
    assert!(!socket.exists(), "the socket outlived its supervisor");
    // The streams end with their supervisor.
    wait_until("logs -f to end", LONG, || {
        logs.try_wait().unwrap().is_some()
    });
    wait_until("events --follow to end", LONG, || {
        events.try_wait().unwrap().is_some()
    });
    std::mem::forget(logs_guard);
    std::mem::forget(events_guard);
}

#[test]
fn up_wait_returns_when_ready_and_fails_on_an_unhealthy_service() {
    let mut env = Env::new("wait");
    env.compose(&ordered_stack());
    env.start_daemon();
    let out = env.turtle(&["up", "--wait"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Returned only once every service was ready: client (which needs
    // server healthy) runs, and server's check passed, probed or by the
    // engine, as `up` says.
    assert!(env.running("client"));
    let said = format!("{} healthy", env.container("server"));
    assert!(err.contains(&said), "{said}\n--- in ---\n{err}");

    env.compose(&format!(
        "services:\n  sick:\n    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\n    healthcheck:\n      test: [\"CMD\", \"false\"]\n      interval: 1s\n      retries: 1\n"
    ));
    let out = env.turtle(&["up", "--wait", "--wait-timeout", "60"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unhealthy"), "{err}");
}

/// A dry run on a box that has never run Turtle writes nothing (no state
/// directory, so no CA and no database), and plans exactly what `up` then
/// creates: the config hash it shows, which covers everything Turtle
/// injects (trust, the TLS leaf's directory, the domain), is the one the
/// container gets.
#[test]
fn a_dry_run_on_a_fresh_box_writes_nothing_and_plans_what_up_does() {
    let mut env = Env::new("dry");
    env.compose(&format!(
        r#"
services:
  web:
    image: {IMAGE}
    command: ["sleep", "3600"]
    labels:
      io.turtle.tls: "web"
"#
    ));
    let out = env.ok(&["up", "--dry-run", "--format", "json"]);
    assert!(
        !env.state_dir().exists(),
        "a dry run created {}",
        env.state_dir().display()
    );
    let plan: Value = serde_json::from_str(&out).expect("a JSON plan");
    let create = plan["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["action"] == "create_container")
        .unwrap_or_else(|| panic!("no container to create in {out}"));
    env.start_daemon();
    env.ok(&["up"]);
    let labels = &inspect(&env.container("web")).expect("web exists")["Config"]["Labels"];
    assert_eq!(
        labels["io.turtle.config-hash"], create["hash"],
        "up created something else than the dry run planned"
    );
}
