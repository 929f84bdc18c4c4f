//! `plan(project, observed) -> Plan`: the reconciler's pure core.
//!
//! A plan is data: ordered steps, each naming the steps it must wait for.
//! Running [`plan`] on what the engine looks like after applying its result
//! gives an empty plan (idempotence); `turtle up --dry-run` prints it.
//!
//! Rules, per service, in dependency order:
//! - a missing container is created; one whose config hash or image changed is
//!   removed and created again; scale-down removes the highest numbers;
//! - in [`Mode::Up`] a stopped container is started again, except a finished
//!   one-shot (exited 0 with restart `no` or `on-failure`) and a service the
//!   user stopped on purpose ([`Options::held`]);
//! - in [`Mode::Repair`] (the daemon's resync) missing containers are
//!   created and containers created but never started are started, except
//!   services the user stopped and one-shots that already ran: restart
//!   policies and the user's stops are respected;
//! - a service that declared `depends_on: {X: {restart: true}}` is restarted
//!   when X is created, recreated or started and it is not itself;
//! - containers of services no longer in the project are removed; named
//!   volumes never are (that is `down --volumes`).

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::Serialize;
use turtle_compose::{Condition, NetworkMode, Project, PullPolicy, RestartPolicy, Service};

use crate::names;
use crate::observe::{Observed, number_of};
use turtle_engine::State;

/// How much the planner may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// An explicit `up`: create, recreate, start, remove orphans.
    #[default]
    Up,
    /// A resync of an applied project: re-create what vanished and start
    /// what was created but never started, nothing more.
    Repair,
}

#[derive(Debug, Clone, Default)]
pub struct Options {
    pub mode: Mode,
    /// Services the user stopped with `turtle stop`; they are left stopped.
    pub held: HashSet<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RemoveReason {
    /// Its service is no longer in the project.
    Orphan,
    /// Its number is above the service's replica count.
    ScaledDown,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    CreateNetwork {
        key: String,
        name: String,
    },
    CreateVolume {
        key: String,
        name: String,
    },
    PullImage {
        image: String,
    },
    BuildImage {
        service: String,
        image: String,
    },
    RemoveContainer {
        service: String,
        name: String,
        id: String,
        reason: RemoveReason,
    },
    CreateContainer {
        service: String,
        number: u32,
        name: String,
        hash: String,
    },
    /// Replaces a container whose configuration or image changed. The old one
    /// is removed only once the new one can be created (its dependencies
    /// ready, its spec valid), and its anonymous volumes carry over.
    RecreateContainer {
        service: String,
        number: u32,
        name: String,
        hash: String,
        old_id: String,
    },
    StartContainer {
        service: String,
        name: String,
        id: String,
    },
    RestartContainer {
        service: String,
        name: String,
        id: String,
        because: String,
    },
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::CreateNetwork { name, .. } => write!(f, "create network {name}"),
            Self::CreateVolume { name, .. } => write!(f, "create volume {name}"),
            Self::PullImage { image } => write!(f, "pull image {image}"),
            Self::BuildImage { service, image } => write!(f, "build image {image} for {service}"),
            Self::RemoveContainer { name, reason, .. } => {
                let why = match reason {
                    RemoveReason::Orphan => "service no longer in the project",
                    RemoveReason::ScaledDown => "scaled down",
                };
                write!(f, "remove container {name} ({why})")
            }
            Self::CreateContainer { name, .. } => write!(f, "create and start container {name}"),
            Self::RecreateContainer { name, .. } => {
                write!(
                    f,
                    "recreate container {name} (configuration or image changed)"
                )
            }
            Self::StartContainer { name, .. } => write!(f, "start container {name}"),
            Self::RestartContainer { name, because, .. } => {
                write!(f, "restart container {name} ({because} changed)")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Step {
    #[serde(flatten)]
    pub action: Action,
    /// Indices of the steps this one waits for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct Plan {
    pub project: String,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }

    pub(crate) fn push(&mut self, action: Action, mut after: Vec<usize>) -> usize {
        after.sort_unstable();
        after.dedup();
        self.steps.push(Step { action, after });
        self.steps.len() - 1
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            return writeln!(f, "project {}: nothing to do", self.project);
        }
        writeln!(f, "project {}: {} step(s)", self.project, self.steps.len())?;
        for (i, s) in self.steps.iter().enumerate() {
            write!(f, "{:>3}. {}", i + 1, s.action)?;
            if !s.after.is_empty() {
                let after: Vec<String> = s.after.iter().map(|a| (a + 1).to_string()).collect();
                write!(f, "  [after {}]", after.join(", "))?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    #[error("external {kind} {name} not found: create it first (docker {kind} create {name})")]
    ExternalMissing { kind: &'static str, name: String },
    #[error("service {service} has neither image nor build")]
    NoImage { service: String },
    #[error(
        "service {service} has pull_policy: never and the engine has no image {image}: load or build it first (docker load, docker build -t {image}), or change pull_policy"
    )]
    NeverPull { service: String, image: String },
    #[error(
        "service {service} has pull_policy: build but no build: section: add one, or use another pull_policy"
    )]
    BuildWithoutBuild { service: String },
    #[error("depends_on cycle: {0}")]
    Cycle(String),
    #[error(
        "service {service} sets container_name and {replicas} replicas: a name fits one container only"
    )]
    NamedReplicas { service: String, replicas: u32 },
    #[error(
        "service {service} asks for {replicas} replicas: turtle runs at most {MAX_REPLICAS} containers of one service"
    )]
    TooManyReplicas { service: String, replicas: u32 },
}

