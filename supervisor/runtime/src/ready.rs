//! Readiness: the `depends_on` conditions a container waits for before it is
//! created or started ([`wait_dependencies`]), and `up --wait`
//! ([`wait_ready`]). Both poll the engine with a deadline; a starting
//! container with a healthcheck is probed meanwhile ([`crate::probe`]), and
//! its first passing probe counts as healthy here (and only here).

use std::time::Duration;

// tokio's clock, so tests of deadlines run under paused time.
use tokio::time::Instant;

use turtle_compose::{Condition, Project};
use turtle_engine::{ContainerSummary, Engine, Health, State};
use turtle_reconcile::names;
use turtle_reconcile::plan::dependencies;

use crate::apply::{ApplyError, Options};
use crate::probe::Probes;

/// How a container became ready, told once per container.
#[derive(Debug, Clone, PartialEq)]
pub struct Became {
    pub service: String,
    pub container: String,
    /// `Some`: a probe of its healthcheck passed this long after the first
    /// probe; `None`: the engine's own check said healthy first.
    pub probed_after: Option<Duration>,
}

impl std::fmt::Display for Became {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.probed_after {
            Some(after) => write!(
                f,
                "{} healthy (probed after {:.1} s)",
                self.container,
                after.as_secs_f64()
            ),
            None => write!(f, "{} healthy (engine check)", self.container),
        }
    }
}

/// Where a wait tells how a dependency became ready.
pub type Report<'a> = &'a (dyn Fn(Became) + Send + Sync);

/// The `start_interval` of a container's service, from its labels.
fn start_interval(project: &Project, c: &ContainerSummary) -> Option<Duration> {
    let service = c.labels.get(names::SERVICE)?;
    project
        .services
        .get(service.as_str())?
        .healthcheck
        .as_ref()?
        .start_interval
        .map(|d| d.as_std())
}

/// Whether a container counts as healthy: the engine says so, or (while it
/// is starting) a probe of its own healthcheck passed. Reports which.
pub(crate) async fn healthy<E: Engine>(
    engine: &E,
    project: &Project,
    probes: &Probes,
    c: &ContainerSummary,
    report: Report<'_>,
) -> bool {
    let probed_after = match c.health {
        Some(Health::Healthy) => None,
        _ => match probes.passed(engine, c, start_interval(project, c)).await {
            Some(after) => Some(after),
            None => return false,
        },
    };
    if probes.first_ready(&c.id) {
        report(Became {
            service: c.labels.get(names::SERVICE).cloned().unwrap_or_default(),
            container: c.name.clone(),
            probed_after,
        });
    }
    true
}

/// Waits until every container of the project is running, and healthy where
/// it has a healthcheck (`up --wait`). Finished one-shots (exited 0) count as
/// ready; a container that turned unhealthy or exited with an error fails the
/// wait at once.
pub async fn wait_ready<E: Engine>(
    engine: &E,
    project: &Project,
    timeout: Duration,
    opts: &Options,
    report: Report<'_>,
) -> Result<(), ApplyError> {
    let fail = |service: &str, reason: String| ApplyError::Dependency {
        service: "up --wait".into(),
        dependency: service.to_string(),
        reason,
    };
    let probes = Probes::new(opts.probe);
    let deadline = Instant::now() + timeout;
    let filter = names::project_filter(&project.name);
    loop {
        let containers =
            engine
                .list_containers(&filter)
                .await
                .map_err(|source| ApplyError::Engine {
                    what: "up --wait".into(),
                    source,
                })?;
        let mut waiting = None;
        for c in &containers {
            let service = c
                .labels
                .get(names::SERVICE)
                .map(String::as_str)
                .unwrap_or("?");
            let probed = c.state == State::Running
                && matches!(c.health, Some(Health::Starting | Health::Healthy))
                && healthy(engine, project, &probes, c, report).await;
            match (c.state, c.health) {
                (State::Running, None) => {}
                (State::Running, Some(Health::Starting | Health::Healthy)) if probed => {}
                (_, Some(Health::Unhealthy)) => {
                    return Err(fail(service, format!("container {} is unhealthy", c.name)));
                }
                (State::Exited | State::Dead, _) => {
                    let code = engine
                        .inspect_container(&c.id)
                        .await
                        .map_err(|source| ApplyError::Engine {
                            what: "up --wait".into(),
                            source,
                        })?
                        .exit_code;
                    if code != Some(0) {
                        return Err(fail(
                            service,
                            format!(
                                "container {} exited with code {}",
                                c.name,
                                code.unwrap_or(-1)
                            ),
                        ));
                    }
                }
                _ => waiting = Some((service.to_string(), c.name.clone())),
            }
        }
        let Some((service, name)) = waiting else {
            return Ok(());
        };
        if Instant::now() >= deadline {
            return Err(fail(
                &service,
                format!("container {name} not ready after {}s", timeout.as_secs()),
            ));
        }
        tokio::time::sleep(opts.poll_interval).await;
    }
}

