//! Releases (issue 14) against the real engine, through the CLI and a
//! daemon: a push is committed once healthy for its settle window; a bad
//! one is rolled back by itself, the old containers serving again with
//! their data; update locks hold an update; a daemon SIGKILLed at each
//! journal point ends in the old or the new release, complete and healthy.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use turtle_e2e::{Env, IMAGE, docker, inspect, wait_until};

/// A service `NAME` running `sleep`, healthy at once (or by `health`),
/// with `extra` lines appended (indented 4).
fn service(name: &str, env: &str, health: &str, extra: &str) -> String {
    format!(
        r#"  {name}:
    image: {IMAGE}
    command: ["sh", "-c", "echo started >> /data/log 2>/dev/null; exec sleep 3600"]
    stop_signal: SIGKILL
    environment: {{V: "{env}"}}
    healthcheck:
      test: ["CMD-SHELL", "{health}"]
      interval: 1s
      timeout: 3s
      retries: 2
{extra}"#
    )
}

fn push(env: &Env, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["push", "--settle", "3s"];
    args.extend_from_slice(extra);
    env.turtle(&args)
}

fn releases(env: &Env) -> Vec<Value> {
    serde_json::from_str(&env.ok(&["releases", "--format", "json"])).expect("releases json")
}

fn text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn env_of(env: &Env, service: &str) -> Vec<String> {
    inspect(&env.container(service)).expect("container")["Config"]["Env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_push_is_committed_and_a_one_service_change_replaces_only_that_service() {
    let mut env = Env::new("push");
    env.compose(&format!(
        "services:\n{}{}",
        service("a", "1", "true", ""),
        service("b", "1", "true", "")
    ));
    env.start_daemon();
    let out = push(&env, &["--release-version", "v1", "--notes", "first"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("committed"), "{}", text(&out));
    let a = env.id("a").expect("a runs");
    let b = env.id("b").expect("b runs");

    // The containers run the pinned image by ID.
    let image = inspect(&env.container("a")).unwrap()["Config"]["Image"].clone();
    assert!(image.as_str().unwrap().starts_with("sha256:"), "{image}");

    env.compose(&format!(
        "services:\n{}{}",
        service("a", "1", "true", ""),
        service("b", "2", "true", "")
    ));
    let out = push(&env, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(env.id("a").as_deref(), Some(a.as_str()), "a was replaced");
    assert_ne!(
        env.id("b").as_deref(),
        Some(b.as_str()),
        "b was not replaced"
    );
    assert!(env_of(&env, "b").contains(&"V=2".to_string()));

    let all = releases(&env);
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0]["outcome"], "committed");
    assert_eq!(all[0]["version"], "2");
    assert_eq!(all[1]["version"], "v1");
    assert_eq!(all[1]["notes"], "first");
    let listed = env.ok(&["releases"]);
    assert!(listed.lines().nth(1).unwrap().starts_with('*'), "{listed}");

    // An explicit rollback returns to v1 through the same path.
    let out = env.turtle(&["rollback", "--settle", "2s"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(env_of(&env, "b").contains(&"V=1".to_string()));
    let all = releases(&env);
    assert_eq!(all[0]["origin"]["rollback"]["to"], all[2]["id"], "{all:?}");
}

#[test]
fn bad_releases_are_rolled_back_with_the_old_containers_and_their_data() {
    let mut env = Env::new("rollback");
    let volume = "    volumes: [\"data:/data\"]\n";
    let good = format!(
        "services:\n{}volumes:\n  data: {{}}\n",
        service("web", "good", "true", volume)
    );
    env.compose(&good);
    env.start_daemon();
    let out = push(&env, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let good_id = env.id("web").unwrap();
    docker(&[
        "exec",
        &env.container("web"),
        "sh",
        "-c",
        "echo precious > /data/keep",
    ]);

    // Three ways to be bad: a failing healthcheck, a crash loop, an image
    // that exits at once.
    let bad = [
        ("unhealthy", service("web", "bad1", "false", volume)),
        (
            "restart",
            service(
                "web",
                "bad2",
                "true",
                &format!("{volume}    restart: always\n"),
            )
            .replace("exec sleep 3600", "exit 3"),
        ),
        (
            "exited",
            service("web", "bad3", "true", volume).replace("exec sleep 3600", "exit 0"),
        ),
    ];
    for (what, web) in bad {
        env.compose(&format!("services:\n{web}volumes:\n  data: {{}}\n"));
        let out = push(&env, &[]);
        assert!(
            !out.status.success(),
            "{what}: the push succeeded: {}",
            text(&out)
        );
        assert!(text(&out).contains("rolled back"), "{what}: {}", text(&out));
        let all = releases(&env);
        assert_eq!(all[0]["outcome"], "rolled-back", "{what}: {all:?}");
        let reason = all[0]["reason"].as_str().unwrap_or_default().to_string();
        assert!(reason.contains("web-1"), "{what}: {reason}");
        assert!(reason.contains(what), "{what}: {reason}");
        // The old release serves again: its config, healthy, its data.
        wait_until(
            &format!("{what}: web healthy again"),
            Duration::from_secs(30),
            || env.healthy("web"),
        );
        assert!(
            env_of(&env, "web").contains(&"V=good".to_string()),
            "{what}: {:?}",
            env_of(&env, "web")
        );
        let kept = docker(&["exec", &env.container("web"), "cat", "/data/keep"]);
        assert_eq!(kept, "precious", "{what}");
    }
    assert_ne!(
        env.id("web").unwrap(),
        good_id,
        "web should have been recreated"
    );
    let current: Vec<Value> = releases(&env)
        .into_iter()
        .filter(|r| r["outcome"] == "committed")
        .collect();
    assert_eq!(current.len(), 1, "the first release stays the current one");

    // A release without the volume: the volume is kept, data and all, and said.
    env.compose(&format!(
        "services:\n{}",
        service("web", "novol", "true", "")
    ));
    let out = push(&env, &[]);
    assert!(out.status.success(), "{}", text(&out));
    let volume = format!("{}_data", env.project);
    assert!(
        text(&out).contains(&format!("kept with their data: {volume}")),
        "{}",
        text(&out)
    );
    let kept = docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/data"),
        IMAGE,
        "cat",
        "/data/keep",
    ]);
    assert_eq!(kept, "precious");
}

/// Touches or removes the update lock from inside the service.
fn lock(env: &Env, service: &str, held: bool) {
    let cmd = if held {
        "touch /run/turtle/updates.lock"
    } else {
        "rm /run/turtle/updates.lock"
    };
    docker(&["exec", &env.container(service), "sh", "-c", cmd]);
}

fn spawn_push(env: &Env, extra: &[&str]) -> Child {
    let mut args = vec!["push", "--settle", "2s"];
    args.extend_from_slice(extra);
    env.command(&args)
        .arg("-p")
        .arg(&env.project)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start turtle push")
}

fn events(env: &Env) -> String {
    env.ok(&["events", "--json", "-n", "1000"])
}

#[test]
fn an_update_lock_holds_the_update_until_released_or_forced() {
    let mut env = Env::new("locks");
    env.compose(&format!("services:\n{}", service("web", "1", "true", "")));
    env.start_daemon();
    assert!(push(&env, &[]).status.success());
    let first = env.id("web").unwrap();
    lock(&env, "web", true);

    env.compose(&format!("services:\n{}", service("web", "2", "true", "")));
    let mut child = spawn_push(&env, &[]);
    wait_until(
        "the update to wait for the lock",
        Duration::from_secs(60),
        || events(&env).contains("update-locked"),
    );
    // Held: the old container is untouched.
    assert_eq!(env.id("web").as_deref(), Some(first.as_str()));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the push ended while locked"
    );
    lock(&env, "web", false);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out));
    assert!(env_of(&env, "web").contains(&"V=2".to_string()));

    // --force goes past a held lock.
    lock(&env, "web", true);
    env.compose(&format!("services:\n{}", service("web", "3", "true", "")));
    let out = push(&env, &["--force"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("overridden"), "{}", text(&out));
    assert!(env_of(&env, "web").contains(&"V=3".to_string()));
}

