//! The hand-over update strategy (balena's name): a service's new container
//! starts beside the old one, which is stopped only once the new one has
//! taken over.
//!
//! A service opts in with `io.turtle.update-strategy: hand-over`
//! ([`crate::release::STRATEGY_LABEL`]). The update driver calls [`replace`]
//! for it before the rest of the project is applied; afterwards the planner
//! finds nothing to recreate for the service.
//!
//! # When the new container has taken over
//!
//! - By default, once it is healthy (its healthcheck, probed as
//!   [`crate::probe`] does; without a healthcheck, once it runs).
//! - With `io.turtle.handover-file: "true"` ([`FILE_LABEL`]), once it has
//!   written [`crate::release::locks::HANDOVER_FILE`] into `/run/turtle`
//!   (balena's hand-over-complete file); being healthy is not enough.
//! - With `io.turtle.handover-timeout: 30s`
//!   ([`crate::release::HANDOVER_TIMEOUT_LABEL`], a bare number is seconds),
//!   also once that long has passed (balena's timeout). Without the label,
//!   the wait is bounded by [`DEFAULT_TIMEOUT`], and passing it is a
//!   failure.
//!
//! A new container that exits, restarts or turns unhealthy before it has
//! taken over, or does not take over in time, is removed and [`replace`]
//! fails naming the service: the old container was never touched and still
//! serves.
//!
//! # Zero failed requests
//!
//! - **Reached by name** on a project network (the stack's proxy finds its
//!   backends so): the new container joins with the same aliases, so the
//!   engine's DNS answers with both while they overlap. Once the new one
//!   has taken over, the old one gets its `pre_stop` hooks and its stop
//!   signal with its own grace period; the engine drops it from DNS when it
//!   exits. It is not disconnected first: that would cut its requests in
//!   flight, and leave a client that still holds its address waiting for a
//!   connect timeout instead of a fast refusal it retries elsewhere.
//! - **Published host ports**: two containers cannot bind one, so a
//!   hand-over service does not publish its ports itself. [`decorate`]
//!   (part of the project as deployed) gives it a companion service,
//!   `<service>-ports`, running Turtle's forwarder ([`crate::forward`]),
//!   which publishes the ports and forwards each connection to the
//!   service by its name. During a hand-over Turtle steers the forwarder:
//!   the new container gets no connection before it has taken over; then
//!   the old one gets no new connection, and it is stopped once the
//!   forwarder has none open to it (at most [`DRAIN_TIMEOUT`]). The
//!   companion is an ordinary container (restart `always`), so the ports
//!   keep working while the supervisor is down.
//!
//! The new container is created under a temporary name
//! (`<name>`[`NEXT_SUFFIX`]) with the labels of the old one's number and
//! the new config hash, and renamed to the canonical name once the old one
//! is gone. An interrupted hand-over leaves one of the two; [`settle`]
//! keeps the one that serves (every [`replace`] runs it first).
//!
//! Both containers run at once on the same volumes (the anonymous ones
//! carry over, as a recreate does): hand-over suits services that tolerate
//! that, as in balena.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

// tokio's clock, as in apply and ready.
use tokio::time::Instant;

use turtle_compose::{
    Build, Mount, MountKind, Project, RestartPolicy, Service, ServiceName, ServiceNetwork,
};
use turtle_engine::{ContainerSummary, Engine, Health, State};
use turtle_reconcile::names;
use turtle_reconcile::plan::{Action, Options as PlanOptions, plan};

use crate::apply::{ApplyError, Event, Options, engine_err};
use crate::forward::{self, Backends, Connections};
use crate::probe::Probes;
use crate::release::locks::{HANDOVER_FILE, MOUNT};
use crate::release::{HANDOVER_TIMEOUT_LABEL, STRATEGY_LABEL, Strategy};

/// `"true"`: the new container takes over when it writes its hand-over
/// file, not when it is healthy.
pub const FILE_LABEL: &str = "io.turtle.handover-file";
/// On a companion service: the hand-over service whose ports it holds.
pub const FORWARDER_FOR_LABEL: &str = "io.turtle.forwarder-for";
/// How long a new container may take to take over when the service sets
/// no `io.turtle.handover-timeout`; passing it fails the hand-over.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);
/// How long the old container may keep connections through the forwarder
/// once the new one has taken over, before it is stopped anyway.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// Appended to the canonical name while the new container is on trial.
pub const NEXT_SUFFIX: &str = "-next";

