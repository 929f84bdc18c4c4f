//! Fast health: while a container with a healthcheck is starting, the
//! supervisor runs that healthcheck itself, inside the container through the
//! engine's exec, so that nothing waits for the engine's first interval.
//!
//! The engine runs a container's first check one full `interval` after the
//! start (`start_interval` needs API 1.44, and few files set it), so every
//! `service_healthy` link of a chain used to cost start + interval. A probe
//! runs the check the engine would run (the container's own healthcheck,
//! else its image's: `CMD` as an argument list, `CMD-SHELL` under
//! `/bin/sh -c`; as the container's user, with its environment and working
//! directory, which exec inherits; cut at the check's `timeout`) at a short
//! interval of its own: 100 ms, doubling after each failure up to the
//! service's `start_interval`, else 500 ms. One probe at most is in flight
//! per container.
//!
//! The first passing probe makes the container ready for `depends_on:
//! service_healthy`, `up --wait` and the release health gate ([`Probes`] is
//! shared by the waits of one `up`). Nothing else: the engine's health status
//! stays the truth for keep-alive, unhealthy restarts and `ps`, and a failing
//! probe never marks anything unhealthy.
//!
//! A probe cut at its timeout is abandoned, not killed (the engine has no call
//! to stop an exec), so after one timeout the container is not probed again
//! and its waits fall back to the engine's status: one stray check at most.
//!
//! Off for a service with the label `io.turtle.probe: "false"` (a check with
//! side effects), and for the box with `health: {probe: false}` in
//! `turtle.yaml` (a weak CPU).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use turtle_engine::{ContainerSummary, Engine, ExecSpec, Health, HealthTest, State};

/// The label that turns probing off for a service (`"false"`).
pub const LABEL: &str = "io.turtle.probe";

/// The first wait between two probes of a container.
const FIRST_DELAY: Duration = Duration::from_millis(100);
/// The longest wait between two probes, when the service sets no
/// `start_interval`.
const DEFAULT_CAP: Duration = Duration::from_millis(500);
/// The engine's default healthcheck timeout.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The probes of one `up` (or one wait): per container, what is known.
#[derive(Default)]
pub struct Probes {
    enabled: bool,
    containers: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    /// Containers whose readiness was already told.
    told: Mutex<std::collections::HashSet<String>>,
}

#[derive(Default)]
struct Slot {
    /// `None` until the container was inspected; then its check, if any.
    test: Option<Option<HealthTest>>,
    /// When the first probe ran.
    first: Option<Instant>,
    next: Option<Instant>,
    delay: Duration,
    /// How long after the first probe one passed.
    passed: Option<Duration>,
    /// A probe ran into its timeout: no more probes of this container.
    gave_up: bool,
}

impl Probes {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            ..Default::default()
        }
    }

    /// True the first time it is asked for a container: its readiness is
    /// told once, however many waits see it.
    pub fn first_ready(&self, id: &str) -> bool {
        self.told
            .lock()
            .expect("the probes' set is never poisoned")
            .insert(id.to_string())
    }

    /// Whether the starting container `c` passed its own healthcheck: the
    /// time from the first probe to the passing one. Probes it now when a
    /// probe is due; answers at once otherwise. `start_interval` is the
    /// service's, if the file sets one.
    pub async fn passed<E: Engine>(
        &self,
        engine: &E,
        c: &ContainerSummary,
        start_interval: Option<Duration>,
    ) -> Option<Duration> {
        if !self.enabled
            || c.state != State::Running
            || c.health != Some(Health::Starting)
            || c.labels.get(LABEL).is_some_and(|v| v == "false")
        {
            return None;
        }
        let slot = self
            .containers
            .lock()
            .expect("the probes' map is never poisoned")
            .entry(c.id.clone())
            .or_default()
            .clone();
        // One probe in flight per container: the others wait here, then
        // see its outcome.
        let mut slot = slot.lock().await;
        if slot.passed.is_some() || slot.gave_up {
            return slot.passed;
        }
        let now = Instant::now();
        if slot.next.is_some_and(|next| now < next) {
            return None;
        }
        if slot.test.is_none() {
            let details = engine.inspect_container(&c.id).await.ok()?;
            slot.test = Some(details.healthcheck);
        }
        let Some(Some(test)) = slot.test.clone() else {
            return None;
        };
        let first = *slot.first.get_or_insert(now);
        match probe(engine, &c.id, &test).await {
            Outcome::Pass => {
                slot.passed = Some(Instant::now() - first);
            }
            Outcome::Fail => {
                let cap = start_interval.unwrap_or(DEFAULT_CAP).max(FIRST_DELAY);
                slot.delay = match slot.delay {
                    d if d.is_zero() => FIRST_DELAY,
                    d => (d * 2).min(cap),
                };
                slot.next = Some(Instant::now() + slot.delay);
            }
            Outcome::TimedOut => slot.gave_up = true,
        }
        slot.passed
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Fail,
    /// The check ran past its timeout (it was abandoned, not killed).
    TimedOut,
}

/// The command a healthcheck runs, as the engine runs it: `CMD` as given,
/// `CMD-SHELL` under `/bin/sh -c`.
pub fn command(test: &HealthTest) -> Option<Vec<String>> {
    match test.test.split_first() {
        Some((kind, args)) if kind == "CMD" && !args.is_empty() => Some(args.to_vec()),
        Some((kind, [script])) if kind == "CMD-SHELL" => {
            Some(vec!["/bin/sh".into(), "-c".into(), script.clone()])
        }
        _ => None,
    }
}

/// Runs the check once in the container.
pub async fn probe<E: Engine>(engine: &E, id: &str, test: &HealthTest) -> Outcome {
    let Some(command) = command(test) else {
        return Outcome::Fail;
    };
    // No user, environment or directory: exec takes the container's, as the
    // engine's own check does.
    let spec = ExecSpec {
        command,
        ..Default::default()
    };
    let timeout = test.timeout.unwrap_or(DEFAULT_TIMEOUT);
    match tokio::time::timeout(timeout, engine.exec(id, &spec)).await {
        Ok(Ok(outcome)) if outcome.exit_code == 0 => Outcome::Pass,
        Ok(_) => Outcome::Fail,
        Err(_) => Outcome::TimedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test(t: &[&str]) -> HealthTest {
        HealthTest {
            test: t.iter().map(|s| s.to_string()).collect(),
            timeout: None,
        }
    }

    #[test]
    fn commands_as_the_engine_runs_them() {
        assert_eq!(
            command(&test(&["CMD", "wget", "-q", "http://x/"])),
            Some(vec!["wget".into(), "-q".into(), "http://x/".into()])
        );
        assert_eq!(
            command(&test(&["CMD-SHELL", "test -f /ready || exit 1"])),
            Some(vec![
                "/bin/sh".into(),
                "-c".into(),
                "test -f /ready || exit 1".into()
            ])
        );
        assert_eq!(command(&test(&["NONE"])), None);
        assert_eq!(command(&test(&["CMD"])), None);
    }
}
