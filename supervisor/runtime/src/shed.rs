//! Shedding load when the box is hot or short of memory.
//!
//! # Design
//!
//! The daemon samples the profile's thermal zones, PSI memory pressure and
//! the kernel's OOM kill counter every `shedding.poll`, and hands the sample
//! to `turtle_device::ShedPolicy` (pure: levels with hysteresis, one ladder
//! step per hold). [`Shedder`] carries out what the policy returns on the
//! containers of every applied project, by the priority of their service:
//! cap the CPU of low-priority ones, pause them, stop them, stop normal ones;
//! and back in reverse. Critical services are never touched.
//!
//! It remembers exactly which containers it capped, paused or stopped, so a
//! restore never starts what the user stopped and never unpauses what
//! someone else paused. Every action is an event with the policy's reason.
//!
//! A daemon that stops (SIGTERM, Ctrl-C) restores what it shed before it
//! exits: nothing else would unpause or uncap those containers.
//!
//! # Limitations
//!
//! What was shed is held in memory: a daemon killed while shedding (SIGKILL,
//! a crash) leaves shed containers as they are (paused, capped or stopped);
//! `turtle start` or `docker unpause` brings them back. Containers created or
//! started by an `up` while shedding are not shed until the level changes.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use turtle_device::{Action, Priority, Sampler, ShedPolicy, ShedStatus, ZoneReading};

use crate::device::{self, Device};
use crate::handle::Handle;
use turtle_engine::{Engine, State};
use turtle_reconcile::names;

/// What `GET /v1/device` and `turtle device` show.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceReport {
    pub profile: String,
    pub description: String,
    /// Why this profile.
    pub reason: String,
    pub facts: turtle_device::Facts,
    /// Swap, zram and sysctls now.
    pub system: turtle_device::DeviceStatus,
    pub thermal: ThermalReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_pressure: Option<turtle_device::Psi>,
    /// The shedding policy's state; `None` without a daemon.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shedding: Option<ShedStatus>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ThermalReport {
    /// The level the daemon is at (`normal` without a daemon).
    pub level: String,
    /// The hottest zone's temperature, millidegrees Celsius.
    pub hottest: Option<i64>,
    pub zones: Vec<ZoneReading>,
}

/// The report from a fresh sample, with the policy's state when there is one.
pub fn report(
    device: &Device,
    sample: &turtle_device::Sample,
    shed: Option<ShedStatus>,
) -> DeviceReport {
    let d = device.detected();
    DeviceReport {
        profile: d.profile.name.clone(),
        description: d.profile.description.clone(),
        reason: d.reason.clone(),
        facts: d.facts.clone(),
        system: device.system_status(),
        thermal: ThermalReport {
            level: shed
                .as_ref()
                .map_or("normal".to_string(), |s| s.level.to_string()),
            hottest: sample.hottest().and_then(|z| z.millideg),
            zones: sample.zones.clone(),
        },
        memory_pressure: sample.psi,
        shedding: shed,
    }
}

/// The daemon's shedder: the policy, and what it did to which container.
pub struct Shedder {
    device: Arc<Device>,
    policy: Mutex<ShedPolicy>,
    last: Mutex<Option<DeviceReport>>,
    /// Whether [`Shedder::run`] runs (the daemon): only then does a report
    /// say what is shed.
    running: std::sync::atomic::AtomicBool,
    /// Capped containers and the CPU limit to give back.
    capped: Mutex<Vec<(String, i64)>>,
    paused: Mutex<Vec<String>>,
    stopped: Mutex<HashMap<Priority, Vec<String>>>,
}

/// A container of an applied project, with what shedding needs.
struct Target {
    project: String,
    service: String,
    id: String,
    name: String,
    state: State,
    normal_nano_cpus: i64,
}