/// What passing the timeout means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnTimeout {
    /// The hand-over fails (no `io.turtle.handover-timeout` label).
    Fail,
    /// The new container takes over anyway (the label asks for it).
    TakeOver,
}

/// How one service is handed over, from its labels ([`settings`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandOver {
    /// The host directory mounted at `/run/turtle` in the service's
    /// containers, where the new container writes its hand-over file;
    /// `None`: no file is watched (the service does not ask for one).
    pub dir: Option<PathBuf>,
    /// How long the new container has to take over.
    pub timeout: Duration,
    pub on_timeout: OnTimeout,
}

/// The service's update strategy, from its label.
pub fn strategy(service: &Service) -> Result<Strategy, String> {
    match service.labels.get(STRATEGY_LABEL) {
        None => Ok(Strategy::default()),
        Some(v) => v.parse(),
    }
}

fn is_hand_over(service: &Service) -> bool {
    strategy(service) == Ok(Strategy::HandOver)
}

/// The name of the companion that holds a hand-over service's ports.
pub fn companion(service: &str) -> String {
    format!("{service}-ports")
}

/// Reads a hand-over service's labels. `dir` is the service's run
/// directory ([`crate::release::locks::service_dir`]); it is kept when the
/// service asks for the hand-over file. Refuses what cannot be handed over
/// without failed requests, saying what to change.
pub fn settings(
    project: &Project,
    service: &str,
    dir: Option<PathBuf>,
) -> Result<HandOver, String> {
    let s = project
        .services
        .get(service)
        .ok_or_else(|| format!("project {} has no service {service}", project.name))?;
    publishable(project, service, s)?;
    let file = match s.labels.get(FILE_LABEL).map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(format!(
                "service {service}: {FILE_LABEL}: {other:?} is not true or false"
            ));
        }
    };
    if file && dir.is_none() {
        return Err(format!(
            "service {service}: {FILE_LABEL} needs the directory Turtle mounts at {MOUNT}, and this supervisor has none"
        ));
    }
    let (timeout, on_timeout) = match s.labels.get(HANDOVER_TIMEOUT_LABEL) {
        None => (DEFAULT_TIMEOUT, OnTimeout::Fail),
        Some(v) => {
            let d: turtle_units::Duration = v
                .parse()
                .map_err(|e| format!("service {service}: {HANDOVER_TIMEOUT_LABEL}: {e}"))?;
            (d.as_std(), OnTimeout::TakeOver)
        }
    };
    Ok(HandOver {
        dir: if file { dir } else { None },
        timeout,
        on_timeout,
    })
}

/// Whether the service's published ports can move to a companion.
fn publishable(project: &Project, service: &str, s: &Service) -> Result<(), String> {
    let published: Vec<_> = s.ports.iter().filter(|p| p.published.is_some()).collect();
    if !published.is_empty() {
        if s.network_mode.is_some() {
            return Err(format!(
                "service {service}: hand-over cannot run two containers that publish ports with network_mode set: remove network_mode, or use another {STRATEGY_LABEL}"
            ));
        }
        if let Some(p) = published.iter().find(|p| p.protocol != "tcp") {
            return Err(format!(
                "service {service}: hand-over forwards TCP ports only, and {}/{} is {}: publish it from another service, or use another {STRATEGY_LABEL}",
                p.target, p.protocol, p.protocol
            ));
        }
        if project.services.contains_key(companion(service).as_str()) {
            return Err(format!(
                "service {service}: hand-over publishes its ports through a service named {}, and the project has one: rename it",
                companion(service)
            ));
        }
    }
    Ok(())
}

/// The forwarder a companion runs: its image and how it is started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarder {
    /// Made from the running executable when missing
    /// ([`forward::make_image`]).
    pub image: String,
    pub entrypoint: Vec<String>,
}

