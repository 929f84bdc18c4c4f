//! The health gate: after the switch, a release must run healthy for its
//! settle window.
//!
//! Every container of the project is watched from the switch to the end of
//! the window (a look every [`LOOK`]: a list and one inspect per container,
//! cheap enough for a small board):
//!
//! - one that exits with an error, is unhealthy, is restarted (by its
//!   restart policy: a crash; by anyone: its start time changed) or goes
//!   away fails the release at once, naming the container and why;
//! - at the window's end, every container must be running and healthy (by
//!   the engine's check, or by a probe of its own healthcheck,
//!   [`crate::probe`], as `up --wait` believes it); a one-shot must have
//!   finished with 0.
//!
//! So a release that crash-loops, never turns healthy, or whose image
//! exits at once is caught within the window, usually at its first crash.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;
use turtle_compose::Project;
use turtle_engine::{Engine, Health, State};
use turtle_reconcile::names;

use crate::apply;
use crate::probe::Probes;
use crate::ready::{self, Became};

/// How often the gate looks.
pub const LOOK: Duration = Duration::from_millis(500);

/// Why a release failed its gate.
pub type Verdict = Result<(), String>;

/// Watches `project` (as deployed) for `window`; see the module docs.
pub async fn settle<E: Engine>(
    engine: &E,
    project: &Project,
    window: Duration,
    opts: &apply::Options,
    report: &(dyn Fn(Became) + Send + Sync),
) -> Verdict {
    let probes = Probes::new(opts.probe);
    let deadline = Instant::now() + window;
    let filter = names::project_filter(&project.name);
    // Each container's start time and restart count when first seen.
    let mut first: HashMap<String, (Option<String>, i64)> = HashMap::new();
    loop {
        let containers = engine
            .list_containers(&filter)
            .await
            .map_err(|e| format!("cannot list the project's containers: {e}"))?;
        let mut ids: Vec<&str> = Vec::new();
        let mut not_ready = Vec::new();
        for c in &containers {
            ids.push(&c.id);
            let d = engine
                .inspect_container(&c.id)
                .await
                .map_err(|e| format!("container {}: {e}", c.name))?;
            let (started, restarts) = first
                .entry(c.id.clone())
                .or_insert_with(|| (d.started_at.clone(), d.restart_count));
            if d.restart_count > *restarts {
                return Err(format!(
                    "container {} crashed and was restarted (last exit code {})",
                    c.name,
                    d.exit_code.unwrap_or(-1)
                ));
            }
            if *started != d.started_at && d.state == State::Running {
                return Err(format!("container {} was restarted", c.name));
            }
            match (d.state, d.health) {
                (State::Restarting, _) => {
                    return Err(format!(
                        "container {} is restarting: a crash loop (last exit code {})",
                        c.name,
                        d.exit_code.unwrap_or(-1)
                    ));
                }
                (State::Exited | State::Dead, _) if d.exit_code != Some(0) => {
                    return Err(format!(
                        "container {} exited with code {}",
                        c.name,
                        d.exit_code.unwrap_or(-1)
                    ));
                }
                (State::Exited | State::Dead, _) if !one_shot(project, c, &d) => {
                    return Err(format!(
                        "container {} exited (code 0), and its service is not a one-shot",
                        c.name
                    ));
                }
                (State::Exited | State::Dead, _) => {}
                (_, Some(Health::Unhealthy)) => {
                    return Err(format!("container {} is unhealthy", c.name));
                }
                (State::Running, None) => {}
                (State::Running, Some(_))
                    if ready::healthy(engine, project, &probes, c, report).await => {}
                _ => not_ready.push(c.name.clone()),
            }
        }
        // A container seen before and gone now was removed or replaced.
        if let Some(gone) = first.keys().find(|id| !ids.contains(&id.as_str())) {
            return Err(format!(
                "container {} went away during the settle window",
                &gone[..12.min(gone.len())]
            ));
        }
        for (name, s) in &project.services {
            let has = containers
                .iter()
                .any(|c| c.labels.get(names::SERVICE).map(String::as_str) == Some(name.as_str()));
            if s.replicas > 0 && !has {
                return Err(format!("service {name} has no container"));
            }
        }
        if Instant::now() >= deadline {
            return match not_ready.is_empty() {
                true => Ok(()),
                false => Err(format!(
                    "not healthy at the end of the {} s settle window: {}",
                    window.as_secs_f32(),
                    not_ready.join(", ")
                )),
            };
        }
        tokio::time::sleep(LOOK.min(deadline.saturating_duration_since(Instant::now()))).await;
    }
}

/// Whether `c` belongs to a one-shot: a service others wait on to complete,
/// or one without a healthcheck that is not restarted.
fn one_shot(
    project: &Project,
    c: &turtle_engine::ContainerSummary,
    d: &turtle_engine::ContainerDetails,
) -> bool {
    let Some(service) = c.labels.get(names::SERVICE) else {
        return false;
    };
    let waited_on = project.services.values().any(|s| {
        s.depends_on.iter().any(|(n, d)| {
            n.as_str() == service
                && d.condition == turtle_compose::Condition::ServiceCompletedSuccessfully
        })
    });
    waited_on
        || d.healthcheck.is_none()
            && project.services.get(service.as_str()).is_some_and(|s| {
                matches!(
                    s.restart,
                    turtle_compose::RestartPolicy::No | turtle_compose::RestartPolicy::OnFailure(_)
                )
            })
}