/// Pushes in the background, SIGKILLs the daemon once the event log shows
/// `line`, restarts it, and waits until the release is decided.
fn kill_at(env: &mut Env, line: &str) -> Value {
    let before = events(env).matches(line).count();
    let mut child = spawn_push(env, &[]);
    wait_until(
        &format!("the update to reach {line:?}"),
        Duration::from_secs(120),
        || events(env).matches(line).count() > before,
    );
    env.kill_daemon();
    let _ = child.wait();
    env.start_daemon();
    wait_until(
        "the cut update to be finished",
        Duration::from_secs(120),
        || releases(env)[0]["outcome"] != "pending",
    );
    releases(env)[0].clone()
}

#[test]
fn a_daemon_killed_at_each_journal_point_ends_in_one_release_complete_and_healthy() {
    let mut env = Env::new("journal");
    // A build that takes a moment, so the download can be cut.
    let app = env.dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!("FROM {IMAGE}\nARG V\nRUN sleep 2 && echo $V > /version\n"),
    )
    .unwrap();
    let project = env.project.clone();
    let compose = |v: &str, health: &str| {
        format!(
            "services:\n  web:\n    build: {{context: ./app, args: {{V: \"{v}\"}}}}\n    image: {}-web:latest\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n    healthcheck: {{test: [\"CMD-SHELL\", \"{health}\"], interval: 1s, retries: 2}}\n",
            project
        )
    };
    let version = |env: &Env| docker(&["exec", &env.container("web"), "cat", "/version"]);
    env.compose(&compose("1", "true"));
    env.start_daemon();
    let out = push(&env, &[]);
    assert!(out.status.success(), "{}", text(&out));

    // Killed during the download: the old release runs, the new one failed.
    env.compose(&compose("2", "true"));
    let r = kill_at(&mut env, ": download");
    assert_eq!(r["outcome"], "failed", "{r}");
    wait_until("web healthy", Duration::from_secs(30), || {
        env.healthy("web")
    });
    assert_eq!(version(&env), "1");

    // Killed in the settle window: the new release is finished.
    env.compose(&compose("3", "true"));
    let r = kill_at(&mut env, "settle:");
    assert_eq!(r["outcome"], "committed", "{r}");
    wait_until("web healthy", Duration::from_secs(30), || {
        env.healthy("web")
    });
    assert_eq!(version(&env), "3");

    // Killed while rolling back: the old release is put back.
    env.compose(&compose("4", "false"));
    let r = kill_at(&mut env, "rolling back");
    assert_eq!(r["outcome"], "rolled-back", "{r}");
    wait_until("web healthy", Duration::from_secs(30), || {
        env.healthy("web")
    });
    assert_eq!(version(&env), "3");
    let log = env.daemon_log();
    assert!(log.contains("cut short"), "{log}");
}

