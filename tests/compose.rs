//! Compose files written the way real projects write them run unchanged
//! (issue 12): values that interpolation leaves as strings, merge keys inside
//! merged anchors, `deploy.restart_policy`, several addresses per host, and
//! the keys compose-go reads beyond the basics, each checked in the
//! container the real engine runs.

use std::time::Duration;

use serde_json::Value;
use turtle_e2e::{Env, IMAGE, docker, inspect, wait_until};

const LONG: Duration = Duration::from_secs(60);

fn stack() -> String {
    format!(
        r#"
x-base: &base
  restart: always
  labels:
    com.example.tier: base
x-app: &app
  <<: *base
  image: {IMAGE}
  init: ${{INIT:-true}}

services:
  db:
    <<: *app
    command: ["sleep", "3600"]
    volumes: ["shared:/shared"]
  app:
    image: {IMAGE}
    init: ${{INIT:-true}}
    labels: {{com.example.tier: app}}
    command: ["sh", "-c", "cat /run/secrets/token > /tmp/seen; exec sleep 3600"]
    deploy:
      restart_policy:
        condition: on-failure
        max_attempts: ${{ATTEMPTS}}
    extra_hosts:
      registry: [10.1.0.1, 10.1.0.2]
    group_add: ["4242"]
    dns_opt: [use-vc]
    oom_score_adj: ${{OOM:-300}}
    cpu_period: 100000
    cpu_quota: "50000"
    links: ["db:database"]
    volumes_from: ["db:ro"]
    volumes:
      - type: tmpfs
        target: /scratch/
        tmpfs: {{size: 1m, mode: 0o1770}}
    secrets:
      - source: token
        mode: 0400
    configs:
      - source: motd
        target: /etc/motd
    post_start:
      - command: ["sh", "-c", "echo hooked > /tmp/post_start"]
volumes:
  shared:
secrets:
  token:
    environment: TOKEN
configs:
  motd:
    content: |
      hello from content
"#
    )
}

fn host_config<'a>(v: &'a Value, key: &str) -> &'a Value {
    &v["HostConfig"][key]
}

#[test]
fn a_real_world_file_runs_unchanged_and_every_key_reaches_the_container() {
    let mut env = Env::new("keys");
    env.compose(&stack());
    std::fs::write(
        env.dir.path().join(".env"),
        "ATTEMPTS=4\nTOKEN=s3cret-token\n",
    )
    .unwrap();
    env.start_daemon();
    env.ok(&["up"]);

    let app = inspect(&env.container("app")).expect("app container");
    let db = inspect(&env.container("db")).expect("db container");
    // `init: ${INIT:-true}` is a boolean once interpolated.
    assert_eq!(host_config(&app, "Init"), &Value::Bool(true));
    // db's restart policy and labels come through two levels of merge keys;
    // app's policy from deploy.restart_policy, with `max_attempts: ${ATTEMPTS}`.
    assert_eq!(host_config(&db, "RestartPolicy")["Name"], "always");
    assert_eq!(host_config(&db, "Init"), &Value::Bool(true));
    assert_eq!(db["Config"]["Labels"]["com.example.tier"], "base");
    assert_eq!(host_config(&app, "RestartPolicy")["Name"], "on-failure");
    assert_eq!(host_config(&app, "RestartPolicy")["MaximumRetryCount"], 4);
    let hosts: Vec<&str> = host_config(&app, "ExtraHosts")
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(hosts.contains(&"registry:10.1.0.1"), "{hosts:?}");
    assert!(hosts.contains(&"registry:10.1.0.2"), "{hosts:?}");
    assert_eq!(host_config(&app, "GroupAdd")[0], "4242");
    assert_eq!(host_config(&app, "DnsOptions")[0], "use-vc");
    assert_eq!(host_config(&app, "OomScoreAdj"), 300);
    assert_eq!(host_config(&app, "CpuPeriod"), 100000);
    assert_eq!(host_config(&app, "CpuQuota"), 50000);
    let from = host_config(&app, "VolumesFrom").to_string();
    assert!(from.contains(&env.container("db")), "{from}");

    let exec = |cmd: &str| docker(&["exec", &env.container("app"), "sh", "-c", cmd]);
    // The link's alias resolves to the database's container.
    assert!(exec("ping -c1 -W5 database >/dev/null && echo reached").contains("reached"));
    // The database's volume, through volumes_from, read-only.
    assert!(exec("touch /shared/x 2>&1 || echo refused").contains("refused"));
    // The secret from the environment and the config from content: mounted
    // as files the container reads.
    wait_until("the app read its secret", LONG, || {
        exec("cat /tmp/seen 2>/dev/null").trim() == "s3cret-token"
    });
    assert_eq!(exec("cat /etc/motd"), "hello from content");
    // The block scalar's final newline is kept: 18 characters and one newline.
    assert_eq!(exec("wc -c < /etc/motd").trim(), "19");
    // The tmpfs, at the cleaned path.
    assert!(exec("grep ' /scratch ' /proc/mounts").contains("tmpfs"));
    // The post_start hook ran in the container.
    wait_until("the post_start hook ran", LONG, || {
        exec("cat /tmp/post_start 2>/dev/null").trim() == "hooked"
    });
    // A second up changes nothing: the converted values hash the same.
    let id = env.id("app").unwrap();
    env.ok(&["up"]);
    assert_eq!(env.id("app").unwrap(), id);
}

#[test]
fn a_file_with_several_mistakes_is_refused_with_all_of_them() {
    let env = Env::new("mistakes");
    env.compose(&format!(
        "services:\n  a:\n    image: {IMAGE}\n    init: ${{INIT:-maybe}}\n    restart_after: 5s\n    healthcheck:\n      retries: three\n"
    ));
    let out = env.turtle(&["config", "--quiet"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for expected in [
        "compose.yaml:4: services.a.init: expected a boolean (true or false), got \"maybe\"",
        "compose.yaml:5: services.a.restart_after: unknown key",
        "compose.yaml:7: services.a.healthcheck.retries: expected a whole number, got \"three\"",
    ] {
        assert!(err.contains(expected), "{expected}\n--- in ---\n{err}");
    }
}
