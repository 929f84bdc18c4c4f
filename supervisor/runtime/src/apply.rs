//! `apply(engine, project, plan, options, sink) -> Report`: runs a plan's
//! steps with bounded parallelism.
//!
//! A step starts when every step it waits for has finished; at most
//! [`Options::parallelism`] run at once (all in one task: the engine calls are
//! async, so no thread is needed). Creating or starting a container first waits
//! for the `depends_on` conditions of its service ([`crate::ready`]: polling
//! the engine with a deadline, starting dependencies probed by the supervisor
//! itself, [`crate::probe`], with one [`Probes`] shared by every step). A
//! created container gets its copied secrets and configs before it starts
//! ([`crate::objects`]); a started one runs its `post_start` hooks, one about
//! to stop its `pre_stop` hooks ([`crate::hooks`]). A pulled image is tagged
//! again in place, which stamps when it was pulled (for `pull_policy:
//! every_<d>`). On the first failure no new step starts; the ones running
//! finish, and the error names the step and its cause.

use std::collections::HashSet;
use std::time::Duration;

// tokio's clock, so tests of deadlines run under paused time.
use tokio::time::Instant;

use futures_util::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use turtle_compose::Project;

use bollard_stubs::models::{Mount, MountType};

use turtle_engine::{ContainerSpec, Engine, EngineError, FileUpload, Progress, VolumeMount};
use turtle_reconcile::plan::{Action, Plan};

use crate::probe::Probes;
use crate::ready;
use turtle_reconcile::spec;

#[derive(Debug, Clone)]
pub struct Options {
    /// Steps running at once.
    pub parallelism: usize,
    /// How long to wait for one dependency's condition.
    pub dependency_timeout: Duration,
    /// Interval between two looks at a dependency's state.
    pub poll_interval: Duration,
    /// How to make the Debian base a build needs (see [`crate::base`]).
    pub base: crate::base::Settings,
    /// Probe starting containers' healthchecks ([`crate::probe`]).
    pub probe: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            parallelism: 8,
            dependency_timeout: Duration::from_secs(300),
            poll_interval: Duration::from_millis(50),
            base: Default::default(),
            probe: true,
        }
    }
}

/// What apply tells its caller as it goes (the CLI prints these).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        step: usize,
        what: String,
    },
    Done {
        step: usize,
        what: String,
        millis: u64,
    },
    Failed {
        step: usize,
        what: String,
        error: String,
    },
    Progress {
        step: usize,
        line: String,
    },
    /// What a release update is doing (`turtle push`, `rollback`): a
    /// phase begins, a lock holds it, the gate decides.
    Release {
        line: String,
    },
    /// A dependency (or, for `up --wait`, any container) became ready, and
    /// how: a probe of its healthcheck, or the engine's own check.
    Ready {
        step: usize,
        service: String,
        container: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        probed_after_ms: Option<u64>,
    },
}

impl Event {
    /// The `Ready` event of a step.
    pub fn ready(step: usize, became: ready::Became) -> Self {
        Self::Ready {
            step,
            service: became.service,
            container: became.container,
            probed_after_ms: became.probed_after.map(|d| d.as_millis() as u64),
        }
    }