#[test]
fn kill_then_download_stops_the_old_container_before_the_build() {
    let mut env = Env::new("killfirst");
    let app = env.dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!("FROM {IMAGE}\nARG V\nRUN echo $V > /version\n"),
    )
    .unwrap();
    let project = env.project.clone();
    let compose = |v: &str| {
        format!(
            "services:\n  web:\n    build: {{context: ./app, args: {{V: \"{v}\"}}}}\n    image: {}-web:latest\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n    labels: {{io.turtle.update-strategy: kill-then-download}}\n",
            project
        )
    };
    env.compose(&compose("1"));
    env.start_daemon();
    let out = push(&env, &[]);
    assert!(out.status.success(), "{}", text(&out));
    env.compose(&compose("2"));
    let out = push(&env, &[]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let stop = t.find("kill-then-download: stopping").expect(&t);
    let build = t.find("build image").expect(&t);
    assert!(stop < build, "stopped after the build:\n{t}");
    assert_eq!(
        docker(&["exec", &env.container("web"), "cat", "/version"]),
        "2"
    );
    let _ = Command::new("true").status();
}

#[test]
fn an_update_the_disk_cannot_take_is_refused_before_anything_stops() {
    let mut env = Env::new("disk");
    let web = |v: &str| {
        format!(
            "services:\n{}",
            service(
                "web",
                v,
                "true",
                "    labels: {io.turtle.update-strategy: kill-then-download}\n"
            )
        )
    };
    env.compose(&web("1"));
    env.start_daemon();
    assert!(push(&env, &[]).status.success());
    let running = env.id("web").unwrap();
    env.kill_daemon();

    // A reserve no disk has.
    env.config(&format!(
        "{}releases: {{reserve: 1000TiB}}\n",
        turtle_e2e::DEFAULT_CONFIG
    ));
    env.start_daemon();
    env.compose(&web("2"));
    let out = push(&env, &[]);
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("not enough disk"), "{t}");
    assert!(t.contains("nothing was stopped"), "{t}");
    assert!(!t.contains("stopping"), "{t}");
    assert_eq!(env.id("web").as_deref(), Some(running.as_str()));
    assert!(env.running("web"));
    assert_eq!(releases(&env)[0]["outcome"], "failed");
}

