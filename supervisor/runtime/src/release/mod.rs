//! Releases: a stack update pushed like an app.
//!
//! A [`Release`] is a project as written plus the image each service runs,
//! pinned ([`PinnedImage`]: the image ID, which the containers are created
//! from, and the repo digest of a pulled image). The store keeps every
//! release of a project with its [`Outcome`]; the current one is the last
//! committed.
//!
//! An update ([`update`]) goes through phases recorded in a journal in the
//! store ([`Journal`], [`Phase`]) before each step, so a daemon killed at
//! any point finishes it when it starts again ([`recover`]):
//!
//! 1. **download**: builds and pulls what the release needs (after
//!    stopping the services whose strategy says kill or delete first),
//!    after a disk check ([`disk`]); then pins every image;
//! 2. **switch**: waits for update locks ([`locks`]), then replaces the
//!    services by their strategy ([`Strategy`]): hand-over services beside
//!    their old containers ([`crate::handover`]), the rest as `up` does;
//! 3. **settle**: the health gate ([`gate`]): every service running and
//!    healthy for the settle window, no container dying meanwhile;
//! 4. committed, or **roll back**: the previous release applied through the
//!    same path from its pinned images (never downloaded again), and the
//!    history says why.
//!
//! Volumes are never removed by an update or a rollback.

pub mod disk;
pub mod gate;
pub mod gc;
pub mod locks;
mod pin;
mod records;
pub mod recover;
pub mod update;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use turtle_compose::Project;

/// The label that picks a service's update strategy.
pub const STRATEGY_LABEL: &str = "io.turtle.update-strategy";
/// Hand-over: seconds after which the old container is stopped even if the
/// new one is not healthy and has not written its hand-over file.
pub const HANDOVER_TIMEOUT_LABEL: &str = "io.turtle.handover-timeout";
/// The settle window of a project, on any of its services (the longest
/// wins): a duration (`45s`, `2m`).
pub const SETTLE_LABEL: &str = "io.turtle.settle";

/// How a service's containers are replaced by an update (balena's names).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Every image is ready before anything is stopped (the default).
    #[default]
    DownloadThenKill,
    /// The old containers stop before the download.
    KillThenDownload,
    /// The old containers and their image are removed before the download:
    /// for a box without room for two copies.
    DeleteThenDownload,
    /// The new container starts beside the old one, which stops once the
    /// new one is healthy, has written its hand-over file, or a timeout
    /// passed.
    HandOver,
}

impl std::str::FromStr for Strategy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "download-then-kill" => Ok(Self::DownloadThenKill),
            "kill-then-download" => Ok(Self::KillThenDownload),
            "delete-then-download" => Ok(Self::DeleteThenDownload),
            "hand-over" => Ok(Self::HandOver),
            other => Err(format!(
                "{STRATEGY_LABEL}: unknown strategy {other:?}: use download-then-kill, kill-then-download, delete-then-download or hand-over"
            )),
        }
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::DownloadThenKill => "download-then-kill",
            Self::KillThenDownload => "kill-then-download",
            Self::DeleteThenDownload => "delete-then-download",
            Self::HandOver => "hand-over",
        })
    }
}

/// The image a service of a release runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinnedImage {
    /// As the compose file names it.
    pub reference: String,
    /// `sha256:...`: what the containers are created from.
    pub id: String,
    /// `repo@sha256:...` for an image that came from a registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo_digest: Option<String>,
}

/// Where a release came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    /// `turtle push` (or `push --watch`).
    Push,
    /// `turtle rollback`: the release it returns to.
    Rollback { to: String },
    /// Recorded when a project applied with `up` got its first push: what
    /// ran then, so the push can roll back to it.
    Adopted,
    /// `turtle bundle apply`, a remote push or a preload.
    Bundle { file: String },
    /// A fleet's release, followed by the fleet agent from its parent's
    /// api: the fleet, the release's id there and its version.
    Fleet {
        fleet: String,
        release: i64,
        version: i32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Outcome {
    /// Being applied.
    Pending,
    /// Passed its health gate; the last committed one is current.
    Committed,
    /// Failed its health gate: the previous release runs again.
    RolledBack,
    /// Failed before the switch (a build, a pull, the disk check): the
    /// previous release was never stopped, or was started again.
    Failed,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Pending => "pending",
            Self::Committed => "committed",
            Self::RolledBack => "rolled back",
            Self::Failed => "failed",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Release {
    /// 12 hex digits, unique on the box.
    pub id: String,
    pub project: String,
    /// 1, 2, ... per project.
    pub seq: i64,
    pub version: String,
    #[serde(default)]
    pub notes: String,
    /// Unix milliseconds.
    pub created_ms: i64,
    pub origin: Origin,
    /// The project as written (with its `build:` sections).
    pub compose: Project,
    /// By service.
    pub images: BTreeMap<String, PinnedImage>,
    pub outcome: Outcome,
    /// Why it was rolled back or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_ms: Option<i64>,
}

impl Release {
    /// The project the engine runs: every service created from its pinned
    /// image ID, nothing to build or pull.
    pub fn deployable(&self) -> Project {
        let mut p = self.compose.clone();
        for (name, s) in p.services.iter_mut() {
            if let Some(pin) = self.images.get(name.as_str()) {
                s.image = Some(pin.id.clone());
            }
            s.build = None;
            s.pull_policy = None;
        }
        p
    }

    /// Image IDs the release runs.
    pub fn image_ids(&self) -> std::collections::BTreeSet<String> {
        self.images.values().map(|p| p.id.clone()).collect()
    }
}

/// Where an update is, written before each step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    Download,
    Switch,
    Settle,
    RollBack,
}

/// The update in flight for a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    pub project: String,
    /// The release being applied.
    pub release: String,
    /// The release to return to; `None` for a project's first.
    pub previous: Option<String>,
    pub phase: Phase,
    /// Unix milliseconds when the phase began.
    pub since_ms: i64,
    /// The settle window, and whether update locks are overridden.
    pub settle_ms: u64,
    pub force: bool,
    /// Why the release is being rolled back (phase `roll-back`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl Journal {
    /// The journal of an update of `release` starting in `phase` now.
    pub fn begin(
        release: &Release,
        previous: Option<&Release>,
        phase: Phase,
        settle: Duration,
        force: bool,
    ) -> Self {
        Self {
            project: release.project.clone(),
            release: release.id.clone(),
            previous: previous.map(|p| p.id.clone()),
            phase,
            since_ms: crate::store::now_millis(),
            settle_ms: settle.as_millis() as u64,
            force,
            reason: None,
        }
    }
}

/// How `push` goes about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PushOptions {
    /// The release's version (default: its sequence number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    /// The settle window (default: the project's `io.turtle.settle`
    /// label, else the box's `releases.settle`, else 30 s).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_millis")]
    pub settle: Option<Duration>,
    /// Go past update locks.
    #[serde(default)]
    pub force: bool,
    /// Only these services are rebuilt (dev mode); all when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub only: Vec<String>,
    /// Where the release comes from (a bundle file); `Push` when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// The default settle window.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(30);

mod opt_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