    /// What a `Ready` event tells.
    pub fn became(&self) -> Option<ready::Became> {
        match self {
            Self::Ready {
                service,
                container,
                probed_after_ms,
                ..
            } => Some(ready::Became {
                service: service.clone(),
                container: container.clone(),
                probed_after: probed_after_ms.map(Duration::from_millis),
            }),
            _ => None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{what}: {source}")]
    Engine {
        what: String,
        #[source]
        source: EngineError,
    },
    #[error("{what}: {source}")]
    Spec {
        what: String,
        #[source]
        source: spec::SpecError,
    },
    #[error("{what}: {source}")]
    Hook {
        what: String,
        #[source]
        source: Box<crate::hooks::HookError>,
    },
    #[error("{service} waits for {dependency}: {reason}")]
    Dependency {
        service: String,
        dependency: String,
        reason: String,
    },
    /// A hand-over that did not happen: the old container still serves
    /// (see [`crate::handover`]).
    #[error("hand-over of service {service}: {reason}")]
    HandOver { service: String, reason: String },
}

/// Summary of an applied plan.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct Report {
    pub project: String,
    pub steps_done: usize,
    pub steps_total: usize,
    /// Services with a container created, recreated, started or restarted.
    pub changed: Vec<String>,
}

type Sink<'a> = &'a (dyn Fn(Event) + Send + Sync);

/// Runs `plan` against `engine`.
pub async fn apply<E: Engine>(
    engine: &E,
    project: &Project,
    plan: &Plan,
    opts: &Options,
    sink: Sink<'_>,
) -> Result<Report, ApplyError> {
    let n = plan.steps.len();
    let mut done = vec![false; n];
    let mut started = vec![false; n];
    // Shared by every step's waits: a dependency is probed once, whoever
    // waits for it.
    let probes = Probes::new(opts.probe);
    let probes = &probes;
    let mut running = FuturesUnordered::new();
    let mut first_error = None;
    let mut changed = HashSet::new();
    let mut steps_done = 0;

    loop {
        if first_error.is_none() {
            for (i, step) in plan.steps.iter().enumerate() {
                if running.len() >= opts.parallelism.max(1) {
                    break;
                }
                if !started[i] && step.after.iter().all(|&a| done[a]) {
                    started[i] = true;
                    let what = plan.steps[i].action.to_string();
                    sink(Event::Started { step: i, what });
                    running.push(async move {
                        let t = Instant::now();
                        let step = Step {
                            index: i,
                            opts,
                            probes,
                            sink,
                        };
                        let r = run_step(engine, project, &plan.steps[i].action, step).await;
                        (i, r, t.elapsed())
                    });
                }
            }
        }
        let Some((i, result, elapsed)) = running.next().await else {
            break;
        };
        let what = plan.steps[i].action.to_string();
        match result {
            Ok(()) => {
                done[i] = true;
                steps_done += 1;
                if let Some(service) = touched_service(&plan.steps[i].action) {
                    changed.insert(service.to_string());
                }
                sink(Event::Done {
                    step: i,
                    what,
                    millis: elapsed.as_millis() as u64,
                });
            }
            Err(e) => {
                sink(Event::Failed {
                    step: i,
                    what,
                    error: e.to_string(),
                });
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let mut changed: Vec<String> = changed.into_iter().collect();
    changed.sort();
    Ok(Report {
        project: project.name.to_string(),
        steps_done,
        steps_total: n,
        changed,
    })
}

fn touched_service(a: &Action) -> Option<&str> {
    match a {
        Action::CreateContainer { service, .. }
        | Action::RecreateContainer { service, .. }
        | Action::StartContainer { service, .. }
        | Action::RestartContainer { service, .. } => Some(service),
        _ => None,
    }
}

pub(crate) fn engine_err(what: impl Into<String>) -> impl FnOnce(EngineError) -> ApplyError {
    let what = what.into();
    move |source| ApplyError::Engine { what, source }
}

/// What a running step shares with the others.
#[derive(Clone, Copy)]
struct Step<'a> {
    index: usize,
    opts: &'a Options,
    probes: &'a Probes,
    sink: Sink<'a>,
}

impl Step<'_> {
    /// Waits for the service's dependencies, telling how each became ready.
    async fn wait_dependencies<E: Engine>(
        self,
        engine: &E,
        project: &Project,
        service: &str,
    ) -> Result<(), ApplyError> {
        let report = |became| (self.sink)(Event::ready(self.index, became));
        ready::wait_dependencies(engine, project, service, self.opts, self.probes, &report).await
    }
}

async fn run_step<E: Engine>(
    engine: &E,
    project: &Project,
    action: &Action,
    st: Step<'_>,
) -> Result<(), ApplyError> {
    let Step {
        index: step,
        opts,
        sink,
        ..
    } = st;
    let what = action.to_string();
    match action {
        Action::CreateNetwork { key, .. } => {
            let req = spec::network_request(project, key, &project.networks[key]);
            match engine.create_network(&req).await {
                Err(EngineError::Conflict { .. }) | Ok(()) => Ok(()),
                Err(e) => Err(engine_err(what)(e)),
            }
        }
        Action::CreateVolume { key, .. } => {
            let req = spec::volume_request(project, key, &project.volumes[key]);
            engine.create_volume(&req).await.map_err(engine_err(what))
        }
        Action::PullImage { image } => {
            let mut s = engine.pull_image(image);
            while let Some(p) = s.next().await {
                report_progress(step, p.map_err(engine_err(&what))?, sink);
            }
            // Stamps the image's LastTagTime with the time of this pull, so
            // `pull_policy: every_<d>` counts from it (see
            // turtle_reconcile::refresh). A reference by digest names one
            // image for good (nothing to refresh) and cannot be a tag.
            if image.contains('@') {
                return Ok(());
            }
            engine
                .tag_image(image, image)
                .await
                .map_err(engine_err(what))
        }
        Action::BuildImage { service, image } => {
            build(engine, project, step, service, image, opts, sink).await
        }
        Action::RemoveContainer { id, service, .. } => {
            pre_stop(engine, project, service, id, step, sink).await;
            // No timeout: the engine uses the container's own stop timeout
            // (set from stop_grace_period at create).
            match engine.stop_container(id, None).await {
                Ok(()) => {}
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(engine_err(&what)(e)),
            }
            match engine.remove_container(id, false).await {
                Err(e) if !e.is_not_found() => Err(engine_err(what)(e)),
                _ => Ok(()),
            }
        }
        Action::CreateContainer {
            service,
            number,
            hash,
            ..
        } => {
            st.wait_dependencies(engine, project, service).await?;
            let (spec, files) = prepared_spec(project, service, *number, hash, &what)?;
            let id = engine
                .create_container(&spec)
                .await
                .map_err(engine_err(&what))?;
            create_then_start(engine, project, service, &id, &files, &what).await
        }
        Action::RecreateContainer {
            service,
            number,
            hash,
            old_id,
            ..
        } => {
            let new = (service.as_str(), *number, hash.as_str());
            recreate(engine, project, new, old_id, st, &what).await
        }
        Action::StartContainer { service, id, .. } => {
            st.wait_dependencies(engine, project, service).await?;
            engine
                .start_container(id)
                .await
                .map_err(engine_err(&what))?;
            post_start(engine, project, service, id, &what).await
        }
        Action::RestartContainer { service, id, .. } => {
            pre_stop(engine, project, service, id, step, sink).await;
            engine
                .restart_container(id, None)
                .await
                .map_err(engine_err(&what))?;
            post_start(engine, project, service, id, &what).await
        }
    }
}

/// Writes the copied secrets and configs into a just-created container,
/// starts it and runs its `post_start` hooks.
pub(crate) async fn create_then_start<E: Engine>(
    engine: &E,
    project: &Project,
    service: &str,
    id: &str,
    files: &[FileUpload],
    what: &str,
) -> Result<(), ApplyError> {
    if !files.is_empty() {
        engine
            .upload_files(id, files)
            .await
            .map_err(engine_err(what))?;
    }
    engine.start_container(id).await.map_err(engine_err(what))?;
    post_start(engine, project, service, id, what).await
}

/// Runs a service's `post_start` hooks; a failure fails the step (the
/// container stays running, as compose leaves it).
async fn post_start<E: Engine>(
    engine: &E,
    project: &Project,
    service: &str,
    id: &str,
    what: &str,
) -> Result<(), ApplyError> {
    let Some(s) = project.services.get(service) else {
        return Ok(());
    };
    crate::hooks::post_start(engine, s, id)
        .await
        .map_err(|source| ApplyError::Hook {
            what: what.to_string(),
            source: Box::new(source),
        })
}

/// Runs a service's `pre_stop` hooks; a failure is reported on the step's
/// progress and the stop goes on.
async fn pre_stop<E: Engine>(
    engine: &E,
    project: &Project,
    service: &str,
    id: &str,
    step: usize,
    sink: Sink<'_>,
) {
    let Some(s) = project.services.get(service) else {
        return;
    };
    for e in crate::hooks::pre_stop(engine, s, id).await {
        sink(Event::Progress {
            step,
            line: format!("{e} (stopped anyway)"),
        });
    }
}

/// Builds a service's image: its Debian base first when the Dockerfile
/// starts from one the engine lacks, the running executable added to the
/// context when the service asks for it.
async fn build<E: Engine>(
    engine: &E,
    project: &Project,
    step: usize,
    service: &str,
    image: &str,
    opts: &Options,
    sink: Sink<'_>,
) -> Result<(), ApplyError> {
    let what = format!("build image {image} for {service}");
    if project.services[service]
        .labels
        .contains_key(crate::forward::IMAGE_LABEL)
    {
        return crate::forward::make_image(engine, image)
            .await
            .map_err(engine_err(what));
    }
    let image = image.to_string();
    let build = project.services[service]
        .build
        .as_ref()
        .expect("the planner builds only services with a build section");
    let dockerfile = build
        .context
        .join(build.dockerfile.as_deref().unwrap_or("Dockerfile"));
    let text = match &build.dockerfile_inline {
        Some(text) => Ok(text.clone()),
        None => std::fs::read_to_string(&dockerfile),
    };
    if let Ok(text) = text {
        for base in crate::base::bases_in(&text) {
            let log = |l: String| report_progress(step, Progress::Log(l), sink);
            let outcome = crate::base::ensure(engine, &base, &opts.base, false, &log)
                .await
                .map_err(|e| {
                    engine_err(&what)(EngineError::Build {
                        image: image.clone(),
                        message: e.to_string(),
                    })
                })?;
            if outcome != crate::base::Outcome::Present {
                log(format!("{base}: {outcome}"));
            }
        }
    }
    let mut spec =
        spec::build_spec(project, service, build, &image).map_err(|source| ApplyError::Spec {
            what: what.clone(),
            source,
        })?;
    if let Some(name) = project.services[service]
        .labels
        .get(crate::images::BUILD_SELF_LABEL)
    {
        let exe = crate::images::self_exe().map_err(|e| {
            engine_err(&what)(EngineError::Build {
                image: image.clone(),
                message: format!("cannot find the turtle executable: {e}"),
            })
        })?;
        spec.files = vec![(name.clone(), exe)];
    }
    let mut s = engine.build_image(&spec);
    while let Some(p) = s.next().await {
        report_progress(step, p.map_err(engine_err(&what))?, sink);
    }
    Ok(())
}

/// Replaces a container: the new spec is checked and its dependencies ready
/// before the old container goes; its anonymous volumes carry over.
async fn recreate<E: Engine>(
    engine: &E,
    project: &Project,
    (service, number, hash): (&str, u32, &str),
    old_id: &str,
    st: Step<'_>,
    what: &str,
) -> Result<(), ApplyError> {
    let (step, sink) = (st.index, st.sink);
    st.wait_dependencies(engine, project, service).await?;
    let (mut spec, files) = prepared_spec(project, service, number, hash, what)?;
    match engine.inspect_container(old_id).await {
        Ok(old) => carry_anonymous_volumes(&mut spec, project, &old.volumes),
        Err(e) if e.is_not_found() => {}
        Err(e) => return Err(engine_err(what)(e)),
    }
    pre_stop(engine, project, service, old_id, step, sink).await;
    match engine.stop_container(old_id, None).await {
        Err(e) if !e.is_not_found() => return Err(engine_err(what)(e)),
        _ => {}
    }
    match engine.remove_container(old_id, false).await {
        Err(e) if !e.is_not_found() => return Err(engine_err(what)(e)),
        _ => {}
    }
    let id = engine
        .create_container(&spec)
        .await
        .map_err(engine_err(what))?;
    create_then_start(engine, project, service, &id, &files, what).await
}

/// The create request of a container, with its host paths ready, and the
/// files to copy into it before it starts (see [`crate::objects`]).
pub(crate) fn prepared_spec(
    project: &Project,
    service: &str,
    number: u32,
    hash: &str,
    what: &str,
) -> Result<(ContainerSpec, Vec<FileUpload>), ApplyError> {
    let s = &project.services[service];
    let spec_err = |source| ApplyError::Spec {
        what: what.to_string(),
        source,
    };
    crate::host_paths::prepare_host_paths(project, service, s).map_err(spec_err)?;
    let files = crate::objects::uploads(project, service, s).map_err(spec_err)?;
    let spec = spec::container_spec(project, service, s, number, hash, None).map_err(spec_err)?;
    Ok((spec, files))
}

/// Gives the new container the anonymous volumes of the one it replaces (those
/// of the compose file and those the image declares), as compose does, so a
/// recreate keeps their data.
pub(crate) fn carry_anonymous_volumes(
    spec: &mut ContainerSpec,
    project: &Project,
    old: &[VolumeMount],
) {
    let named: HashSet<&str> = project.volumes.values().map(|v| v.name.as_str()).collect();
    let host = spec.body.host_config.get_or_insert_with(Default::default);
    let mounts = host.mounts.get_or_insert_with(Vec::new);
    for v in old.iter().filter(|v| !named.contains(v.name.as_str())) {
        let target = Some(v.destination.clone());
        match mounts.iter_mut().find(|m| m.target == target) {
            Some(m)
                if m.typ == Some(MountType::VOLUME)
                    && m.source.as_deref().unwrap_or("").is_empty() =>
            {
                m.source = Some(v.name.clone());
            }
            Some(_) => {}
            None => mounts.push(Mount {
                target,
                source: Some(v.name.clone()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            }),
        }
    }
}

fn report_progress(step: usize, p: Progress, sink: Sink<'_>) {
    let line = match p {
        Progress::Log(l) => l,
        Progress::Layer {
            id,
            status,
            current,
            total,
        } => match (current, total) {
            (Some(c), Some(t)) if t > 0 => format!("{id}: {status} {}%", c * 100 / t),
            _ => format!("{id}: {status}"),
        },
    };
    sink(Event::Progress { step, line });
}
