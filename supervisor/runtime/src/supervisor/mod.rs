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

mod down;
mod heal;
mod hooks;
mod inject;
mod keepalive;
#[cfg(test)]
mod keys_tests;
mod status;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio::time::Instant;
use turtle_compose::Project;
use turtle_engine::Engine;
use turtle_reconcile::observe::observe;
use turtle_reconcile::plan::{self, Mode, Plan};

pub use self::down::DownReport;
pub use self::heal::autoheal;
pub use self::status::{
    ContainerStatus, EXEC_OUTPUT_LIMIT, ExecRequest, ExecResult, ProjectStatus, ServiceAction,
};
use crate::apply::{self, Report};
use crate::device::Device;
use crate::engine_trust::EngineTrust;
pub use crate::error::Error;
use crate::handle::Handle;
use crate::secrets::Secrets;
use crate::shed::Shedder;
use crate::store::{EventRecord, Store};
use crate::trust::Trust;

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
    /// The health gate's window and the disk reserve of updates.
    pub releases: crate::config::ReleasesSection,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            resync_interval: Duration::from_secs(30),
            crash_loop_deaths: 5,
            crash_loop_window: Duration::from_secs(300),
            apply: apply::Options::default(),
            mdns: Default::default(),
            releases: Default::default(),
        }
    }
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

pub struct Supervisor<E: Engine> {
    /// The engine, the store, the event log and the box's parts, shared
    /// with the daemon's workers.
    handle: Handle<E>,
    config: Config,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// When a kill (stop, restart, docker kill) was last requested, per container.
    kills: Mutex<HashMap<String, Instant>>,
    /// Containers with a heal under way.
    healing: Mutex<std::collections::HashSet<String>>,
    /// Full resyncs done since start.
    resyncs: std::sync::atomic::AtomicU64,
    /// Supervisor restarts per container (for backoff), with their times.
    heals: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// The mDNS publisher, run by the daemon.
    announcer: Arc<crate::announce::Announcer>,
    /// Thermal and memory-pressure shedding, run by the daemon.
    shedder: Option<Arc<Shedder>>,
    /// (project, service) whose new TLS leaf the running containers have
    /// not picked up yet.
    tls_pending: Mutex<std::collections::HashSet<(String, String)>>,
    /// What the engine was last set up with, per project (to record changes only).
    engine_setup: Mutex<HashMap<String, crate::engine_trust::Setup>>,
    /// The box's engine set up to trust and resolve the stack's registry.
    engine_trust: Option<EngineTrust>,
}

