//! The keep-alive loop: the engine's event stream, periodic resyncs, and
//! repairs of applied projects.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use turtle_compose::ProjectName;
use turtle_engine::{ContainerSummary, Engine, EngineEvent, Health, State};
use turtle_reconcile::names;

use super::{Error, Supervisor};
use crate::apply::{self, Report};
use turtle_reconcile::plan::Mode;

impl<E: Engine> Supervisor<E> {
    /// Repairs an applied project: re-creates what vanished, and starts
    /// restarting (in the background) unhealthy containers whose service
    /// allows it.
    ///
    /// A project busy with an `up`, `down` or another repair is skipped: the
    /// operation under way leaves it reconciled, and the next resync looks again.
    pub async fn repair(self: &Arc<Self>, name: &ProjectName) -> Result<Report, Error> {
        let lock = self.lock_for(name);
        let Ok(_guard) = lock.try_lock() else {
            return Ok(Report::default());
        };
        let Some(written) = self.handle.store.project(name)? else {
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
        let report = apply::apply(&*self.handle.engine, &project, &plan, &opts, &|_| {}).await;
        let applied = report
            .as_ref()
            .map(|r| r.changed.clone())
            .unwrap_or_default();
        self.reload_tls(&project, &applied).await;
        let report = report?;
        drop(_guard);
        let filter = names::project_filter(name);
        for c in self.handle.engine.list_containers(&filter).await? {
            if c.health == Some(Health::Unhealthy) && c.state == State::Running {
                self.spawn_heal(project.clone(), c);
            }
        }
        Ok(report)
    }

    pub(super) async fn on_event(
        self: &Arc<Self>,
        ev: EngineEvent,
        repair: &tokio::sync::mpsc::UnboundedSender<Option<ProjectName>>,
    ) {
        // Healthchecks alone make an exec_* event per check and container:
        // drop what is not handled before touching the store.
        const HANDLED: &[&str] = &["kill", "die", "health_status: unhealthy", "destroy", "oom"];
        if !HANDLED.contains(&ev.action.as_str()) {
            return;
        }
        // Anyone with the engine's socket can label a container: a label
        // that is not a project name is not one of Turtle's projects.
        let Some(project_name) = ev
            .attributes
            .get(names::PROJECT)
            .and_then(|p| p.parse::<ProjectName>().ok())
        else {
            return;
        };
        let service = ev.attributes.get(names::SERVICE).cloned();
        let container = ev.attributes.get("name").cloned();
        let Ok(Some(project)) = self.handle.store.project(&project_name) else {
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
                        .handle
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
                let _ = repair.send(Some(project_name));
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
        let (repair_tx, mut repair_rx) =
            tokio::sync::mpsc::unbounded_channel::<Option<ProjectName>>();
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
                        match name {
                            None => self.spawn_resync_all(),
                            Some(name) => {
                                let this = Arc::clone(&self);
                                tokio::spawn(async move { this.repair_logged(&name).await });
                            }
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
    pub(super) fn spawn_resync_all(self: &Arc<Self>) {
        let this = Arc::clone(self);
        tokio::spawn(async move {
            let projects = match this.handle.store.projects() {
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

    pub(super) async fn repair_logged(self: &Arc<Self>, name: &ProjectName) {
        if let Err(e) = self.repair(name).await {
            self.record(name, None, None, "repair-failed", &e.to_string());
        }
    }

    /// Follows engine events; when the stream drops (the engine restarted,
    /// its socket went away) it waits for the engine to answer again, with
    /// backoff, and then asks for a full resync (no project name), since
    /// events were missed meanwhile.
    pub(super) async fn watch_events(
        self: Arc<Self>,
        repair: tokio::sync::mpsc::UnboundedSender<Option<ProjectName>>,
    ) {
        let mut backoff = Duration::from_millis(500);
        let mut first = true;
        loop {
            match self.handle.engine.ping().await {
                Ok(()) => {
                    let connected = Instant::now();
                    let mut stream = self.handle.engine.events(&names::managed_filter());
                    if !first {
                        tracing::info!("engine reachable again; resyncing every project");
                        let _ = repair.send(None);
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