/// The most containers of one service. A plan has steps per container, so
/// without a bound a five-line file (`replicas: 2000000000`) makes the
/// planner, in the daemon, allocate until the box runs out of memory.
pub const MAX_REPLICAS: u32 = 1000;

/// Dependencies of a service that the planner and applier honour: `depends_on`
/// plus the implicit one of `network_mode: service:X` (started).
pub fn dependencies(service: &Service) -> Vec<(String, Condition, bool)> {
    let mut deps: Vec<(String, Condition, bool)> = service
        .depends_on
        .iter()
        .map(|(name, d)| (name.clone(), d.condition, d.restart))
        .collect();
    if let Some(NetworkMode::Service(s)) = &service.network_mode
        && !service.depends_on.contains_key(s)
    {
        deps.push((s.clone(), Condition::ServiceStarted, true));
    }
    deps
}

/// Services in an order where every service comes after its dependencies
/// (alphabetical among equals, so plans are stable).
pub fn dependency_order(project: &Project) -> Result<Vec<String>, PlanError> {
    fn visit(
        name: &str,
        project: &Project,
        done: &mut HashSet<String>,
        path: &mut Vec<String>,
        out: &mut Vec<String>,
    ) -> Result<(), PlanError> {
        if done.contains(name) {
            return Ok(());
        }
        if let Some(pos) = path.iter().position(|p| p == name) {
            let mut cycle = path[pos..].to_vec();
            cycle.push(name.to_string());
            return Err(PlanError::Cycle(cycle.join(" -> ")));
        }
        let Some(service) = project.services.get(name) else {
            return Ok(());
        };
        path.push(name.to_string());
        let mut deps = dependencies(service);
        deps.sort_by(|a, b| a.0.cmp(&b.0));
        for (dep, _, _) in deps {
            visit(&dep, project, done, path, out)?;
        }
        path.pop();
        done.insert(name.to_string());
        out.push(name.to_string());
        Ok(())
    }
    let mut names: Vec<&str> = project.services.keys().map(|k| k.as_str()).collect();
    names.sort();
    let (mut done, mut out) = (HashSet::new(), Vec::new());
    for name in names {
        visit(name, project, &mut done, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

/// The hash a container is labelled with: the service's own config hash plus
/// what the service refers to by key, resolved — the engine names of its
/// networks and volumes, the host files of its secrets and configs (a digest
/// of the content of content-backed ones), and the container whose network
/// it shares. Renaming a network with `name:`, pointing a secret at another
/// file or changing a secret's content recreates the container.
pub fn config_hash(project: &Project, service: &Service) -> String {
    use sha2::{Digest, Sha256};
    let networks: Vec<(&str, Option<&str>)> = service
        .networks
        .keys()
        .map(|k| (k.as_str(), project.networks.get(k).map(|n| n.name.as_str())))
        .collect();
    let volumes: Vec<(&str, Option<&str>)> = service
        .volumes
        .iter()
        .filter_map(|m| m.source.as_deref())
        .filter(|s| project.volumes.contains_key(*s))
        .map(|k| (k, project.volumes.get(k).map(|v| v.name.as_str())))
        .collect();
    let files: Vec<serde_json::Value> = service
        .secrets
        .iter()
        .map(|f| (f, project.secrets.get(&f.source)))
        .chain(
            service
                .configs
                .iter()
                .map(|f| (f, project.configs.get(&f.source))),
        )
        .map(|(f, o)| file_entry(&f.source, o))
        .collect();
    let shared = match &service.network_mode {
        Some(NetworkMode::Service(s)) => Some(
            project
                .services
                .get(s.as_str())
                .and_then(|x| x.container_name.clone())
                .unwrap_or_else(|| names::container_name(&project.name, s, 1)),
        ),
        _ => None,
    };
    let resolved = serde_json::json!({
        "service": turtle_compose::service_hash(service),
        "networks": networks,
        "volumes": volumes,
        "files": files,
        "shares_network_of": shared,
    });
    hex::encode(Sha256::digest(resolved.to_string()))
}

/// A secret's or config's part of the hash: its host file, or a digest of
/// its content (never the content itself: the hash is a label anyone with
/// the engine can read). A `file:` object's entry is what it was before
/// content-backed objects existed, so existing containers keep their hash.
fn file_entry(source: &str, object: Option<&turtle_compose::FileObject>) -> serde_json::Value {
    use sha2::{Digest, Sha256};
    match object {
        Some(o) if o.content.is_some() => {
            let digest = hex::encode(Sha256::digest(o.content.as_deref().unwrap_or_default()));
            serde_json::json!([source, null, format!("sha256:{digest}")])
        }
        o => serde_json::json!([source, o.and_then(|o| o.file.as_deref())]),
    }
}

/// Services that others wait on to complete successfully: one-shots (a
/// migration, a seed job) that must not be run again by a repair.
fn one_shots(project: &Project) -> HashSet<&str> {
    project
        .services
        .values()
        .flat_map(|s| s.depends_on.iter())
        .filter(|(_, d)| d.condition == Condition::ServiceCompletedSuccessfully)
        .map(|(name, _)| name.as_str())
        .collect()
}

/// True for a container that ran to completion and is meant to stay done.
fn finished_one_shot(service: &Service, exit_code: Option<i64>) -> bool {
    exit_code == Some(0)
        && matches!(
            service.restart,
            RestartPolicy::No | RestartPolicy::OnFailure(_)
        )
}

/// Adds a step for each network or volume (`kind`) that does not exist yet;
/// a missing external one is an error. Returns the steps by project key.
fn create_missing<'a>(
    p: &mut Plan,
    kind: &'static str,
    wanted: impl Iterator<Item = (&'a String, &'a str, bool)>,
    existing: &[String],
    action: impl Fn(String, String) -> Action,
) -> Result<HashMap<String, usize>, PlanError> {
    let mut steps = HashMap::new();
    for (key, name, external) in wanted {
        if existing.iter().any(|e| e == name) {
            continue;
        }
        if external {
            return Err(PlanError::ExternalMissing {
                kind,
                name: name.to_string(),
            });
        }
        steps.insert(
            key.clone(),
            p.push(action(key.clone(), name.to_string()), vec![]),
        );
    }
    Ok(steps)
}

/// Computes the steps that take the engine from `observed` to `project`.
pub fn plan(project: &Project, observed: &Observed, opts: &Options) -> Result<Plan, PlanError> {
    let mut p = Plan {
        project: project.name.to_string(),
        steps: Vec::new(),
    };
    let order = dependency_order(project)?;
    for (name, service) in &project.services {
        if service.replicas > MAX_REPLICAS {
            return Err(PlanError::TooManyReplicas {
                service: name.to_string(),
                replicas: service.replicas,
            });
        }
        if service.container_name.is_some() && service.replicas > 1 {
            return Err(PlanError::NamedReplicas {
                service: name.to_string(),
                replicas: service.replicas,
            });
        }
    }
    let network_steps = create_missing(
        &mut p,
        "network",
        project
            .networks
            .iter()
            .map(|(k, n)| (k, n.name.as_str(), n.external)),
        &observed.networks,
        |key, name| Action::CreateNetwork { key, name },
    )?;
    let volume_steps = create_missing(
        &mut p,
        "volume",
        project
            .volumes
            .iter()
            .map(|(k, v)| (k, v.name.as_str(), v.external)),
        &observed.volumes,
        |key, name| Action::CreateVolume { key, name },
    )?;
    let image_steps = images(&mut p, project, observed, opts, &order)?;

    // Containers, in dependency order.
    let mut service_steps: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut changed: HashSet<&str> = HashSet::new();
    let one_shots = one_shots(project);
    for name in &order {
        let service = &project.services[name.as_str()];
        let image = service.image.clone().unwrap_or_default();
        let deps = dependencies(service);
        // What every step of this service waits for: its networks, volumes,
        // image and dependencies.
        let mut base: Vec<usize> = Vec::new();
        base.extend(service.networks.keys().filter_map(|k| network_steps.get(k)));
        base.extend(
            service
                .volumes
                .iter()
                .filter_map(|m| m.source.as_ref().and_then(|s| volume_steps.get(s))),
        );
        base.extend(image_steps.get(&image));
        for (dep, _, _) in &deps {
            base.extend(service_steps.get(dep.as_str()).into_iter().flatten());
        }
        let service_plan = ServicePlan {
            project,
            observed,
            opts,
            name,
            service,
            base,
            image_rebuilt: image_steps.contains_key(&image),
            one_shot: one_shots.contains(name.as_str()),
        };
        let mut steps = service_plan.containers(&mut p);
        // Restart dependents that asked for it when a dependency changed.
        if steps.is_empty()
            && opts.mode == Mode::Up
            && let Some((dep, _, _)) = deps
                .iter()
                .find(|(dep, _, restart)| *restart && changed.contains(dep.as_str()))
        {
            steps = service_plan.restarts(&mut p, dep);
        }
        if !steps.is_empty() {
            changed.insert(name.as_str());
        }
        service_steps.insert(name.as_str(), steps);
    }
    if opts.mode == Mode::Up {
        orphans(&mut p, project, observed);
    }
    Ok(p)
}

/// Image steps: build what has a build section, pull the rest; once per
/// reference, and none for an image the engine has.
fn images(
    p: &mut Plan,
    project: &Project,
    observed: &Observed,
    opts: &Options,
    order: &[String],
) -> Result<HashMap<String, usize>, PlanError> {
    let mut image_steps: HashMap<String, usize> = HashMap::new();
    for name in order {
        let service = &project.services[name.as_str()];
        let Some(image) = &service.image else {
            return Err(PlanError::NoImage {
                service: name.clone(),
            });
        };
        if image_steps.contains_key(image)
            || observed.images.get(image).is_some_and(Option::is_some)
        {
            continue;
        }
        if opts.mode == Mode::Repair && !observed.service_containers(name).is_empty() {
            continue;
        }
        if service.build.is_none() && service.pull_policy == Some(PullPolicy::Never) {
            return Err(PlanError::NeverPull {
                service: name.clone(),
                image: image.clone(),
            });
        }
        if service.build.is_none() && service.pull_policy == Some(PullPolicy::Build) {
            return Err(PlanError::BuildWithoutBuild {
                service: name.clone(),
            });
        }
        let action = if service.build.is_some() {
            Action::BuildImage {
                service: name.clone(),
                image: image.clone(),
            }
        } else {
            Action::PullImage {
                image: image.clone(),
            }
        };
        let i = p.push(action, vec![]);
        image_steps.insert(image.clone(), i);
    }
    Ok(image_steps)
}

/// One service's containers against what the engine has.
struct ServicePlan<'a> {
    project: &'a Project,
    observed: &'a Observed,
    opts: &'a Options,
    name: &'a String,
    service: &'a Service,
    /// The steps every step of this service waits for.
    base: Vec<usize>,
    /// Its image is built or pulled by this plan.
    image_rebuilt: bool,
    /// Others wait for it to complete successfully.
    one_shot: bool,
}

impl ServicePlan<'_> {
    /// Creates, recreates, starts and scales down the service's containers;
    /// returns the steps.
    fn containers(&self, p: &mut Plan) -> Vec<usize> {
        let (project, observed, opts, name, service) = (
            self.project,
            self.observed,
            self.opts,
            self.name,
            self.service,
        );
        let hash = config_hash(project, service);
        let image = service.image.clone().unwrap_or_default();
        let current_image = observed.images.get(&image).cloned().flatten();
        let held = opts.held.contains(name);
        let existing = observed.service_containers(name);
        let mut steps = Vec::new();
        for number in 1..=service.replicas {
            let container_name = service
                .container_name
                .clone()
                .unwrap_or_else(|| names::container_name(&project.name, name, number));
            let create = Action::CreateContainer {
                service: name.clone(),
                number,
                name: container_name.clone(),
                hash: hash.clone(),
            };
            let Some(c) = existing.iter().find(|c| number_of(c) == number) else {
                // In a repair, a service the user stopped stays as it is, and
                // a one-shot that already did its job is not run again.
                let skip = opts.mode == Mode::Repair
                    && (held || (self.one_shot && service.restart != RestartPolicy::Always));
                if !skip {
                    steps.push(p.push(create, self.base.clone()));
                }
                continue;
            };
            let outdated = c.labels.get(names::CONFIG_HASH) != Some(&hash)
                || self.image_rebuilt
                || current_image.as_ref().is_some_and(|id| *id != c.image_id);
            if outdated && opts.mode == Mode::Up {
                // After everything the new container needs (image, networks,
                // volumes, dependencies): a failed pull or build leaves the
                // old one running.
                steps.push(p.push(
                    Action::RecreateContainer {
                        service: name.clone(),
                        number,
                        name: container_name,
                        hash: hash.clone(),
                        old_id: c.id.clone(),
                    },
                    self.base.clone(),
                ));
                continue;
            }
            // Never started (a start failed, or the supervisor died between
            // create and start): start it, in a repair too.
            let never_started = c.state == State::Created;
            let stopped = matches!(c.state, State::Exited | State::Dead)
                && opts.mode == Mode::Up
                && !finished_one_shot(service, observed.exit_codes.get(&c.id).copied());
            if (never_started || stopped) && !held {
                steps.push(p.push(
                    Action::StartContainer {
                        service: name.clone(),
                        name: c.name.clone(),
                        id: c.id.clone(),
                    },
                    self.base.clone(),
                ));
            }
        }
        if opts.mode == Mode::Up {
            for c in existing
                .iter()
                .filter(|c| number_of(c) == 0 || number_of(c) > service.replicas)
            {
                steps.push(p.push(
                    Action::RemoveContainer {
                        service: name.clone(),
                        name: c.name.clone(),
                        id: c.id.clone(),
                        reason: RemoveReason::ScaledDown,
                    },
                    vec![],
                ));
            }
        }
        steps
    }

    /// Restarts the service's running containers because `dep` changed.
    fn restarts(&self, p: &mut Plan, dep: &str) -> Vec<usize> {
        self.observed
            .service_containers(self.name)
            .iter()
            .filter(|c| c.state == State::Running)
            .map(|c| {
                p.push(
                    Action::RestartContainer {
                        service: self.name.clone(),
                        name: c.name.clone(),
                        id: c.id.clone(),
                        because: dep.to_string(),
                    },
                    self.base.clone(),
                )
            })
            .collect()
    }
}

