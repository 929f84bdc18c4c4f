//! The supervisor: applies projects and keeps them alive.
//!
//! [`Supervisor`] owns the operations (up, down, status, service actions) that
//! the daemon's API and the daemon-less CLI both call, and the keep-alive loop
//! ([`Supervisor::run`]):
//!
//! - it follows the engine's event stream for containers Turtle manages: a
//!   `die` is logged and counted (crash-loop detection), a `health_status:
//!   unhealthy` restarts the container when its service allows it (the engine
//!   never does), a `destroy` triggers a repair of the project;
//! - it resyncs every project on a period and whenever the event stream comes
//!   back after a drop (for example after the engine restarted): a repair
//!   re-creates vanished containers and restarts unhealthy ones it missed.
//!
//! Crashed containers are restarted by the engine's own restart policy, so
//! they come back even while the supervisor is down. A project is never
//! reconciled twice at once: each has its own lock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::time::Instant;
use turtle_compose::{Project, RestartPolicy, Service};

use crate::apply::{self, ApplyError, Report};
use crate::device::{Device, DeviceError};
use crate::engine::{ContainerSummary, Engine, EngineError, EngineEvent, Health, State};
use crate::engine_trust::{EngineTrust, EngineTrustError};
use crate::names;
use crate::observe::{number_of, observe};
use crate::plan::{self, Mode, Plan, PlanError};
use crate::secrets::{SecretError, Secrets};
use crate::shed::Shedder;
use crate::store::{EventRecord, Store, StoreError};
use crate::trust::{Trust, TrustError};