impl Default for Forwarder {
    /// `turtle backend forward` in `turtle/forward:1`. The tag changes only
    /// when the forwarder's contract does, so upgrading Turtle does not
    /// re-create the companions (which would close the ports for a moment).
    fn default() -> Self {
        Self {
            image: "turtle/forward:1".into(),
            entrypoint: vec![
                forward::IMAGE_EXE.into(),
                "backend".into(),
                "forward".into(),
            ],
        }
    }
}

/// The project with each hand-over service's published TCP ports moved to
/// its companion service, `<service>-ports`, which forwards them to the
/// service by name ([`crate::forward`]). `run_dir` is where the services'
/// run directories are ([`crate::release::locks`]); the companion mounts
/// its service's, through which a hand-over steers it. A service that
/// [`settings`] refuses is left as written (its update says why).
pub fn decorate(project: &Project, forwarder: &Forwarder, run_dir: Option<&Path>) -> Project {
    let mut out = project.clone();
    for (name, s) in &project.services {
        if !is_hand_over(s) || publishable(project, name.as_str(), s).is_err() {
            continue;
        }
        let (moved, kept): (Vec<_>, Vec<_>) =
            s.ports.iter().cloned().partition(|p| p.published.is_some());
        if moved.is_empty() {
            continue;
        }
        let Ok(key) = companion(name.as_str()).parse::<ServiceName>() else {
            continue;
        };
        let mut targets: Vec<u16> = moved.iter().map(|p| p.target).collect();
        targets.sort_unstable();
        targets.dedup();
        let routes: Vec<forward::Route> = targets
            .into_iter()
            .map(|t| forward::Route {
                listen: t,
                host: name.to_string(),
                port: t,
            })
            .collect();
        let mut c = Service {
            image: Some(forwarder.image.clone()),
            // Made, not built: see forward::make_image.
            build: Some(Build {
                context: project.working_dir.clone(),
                ..Default::default()
            }),
            entrypoint: Some(forwarder.entrypoint.clone()),
            ports: moved,
            networks: s
                .networks
                .keys()
                .map(|k| (k.clone(), ServiceNetwork::default()))
                .collect(),
            restart: RestartPolicy::Always,
            replicas: 1,
            read_only: true,
            cap_drop: vec!["ALL".into()],
            cap_add: vec!["NET_BIND_SERVICE".into()],
            security_opt: vec!["no-new-privileges:true".into()],
            // It stops at once on SIGTERM.
            stop_grace_period: Some(turtle_units::Duration::from_secs(2)),
            ..Default::default()
        };
        c.environment
            .insert(forward::ENV_ROUTES.into(), forward::format_routes(&routes));
        c.labels
            .insert(FORWARDER_FOR_LABEL.into(), name.to_string());
        c.labels.insert(forward::IMAGE_LABEL.into(), "true".into());
        if let Some(p) = s.labels.get(turtle_device::PRIORITY_LABEL) {
            c.labels
                .insert(turtle_device::PRIORITY_LABEL.into(), p.clone());
        }
        if let Some(run_dir) = run_dir {
            let dir =
                crate::release::locks::service_dir(run_dir, project.name.as_str(), name.as_str());
            c.volumes.push(Mount {
                kind: MountKind::Bind,
                source: Some(dir.display().to_string()),
                target: MOUNT.into(),
                ..Default::default()
            });
            c.environment.insert(forward::ENV_DIR.into(), MOUNT.into());
        }
        if let Some(svc) = out.services.get_mut(name) {
            svc.ports = kept;
        }
        out.services.insert(key, c);
    }
    out.services.sort_keys();
    out
}

type Sink<'a> = &'a (dyn Fn(Event) + Send + Sync);