/// Removes the containers of services no longer in the project.
fn orphans(p: &mut Plan, project: &Project, observed: &Observed) {
    let mut orphans: Vec<_> = observed
        .containers
        .iter()
        .filter(|c| {
            c.labels
                .get(names::SERVICE)
                .is_none_or(|s| !project.services.contains_key(s.as_str()))
        })
        .collect();
    orphans.sort_by(|a, b| a.name.cmp(&b.name));
    for c in orphans {
        p.push(
            Action::RemoveContainer {
                service: c.labels.get(names::SERVICE).cloned().unwrap_or_default(),
                name: c.name.clone(),
                id: c.id.clone(),
                reason: RemoveReason::Orphan,
            },
            vec![],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{depends, service};

    fn project(services: Vec<(&str, Service)>) -> Project {
        crate::test_support::project("demo", services)
    }

    #[test]
    fn cycles_and_named_replicas_are_errors() {
        let p = project(vec![
            (
                "a",
                depends(service("x"), "b", Condition::ServiceStarted, false),
            ),
            (
                "b",
                depends(service("x"), "a", Condition::ServiceStarted, false),
            ),
        ]);
        let err = plan(&p, &Observed::default(), &Options::default()).unwrap_err();
        assert_eq!(err, PlanError::Cycle("a -> b -> a".into()));
        let mut named = service("x");
        named.container_name = Some("fixed".into());
        named.replicas = 2;
        let p = project(vec![("a", named)]);
        let err = plan(&p, &Observed::default(), &Options::default()).unwrap_err();
        assert!(matches!(err, PlanError::NamedReplicas { .. }), "{err}");
    }

    /// Found by fuzzing (fuzz/corpus/compose_load/crash-replicas-oom): two
    /// billion replicas made the planner allocate until it was killed.
    #[test]
    fn replicas_past_the_bound_are_an_error_not_an_allocation() {
        let mut many = service("x");
        many.replicas = 2_000_000_000;
        let p = project(vec![("a", many)]);
        let err = plan(&p, &Observed::default(), &Options::default()).unwrap_err();
        assert_eq!(
            err,
            PlanError::TooManyReplicas {
                service: "a".into(),
                replicas: 2_000_000_000
            }
        );
        assert!(err.to_string().contains("at most 1000"), "{err}");
        let mut most = service("x");
        most.replicas = MAX_REPLICAS;
        let p = project(vec![("a", most)]);
        let plan = plan(&p, &Observed::default(), &Options::default()).unwrap();
        let creates = plan
            .steps
            .iter()
            .filter(|s| matches!(s.action, Action::CreateContainer { .. }))
            .count();
        assert_eq!(creates, MAX_REPLICAS as usize);
    }

    #[test]
    fn a_secrets_content_is_in_the_hash_as_a_digest_only() {
        use turtle_compose::{FileObject, FileRef};
        let with_content = |content: &str| {
            let mut s = service("app:1");
            s.secrets = vec![FileRef {
                source: "token".into(),
                target: "/run/secrets/token".into(),
                ..Default::default()
            }];
            let mut p = project(vec![("web", s)]);
            p.secrets.insert(
                "token".into(),
                FileObject {
                    content: Some(content.into()),
                    environment: Some("TOKEN".into()),
                    ..Default::default()
                },
            );
            p
        };
        let hash = |p: &Project| config_hash(p, &p.services["web"]);
        let (a, b) = (with_content("hunter2"), with_content("hunter3"));
        assert_ne!(hash(&a), hash(&b), "a new content must recreate");
        assert_eq!(hash(&a), hash(&with_content("hunter2")));
        // The hash is a digest of JSON holding a digest: neither it nor the
        // JSON it is made of holds the content.
        let entry = file_entry("token", a.secrets.get("token")).to_string();
        assert!(!entry.contains("hunter2"), "{entry}");
        assert!(entry.contains("sha256:"), "{entry}");
        assert!(!hash(&a).contains("hunter2"));
        // A file: object's entry is what it always was (no recreate on upgrade).
        let file = FileObject {
            file: Some("/srv/token".into()),
            ..Default::default()
        };
        assert_eq!(
            file_entry("token", Some(&file)),
            serde_json::json!(["token", "/srv/token"])
        );
    }

    #[test]
    fn pull_policy_never_refuses_a_missing_image_and_pulls_nothing() {
        let mut s = service("app:1");
        s.pull_policy = Some(PullPolicy::Never);
        let p = project(vec![("web", s)]);
        let err = plan(&p, &Observed::default(), &Options::default()).unwrap_err();
        assert_eq!(
            err,
            PlanError::NeverPull {
                service: "web".into(),
                image: "app:1".into()
            }
        );
        assert!(err.to_string().contains("docker load"), "{err}");
        let mut observed = Observed::default();
        observed
            .images
            .insert("app:1".into(), Some("sha256:1".into()));
        let ok = plan(&p, &observed, &Options::default()).unwrap();
        assert!(
            !ok.steps
                .iter()
                .any(|s| matches!(s.action, Action::PullImage { .. })),
            "{ok}"
        );
    }
}
