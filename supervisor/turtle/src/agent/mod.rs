//! The fleet agent: the same `turtle daemon`, with a parent. With
//! `agent.provisioning` set in turtle.yaml, the daemon joins its fleet
//! ([`identity`]), then follows the fleet's target ([`follow`]): an ETag
//! poll of the parent's api (a 304 costs the parent one indexed read),
//! jittered, backing off while the parent is away; a new target is pulled
//! from the parent's registry with this box's credentials and applied as a
//! release (`Supervisor::push`: strategies, update locks, health gate,
//! automatic rollback); a release rolled back here is reported and not
//! tried again until the target moves. After every change, and every ten
//! poll intervals besides, the box reports its state (`PUT
//! /v1/device/state`).
//!
//! Offline first: nothing here stops or changes what runs when the parent
//! is away; the supervisor keeps the last good release alive, and the
//! agent catches up when the parent answers again.

pub mod follow;
pub mod identity;
pub mod logs;
pub mod tunnel;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use turtle_control::Control;
use turtle_engine::docker::{Docker, RegistryAuth};
use turtle_fleet_api::{Client, Conditional, Release as FleetRelease, Target};
use turtle_runtime::config::Config;
use turtle_runtime::engine_trust::EngineTrust;
use turtle_runtime::release::{Origin, PushOptions, Release};
use turtle_runtime::supervisor::Supervisor;

use follow::Decision;
use identity::Identity;

/// The poll interval when the config gives none.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(30);
/// The marker of the registry trust directory the agent writes.
const OWNER: &str = "fleet-agent";

