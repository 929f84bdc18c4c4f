//! What `ps` shows, and `start`/`stop`/`restart` of a service.

use serde::{Deserialize, Serialize};
use turtle_compose::{ProjectName, ServiceName};
use turtle_engine::{Engine, Health, State};
use turtle_reconcile::names;
use turtle_reconcile::observe::number_of;

use super::{Error, Supervisor, list};

/// What `ps` shows for one container.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerStatus {
    pub service: String,
    pub name: String,
    pub id: String,
    pub state: State,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// Restarts by the engine's restart policy plus restarts by the supervisor.
    pub restarts: i64,
    pub crash_loop: bool,
    /// Stopped on purpose with `turtle stop`.
    pub held: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProjectStatus {
    pub name: String,
    /// Whether the supervisor keeps this project alive (it was applied here).
    pub applied: bool,
    pub containers: Vec<ContainerStatus>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceAction {
    Start,
    Stop,
    Restart,
}

/// A command to run in a service's container (`turtle exec`, and the
/// parent's `turtle devices exec` over the VPN).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecRequest {
    pub command: Vec<String>,
    /// Which replica (1-based; default the lowest running).
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub user: Option<String>,
    #[serde(default)]
    pub workdir: Option<String>,
    /// `KEY=value` entries.
    #[serde(default)]
    pub env: Vec<String>,
}

/// How a command run by [`Supervisor::exec`] ended, with its output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecResult {
    /// The container it ran in.
    pub container: String,
    pub exit_code: i64,
    pub stdout: String,
    pub stderr: String,
    /// Output past [`EXEC_OUTPUT_LIMIT`] bytes of a stream was dropped.
    pub truncated: bool,
}

/// The output of an exec kept per stream: the command's answer is read by
/// a person, and one request must stay bounded.
pub const EXEC_OUTPUT_LIMIT: usize = 1 << 20;

impl<E: Engine> Supervisor<E> {
    /// Runs a command in a running container of a service and waits for
    /// it: no terminal and no standard input (`docker exec` without
    /// `-it`).
    pub async fn exec(
        &self,
        name: &ProjectName,
        service: &ServiceName,
        request: &ExecRequest,
    ) -> Result<ExecResult, Error> {
        if request.command.is_empty() {
            return Err(Error::Incomplete(
                "no command to run: give one after the service (turtle exec SERVICE -- CMD ...)"
                    .into(),
            ));
        }
        let mut running: Vec<_> = self
            .handle
            .engine
            .list_containers(&names::service_filter(name, service))
            .await?
            .into_iter()
            .filter(|c| c.state == State::Running)
            .collect();
        running.sort_by_key(number_of);
        let unknown = || Error::UnknownService {
            project: name.into(),
            service: service.into(),
        };
        let container = match request.index {
            Some(n) => running.into_iter().find(|c| number_of(c) == n).ok_or_else(|| {
                Error::Incomplete(format!(
                    "service {service} of project {name} has no running replica {n} (see turtle ps)"
                ))
            })?,
            None => running.into_iter().next().ok_or_else(|| {
                if self.handle.store.project(name).ok().flatten().is_some_and(|p| p.services.contains_key(service.as_str())) {
                    Error::Incomplete(format!(
                        "service {service} of project {name} has no running container: start it first (turtle start {service})"
                    ))
                } else {
                    unknown()
                }
            })?,
        };
        let spec = turtle_engine::ExecSpec {
            command: request.command.clone(),
            user: request.user.clone(),
            working_dir: request.workdir.clone(),
            env: request.env.clone(),
            capture: EXEC_OUTPUT_LIMIT,
            ..Default::default()
        };
        let out = self.handle.engine.exec(&container.id, &spec).await?;
        self.record(
            name,
            Some(service),
            None,
            "exec",
            &format!(
                "ran {:?} in {} by request: exit code {}",
                request.command.join(" "),
                container.name,
                out.exit_code
            ),
        );
        Ok(ExecResult {
            container: container.name,
            exit_code: out.exit_code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            truncated: out.truncated,
        })
    }

    /// Names of the projects applied here, plus any with containers on the
    /// engine (a container whose project label is not a project name is
    /// not one of Turtle's: it is left out).
    pub async fn project_names(&self) -> Result<Vec<ProjectName>, Error> {
        let mut names: Vec<ProjectName> = self
            .handle
            .store
            .projects()?
            .into_iter()
            .map(|p| p.name)
            .collect();
        for c in self
            .handle
            .engine
            .list_containers(&names::managed_filter())
            .await?
        {
            if let Some(p) = c.labels.get(names::PROJECT)
                && let Ok(p) = p.parse::<ProjectName>()
                && !names.contains(&p)
            {
                names.push(p);
            }
        }
        names.sort();
        Ok(names)
    }

