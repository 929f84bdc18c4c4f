//! The supervisor's own healthcheck probes against the real engine: the
//! check the engine would run (the image's or the container's), as the
//! container's user, with its environment, cut at its timeout.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Cleanup, docker, test_image, unique};
use turtle_engine::Engine;
use turtle_runtime::probe::{Outcome, probe};

/// `docker run -d` with a healthcheck whose interval is far away, so that
/// only a probe can run the check during the test.
fn run(name: &str, extra: &[&str], check: &str, timeout: &str) -> String {
    let mut args = vec!["run", "-d", "--name", name];
    args.extend_from_slice(extra);
    let health = format!("--health-cmd={check}");
    let timeout = format!("--health-timeout={timeout}");
    args.extend_from_slice(&[&health, "--health-interval=1h", &timeout]);
    args.extend_from_slice(&[test_image(), "sleep", "3600"]);
    let out = Command::new("docker").args(&args).output().unwrap();
    assert!(
        out.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn a_probe_runs_the_check_as_the_engine_would() {
    let engine = docker();
    let mut cleanup = Cleanup::default();
    // Passes only as user 65534 with FOO=bar in the environment, in /tmp.
    let check = r#"test "$(id -u)" = 65534 && test "$FOO" = bar && test "$(pwd)" = /tmp"#;
    let nobody = unique("probe-user");
    cleanup.containers.push(nobody.clone());
    let id = run(
        &nobody,
        &["--user", "65534", "-e", "FOO=bar", "-w", "/tmp"],
        check,
        "10s",
    );
    let root = unique("probe-root");
    cleanup.containers.push(root.clone());
    let root_id = run(&root, &["-e", "FOO=bar", "-w", "/tmp"], check, "10s");

    let details = engine.inspect_container(&id).await.unwrap();
    let test = details.healthcheck.expect("the container's healthcheck");
    assert_eq!(test.test[0], "CMD-SHELL");
    assert_eq!(test.timeout, Some(Duration::from_secs(10)));
    assert_eq!(probe(&engine, &id, &test).await, Outcome::Pass);
    // The same check as root, or without the variable, fails.
    assert_eq!(probe(&engine, &root_id, &test).await, Outcome::Fail);
    let bare = unique("probe-bare");
    cleanup.containers.push(bare.clone());
    let bare_id = run(&bare, &["--user", "65534", "-w", "/tmp"], check, "10s");
    assert_eq!(probe(&engine, &bare_id, &test).await, Outcome::Fail);
    // The engine's status is untouched: its first check is an hour away.
    let health = engine.inspect_container(&id).await.unwrap().health;
    assert_eq!(health, Some(turtle_engine::Health::Starting));
}

#[tokio::test]
async fn a_check_that_hangs_is_cut_at_its_timeout() {
    let engine = docker();
    let mut cleanup = Cleanup::default();
    let name = unique("probe-hang");
    cleanup.containers.push(name.clone());
    let id = run(&name, &[], "sleep 600", "1s");
    let test = engine
        .inspect_container(&id)
        .await
        .unwrap()
        .healthcheck
        .unwrap();
    // The guard only keeps a broken probe from hanging the test run.
    let outcome = tokio::time::timeout(Duration::from_secs(60), probe(&engine, &id, &test))
        .await
        .expect("the probe returns at its timeout, not when the check ends");
    assert_eq!(outcome, Outcome::TimedOut);
}

#[tokio::test]
async fn no_healthcheck_and_none_give_nothing_to_probe() {
    let engine = docker();
    let mut cleanup = Cleanup::default();
    let name = unique("probe-none");
    cleanup.containers.push(name.clone());
    let out = Command::new("docker")
        .args(["run", "-d", "--name", &name, "--no-healthcheck"])
        .args([test_image(), "sleep", "3600"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(
        engine.inspect_container(&id).await.unwrap().healthcheck,
        None
    );
}