/// Replaces, one at a time, every container of `service` that the planner
/// would re-create, each new one beside its old one (see the module docs).
/// `project` is the project as deployed. Returns the names of the
/// containers replaced. Creating missing containers and removing extra
/// ones (a change of `replicas`) is left to the ordinary apply: nothing
/// is swapped there.
pub async fn replace<E: Engine>(
    engine: &E,
    project: &Project,
    service: &str,
    settings: &HandOver,
    opts: &Options,
    sink: Sink<'_>,
) -> Result<Vec<String>, ApplyError> {
    let fail = |reason: String| ApplyError::HandOver {
        service: service.to_string(),
        reason,
    };
    let Some(s) = project.services.get(service) else {
        return Err(fail(format!(
            "project {} has no such service",
            project.name
        )));
    };
    if let Some(p) = s.ports.iter().find(|p| p.published.is_some()) {
        return Err(fail(format!(
            "it publishes port {} itself, which two containers cannot bind: deploy the project with its hand-over services decorated (handover::decorate) so that {} holds it",
            p.target,
            companion(service)
        )));
    }
    settle(engine, project, service).await?;
    let observed = turtle_reconcile::observe::observe(engine, project)
        .await
        .map_err(engine_err(format!("observe project {}", project.name)))?;
    let plan =
        plan(project, &observed, &PlanOptions::default()).map_err(|e| fail(e.to_string()))?;
    let steering = steering(engine, project, service).await?;
    let run = Run {
        engine,
        project,
        service,
        settings,
        opts,
        sink,
        steering: steering.as_ref(),
        probes: Probes::new(opts.probe),
    };
    let mut replaced = Vec::new();
    for step in &plan.steps {
        if let Action::RecreateContainer {
            service: of,
            number,
            name,
            hash,
            old_id,
        } = &step.action
            && of == service
        {
            run.one(*number, name, hash, old_id).await?;
            replaced.push(name.clone());
        }
    }
    Ok(replaced)
}

/// Ends what an interrupted hand-over of `service` left: a container
/// named `<name>-next` beside `<name>`. The one that serves stays and gets
/// the canonical name: the new one when the old one is gone or stopped,
/// else the old one (the new one had not taken over). The forwarder's
/// steering file is removed. Safe to call at any time the project is not
/// being applied (crash recovery calls it for every hand-over service).
pub async fn settle<E: Engine>(
    engine: &E,
    project: &Project,
    service: &str,
) -> Result<(), ApplyError> {
    let containers = service_containers(engine, project, service).await?;
    // The canonical name of a container's number, as a hand-over names it.
    let canonical_of = |c: &ContainerSummary| {
        let number = turtle_reconcile::observe::number_of(c);
        project
            .services
            .get(service)
            .and_then(|s| s.container_name.clone())
            .unwrap_or_else(|| names::container_name(&project.name, service, number))
    };
    for next in &containers {
        let canonical = canonical_of(next);
        if next.name != format!("{canonical}{NEXT_SUFFIX}") {
            continue;
        }
        let canonical = canonical.as_str();
        let what = format!("settle the interrupted hand-over of {canonical}");
        let old = containers.iter().find(|c| c.name == canonical);
        let keep_new = match old {
            None => true,
            Some(old) => old.state != State::Running && next.state == State::Running,
        };
        if keep_new {
            if let Some(old) = old {
                engine
                    .remove_container(&old.id, false)
                    .await
                    .map_err(engine_err(&what))?;
            }
            engine
                .rename_container(&next.id, canonical)
                .await
                .map_err(engine_err(&what))?;
        } else {
            engine
                .remove_container(&next.id, false)
                .await
                .map_err(engine_err(&what))?;
        }
    }
    if let Some(s) = steering(engine, project, service).await? {
        s.clear();
    }
    Ok(())
}

/// The containers of one service of the project.
async fn service_containers<E: Engine>(
    engine: &E,
    project: &Project,
    service: &str,
) -> Result<Vec<ContainerSummary>, ApplyError> {
    let mut filter = names::project_filter(&project.name);
    filter.push(format!("{}={service}", names::SERVICE));
    engine
        .list_containers(&filter)
        .await
        .map_err(engine_err(format!("list the containers of {service}")))
}

/// The forwarder's directory, when the service has a running companion
/// with one.
async fn steering<E: Engine>(
    engine: &E,
    project: &Project,
    service: &str,
) -> Result<Option<Steering>, ApplyError> {
    let name = companion(service);
    let Some(c) = project.services.get(name.as_str()) else {
        return Ok(None);
    };
    if c.labels.get(FORWARDER_FOR_LABEL).map(String::as_str) != Some(service) {
        return Ok(None);
    }
    let Some(dir) = c
        .volumes
        .iter()
        .find(|m| m.target == MOUNT)
        .and_then(|m| m.source.clone())
    else {
        return Ok(None);
    };
    let running = service_containers(engine, project, &name)
        .await?
        .iter()
        .any(|c| c.state == State::Running);
    Ok(running.then(|| Steering {
        dir: PathBuf::from(dir),
    }))
}