#[test]
fn dev_mode_rebuilds_only_the_service_whose_sources_changed() {
    let mut env = Env::new("watch");
    let project = env.project.clone();
    let mut compose = String::from("services:\n");
    for name in ["a", "b"] {
        let ctx = env.dir.path().join(name);
        std::fs::create_dir_all(&ctx).unwrap();
        std::fs::write(ctx.join("version"), "1\n").unwrap();
        std::fs::write(
            ctx.join("Dockerfile"),
            format!("FROM {IMAGE}\nCOPY version /version\n"),
        )
        .unwrap();
        compose.push_str(&format!(
            "  {name}:\n    build: ./{name}\n    image: {project}-{name}:latest\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n"
        ));
    }
    env.compose(&compose);
    env.start_daemon();
    let mut child = env
        .command(&["push", "--watch", "--settle", "1s", "-p", &project])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let wait_for = |what: &str| -> Vec<String> {
        let mut seen = Vec::new();
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) => {
                    let done = l.contains(what);
                    seen.push(l);
                    if done {
                        return seen;
                    }
                }
                Err(_) => panic!("no {what:?} line; saw:\n{}", seen.join("\n")),
            }
        }
    };
    let first = wait_for("cycle took");
    assert!(first.last().unwrap().contains("committed"), "{first:?}");
    wait_for("watching");
    let (a, b) = (env.id("a").unwrap(), env.id("b").unwrap());

    std::fs::write(env.dir.path().join("b").join("version"), "2\n").unwrap();
    let cycle = wait_for("cycle took");
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let _ = child.wait();
    let all = cycle.join("\n");
    assert!(all.contains("rebuilding b"), "{all}");
    assert!(cycle.last().unwrap().contains("committed"), "{all}");
    assert!(
        !all.contains("build image") || !all.contains(&format!("{project}-a:latest for a")),
        "{all}"
    );
    assert_eq!(env.id("a").as_deref(), Some(a.as_str()), "a was replaced");
    assert_ne!(
        env.id("b").as_deref(),
        Some(b.as_str()),
        "b was not replaced"
    );
    assert_eq!(
        docker(&["exec", &env.container("b"), "cat", "/version"]),
        "2"
    );
}

#[test]
fn a_daemon_killed_after_a_strategy_stopped_the_old_container_brings_it_back() {
    let mut env = Env::new("killstop");
    let app = env.dir.path().join("app");
    std::fs::create_dir_all(&app).unwrap();
    std::fs::write(
        app.join("Dockerfile"),
        format!("FROM {IMAGE}\nARG V\nRUN sleep 3 && echo $V > /version\n"),
    )
    .unwrap();
    let project = env.project.clone();
    let compose = |v: &str| {
        format!(
            "services:\n  web:\n    build: {{context: ./app, args: {{V: \"{v}\"}}}}\n    image: {project}-web:latest\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n    labels: {{io.turtle.update-strategy: kill-then-download}}\n"
        )
    };
    env.compose(&compose("1"));
    env.start_daemon();
    let out = push(&env, &[]);
    assert!(out.status.success(), "{}", text(&out));

    env.compose(&compose("2"));
    let r = kill_at(&mut env, "kill-then-download: stopping");
    assert_eq!(r["outcome"], "failed", "{r}");
    wait_until("web running again", Duration::from_secs(60), || {
        env.running("web")
    });
    assert_eq!(
        docker(&["exec", &env.container("web"), "cat", "/version"]),
        "1"
    );
    // Not left held: a later push goes through.
    let out = push(&env, &[]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        docker(&["exec", &env.container("web"), "cat", "/version"]),
        "2"
    );
}