/// What the supervisor knows of the box it runs on.
#[derive(Default)]
pub struct BoxParts {
    pub trust: Option<Arc<Trust>>,
    /// What to inject without a CA (`up --dry-run` before the CA exists);
    /// with `trust`, its injection is used.
    pub injection: Option<crate::trust::Injection>,
    pub device: Option<Arc<Device>>,
    pub secrets: Option<Secrets>,
    pub engine_trust: Option<EngineTrust>,
    /// The directory of the services' update locks and hand-over files
    /// (`STATE_DIR/run`).
    pub run_dir: Option<std::path::PathBuf>,
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
            handle: Handle {
                engine,
                store,
                events: broadcast::channel(1024).0,
                injection: parts
                    .injection
                    .or_else(|| parts.trust.as_ref().map(|t| t.injection().clone())),
                trust: parts.trust,
                device: parts.device,
                secrets: parts.secrets,
                mdns: config.mdns.clone(),
                run_dir: parts.run_dir,
            },
            engine_trust: parts.engine_trust,
            shedder,
            tls_pending: Mutex::default(),
            engine_setup: Mutex::default(),
            announcer: Default::default(),
            config,
            locks: Mutex::default(),
            heals: Mutex::default(),
            kills: Mutex::default(),
            resyncs: Default::default(),
            healing: Mutex::default(),
        })
    }

    pub fn engine(&self) -> &E {
        &self.handle.engine
    }

    pub fn store(&self) -> &Store {
        &self.handle.store
    }

    pub fn trust(&self) -> Option<&Arc<Trust>> {
        self.handle.trust.as_ref()
    }

    pub fn device(&self) -> Option<&Arc<Device>> {
        self.handle.device.as_ref()
    }

    /// What the daemon's workers get (see [`crate::handle`]).
    pub fn handle(&self) -> Handle<E> {
        self.handle.clone()
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

    /// The project as deployed (see [`Handle::deployed`]).
    pub fn deployed(&self, project: &Project) -> Result<Project, Error> {
        self.handle.deployed(project)
    }

    /// Live events as they are recorded.
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<EventRecord> {
        self.handle.subscribe()
    }

    /// Logs, stores and broadcasts an event (see [`Handle::record`]).
    pub fn record(
        &self,
        project: &str,
        service: Option<&str>,
        container: Option<&str>,
        kind: &str,
        message: &str,
    ) {
        self.handle
            .record(project, service, container, kind, message)
    }

    /// Plans `project` (the deployed form of `written`), sets up what it
    /// injects, records `written` as the desired state and applies the
    /// plan: the part of `up` a release's switch shares. The caller holds
    /// the project's lock.
    pub(crate) async fn converge(
        &self,
        written: &Project,
        project: &Project,
        sink: Sink<'_>,
    ) -> Result<Report, Error> {
        // Plan and inject before saving: a project that cannot be planned,
        // or whose leaves, secrets or engine trust cannot be set up (a
        // directory that is not Turtle's), is not adopted, so no repair
        // tries it again.
        let plan = self.plan_deployed(project, Mode::Up).await?;
        self.ensure_leaves(written)?;
        self.ensure_secrets(written)?;
        self.ensure_engine_trust(written)?;
        if let Some(dir) = &self.handle.run_dir {
            crate::release::locks::prepare(project, dir).map_err(|e| {
                Error::Incomplete(format!(
                    "cannot make the update-lock directories under {}: {e}",
                    dir.display()
                ))
            })?;
        }
        // The project as written is stored: what is injected is worked out
        // again at every repair, from the supervisor's current config.
        self.handle.store.save_project(written)?;
        self.handle.store.clear_held(&project.name)?;
        let result = apply::apply(
            &*self.handle.engine,
            project,
            &plan,
            &self.config.apply,
            sink,
        )
        .await;
        let applied = result
            .as_ref()
            .map(|r| r.changed.clone())
            .unwrap_or_default();
        self.reload_tls(project, &applied).await;
        Ok(result?)
    }

    pub(crate) fn lock_for(&self, project: &str) -> Arc<tokio::sync::Mutex<()>> {
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

    pub(crate) async fn plan_deployed(&self, project: &Project, mode: Mode) -> Result<Plan, Error> {
        let observed = observe(&*self.handle.engine, project).await?;
        let held = match mode {
            Mode::Up => Default::default(),
            Mode::Repair => self.handle.store.held(&project.name)?,
        };
        Ok(plan::plan(
            project,
            &observed,
            &plan::Options { mode, held },
        )?)
    }

    /// The pulls and builds `up` runs before planning (see
    /// [`turtle_reconcile::refresh`]).
    pub(crate) async fn refresh_plan(&self, project: &Project, build: bool) -> Result<Plan, Error> {
        let mut refreshed = std::collections::HashMap::new();
        for image in turtle_reconcile::refresh::images_to_date(project) {
            let at = self.handle.engine.image_refreshed_at(&image).await?;
            refreshed.insert(image, at);
        }
        Ok(turtle_reconcile::refresh::refresh_plan(
            project,
            &refreshed,
            std::time::SystemTime::now(),
            build,
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
        // How each service became ready goes to the event log too.
        let sink = &|e: apply::Event| {
            if let Some(how) = e.became() {
                let (service, container) =
                    (Some(how.service.as_str()), Some(how.container.as_str()));
                self.record(&project.name, service, container, "ready", &how.to_string());
            }
            sink(e)
        };
        let written = project;
        let project = &self.deployed(written)?;
        // Builds (`--build`, `pull_policy: build`) and pulls (`always`,
        // `every_<d>`) first, then plan: a service is recreated only when its
        // image ID really changed (an unchanged source hits the cache, a pull
        // may find nothing new).
        let refresh = self.refresh_plan(project, opts.build).await?;
        if !refresh.steps.is_empty() {
            apply::apply(
                &*self.handle.engine,
                project,
                &refresh,
                &self.config.apply,
                sink,
            )
            .await?;
        }
        // What fails before the apply (planning, injection) is not an
        // apply: it is answered, not recorded as one.
        let mut result = match self.converge(written, project, sink).await {
            Err(e) if !matches!(e, Error::Apply(_)) => return Err(e),
            r => r,
        };
        if let (Ok(_), Some(timeout)) = (&result, opts.wait)
            && let Err(e) = crate::ready::wait_ready(
                &*self.handle.engine,
                project,
                timeout,
                &self.config.apply,
                &|became| sink(apply::Event::ready(0, became)),
            )
            .await
        {
            result = Err(e.into());
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
        result
    }
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
    use turtle_compose::{Healthcheck, RestartPolicy, Service, ServiceNetwork};
    use turtle_engine::fake::FakeEngine;
    use turtle_engine::{Health, State};
    use turtle_reconcile::names;

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
        turtle_reconcile::test_support::project("demo", vec![("web", web)])
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
        let e = sup.down(&p.name, false).await.unwrap_err().to_string();
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
        sup.repair(&p.name).await.unwrap();
        settle().await;
        assert_eq!(restarts(&engine), 1, "the first heal is immediate");
        assert_eq!(sup.store().restarts("demo").unwrap()["web"], 1);

        // Unhealthy again at once: the second heal waits 1 s.
        engine.set_state("demo-web-1", State::Running, Some(Health::Unhealthy));
        sup.repair(&p.name).await.unwrap();
        settle().await;
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert_eq!(restarts(&engine), 1, "restarted before the backoff ran out");
        // A resync meanwhile must not start a second heal of the same container.
        sup.repair(&p.name).await.unwrap();
        tokio::time::sleep(Duration::from_millis(200)).await;
        settle().await;
        assert_eq!(restarts(&engine), 2);

        // The third waits 2 s.
        engine.set_state("demo-web-1", State::Running, Some(Health::Unhealthy));
        sup.repair(&p.name).await.unwrap();
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
        sup.repair(&p.name).await.unwrap();
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
        sup.repair(&p.name).await.unwrap();
        settle().await;
        engine.set_state("demo-web-1", State::Running, Some(Health::Unhealthy));
        sup.repair(&p.name).await.unwrap();
        engine.set_state("demo-web-1", State::Running, Some(Health::Healthy));
        tokio::time::sleep(Duration::from_secs(2)).await;
        settle().await;
        assert_eq!(restarts(&engine), 1);
    }
}