/// The forwarder's backends and connections files.
struct Steering {
    dir: PathBuf,
}

impl Steering {
    /// Lets the forwarder use only `addresses`; returns the generation.
    fn allow(&self, addresses: &[IpAddr]) -> Result<u64, String> {
        let previous = std::fs::read_to_string(self.dir.join(forward::BACKENDS_FILE))
            .ok()
            .and_then(|t| Backends::parse(&t))
            .map_or(0, |b| b.generation);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let b = Backends {
            generation: now.max(previous + 1),
            addresses: addresses.to_vec(),
        };
        forward::write_atomic(&self.dir, forward::BACKENDS_FILE, &b.render()).map_err(|e| {
            format!(
                "cannot write {}: {e}",
                self.dir.join(forward::BACKENDS_FILE).display()
            )
        })?;
        Ok(b.generation)
    }

    /// Waits until the forwarder has loaded `generation` and has no
    /// connection open to `old`, at most `timeout`; whether it did.
    async fn drained(&self, generation: u64, old: &[IpAddr], timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(c) = Connections::read(&self.dir)
                && c.generation >= generation
                && old.iter().all(|a| c.open.get(a).copied().unwrap_or(0) == 0)
            {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Every resolved address again.
    fn clear(&self) {
        let _ = std::fs::remove_file(self.dir.join(forward::BACKENDS_FILE));
    }
}

/// How a new container took over.
enum TookOver {
    Running,
    Healthy(Option<Duration>),
    File,
    Timeout,
}

impl std::fmt::Display for TookOver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Running => f.write_str("runs (no healthcheck)"),
            Self::Healthy(Some(after)) => {
                write!(f, "is healthy (probed after {:.1} s)", after.as_secs_f64())
            }
            Self::Healthy(None) => f.write_str("is healthy (engine check)"),
            Self::File => write!(f, "wrote its hand-over file"),
            Self::Timeout => f.write_str("ran until the hand-over timeout"),
        }
    }
}

/// One [`replace`].
struct Run<'a, E: Engine> {
    engine: &'a E,
    project: &'a Project,
    service: &'a str,
    settings: &'a HandOver,
    opts: &'a Options,
    sink: Sink<'a>,
    steering: Option<&'a Steering>,
    probes: Probes,
}