    pub async fn status(&self, name: &ProjectName) -> Result<ProjectStatus, Error> {
        let applied = self.handle.store.project(name)?.is_some();
        let held = self.handle.store.held(name)?;
        let restarts = self.handle.store.restarts(name)?;
        let mut listed = self
            .handle
            .engine
            .list_containers(&names::project_filter(name))
            .await?;
        listed.sort_by(|a, b| {
            (a.labels.get(names::SERVICE), number_of(a))
                .cmp(&(b.labels.get(names::SERVICE), number_of(b)))
        });
        let details = futures_util::future::join_all(
            listed
                .iter()
                .map(|c| self.handle.engine.inspect_container(&c.id)),
        )
        .await;
        let mut containers = Vec::new();
        for (c, d) in listed.iter().zip(details) {
            let Ok(d) = d else { continue };
            let service = c.labels.get(names::SERVICE).cloned().unwrap_or_default();
            let running = d.state == State::Running;
            containers.push(ContainerStatus {
                crash_loop: self.in_crash_loop(name, &service),
                held: held.contains(&service),
                restarts: d.restart_count + restarts.get(&service).copied().unwrap_or(0),
                name: c.name.clone(),
                id: c.id.chars().take(12).collect(),
                state: d.state,
                health: d.health,
                exit_code: if running { None } else { d.exit_code },
                started_at: d.started_at,
                service,
            });
        }
        if !applied && containers.is_empty() {
            return Err(Error::UnknownProject(name.to_string()));
        }
        Ok(ProjectStatus {
            name: name.to_string(),
            applied,
            containers,
        })
    }

    /// Output of the project's containers (see [`crate::logs::lines`]): of
    /// `services`, else of every service the applied project does not mark
    /// `attach: false`.
    pub async fn log_lines(
        &self,
        name: &ProjectName,
        services: &[String],
        follow: bool,
        tail: Option<u64>,
    ) -> Result<turtle_engine::BoxStream<Result<String, turtle_engine::EngineError>>, Error> {
        let unattached = match self.handle.store.project(name)? {
            Some(p) => crate::logs::unattached(&p),
            None => Vec::new(),
        };
        Ok(crate::logs::lines(
            &*self.handle.engine,
            name,
            services,
            &unattached,
            follow,
            tail,
        )
        .await?)
    }

    /// Starts, stops or restarts every container of a service.
    pub async fn service_action(
        &self,
        name: &ProjectName,
        service: &ServiceName,
        action: ServiceAction,
    ) -> Result<Vec<String>, Error> {
        let lock = self.lock_for(name);
        let _guard = lock.lock().await;
        let project = self.handle.store.project(name)?;
        if let Some(p) = &project
            && !p.services.contains_key(service.as_str())
        {
            return Err(Error::UnknownService {
                project: name.into(),
                service: service.into(),
            });
        }
        let mut filter = names::project_filter(name);
        filter.push(format!("{}={service}", names::SERVICE));
        let containers = self.handle.engine.list_containers(&filter).await?;
        if containers.is_empty() {
            return Err(Error::UnknownService {
                project: name.into(),
                service: service.into(),
            });
        }
        match action {
            ServiceAction::Stop => self.handle.store.set_held(name, service, true)?,
            ServiceAction::Start | ServiceAction::Restart => {
                self.handle.store.set_held(name, service, false)?
            }
        }
        let mut done = Vec::new();
        for c in &containers {
            let p = project.as_ref();
            match action {
                ServiceAction::Start => {
                    self.handle.engine.start_container(&c.id).await?;
                    self.post_start(p, c).await?;
                }
                // No timeout: the engine uses the container's own stop timeout.
                ServiceAction::Stop => {
                    self.pre_stop(p, c).await;
                    self.handle.engine.stop_container(&c.id, None).await?
                }
                ServiceAction::Restart => {
                    self.pre_stop(p, c).await;
                    self.handle.engine.restart_container(&c.id, None).await?;
                    self.post_start(p, c).await?;
                }
            }
            done.push(c.name.clone());
        }
        let verb = match action {
            ServiceAction::Start => "started",
            ServiceAction::Stop => "stopped",
            ServiceAction::Restart => "restarted",
        };
        self.record(
            name,
            Some(service),
            None,
            verb,
            &format!("{verb} by request: {}", list(&done)),
        );
        Ok(done)
    }
}
