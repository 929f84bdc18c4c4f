//! Fast health (issue 13): a starting service's healthcheck is probed by the
//! supervisor itself, so a `service_healthy` chain does not wait for the
//! engine's first interval; with probing off, the engine's check is waited
//! for, as before.

use serde_json::Value;
use turtle_e2e::{DEFAULT_CONFIG, Env, IMAGE, inspect};

/// A chain c0 <- c1 <- c2 (`service_healthy`), where c0 and c1 become ready
/// one second after they start and the engine would check them only after
/// `interval`. `c0_labels` go on c0.
fn chain(interval: &str, c0_labels: &str) -> String {
    let link = |name: &str, after: Option<&str>, labels: &str| {
        let depends = after
            .map(|a| format!("    depends_on: {{{a}: {{condition: service_healthy}}}}\n"))
            .unwrap_or_default();
        format!(
            r#"  {name}:
    image: {IMAGE}
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep 3600"]
    stop_signal: SIGKILL
    labels: {{{labels}}}
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready"]
      interval: {interval}
      timeout: 5s
      retries: 3
{depends}"#
        )
    };
    format!(
        "services:\n{}{}  c2:\n    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n    depends_on: {{c1: {{condition: service_healthy}}}}\n",
        link("c0", None, c0_labels),
        link("c1", Some("c0"), "")
    )
}

fn health(env: &Env, service: &str) -> Value {
    inspect(&env.container(service)).expect("container")["State"]["Health"].clone()
}

/// `turtle up`, asserting success; returns what it wrote on stderr.
fn up(env: &Env) -> String {
    let out = env.turtle(&["up"]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "turtle up failed:\n{err}");
    err
}

#[test]
fn a_chain_starts_in_order_long_before_the_engines_first_check() {
    let mut env = Env::new("probe");
    // The engine's first check of c0 and c1 is a minute after their start.
    env.compose(&chain("60s", ""));
    env.start_daemon();
    let err = up(&env);

    // c2 runs, so c1 was healthy, so c0 was: yet the engine has checked
    // neither of them (no log entry, still starting). Only probes can have
    // said so, and `up` says they did.
    assert!(env.running("c2"));
    for dep in ["c0", "c1"] {
        let h = health(&env, dep);
        assert_eq!(h["Status"], "starting", "{dep}: {h}");
        assert!(
            h["Log"].as_array().is_none_or(|l| l.is_empty()),
            "{dep}: {h}"
        );
        let said = format!("{}-{dep}-1 healthy (probed after", env.project);
        assert!(err.contains(&said), "{said}\n--- in ---\n{err}");
    }
    // The event log says so too.
    let events = env.ok(&["events", "-n", "100"]);
    assert!(events.contains("healthy (probed after"), "{events}");
}

#[test]
fn with_probing_off_the_engines_check_is_waited_for() {
    // Off for one service, by its label.
    let mut env = Env::new("noprobe");
    env.compose(&chain("1s", "io.turtle.probe: \"false\""));
    env.start_daemon();
    let err = up(&env);
    let said = format!("{}-c0-1 healthy (engine check)", env.project);
    assert!(err.contains(&said), "{said}\n--- in ---\n{err}");
    let log = health(&env, "c0")["Log"].clone();
    assert!(log.as_array().is_some_and(|l| !l.is_empty()), "{log}");

    // Off for the box, in turtle.yaml.
    let mut env = Env::new("noprobebox");
    env.config(&format!("{DEFAULT_CONFIG}health: {{probe: false}}\n"));
    env.compose(&chain("1s", ""));
    env.start_daemon();
    let err = up(&env);
    assert!(!err.contains("probed after"), "{err}");
    for dep in ["c0", "c1"] {
        let said = format!("{}-{dep}-1 healthy (engine check)", env.project);
        assert!(err.contains(&said), "{said}\n--- in ---\n{err}");
    }
    assert!(env.running("c2"));
}