impl<E: Engine> Run<'_, E> {
    fn say(&self, line: String) {
        (self.sink)(Event::Release { line });
    }

    fn fail(&self, reason: String) -> ApplyError {
        ApplyError::HandOver {
            service: self.service.to_string(),
            reason,
        }
    }

    /// The addresses of the service's running containers but `except`.
    async fn serving(&self, except: &[&str]) -> Result<Vec<IpAddr>, ApplyError> {
        let mut out = Vec::new();
        for c in service_containers(self.engine, self.project, self.service).await? {
            if c.state != State::Running || except.contains(&c.id.as_str()) {
                continue;
            }
            out.extend(self.addresses(&c.id).await?);
        }
        Ok(out)
    }

    async fn addresses(&self, id: &str) -> Result<Vec<IpAddr>, ApplyError> {
        match self.engine.inspect_container(id).await {
            Ok(d) => Ok(d.addresses.iter().filter_map(|a| a.parse().ok()).collect()),
            Err(e) if e.is_not_found() => Ok(vec![]),
            Err(e) => Err(engine_err(format!("inspect container {id}"))(e)),
        }
    }

    /// Hands container `number` (now `old_id`, named `name`) over to a new
    /// one.
    async fn one(
        &self,
        number: u32,
        name: &str,
        hash: &str,
        old_id: &str,
    ) -> Result<(), ApplyError> {
        let (engine, project, service) = (self.engine, self.project, self.service);
        let what = format!("hand over {name}");
        let temp = format!("{name}{NEXT_SUFFIX}");
        let (mut spec, files) = crate::apply::prepared_spec(project, service, number, hash, &what)?;
        let old = match engine.inspect_container(old_id).await {
            Ok(d) => Some(d),
            Err(e) if e.is_not_found() => None,
            Err(e) => return Err(engine_err(&what)(e)),
        };
        if let Some(old) = &old {
            crate::apply::carry_anonymous_volumes(&mut spec, project, &old.volumes);
        }
        spec.name = temp.clone();
        let old_running = old.as_ref().is_some_and(|o| o.state == State::Running);
        // Until it has taken over, the new container gets no connection
        // through the forwarder.
        let steering = match self.steering {
            Some(s) if old_running => {
                let generation = s
                    .allow(&self.serving(&[]).await?)
                    .map_err(|e| self.fail(e))?;
                // Loaded before the new container exists: else, on a busy
                // box, the forwarder may still connect to every address the
                // name resolves to when the new one starts resolving, and
                // send a request to it while it warms up.
                if !s.drained(generation, &[], DRAIN_TIMEOUT).await {
                    self.say(format!(
                        "{service}: the port forwarder did not confirm its backends within {} s: the new container may get connections before it takes over",
                        DRAIN_TIMEOUT.as_secs()
                    ));
                }
                Some(s)
            }
            _ => None,
        };
        if let Some(dir) = &self.settings.dir {
            let _ = std::fs::remove_file(dir.join(HANDOVER_FILE));
        }
        let report = |became: crate::ready::Became| self.say(format!("{service}: {became}"));
        let ready = crate::ready::wait_dependencies(
            engine,
            project,
            service,
            self.opts,
            &self.probes,
            &report,
        )
        .await;
        if let Err(e) = ready {
            steering.inspect(|s| s.clear());
            return Err(e);
        }
        self.say(format!("{service}: starting {temp} beside {name}"));
        let id = match engine.create_container(&spec).await {
            Ok(id) => id,
            Err(e) => {
                steering.inspect(|s| s.clear());
                return Err(engine_err(&what)(e));
            }
        };
        let took_over =
            match crate::apply::create_then_start(engine, project, service, &id, &files, &what)
                .await
            {
                Ok(()) => self.wait(&id, &temp).await,
                Err(e) => Err(e),
            };
        let how = match took_over {
            Ok(how) => how,
            Err(e) => {
                let _ = engine.remove_container(&id, false).await;
                steering.inspect(|s| s.clear());
                self.say(format!("{service}: {temp} removed; {name} still serves"));
                return Err(e);
            }
        };
        self.say(format!("{service}: {temp} {how}: {name} leaves"));
        if let Some(s) = steering {
            let new = self.addresses(&id).await?;
            let mut serving = self.serving(&[old_id, &id]).await?;
            serving.extend(new);
            let generation = s.allow(&serving).map_err(|e| self.fail(e))?;
            let old_addresses = match &old {
                Some(o) => o.addresses.iter().filter_map(|a| a.parse().ok()).collect(),
                None => vec![],
            };
            if !s.drained(generation, &old_addresses, DRAIN_TIMEOUT).await {
                self.say(format!(
                    "{service}: {name} still had connections after {} s: stopping it anyway",
                    DRAIN_TIMEOUT.as_secs()
                ));
            }
        }
        if old_running {
            if let Some(svc) = project.services.get(service) {
                for e in crate::hooks::pre_stop(engine, svc, old_id).await {
                    self.say(format!("{service}: {e} (stopped anyway)"));
                }
            }
            // No timeout: its own stop timeout (stop_grace_period).
            match engine.stop_container(old_id, None).await {
                Err(e) if !e.is_not_found() => return Err(engine_err(&what)(e)),
                _ => {}
            }
        }
        match engine.remove_container(old_id, false).await {
            Err(e) if !e.is_not_found() => return Err(engine_err(&what)(e)),
            _ => {}
        }
        engine
            .rename_container(&id, name)
            .await
            .map_err(engine_err(&what))?;
        if let Some(s) = steering {
            s.clear();
        }
        self.say(format!("{service}: {name} replaced"));
        Ok(())
    }

    /// Waits until the new container has taken over; an error when it never
    /// will (it exited, restarted or turned unhealthy) or took too long.
    async fn wait(&self, id: &str, name: &str) -> Result<TookOver, ApplyError> {
        let started = Instant::now();
        let interval = self
            .project
            .services
            .get(self.service)
            .and_then(|s| s.healthcheck.as_ref())
            .and_then(|h| h.start_interval)
            .map(|d| d.as_std());
        loop {
            let d = self
                .engine
                .inspect_container(id)
                .await
                .map_err(engine_err(format!("inspect container {name}")))?;
            match (d.state, d.health) {
                (State::Exited | State::Dead, _) => {
                    return Err(self.fail(format!(
                        "the new container {name} exited with code {}",
                        d.exit_code.unwrap_or(-1)
                    )));
                }
                _ if d.restart_count > 0 || d.state == State::Restarting => {
                    return Err(
                        self.fail(format!("the new container {name} exited and was restarted"))
                    );
                }
                (_, Some(Health::Unhealthy)) => {
                    return Err(self.fail(format!("the new container {name} is unhealthy")));
                }
                _ => {}
            }
            if let Some(dir) = &self.settings.dir {
                if dir.join(HANDOVER_FILE).exists() {
                    return Ok(TookOver::File);
                }
            } else if d.state == State::Running {
                match d.health {
                    None => return Ok(TookOver::Running),
                    Some(Health::Healthy) => return Ok(TookOver::Healthy(None)),
                    _ => {
                        let summary = ContainerSummary {
                            id: d.id.clone(),
                            name: d.name.clone(),
                            labels: d.labels.clone(),
                            image: String::new(),
                            image_id: d.image_id.clone(),
                            state: d.state,
                            health: d.health,
                        };
                        if let Some(after) =
                            self.probes.passed(self.engine, &summary, interval).await
                        {
                            return Ok(TookOver::Healthy(Some(after)));
                        }
                    }
                }
            }
            if started.elapsed() >= self.settings.timeout {
                let waited = self.settings.timeout.as_secs();
                return match self.settings.on_timeout {
                    OnTimeout::TakeOver => Ok(TookOver::Timeout),
                    OnTimeout::Fail if self.settings.dir.is_some() => Err(self.fail(format!(
                        "the new container {name} did not write /run/turtle/{HANDOVER_FILE} within {waited} s (set {HANDOVER_TIMEOUT_LABEL} to take over after a while anyway)"
                    ))),
                    OnTimeout::Fail => Err(self.fail(format!(
                        "the new container {name} was not healthy within {waited} s (set {HANDOVER_TIMEOUT_LABEL} to take over after a while anyway)"
                    ))),
                };
            }
            tokio::time::sleep(self.opts.poll_interval).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use turtle_compose::Port;
    use turtle_reconcile::test_support::{project, service};

    fn web(labels: &[(&str, &str)], ports: &[(u16, &str, &str)]) -> Service {
        let mut s = service("web:1");
        for (k, v) in labels {
            s.labels.insert(k.to_string(), v.to_string());
        }
        s.ports = ports
            .iter()
            .map(|(target, published, protocol)| Port {
                target: *target,
                published: (!published.is_empty()).then(|| published.to_string()),
                protocol: protocol.to_string(),
                ..Default::default()
            })
            .collect();
        s
    }

    #[test]
    fn labels_make_the_settings() {
        let p = project(
            "demo",
            vec![
                ("a", web(&[(STRATEGY_LABEL, "hand-over")], &[])),
                (
                    "b",
                    web(
                        &[
                            (STRATEGY_LABEL, "hand-over"),
                            (FILE_LABEL, "true"),
                            (HANDOVER_TIMEOUT_LABEL, "45"),
                        ],
                        &[],
                    ),
                ),
                ("c", web(&[(HANDOVER_TIMEOUT_LABEL, "soon")], &[])),
                ("d", web(&[], &[(53, "53", "udp")])),
            ],
        );
        let dir = PathBuf::from("/run/x");
        let a = settings(&p, "a", Some(dir.clone())).unwrap();
        assert_eq!(
            a,
            HandOver {
                dir: None,
                timeout: DEFAULT_TIMEOUT,
                on_timeout: OnTimeout::Fail
            }
        );
        let b = settings(&p, "b", Some(dir.clone())).unwrap();
        assert_eq!(b.dir, Some(dir));
        assert_eq!(b.timeout, Duration::from_secs(45));
        assert_eq!(b.on_timeout, OnTimeout::TakeOver);
        assert!(settings(&p, "b", None).unwrap_err().contains(FILE_LABEL));
        assert!(settings(&p, "c", None).unwrap_err().contains("soon"));
        let udp = settings(&p, "d", None).unwrap_err();
        assert!(udp.contains("53/udp") && udp.contains("TCP"), "{udp}");
    }

    #[test]
    fn published_ports_move_to_a_forwarding_companion() {
        let p = project(
            "demo",
            vec![
                (
                    "web",
                    web(
                        &[
                            (STRATEGY_LABEL, "hand-over"),
                            ("io.turtle.priority", "critical"),
                        ],
                        &[
                            (80, "8080", "tcp"),
                            (80, "8081", "tcp"),
                            (443, "8443", "tcp"),
                            (9000, "", "tcp"),
                        ],
                    ),
                ),
                ("db", web(&[], &[(5432, "5432", "tcp")])),
            ],
        );
        let run = PathBuf::from("/var/lib/turtle/run");
        let d = decorate(&p, &Forwarder::default(), Some(&run));
        let w = &d.services["web"];
        assert_eq!(w.ports.len(), 1, "the unpublished port stays");
        assert_eq!(
            d.services["db"], p.services["db"],
            "not hand-over: as written"
        );
        let c = &d.services["web-ports"];
        assert_eq!(c.ports.len(), 3);
        assert_eq!(c.environment[forward::ENV_ROUTES], "80=web:80,443=web:443");
        assert_eq!(c.environment[forward::ENV_DIR], MOUNT);
        assert_eq!(c.labels[FORWARDER_FOR_LABEL], "web");
        assert_eq!(c.labels["io.turtle.priority"], "critical");
        assert_eq!(c.restart, RestartPolicy::Always);
        assert_eq!(
            c.volumes[0].source.as_deref(),
            Some("/var/lib/turtle/run/demo/web")
        );
        assert!(c.networks.contains_key("default"));
        // Decorating is stable: the same project gives the same hash.
        assert_eq!(decorate(&p, &Forwarder::default(), Some(&run)), d);
        // A service with network_mode, or a UDP port, is left as written.
        let mut host = p.clone();
        host.services.get_mut("web").unwrap().network_mode =
            Some(turtle_compose::NetworkMode::Host);
        let hd = decorate(&host, &Forwarder::default(), Some(&run));
        assert!(!hd.services.contains_key("web-ports"));
    }

    #[tokio::test]
    async fn an_interrupted_hand_over_keeps_the_container_that_serves() {
        use turtle_engine::fake::FakeEngine;
        let p = project(
            "demo",
            vec![("web", web(&[(STRATEGY_LABEL, "hand-over")], &[]))],
        );
        let names = |e: &FakeEngine| {
            let mut n: Vec<(String, State)> = e
                .containers()
                .iter()
                .map(|c| (c.summary.name.clone(), c.summary.state))
                .collect();
            n.sort_by(|a, b| a.0.cmp(&b.0));
            n
        };
        // (old running, old stopped, old gone) with a running -next.
        for (old, kept) in [(Some(true), "old"), (Some(false), "new"), (None, "new")] {
            let engine = FakeEngine::new();
            engine.add_image("web:1");
            let spec = |name: &str| {
                let mut s = turtle_reconcile::spec::container_spec(
                    &p,
                    "web",
                    &p.services["web"],
                    1,
                    "h",
                    None,
                )
                .unwrap();
                s.name = name.to_string();
                s
            };
            let mut old_id = None;
            if let Some(running) = old {
                let id = engine.create_container(&spec("demo-web-1")).await.unwrap();
                if running {
                    engine.start_container(&id).await.unwrap();
                }
                old_id = Some(id);
            }
            let new_id = engine
                .create_container(&spec("demo-web-1-next"))
                .await
                .unwrap();
            engine.start_container(&new_id).await.unwrap();
            settle(&engine, &p, "web").await.unwrap();
            assert_eq!(
                names(&engine),
                vec![("demo-web-1".to_string(), State::Running)],
                "{old:?}"
            );
            let id = &engine.containers()[0].summary.id;
            match kept {
                "old" => assert_eq!(Some(id), old_id.as_ref()),
                _ => assert_eq!(id, &new_id),
            }
        }
    }
}