impl Shedder {
    pub fn new(device: Arc<Device>) -> Arc<Self> {
        let policy = ShedPolicy::new(device.profile());
        Arc::new(Self {
            device,
            policy: Mutex::new(policy),
            last: Mutex::default(),
            running: Default::default(),
            capped: Mutex::default(),
            paused: Mutex::default(),
            stopped: Mutex::default(),
        })
    }

    /// The latest report (a fresh sample when the loop has not run yet).
    /// Shedding is reported only while the loop runs: a supervisor without
    /// one (the daemon-less CLI) sheds nothing.
    pub fn report(&self) -> DeviceReport {
        if let Some(r) = self.last.lock().unwrap().clone() {
            return r;
        }
        let sample = Sampler::new(self.device.paths().clone(), self.device.profile()).sample();
        let shedding = self
            .running
            .load(std::sync::atomic::Ordering::Relaxed)
            .then(|| self.policy.lock().unwrap().status());
        report(&self.device, &sample, shedding)
    }

    /// Samples and acts every poll until `shutdown` resolves.
    pub async fn run<E: Engine>(
        self: Arc<Self>,
        handle: Handle<E>,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        self.running
            .store(true, std::sync::atomic::Ordering::Relaxed);
        let profile = self.device.profile();
        let poll = profile
            .shedding
            .poll
            .as_std()
            .max(Duration::from_millis(100));
        let mut sampler = Sampler::new(self.device.paths().clone(), profile);
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => {
                    self.restore_all(&handle).await;
                    break;
                }
                _ = tick.tick() => {}
            }
            let sample = sampler.sample();
            let actions = self
                .policy
                .lock()
                .unwrap()
                .step_sample(tokio::time::Instant::now(), &sample);
            for a in actions {
                self.execute(&handle, a.action, &a.reason).await;
            }
            let status = self.policy.lock().unwrap().status();
            *self.last.lock().unwrap() = Some(report(&self.device, &sample, Some(status)));
        }
    }

    /// Undoes every shed step, last first.
    async fn restore_all<E: Engine>(&self, handle: &Handle<E>) {
        let shed = self.policy.lock().unwrap().shed();
        for action in shed.into_iter().rev() {
            let undo = match action {
                Action::CapCpu(p) => Action::Uncap(p),
                Action::Pause(p) => Action::Unpause(p),
                Action::Stop(p) => Action::Start(p),
                other => other,
            };
            self.execute(
                handle,
                undo,
                "the supervisor is stopping: restoring what it shed",
            )
            .await;
        }
    }

    /// Every container of every applied project whose service has `priority`.
    async fn targets<E: Engine>(&self, handle: &Handle<E>, priority: Priority) -> Vec<Target> {
        let mut out = Vec::new();
        let Ok(projects) = handle.store().projects() else {
            return out;
        };
        for written in projects {
            let Ok(project) = handle.deployed(&written) else {
                continue;
            };
            let filter = names::project_filter(&project.name);
            let Ok(containers) = handle.engine().list_containers(&filter).await else {
                continue;
            };
            for c in containers {
                let Some(service_name) = c.labels.get(names::SERVICE) else {
                    continue;
                };
                let Some(service) = project.services.get(service_name.as_str()) else {
                    continue;
                };
                if device::priority(service_name, service).ok() != Some(priority) {
                    continue;
                }
                out.push(Target {
                    project: project.name.to_string(),
                    service: service_name.clone(),
                    id: c.id,
                    name: c.name,
                    state: c.state,
                    normal_nano_cpus: device::normal_nano_cpus(service),
                });
            }
        }
        out
    }

    async fn execute<E: Engine>(&self, handle: &Handle<E>, action: Action, reason: &str) {
        let engine = handle.engine();
        let note =
            |t: &Target, kind: &str, what: &str, result: Result<(), turtle_engine::EngineError>| {
                match result {
                    Ok(()) => handle.record(
                        &t.project,
                        Some(&t.service),
                        Some(&t.name),
                        kind,
                        &format!("{what}: {reason}"),
                    ),
                    Err(e) => handle.record(
                        &t.project,
                        Some(&t.service),
                        Some(&t.name),
                        "shed-failed",
                        &format!("cannot {what}: {e}"),
                    ),
                }
            };
        match action {
            Action::Level(level) => {
                tracing::warn!(level = %level, "{reason}");
                if let Ok(projects) = handle.store().projects() {
                    for p in projects {
                        handle.record(
                            &p.name,
                            None,
                            None,
                            "device-level",
                            &format!("{level}: {reason}"),
                        );
                    }
                }
            }
            Action::CapCpu(p) => {
                let cap = self.policy.lock().unwrap().throttle_nano_cpus();
                for t in self.targets(handle, p).await {
                    if t.state != State::Running {
                        continue;
                    }
                    let r = engine.update_cpus(&t.id, cap).await;
                    if r.is_ok() {
                        self.capped
                            .lock()
                            .unwrap()
                            .push((t.id.clone(), t.normal_nano_cpus));
                    }
                    note(
                        &t,
                        "shed-cap",
                        &format!("capped to {:.2} CPU", cap as f64 / 1e9),
                        r,
                    );
                }
            }
            Action::Pause(p) => {
                for t in self.targets(handle, p).await {
                    if t.state != State::Running {
                        continue;
                    }
                    let r = engine.pause_container(&t.id).await;
                    if r.is_ok() {
                        self.paused.lock().unwrap().push(t.id.clone());
                    }
                    note(&t, "shed-pause", "paused", r);
                }
            }
            Action::Stop(p) => {
                for t in self.targets(handle, p).await {
                    let ours = self.paused.lock().unwrap().contains(&t.id);
                    // Someone else's pause is theirs to undo: leave it.
                    if !(t.state == State::Running || t.state == State::Paused && ours) {
                        continue;
                    }
                    // A paused container cannot take the stop signal; it
                    // stays on the paused list, to be paused again if it is
                    // started while the box is still at that stage.
                    if t.state == State::Paused {
                        let _ = engine.unpause_container(&t.id).await;
                    }
                    let r = engine.stop_container(&t.id, None).await;
                    if r.is_ok() {
                        self.stopped
                            .lock()
                            .unwrap()
                            .entry(p)
                            .or_default()
                            .push(t.id.clone());
                    }
                    note(&t, "shed-stop", "stopped", r);
                }
            }
            Action::Start(p) => {
                let ids = self.stopped.lock().unwrap().remove(&p).unwrap_or_default();
                for t in self
                    .targets(handle, p)
                    .await
                    .into_iter()
                    .filter(|t| ids.contains(&t.id))
                {
                    let r = engine.start_container(&t.id).await;
                    // Stopped while paused: still paused at this level.
                    let repause = r.is_ok() && self.paused.lock().unwrap().contains(&t.id);
                    note(&t, "restore-start", "started again", r);
                    if repause {
                        let r = engine.pause_container(&t.id).await;
                        note(&t, "shed-pause", "paused again", r);
                    }
                }
            }
            Action::Unpause(p) => {
                let ids = std::mem::take(&mut *self.paused.lock().unwrap());
                for t in self
                    .targets(handle, p)
                    .await
                    .into_iter()
                    .filter(|t| ids.contains(&t.id))
                {
                    if t.state != State::Paused {
                        continue;
                    }
                    let r = engine.unpause_container(&t.id).await;
                    note(&t, "restore-unpause", "unpaused", r);
                }
            }
            Action::Uncap(p) => {
                let capped = std::mem::take(&mut *self.capped.lock().unwrap());
                for t in self.targets(handle, p).await {
                    let Some((_, cpus)) = capped.iter().find(|(id, _)| *id == t.id) else {
                        continue;
                    };
                    let r = engine.update_cpus(&t.id, *cpus).await;
                    note(
                        &t,
                        "restore-uncap",
                        &format!("CPU limit back to {:.2}", *cpus as f64 / 1e9),
                        r,
                    );
                }
            }
        }
    }
}