/// Joins the fleet and follows it until the task is dropped. Errors are
/// logged and retried: the agent never stops the daemon.
pub async fn run(sup: Arc<Supervisor<Docker>>, config: Config, state_dir: PathBuf) {
    let Some(provisioning) = config.agent.provisioning.clone() else {
        return;
    };
    let interval = config
        .agent
        .poll_interval
        .map_or(DEFAULT_POLL_INTERVAL, |d| d.as_std())
        .max(Duration::from_secs(1));
    let name = config.agent.name.clone().or_else(hostname);
    let vpn = config.agent.vpn.unwrap_or(true);
    // Registration, retried while the parent cannot be reached; a refusal
    // (a pin mismatch, a used-up key) is retried too, slowly: an admin may
    // fix the file meanwhile.
    let mut wait = Duration::ZERO;
    let id = loop {
        match identity::join(&state_dir, &provisioning, name.clone(), vpn).await {
            Ok(id) => break id,
            Err(e) => {
                wait = follow::backoff(wait, interval);
                tracing::error!("fleet agent: {e}; trying again in {} s", wait.as_secs());
                record(&sup, "", "agent-error", &e);
                tokio::time::sleep(wait).await;
            }
        }
    };
    let trust = EngineTrust {
        certs_dir: config.engine.certs_dir.clone(),
        hosts_file: None,
    };
    if let Err(e) = trust.trust_registry(&id.registry, OWNER, &id.root_ca) {
        tracing::error!(
            "fleet agent: the engine cannot be made to trust {}: {e}; pulls from it will fail",
            id.registry
        );
    }
    sup.engine().set_registry_auth(
        &id.registry,
        RegistryAuth {
            username: id.uuid.clone(),
            password: id.device_key.clone(),
        },
    );
    // Longer than a long-poll's wait.
    let client = match id.client(
        id.credentials(),
        wait_of(interval) + Duration::from_secs(30),
    ) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("fleet agent: {e}");
            return;
        }
    };
    let buffer = Arc::new(std::sync::Mutex::new(logs::Buffer::new(
        config.agent.log_buffer.unwrap_or(logs::DEFAULT_CAPACITY),
    )));
    let collector = tokio::spawn(logs::collect(
        sup.engine().clone(),
        id.fleet.name.to_string(),
        Arc::clone(&buffer),
    ));
    let _collector = AbortOnDrop(collector);
    let vpn_state = Arc::new(VpnState::default());
    let _tunnel = (vpn && id.vpn.is_some()).then(|| {
        AbortOnDrop(tokio::spawn(keep_tunnel(
            Arc::clone(&sup),
            id.clone(),
            config
                .agent
                .vpn_port
                .unwrap_or(turtle_control::remote::operator::DEFAULT_PORT),
            Arc::clone(&vpn_state),
            interval,
        )))
    });
    let mut agent = Agent {
        vpn: vpn_state,
        logs: buffer,
        sup,
        id,
        client,
        workdir: identity::dir(&state_dir).join("project"),
        etag: None,
        target: None,
        retry: false,
        dirty: true,
        reported: None,
        interval,
    };
    let mut wait = Duration::ZERO;
    loop {
        let asked = tokio::time::Instant::now();
        match agent.tick().await {
            Ok(moved) => {
                wait = Duration::ZERO;
                // A long-poll that waited, or one the target's move
                // answered: ask again at once (a second's jitter spreads a
                // fleet after a move). One answered at once with nothing
                // new (an api without long-poll): wait the interval.
                let waited = asked.elapsed() >= wait_of(interval) / 2;
                let pause = if waited || moved {
                    follow::jittered(Duration::from_secs(1))
                } else {
                    follow::jittered(interval)
                };
                tokio::time::sleep(pause).await;
            }
            Err(e) => {
                wait = follow::backoff(wait, interval);
                tracing::warn!("fleet agent: {e}; again in {} s", wait.as_secs());
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// How often the box reports when nothing changed: ten poll intervals,
/// at least 20 s (the api takes a dozen reports a minute).
fn heartbeat(interval: Duration) -> Duration {
    (interval * 10).max(Duration::from_secs(20))
}

/// How long a long-poll waits: the poll interval, at most the api's 60 s.
fn wait_of(interval: Duration) -> Duration {
    interval.min(Duration::from_secs(60))
}

fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
}

/// An event of the agent, under the fleet's project in `turtle events`.
fn record(sup: &Supervisor<Docker>, project: &str, kind: &str, message: &str) {
    sup.record(project, None, None, kind, message);
}

/// Aborts a task when dropped (the agent's own task is aborted at the
/// daemon's stop; what it spawned goes with it).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the parent needs to reach this box through the tunnel, once it is
/// up (reported with the state), and whether it changed since the last
/// report.
#[derive(Default)]
struct VpnState {
    reported: std::sync::Mutex<Option<serde_json::Value>>,
    changed: std::sync::atomic::AtomicBool,
}

/// Brings the tunnel up, retrying (the endpoint may not resolve yet, the
/// parent may be away), then holds it until the agent stops.
async fn keep_tunnel(
    sup: Arc<Supervisor<Docker>>,
    id: Identity,
    port: u16,
    state: Arc<VpnState>,
    interval: Duration,
) {
    let mut wait = Duration::ZERO;
    let tunnel = loop {
        match tunnel::up(&sup, &id, port).await {
            Ok(t) => break t,
            Err(e) => {
                wait = follow::backoff(wait, interval.max(Duration::from_secs(10)));
                tracing::error!(
                    "fleet agent: cannot join the VPN: {e}; trying again in {} s",
                    wait.as_secs()
                );
                record(
                    &sup,
                    "",
                    "agent-error",
                    &format!("cannot join the VPN: {e}"),
                );
                tokio::time::sleep(wait).await;
            }
        }
    };
    let trust = sup.trust();
    *state.reported.lock().expect("the vpn state lock") = Some(serde_json::json!({
        "address": tunnel.address,
        "port": tunnel.port,
        // The listener's leaf is for the box's domain, under its own root.
        "server_name": trust.map(|t| t.domain().to_string()),
        "root_ca": trust.map(|t| t.authority().root_pem().to_string()),
    }));
    state
        .changed
        .store(true, std::sync::atomic::Ordering::SeqCst);
    // Held until the agent's task is aborted: dropping it stops the
    // listener and the device.
    let _tunnel = tunnel;
    std::future::pending::<()>().await;
}

struct Agent {
    /// The tunnel, as reported.
    vpn: Arc<VpnState>,
    /// The fleet's service logs not yet shipped.
    logs: Arc<std::sync::Mutex<logs::Buffer>>,
    sup: Arc<Supervisor<Docker>>,
    id: Identity,
    client: Client,
    workdir: PathBuf,
    /// The ETag of the last target answer.
    etag: Option<String>,
    target: Option<Target>,
    /// Decide again at the next tick even on a 304: the last apply failed
    /// before it made a release (the engine, a journal in flight), or a
    /// failed release waits for its next try.
    retry: bool,
    /// Something changed since the last report the api took.
    dirty: bool,
    /// When the api last took a report: the box's facts (temperature,
    /// memory, services) are reported again every [`heartbeat`].
    reported: Option<tokio::time::Instant>,
    /// The poll interval: the unit of the waits between tries.
    interval: Duration,
}

impl Agent {
    /// One poll of the target, and what follows from it; whether the
    /// target had moved.
    async fn tick(&mut self) -> Result<bool, String> {
        // With the last ETag, a long-poll: the api answers when the target
        // moves, or 304 after the wait.
        let answer = match &self.etag {
            Some(etag) => {
                self.client
                    .target_wait(Some(etag), wait_of(self.interval))
                    .await
            }
            None => self.client.target(None).await,
        }
        .map_err(|e| format!("asking {} for the target: {e}", self.id.api))?;
        let changed = match answer {
            Conditional::Modified { value, etag } => {
                self.etag = etag;
                self.target = Some(value);
                true
            }
            Conditional::NotModified { etag } => {
                self.etag = etag;
                false
            }
        };
        if changed || self.retry {
            self.apply().await;
        }
        // A report after every change, retried until the api takes it
        // (its rate limit is a dozen a minute per device).
        let due = self
            .reported
            .is_none_or(|at| at.elapsed() >= heartbeat(self.interval))
            || self
                .vpn
                .changed
                .swap(false, std::sync::atomic::Ordering::SeqCst);
        let mut reported = Ok(());
        if changed || self.dirty || due {
            self.dirty = true;
            reported = self.report().await;
            if reported.is_ok() {
                self.dirty = false;
                self.reported = Some(tokio::time::Instant::now());
            }
        }
        // Logs go whether or not the report went (a report refused for
        // its rate does not hold the logs back).
        let shipped = self.ship_logs().await;
        reported.and(shipped)?;
        Ok(changed)
    }

    /// Ships the buffered log lines in batches; a batch the api does not
    /// take goes back into the buffer.
    async fn ship_logs(&mut self) -> Result<(), String> {
        loop {
            let now = crate::cli::events::rfc3339(turtle_runtime::store::now_millis());
            let batch = self
                .logs
                .lock()
                .expect("the log buffer lock is never poisoned")
                .take(logs::BATCH, &now);
            if batch.lines.is_empty() {
                return Ok(());
            }
            if let Err(e) = self.client.post_logs(&batch.lines).await {
                self.logs
                    .lock()
                    .expect("the log buffer lock is never poisoned")
                    .put_back(batch);
                return Err(format!("shipping logs to {}: {e}", self.id.api));
            }
        }
    }

    fn project_name(&self) -> Result<turtle_compose::ProjectName, String> {
        self.id
            .fleet
            .name
            .as_str()
            .parse::<turtle_compose::ProjectName>()
            .map_err(|e| format!("fleet {}: {e}", self.id.fleet.name))
    }

    async fn releases(&self) -> Vec<Release> {
        match self.project_name() {
            Ok(name) => Control::releases(&*self.sup, &name)
                .await
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        }
    }

    async fn apply(&mut self) {
        self.retry = false;
        let target = self.target.as_ref().and_then(|t| t.release.clone());
        let releases = self.releases().await;
        let now = turtle_runtime::store::now_millis();
        match follow::decide(target.as_ref(), &releases, now, self.interval) {
            Decision::Nothing | Decision::UpToDate => {}
            Decision::Wait { until_ms } => {
                self.retry = true;
                tracing::debug!(
                    "fleet agent: the target failed here; next try in {} s",
                    (until_ms - now) / 1000
                );
            }
            Decision::Skip { outcome, reason } => {
                let r = target.as_ref().expect("a skip has a target");
                tracing::info!(
                    "fleet agent: release {} of fleet {} was {outcome} here ({reason}); not tried again until the fleet's target moves",
                    r.version,
                    self.id.fleet.name
                );
            }
            Decision::Apply => {
                let r = target.expect("an apply has a target");
                self.dirty = true;
                if let Err(e) = self.push(&r).await {
                    tracing::error!("fleet agent: {e}");
                    record(&self.sup, self.id.fleet.name.as_str(), "agent-error", &e);
                    self.retry = true;
                }
            }
        }
    }

    async fn push(&mut self, r: &FleetRelease) -> Result<(), String> {
        let fleet = self.id.fleet.name.to_string();
        std::fs::create_dir_all(&self.workdir)
            .map_err(|e| format!("{}: {e}", self.workdir.display()))?;
        let project = follow::project_of(&fleet, r, &self.workdir)?;
        tracing::info!(
            "fleet agent: applying release {} (id {}) of fleet {fleet}",
            r.version,
            r.id
        );
        let opts = PushOptions {
            version: Some(r.version.to_string()),
            notes: Some(format!("fleet {fleet}, release {}", r.id)),
            origin: Some(Origin::Fleet {
                fleet: fleet.clone(),
                release: r.id,
                version: r.version,
            }),
            ..Default::default()
        };
        let release = self
            .sup
            .push(&project, &opts, &|e| {
                if let turtle_runtime::apply::Event::Release { line } = e {
                    tracing::info!("fleet agent: {line}");
                }
            })
            .await
            .map_err(|e| format!("release {} of fleet {fleet}: {e}", r.version))?;
        tracing::info!(
            "fleet agent: release {} of fleet {fleet} {}{}",
            r.version,
            release.outcome,
            release
                .reason
                .as_deref()
                .map(|w| format!(": {w}"))
                .unwrap_or_default()
        );
        if release.outcome == turtle_runtime::release::Outcome::Failed {
            self.retry = true;
        }
        Ok(())
    }

    /// `PUT /v1/device/state`: the current and target release, the last
    /// update's result, each service's state and health, the box's facts.
    async fn report(&mut self) -> Result<(), String> {
        let releases = self.releases().await;
        let current = releases
            .iter()
            .find(|r| r.outcome == turtle_runtime::release::Outcome::Committed);
        let last = releases.first();
        let services = match self.project_name() {
            Ok(name) => Control::status(&*self.sup, &name)
                .await
                .map(|s| s.containers)
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let device = Control::device(&*self.sup).await.ok();
        let target = self.target.as_ref().and_then(|t| t.release.as_ref());
        let state = serde_json::json!({
            "current_release": current.map(summary),
            "target_release": target.map(|t| serde_json::json!({"id": t.id, "version": t.version})),
            "last_update": last.map(summary),
            "services": services.iter().map(|c| serde_json::json!({
                "service": c.service,
                "state": c.state,
                "health": c.health,
                "restarts": c.restarts,
            })).collect::<Vec<_>>(),
            "device": device,
            "vpn": self.vpn.reported.lock().expect("the vpn state lock").clone(),
            "turtle": env!("CARGO_PKG_VERSION"),
        });
        self.client
            .report_state(&state)
            .await
            .map_err(|e| format!("reporting state to {}: {e}", self.id.api))
    }
}

/// A local release as the parent sees it.
fn summary(r: &Release) -> serde_json::Value {
    serde_json::json!({
        "fleet_release": follow::fleet_release(r),
        "version": r.version,
        "local_id": r.id,
        "outcome": r.outcome,
        "reason": r.reason,
        // When the update began (its download) and ended: with the
        // push's time on the parent, the parts of a rollout.
        "started_ms": r.created_ms,
        "finished_ms": r.finished_ms,
    })
}