#[derive(Debug, Clone)]
pub struct Config {
    /// How often every project is resynced even without events.
    pub resync_interval: Duration,
    /// A service whose containers crashed this many times within the window
    /// is in a crash loop.
    pub crash_loop_deaths: usize,
    pub crash_loop_window: Duration,
    pub apply: apply::Options,
    /// What the daemon publishes over mDNS.
    pub mdns: crate::config::MdnsSection,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            resync_interval: Duration::from_secs(30),
            crash_loop_deaths: 5,
            crash_loop_window: Duration::from_secs(300),
            apply: apply::Options::default(),
            mdns: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    EngineTrust(#[from] EngineTrustError),
    #[error("no project named {0} is applied here (see turtle ps --all)")]
    UnknownProject(String),
    #[error("project {project} has no service {service}")]
    UnknownService { project: String, service: String },
    #[error("{0}")]
    Incomplete(String),
}

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

/// How `up` goes about it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct UpOptions {
    /// Build every service that has a build section, even when its image exists.
    #[serde(default)]
    pub build: bool,
    /// After applying, wait this long for every service to be running (and
    /// healthy where it has a healthcheck).
    #[serde(default)]
    pub wait: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceAction {
    Start,
    Stop,
    Restart,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DownReport {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

pub struct Supervisor<E: Engine> {
    engine: Arc<E>,
    store: Arc<Store>,
    config: Config,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    events: broadcast::Sender<EventRecord>,
    /// When a kill (stop, restart, docker kill) was last requested, per container.
    kills: Mutex<HashMap<String, Instant>>,
    /// Containers with a heal under way.
    healing: Mutex<std::collections::HashSet<String>>,
    /// Full resyncs done since start.
    resyncs: std::sync::atomic::AtomicU64,
    /// Supervisor restarts per container (for backoff), with their times.
    heals: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// The CA and the trust injected into containers; `None` deploys
    /// projects exactly as written (the unit tests).
    trust: Option<Arc<Trust>>,
    /// The mDNS publisher, run by the daemon.
    announcer: Arc<crate::announce::Announcer>,
    /// The box's profile; `None` deploys without budgets (the unit tests).
    device: Option<Arc<Device>>,
    /// Thermal and memory-pressure shedding, run by the daemon.
    shedder: Option<Arc<Shedder>>,
    /// (project, service) whose new TLS leaf the running containers have
    /// not picked up yet.
    tls_pending: Mutex<std::collections::HashSet<(String, String)>>,
    /// What the engine was last set up with, per project (to record changes only).
    engine_setup: Mutex<HashMap<String, crate::engine_trust::Setup>>,
    /// The secrets made for services; `None` makes none (the unit tests).
    secrets: Option<Secrets>,
    /// The box's engine set up to trust and resolve the stack's registry.
    engine_trust: Option<EngineTrust>,
}

/// What the supervisor knows of the box it runs on.
#[derive(Default)]
pub struct BoxParts {
    pub trust: Option<Arc<Trust>>,
    pub device: Option<Arc<Device>>,
    pub secrets: Option<Secrets>,
    pub engine_trust: Option<EngineTrust>,
}

type Sink<'a> = &'a (dyn Fn(apply::Event) + Send + Sync);

impl<E: Engine> Supervisor<E> {
    pub fn new(engine: Arc<E>, store: Arc<Store>, config: Config) -> Arc<Self> {
        Self::with_box(engine, store, config, BoxParts::default())
    }

    /// A supervisor that injects the box's trust and budgets into every
    /// project it deploys.
    pub fn with_box(
        engine: Arc<E>,
        store: Arc<Store>,
        config: Config,
        parts: BoxParts,
    ) -> Arc<Self> {
        let shedder = parts.device.clone().map(Shedder::new);
        Arc::new(Self {
            trust: parts.trust,
            device: parts.device,
            secrets: parts.secrets,
            engine_trust: parts.engine_trust,
            shedder,
            tls_pending: Mutex::default(),
            engine_setup: Mutex::default(),
            announcer: Default::default(),
            engine,
            store,
            config,
            locks: Mutex::default(),
            events: broadcast::channel(1024).0,
            heals: Mutex::default(),
            kills: Mutex::default(),
            resyncs: Default::default(),
            healing: Mutex::default(),
        })
    }

    pub fn engine(&self) -> &E {
        &self.engine
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn trust(&self) -> Option<&Arc<Trust>> {
        self.trust.as_ref()
    }

    pub fn device(&self) -> Option<&Arc<Device>> {
        self.device.as_ref()
    }

    pub fn shedder(&self) -> Option<&Arc<Shedder>> {
        self.shedder.as_ref()
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// What is published over mDNS (see [`crate::announce`]).
    pub fn announcer(&self) -> &Arc<crate::announce::Announcer> {
        &self.announcer
    }

    /// The project as deployed: with the trust and names the supervisor
    /// injects (see [`crate::trust`]), the secrets services list (see
    /// [`crate::secrets`]) and the budgets of the box's profile (see
    /// [`crate::device`]).
    pub fn deployed(&self, project: &Project) -> Result<Project, Error> {
        let mut out = match &self.trust {
            Some(t) => t.decorate(project)?,
            None => project.clone(),
        };
        if let Some(s) = &self.secrets {
            out = s.decorate(&out)?;
        }
        if let Some(d) = &self.device {
            out = d.decorate(&out)?;
        }
        Ok(out)
    }

    /// Issues or renews the TLS leaves of `project`'s services; the services
    /// whose leaf changed are marked for a reload ([`Self::reload_tls`]).
    fn ensure_leaves(&self, project: &Project) -> Result<(), Error> {
        let Some(t) = &self.trust else {
            return Ok(());
        };
        let changes = t.ensure_leaves(project, std::time::SystemTime::now())?;
        for c in &changes {
            self.tls_pending
                .lock()
                .unwrap()
                .insert((project.name.clone(), c.service.clone()));
            let names = c.leaf.names.join(", ");
            self.record(
                &project.name,
                Some(&c.service),
                None,
                "certificate",
                &format!(
                    "issued a certificate for {names} (serial {}), valid until {}",
                    c.leaf.serial,
                    turtle_certs::rfc3339(c.leaf.not_after)
                ),
            );
        }
        Ok(())
    }

    /// Makes the secrets the project's services list (see [`crate::secrets`]).
    fn ensure_secrets(&self, project: &Project) -> Result<(), Error> {
        let Some(s) = &self.secrets else {
            return Ok(());
        };
        let made = s.ensure(project)?;
        if !made.is_empty() {
            self.record(
                &project.name,
                None,
                None,
                "secret",
                &format!(
                    "made {} (read one with `turtle secret NAME -p {}`)",
                    made.join(", "),
                    project.name
                ),
            );
        }
        Ok(())
    }

    /// Sets the box's engine up to trust and resolve the project's registry
    /// (see [`crate::engine_trust`]).
    fn ensure_engine_trust(&self, project: &Project) -> Result<(), Error> {
        let (Some(et), Some(t)) = (&self.engine_trust, &self.trust) else {
            return Ok(());
        };
        let before = self
            .engine_setup
            .lock()
            .unwrap()
            .get(&project.name)
            .cloned();
        let setup = et.apply(
            project,
            t.domain(),
            t.authority().root_pem(),
            crate::engine_trust::gateway_address,
        )?;
        if before.as_ref() != Some(&setup) && !setup.registries.is_empty() {
            self.record(
                &project.name,
                None,
                None,
                "engine-trust",
                &format!(
                    "the engine trusts Turtle's CA for {} and resolves {} at {}",
                    setup.registries.join(", "),
                    setup.names.join(", "),
                    setup.address.map(|a| a.to_string()).unwrap_or_default()
                ),
            );
        }
        self.engine_setup
            .lock()
            .unwrap()
            .insert(project.name.clone(), setup);
        Ok(())
    }

    /// Makes the running containers of services with a new leaf pick it up:
    /// the signal of `io.turtle.tls.reload`, else a restart. Services `apply`
    /// just (re)started already read it. A service stays marked until its
    /// reload succeeded (or it has no running container, which reads the
    /// leaf when it starts), so a failed apply or engine call is retried at
    /// the next repair.
    async fn reload_tls(&self, project: &Project, applied: &[String]) {
        let services: Vec<String> = self
            .tls_pending
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| *p == project.name)
            .map(|(_, s)| s.clone())
            .collect();
        if services.is_empty() {
            return;
        }
        let filter = names::project_filter(&project.name);
        let Ok(containers) = self.engine.list_containers(&filter).await else {
            return;
        };
        let done = |service: &String| {
            self.tls_pending
                .lock()
                .unwrap()
                .remove(&(project.name.clone(), service.clone()));
        };
        for service in &services {
            let of_service: Vec<_> = containers
                .iter()
                .filter(|c| c.labels.get(names::SERVICE) == Some(service))
                .collect();
            if applied.contains(service)
                || of_service
                    .iter()
                    .all(|c| c.state != State::Running && c.state != State::Paused)
            {
                done(service);
                continue;
            }
            // Paused (by shedding): reloaded once it runs again.
            if of_service.iter().any(|c| c.state == State::Paused) {
                continue;
            }
            let mut all_ok = true;
            let signal = project
                .services
                .get(service)
                .and_then(|s| s.labels.get(crate::trust::TLS_RELOAD_LABEL));
            for c in of_service.iter().filter(|c| c.state == State::Running) {
                let result = match signal {
                    Some(sig) => self.engine.kill_container(&c.id, sig).await,
                    None => self.engine.restart_container(&c.id, None).await,
                };
                let how = signal.map_or("restarted".to_string(), |s| format!("sent {s}"));
                match result {
                    Ok(()) => self.record(
                        &project.name,
                        Some(service),
                        Some(&c.name),
                        "certificate-reload",
                        &format!("{how} so it serves its new certificate"),
                    ),
                    Err(e) => {
                        all_ok = false;
                        self.record(
                            &project.name,
                            Some(service),
                            Some(&c.name),
                            "certificate-reload-failed",
                            &format!(
                                "cannot reload its certificate (retried at the next repair): {e}"
                            ),
                        )
                    }
                }
            }
            if all_ok {
                done(service);
            }
        }
    }

    /// Live events as they are recorded.
    pub fn subscribe(&self) -> broadcast::Receiver<EventRecord> {
        self.events.subscribe()
    }

    /// Logs, stores and broadcasts an event. A store failure is logged, not
    /// fatal: the event log must never stop the supervisor.
    pub fn record(
        &self,
        project: &str,
        service: Option<&str>,
        container: Option<&str>,
        kind: &str,
        message: &str,
    ) {
        tracing::info!(project, service, container, kind, "{message}");
        match self
            .store
            .record_event(project, service, container, kind, message)
        {
            Ok(ev) => {
                let _ = self.events.send(ev);
            }
            Err(e) => tracing::warn!("cannot record event: {e}"),
        }
    }

    fn lock_for(&self, project: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap()
            .entry(project.to_string())
            .or_default()
            .clone()
    }

    /// The plan `up` would run, without running it.
    pub async fn plan(&self, project: &Project, mode: Mode) -> Result<Plan, Error> {
        self.plan_deployed(&self.deployed(project)?, mode).await
    }

    async fn plan_deployed(&self, project: &Project, mode: Mode) -> Result<Plan, Error> {
        let observed = observe(&*self.engine, project).await?;
        let held = match mode {
            Mode::Up => Default::default(),
            Mode::Repair => self.store.held(&project.name)?,
        };
        Ok(plan::plan(
            project,
            &observed,
            &plan::Options { mode, held },
        )?)
    }

    /// Applies `project` and records it as the desired state.
    pub async fn up(
        &self,
        project: &Project,
        opts: &UpOptions,
        sink: Sink<'_>,
    ) -> Result<Report, Error> {
        let lock = self.lock_for(&project.name);
        let _guard = lock.lock().await;
        let written = project;
        let project = &self.deployed(written)?;
        if opts.build {
            // Build first, then plan: a service is recreated only when its
            // image ID really changed (an unchanged source hits the cache).
            let builds = plan::build_plan(project);
            apply::apply(&*self.engine, project, &builds, &self.config.apply, sink).await?;
        }
        // Plan before saving: a project that cannot be planned is not adopted.
        let plan = self.plan_deployed(project, Mode::Up).await?;
        // The project as written is stored: what is injected is worked out
        // again at every repair, from the supervisor's current config.
        self.store.save_project(written)?;
        self.store.clear_held(&project.name)?;
        self.ensure_leaves(written)?;
        self.ensure_secrets(written)?;
        self.ensure_engine_trust(written)?;
        let mut result =
            apply::apply(&*self.engine, project, &plan, &self.config.apply, sink).await;
        let applied = result
            .as_ref()
            .map(|r| r.changed.clone())
            .unwrap_or_default();
        self.reload_tls(project, &applied).await;
        if let (Ok(_), Some(timeout)) = (&result, opts.wait)
            && let Err(e) = apply::wait_ready(
                &*self.engine,
                project,
                timeout,
                self.config.apply.poll_interval,
            )
            .await
        {
            result = Err(e);
        }
        match &result {
            Ok(r) => self.record(
                &project.name,
                None,
                None,
                "applied",
                &format!(
                    "{} of {} step(s) done; changed: {}",
                    r.steps_done,
                    r.steps_total,
                    list(&r.changed)
                ),
            ),
            Err(e) => self.record(&project.name, None, None, "apply-failed", &e.to_string()),
        }
        Ok(result?)
    }

    /// Repairs an applied project: re-creates what vanished, and starts
    /// restarting (in the background) unhealthy containers whose service
    /// allows it.
    ///
    /// A project busy with an `up`, `down` or another repair is skipped: the
    /// operation under way leaves it reconciled, and the next resync looks again.
    pub async fn repair(self: &Arc<Self>, name: &str) -> Result<Report, Error> {
        let lock = self.lock_for(name);
        let Ok(_guard) = lock.try_lock() else {
            return Ok(Report::default());
        };
        let Some(written) = self.store.project(name)? else {
            return Ok(Report::default());
        };
        let project = self.deployed(&written)?;
        // A CA that cannot issue must not stop the rest of the repair.
        if let Err(e) = self.ensure_leaves(&written) {
            self.record(name, None, None, "certificate-failed", &e.to_string());
        }
        if let Err(e) = self.ensure_secrets(&written) {
            self.record(name, None, None, "secret-failed", &e.to_string());
        }
        if let Err(e) = self.ensure_engine_trust(&written) {
            self.record(name, None, None, "engine-trust-failed", &e.to_string());
        }
        let plan = self.plan_deployed(&project, Mode::Repair).await?;
        if !plan.is_empty() {
            for step in &plan.steps {
                self.record(name, None, None, "repair", &step.action.to_string());
            }
        }
        // A repair must not hold the project for long: wait a minute at most
        // for a dependency.
        let opts = apply::Options {
            dependency_timeout: self
                .config
                .apply
                .dependency_timeout
                .min(Duration::from_secs(60)),
            ..self.config.apply.clone()
        };
        let report = apply::apply(&*self.engine, &project, &plan, &opts, &|_| {}).await;
        let applied = report
            .as_ref()
            .map(|r| r.changed.clone())
            .unwrap_or_default();
        self.reload_tls(&project, &applied).await;
        let report = report?;
        drop(_guard);
        let filter = names::project_filter(name);
        for c in self.engine.list_containers(&filter).await? {
            if c.health == Some(Health::Unhealthy) && c.state == State::Running {
                self.spawn_heal(project.clone(), c);
            }
        }
        Ok(report)
    }

    /// Heals a container in the background, unless a heal of it is under way.
    fn spawn_heal(self: &Arc<Self>, project: Project, c: ContainerSummary) {
        if !self.healing.lock().unwrap().insert(c.id.clone()) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            this.heal(&project, &c).await;
            this.healing.lock().unwrap().remove(&c.id);
        });
    }

    /// Stops and removes everything of a project; volumes only when asked.
    pub async fn down(&self, name: &str, volumes: bool) -> Result<DownReport, Error> {
        let lock = self.lock_for(name);
        let _guard = lock.lock().await;
        let project = self.store.project(name)?;
        // Forget it first, so the keep-alive loop does not bring it back.
        self.store.remove_project(name)?;
        let filter = names::project_filter(name);
        let containers = self.engine.list_containers(&filter).await?;
        // Carry on past a failure, so one stuck object does not leave the
        // rest behind; report every failure at the end.
        let mut failures = Vec::new();
        let removals = containers.iter().map(|c| async move {
            // The volumes it mounts, for `--volumes`: an anonymous volume
            // carried over a recreate is mounted by name, so the engine no
            // longer removes it with the container.
            let mounted = match self.engine.inspect_container(&c.id).await {
                Ok(d) => d.volumes,
                Err(_) => Vec::new(),
            };
            // No timeout: the engine uses the container's own stop timeout.
            match self.engine.stop_container(&c.id, None).await {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
            // Anonymous volumes go with the container only on `down --volumes`.
            match self.engine.remove_container(&c.id, volumes).await {
                Err(e) if !e.is_not_found() => Err(e),
                _ => Ok((c.name.clone(), mounted)),
            }
        });
        let mut report = DownReport::default();
        let mut mounted = Vec::new();
        for r in futures_util::future::join_all(removals).await {
            match r {
                Ok((name, vols)) => {
                    report.containers.push(name);
                    mounted.extend(vols);
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        if volumes {
            // Anonymous ones only: named volumes are handled by label below,
            // and a volume of another project or an external one is not ours.
            for v in mounted.iter().filter(|v| is_anonymous(&v.name)) {
                match self.engine.remove_volume(&v.name).await {
                    Ok(()) => report.volumes.push(v.name.clone()),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => failures.push(e.to_string()),
                }
            }
        }
        // Objects the project declares external are never removed, even when
        // an earlier version of the project created them.
        let external = |kind: &str, engine_name: &str| {
            project.as_ref().is_some_and(|p| match kind {
                "network" => p
                    .networks
                    .values()
                    .any(|n| n.external && n.name == engine_name),
                _ => p
                    .volumes
                    .values()
                    .any(|v| v.external && v.name == engine_name),
            })
        };
        for n in self.engine.list_networks(&filter).await? {
            if external("network", &n.name) {
                continue;
            }
            match self.engine.remove_network(&n.name).await {
                Ok(()) => report.networks.push(n.name),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if volumes {
            for v in self.engine.list_volumes(&filter).await? {
                if external("volume", &v.name) {
                    continue;
                }
                match self.engine.remove_volume(&v.name).await {
                    Ok(()) => report.volumes.push(v.name),
                    Err(e) => failures.push(e.to_string()),
                }
            }
        }
        // Last, so that a hosts file or certs.d that cannot be written never
        // leaves the containers of a forgotten project running.
        if let Some(et) = &self.engine_trust {
            if let Err(e) = et.remove(name) {
                failures.push(e.to_string());
            }
            self.engine_setup.lock().unwrap().remove(name);
        }
        if !failures.is_empty() {
            let message = format!("down left some objects behind: {}", failures.join("; "));
            self.record(name, None, None, "down-failed", &message);
            return Err(Error::Incomplete(message));
        }
        self.record(
            name,
            None,
            None,
            "removed",
            &format!(
                "removed {} container(s), {} network(s), {} volume(s)",
                report.containers.len(),
                report.networks.len(),
                report.volumes.len()
            ),
        );
        Ok(report)
    }

    /// Names of the projects applied here, plus any with containers on the engine.
    pub async fn project_names(&self) -> Result<Vec<String>, Error> {
        let mut names: Vec<String> = self.store.projects()?.into_iter().map(|p| p.name).collect();
        for c in self
            .engine
            .list_containers(&names::managed_filter())
            .await?
        {
            if let Some(p) = c.labels.get(names::PROJECT)
                && !names.contains(p)
            {
                names.push(p.clone());
            }
        }
        names.sort();
        Ok(names)
    }

    pub async fn status(&self, name: &str) -> Result<ProjectStatus, Error> {
        let applied = self.store.project(name)?.is_some();
        let held = self.store.held(name)?;
        let restarts = self.store.restarts(name)?;
        let mut listed = self
            .engine
            .list_containers(&names::project_filter(name))
            .await?;
        listed.sort_by(|a, b| {
            (a.labels.get(names::SERVICE), number_of(a))
                .cmp(&(b.labels.get(names::SERVICE), number_of(b)))
        });
        let details = futures_util::future::join_all(
            listed.iter().map(|c| self.engine.inspect_container(&c.id)),
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

    /// Starts, stops or restarts every container of a service.
    pub async fn service_action(
        &self,
        name: &str,
        service: &str,
        action: ServiceAction,
    ) -> Result<Vec<String>, Error> {
        let lock = self.lock_for(name);
        let _guard = lock.lock().await;
        let project = self.store.project(name)?;
        if let Some(p) = &project
            && !p.services.contains_key(service)
        {
            return Err(Error::UnknownService {
                project: name.into(),
                service: service.into(),
            });
        }
        let mut filter = names::project_filter(name);
        filter.push(format!("{}={service}", names::SERVICE));
        let containers = self.engine.list_containers(&filter).await?;
        if containers.is_empty() {
            return Err(Error::UnknownService {
                project: name.into(),
                service: service.into(),
            });
        }
        match action {
            ServiceAction::Stop => self.store.set_held(name, service, true)?,
            ServiceAction::Start | ServiceAction::Restart => {
                self.store.set_held(name, service, false)?
            }
        }
        let mut done = Vec::new();
        for c in &containers {
            match action {
                ServiceAction::Start => self.engine.start_container(&c.id).await?,
                // No timeout: the engine uses the container's own stop timeout.
                ServiceAction::Stop => self.engine.stop_container(&c.id, None).await?,
                ServiceAction::Restart => self.engine.restart_container(&c.id, None).await?,
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

    /// Whether a service's containers crashed at least `crash_loop_deaths`
    /// times within the window. Crashes are the `crashed` events in the store,
    /// so the verdict survives a restart of the supervisor.
    fn in_crash_loop(&self, project: &str, service: &str) -> bool {
        let since = crate::store::now_millis() - self.config.crash_loop_window.as_millis() as i64;
        self.store
            .count_events(project, service, "crashed", since)
            .is_ok_and(|n| n >= self.config.crash_loop_deaths as i64)
    }

    /// Restarts an unhealthy container when its service allows it, with a
    /// backoff: 0 s for the first restart in the window, then 1 s, 2 s, ... 60 s.
    async fn heal(&self, project: &Project, c: &ContainerSummary) {
        let Some(service_name) = c.labels.get(names::SERVICE) else {
            return;
        };
        let Some(service) = project.services.get(service_name) else {
            return;
        };
        if !autoheal(service) {
            return;
        }
        let delay = {
            let mut heals = self.heals.lock().unwrap();
            let q = heals.entry(c.id.clone()).or_default();
            let now = Instant::now();
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(600))
            {
                q.pop_front();
            }
            let n = q.len() as u32;
            q.push_back(now);
            if n == 0 {
                Duration::ZERO
            } else {
                Duration::from_secs((1u64 << (n - 1).min(6)).min(60))
            }
        };
        tokio::time::sleep(delay).await;
        // Still unhealthy? A restart by someone else may have fixed it.
        match self.engine.inspect_container(&c.id).await {
            Ok(d) if d.health == Some(Health::Unhealthy) && d.state == State::Running => {}
            _ => return,
        }
        // No timeout: the engine uses the container's own stop timeout.
        match self.engine.restart_container(&c.id, None).await {
            Ok(()) => {
                let _ = self.store.bump_restarts(&project.name, service_name);
                self.record(
                    &project.name,
                    Some(service_name),
                    Some(&c.name),
                    "unhealthy-restart",
                    &format!("restarted {} because its healthcheck failed", c.name),
                );
                self.restart_dependents(project, service_name).await;
            }
            Err(e) => self.record(
                &project.name,
                Some(service_name),
                Some(&c.name),
                "restart-failed",
                &format!("could not restart unhealthy {}: {e}", c.name),
            ),
        }
    }

    /// Restarts the services that declared `depends_on: {X: {restart: true}}`,
    /// and those sharing X's network stack (`network_mode: service:X`), whose
    /// namespace died with X.
    async fn restart_dependents(&self, project: &Project, restarted: &str) {
        for (name, s) in &project.services {
            let follows = crate::plan::dependencies(s)
                .iter()
                .any(|(dep, _, restart)| dep == restarted && *restart);
            if !follows {
                continue;
            }
            let mut filter = names::project_filter(&project.name);
            filter.push(format!("{}={name}", names::SERVICE));
            let Ok(containers) = self.engine.list_containers(&filter).await else {
                continue;
            };
            for c in containers.iter().filter(|c| c.state == State::Running) {
                if self.engine.restart_container(&c.id, None).await.is_ok() {
                    self.record(
                        &project.name,
                        Some(name),
                        Some(&c.name),
                        "dependency-restart",
                        &format!("restarted {} because {restarted} restarted", c.name),
                    );
                }
            }
        }
    }

    async fn on_event(
        self: &Arc<Self>,
        ev: EngineEvent,
        repair: &tokio::sync::mpsc::UnboundedSender<String>,
    ) {
        // Healthchecks alone make an exec_* event per check and container:
        // drop what is not handled before touching the store.
        const HANDLED: &[&str] = &["kill", "die", "health_status: unhealthy", "destroy", "oom"];
        if !HANDLED.contains(&ev.action.as_str()) {
            return;
        }
        let Some(project_name) = ev.attributes.get(names::PROJECT).cloned() else {
            return;
        };
        let service = ev.attributes.get(names::SERVICE).cloned();
        let container = ev.attributes.get("name").cloned();
        let Ok(Some(project)) = self.store.project(&project_name) else {
            return;
        };
        match ev.action.as_str() {
            "kill" => {
                self.kills
                    .lock()
                    .unwrap()
                    .insert(ev.id.clone(), Instant::now());
            }
            "die" => {
                let code = ev
                    .attributes
                    .get("exitCode")
                    .cloned()
                    .unwrap_or_else(|| "?".into());
                // A death that follows a kill request (stop, restart, down,
                // docker kill) is not a crash; nor is a clean exit.
                let requested = self
                    .kills
                    .lock()
                    .unwrap()
                    .remove(&ev.id)
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(60));
                let kind = match (requested, code.as_str()) {
                    (true, _) => "stopped",
                    (false, "0") => "exited",
                    (false, _) => "crashed",
                };
                let who = container.as_deref().unwrap_or(&ev.id);
                self.record(
                    &project_name,
                    service.as_deref(),
                    container.as_deref(),
                    kind,
                    &format!("{who} exited with code {code}"),
                );
                if let (Some(service), "crashed") = (&service, kind) {
                    let since = crate::store::now_millis()
                        - self.config.crash_loop_window.as_millis() as i64;
                    let crashes = self
                        .store
                        .count_events(&project_name, service, "crashed", since)
                        .unwrap_or(0);
                    // Announce the loop once, when the count reaches the threshold.
                    if crashes == self.config.crash_loop_deaths as i64 {
                        self.record(
                            &project_name,
                            Some(service),
                            container.as_deref(),
                            "crash-loop",
                            &format!(
                                "{service} crashed {crashes} times within {}s",
                                self.config.crash_loop_window.as_secs()
                            ),
                        );
                    }
                }
            }
            "health_status: unhealthy" => {
                let Some(service) = service else { return };
                let summary = ContainerSummary {
                    id: ev.id.clone(),
                    name: container.unwrap_or_default(),
                    labels: [(names::SERVICE.to_string(), service)].into(),
                    image: String::new(),
                    image_id: String::new(),
                    state: State::Running,
                    health: Some(Health::Unhealthy),
                };
                self.spawn_heal(project, summary);
            }
            "destroy" => {
                let _ = repair.send(project_name);
            }
            "oom" => self.record(
                &project_name,
                service.as_deref(),
                container.as_deref(),
                "oom",
                "the kernel killed a process of this container for lack of memory",
            ),
            _ => {}
        }
    }

    /// The keep-alive loop; returns when `shutdown` resolves.
    pub async fn run(self: Arc<Self>, shutdown: impl std::future::Future<Output = ()>) {
        let (repair_tx, mut repair_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let watcher = {
            let this = Arc::clone(&self);
            let repair_tx = repair_tx.clone();
            tokio::spawn(async move { this.watch_events(repair_tx).await })
        };
        let mut tick = tokio::time::interval(self.config.resync_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                _ = tick.tick() => self.spawn_resync_all(),
                Some(name) = repair_rx.recv() => {
                    // Coalesce a burst of events into one repair per project.
                    let mut names = vec![name];
                    while let Ok(n) = repair_rx.try_recv() {
                        if !names.contains(&n) { names.push(n); }
                    }
                    for name in names {
                        if name.is_empty() {
                            self.spawn_resync_all();
                        } else {
                            let this = Arc::clone(&self);
                            tokio::spawn(async move { this.repair_logged(&name).await });
                        }
                    }
                }
            }
        }
        watcher.abort();
    }

    /// Full resyncs done since this supervisor started.
    pub fn resyncs(&self) -> u64 {
        self.resyncs.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Repairs every applied project, in the background: the loop stays free
    /// to take events and the shutdown signal.
    fn spawn_resync_all(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let projects = match this.store.projects() {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!("cannot read the applied projects: {e}");
                    return;
                }
            };
            futures_util::future::join_all(projects.iter().map(|p| this.repair_logged(&p.name)))
                .await;
            this.resyncs
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        });
    }

    async fn repair_logged(self: &Arc<Self>, name: &str) {
        if let Err(e) = self.repair(name).await {
            self.record(name, None, None, "repair-failed", &e.to_string());
        }
    }

    /// Follows engine events; when the stream drops (the engine restarted,
    /// its socket went away) it waits for the engine to answer again, with
    /// backoff, and then asks for a full resync (an empty project name), since
    /// events were missed meanwhile.
    async fn watch_events(self: Arc<Self>, repair: tokio::sync::mpsc::UnboundedSender<String>) {
        let mut backoff = Duration::from_millis(500);
        let mut first = true;
        loop {
            match self.engine.ping().await {
                Ok(()) => {
                    let connected = Instant::now();
                    let mut stream = self.engine.events(&names::managed_filter());
                    if !first {
                        tracing::info!("engine reachable again; resyncing every project");
                        let _ = repair.send(String::new());
                    }
                    first = false;
                    while let Some(ev) = stream.next().await {
                        match ev {
                            Ok(ev) => self.on_event(ev, &repair).await,
                            Err(e) => {
                                tracing::warn!("engine event stream failed: {e}");
                                break;
                            }
                        }
                    }
                    if connected.elapsed() > Duration::from_secs(30) {
                        backoff = Duration::from_millis(500);
                    }
                    tracing::warn!("engine event stream ended; reconnecting in {backoff:?}");
                }
                Err(e) => {
                    first = false;
                    tracing::warn!("{e}; retrying in {backoff:?}");
                }
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(30));
        }
    }
}

/// An anonymous volume's name: 64 hex digits, as the engine makes them.
fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether the supervisor restarts this service's containers when unhealthy.
///
/// The healthcheck may come from the compose file or from the image (the
/// container only turns unhealthy when it has one); one disabled in the compose
/// file turns healing off too.
pub fn autoheal(service: &Service) -> bool {
    service.healthcheck.as_ref().is_none_or(|h| h.is_active())
        && service.restart != RestartPolicy::No
        && service.labels.get(names::AUTOHEAL).map(String::as_str) != Some("false")
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeEngine;
    use turtle_compose::{Healthcheck, ServiceNetwork};

    fn project(autoheal_label: Option<&str>) -> Project {
        let mut web = Service {
            image: Some("busybox".into()),
            replicas: 1,
            restart: RestartPolicy::Always,
            healthcheck: Some(Healthcheck {
                test: vec!["CMD".into(), "true".into()],
                ..Default::default()
            }),
            networks: [("default".to_string(), ServiceNetwork::default())].into(),
            ..Default::default()
        };
        if let Some(v) = autoheal_label {
            web.labels.insert(names::AUTOHEAL.into(), v.into());
        }
        crate::test_support::project("demo", vec![("web", web)])
    }

    async fn supervisor(
        p: &Project,
    ) -> (
        Arc<Supervisor<FakeEngine>>,
        Arc<FakeEngine>,
        tempfile::TempDir,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(FakeEngine::new());
        engine.add_image("busybox");
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let sup = Supervisor::new(engine.clone(), store, Config::default());
        sup.up(p, &UpOptions::default(), &|_| {}).await.unwrap();
        (sup, engine, dir)
    }

    fn restarts(engine: &FakeEngine) -> usize {
        engine
            .calls()
            .iter()
            .filter(|c| c.starts_with("restart_container"))
            .count()
    }

    /// Lets spawned tasks run to their next await.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test]
    async fn a_new_leaf_is_reloaded_once_its_container_runs_and_only_once() {
        let p = project(None);
        let (sup, engine, _dir) = supervisor(&p).await;
        let mark = || {
            sup.tls_pending
                .lock()
                .unwrap()
                .insert(("demo".into(), "web".into()));
        };
        let pending = || !sup.tls_pending.lock().unwrap().is_empty();

        // Paused (shedding): nothing now, still pending.
        mark();
        engine.set_state("demo-web-1", State::Paused, None);
        sup.reload_tls(&p, &[]).await;
        assert_eq!(restarts(&engine), 0);
        assert!(pending(), "a paused container must be reloaded later");

        // Running again: restarted once, then nothing is pending.
        engine.set_state("demo-web-1", State::Running, None);
        sup.reload_tls(&p, &[]).await;
        assert_eq!(restarts(&engine), 1);
        assert!(!pending());
        sup.reload_tls(&p, &[]).await;
        assert_eq!(restarts(&engine), 1, "reloaded twice");

        // Just (re)started by the apply: it read the new leaf already.
        mark();
        sup.reload_tls(&p, &["web".to_string()]).await;
        assert_eq!(restarts(&engine), 1);
        assert!(!pending());
    }

    #[tokio::test]
    async fn down_removes_the_containers_even_when_the_hosts_file_cannot_be_written() {
        let p = project(None);
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(FakeEngine::new());
        engine.add_image("busybox");
        let store = Arc::new(Store::open(dir.path()).unwrap());
        // A directory where the hosts file should be: every edit fails.
        let hosts = dir.path().join("hosts");
        std::fs::create_dir(&hosts).unwrap();
        let sup = Supervisor::with_box(
            engine.clone(),
            store,
            Config::default(),
            BoxParts {
                engine_trust: Some(EngineTrust {
                    certs_dir: None,
                    hosts_file: Some(hosts.clone()),
                }),
                ..Default::default()
            },
        );
        sup.up(&p, &UpOptions::default(), &|_| {}).await.unwrap();
        let e = sup.down("demo", false).await.unwrap_err().to_string();
        assert!(e.contains(&hosts.display().to_string()), "{e}");
        assert!(
            engine
                .calls()
                .iter()
                .any(|c| c.starts_with("remove_container")),
            "{:?}",
            engine.calls()
        );
        assert!(engine.list_containers(&[]).await.unwrap().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn unhealthy_containers_are_restarted_with_growing_backoff() {
        let p = project(None);
        let (sup, engine, _dir) = supervisor(&p).await;
        engine.set_state("demo-web-1", State::Running, Some(Health::Unhealthy));
        sup.repair("demo").await.unwrap();
        settle().await;
        assert_eq!(restarts(&engine), 1, "the first heal is immediate");
        assert_eq!(sup.store().restarts("demo").unwrap()["web"], 1);

        // Unhealthy again at once: the second heal waits 1 s.
        engine.set_state("demo-web-1", State::Running, Some(Health::Unhealthy));
        sup.repair("demo").await.unwrap();
        settle().await;
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(restarts(&engine), 1, "restarted before the backoff ran out");
        // A resync meanwhile must not start a second heal of the same container.
        sup.repair("demo").await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        settle().await;
        assert_eq!(restarts(&engine), 2);

        // The third waits 2 s.
        engine.set_state("demo-web-1", State::Running, Some(Health::Unhealthy));
        sup.repair("demo").await.unwrap();
        tokio::time::sleep(Duration::from_millis(1900)).await;
        assert_eq!(restarts(&engine), 2);
        tokio::time::sleep(Duration::from_millis(200)).await;
        settle().await;
        assert_eq!(restarts(&engine), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_autoheal_label_turns_healing_off() {
        let p = project(Some("false"));
        let (sup, engine, _dir) = supervisor(&p).await;
        engine.set_state("demo-web-1", State::Running, Some(Health::Unhealthy));
        sup.repair("demo").await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        settle().await;
        assert_eq!(restarts(&engine), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_container_that_recovered_on_its_own_is_left_alone() {
        let p = project(None);
        let (sup, engine, _dir) = supervisor(&p).await;
        // First heal, so the next one waits and has time to see the recovery.
        engine.set_state("demo-web-1", State::Running, Some(Health::Unhealthy));
        sup.repair("demo").await.unwrap();
        settle().await;
        engine.set_state("demo-web-1", State::Running, Some(Health::Unhealthy));
        sup.repair("demo").await.unwrap();
        engine.set_state("demo-web-1", State::Running, Some(Health::Healthy));
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        assert_eq!(restarts(&engine), 1);
    }
}