/// Waits until every dependency of `service` meets its condition.
pub async fn wait_dependencies<E: Engine>(
    engine: &E,
    project: &Project,
    service: &str,
    opts: &Options,
    probes: &Probes,
    report: Report<'_>,
) -> Result<(), ApplyError> {
    let deps = dependencies(&project.services[service]);
    let waits = deps.iter().map(|(dep, cond, _)| {
        let wait = Wait {
            project,
            service,
            dep,
            cond: *cond,
        };
        wait.until_met(engine, opts, probes, report)
    });
    futures_util::future::try_join_all(waits).await?;
    Ok(())
}

/// One dependency of one service.
struct Wait<'a> {
    project: &'a Project,
    service: &'a str,
    dep: &'a str,
    cond: Condition,
}

impl Wait<'_> {
    fn fail(&self, reason: String) -> ApplyError {
        ApplyError::Dependency {
            service: self.service.to_string(),
            dependency: self.dep.to_string(),
            reason,
        }
    }

    async fn until_met<E: Engine>(
        self,
        engine: &E,
        opts: &Options,
        probes: &Probes,
        report: Report<'_>,
    ) -> Result<(), ApplyError> {
        let mut filter = names::project_filter(&self.project.name);
        filter.push(format!("{}={}", names::SERVICE, self.dep));
        let deadline = Instant::now() + opts.dependency_timeout;
        loop {
            let containers = engine
                .list_containers(&filter)
                .await
                .map_err(|e| self.fail(e.to_string()))?;
            let mut all_met = !containers.is_empty();
            for c in &containers {
                all_met &= self.met(engine, c, probes, report).await?;
            }
            if all_met {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(self.fail(format!(
                    "condition {:?} not met after {}s",
                    self.cond,
                    opts.dependency_timeout.as_secs()
                )));
            }
            tokio::time::sleep(opts.poll_interval).await;
        }
    }

    /// Whether one container of the dependency meets the condition; an
    /// error when it never will.
    async fn met<E: Engine>(
        &self,
        engine: &E,
        c: &ContainerSummary,
        probes: &Probes,
        report: Report<'_>,
    ) -> Result<bool, ApplyError> {
        Ok(match self.cond {
            Condition::ServiceStarted => {
                matches!(c.state, State::Running | State::Restarting | State::Exited)
            }
            Condition::ServiceHealthy => match (c.state, c.health) {
                (_, Some(Health::Healthy)) => {
                    healthy(engine, self.project, probes, c, report).await
                }
                (State::Running, None) => {
                    return Err(self.fail(format!(
                        "container {} has no healthcheck (neither in the compose file nor in its image): add one or use condition service_started",
                        c.name
                    )));
                }
                (_, Some(Health::Unhealthy)) => {
                    return Err(self.fail(format!("container {} is unhealthy", c.name)));
                }
                (State::Exited | State::Dead, _) => {
                    return Err(
                        self.fail(format!("container {} exited before it was healthy", c.name))
                    );
                }
                (State::Running, Some(Health::Starting)) => {
                    healthy(engine, self.project, probes, c, report).await
                }
                _ => false,
            },
            Condition::ServiceCompletedSuccessfully => match c.state {
                State::Exited | State::Dead => {
                    let d = engine
                        .inspect_container(&c.id)
                        .await
                        .map_err(|e| self.fail(e.to_string()))?;
                    match d.exit_code {
                        Some(0) => true,
                        code => {
                            return Err(self.fail(format!(
                                "container {} exited with code {} (service_completed_successfully needs 0)",
                                c.name,
                                code.unwrap_or(-1)
                            )));
                        }
                    }
                }
                _ => false,
            },
        })
    }
}
