//! The Docker engine behind one trait.
//!
//! [`Engine`] is the only way the supervisor touches the engine. [`docker::Docker`]
//! implements it with bollard; [`fake::FakeEngine`] is an in-memory recording
//! fake for unit tests of planning and applying. Observed state comes back as
//! our own small types (what the planner needs), while creation takes bollard's
//! request bodies (the engine's own vocabulary; building them is `spec.rs`'s job).
//!
//! The trait uses `impl Future + Send` returns rather than `dyn`: the supervisor is
//! generic over `E: Engine`, so there is no boxing on the hot path.

pub mod docker;
pub mod fake;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, NetworkCreateRequest, VolumeCreateRequest,
};
use futures_util::Stream;
use serde::{Deserialize, Serialize};

pub type BoxStream<T> = Pin<Box<dyn Stream<Item = T> + Send>>;

/// What went wrong talking to the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("docker engine not reachable at {socket}: is dockerd running? ({detail})")]
    Unreachable { socket: String, detail: String },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what}: conflict: {message}")]
    Conflict { what: String, message: String },
    #[error("docker engine error {status} on {what}: {message}")]
    Api {
        what: String,
        status: u16,
        message: String,
    },
    #[error("image build failed for {image}: {message}")]
    Build { image: String, message: String },
    #[error("{what}: {message}")]
    Other { what: String, message: String },
}

impl EngineError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// A container's lifecycle state as the engine reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Created,
    Running,
    Paused,
    Restarting,
    Exited,
    Dead,
    Removing,
}

impl State {
    pub fn parse(s: &str) -> Self {
        match s {
            "created" => Self::Created,
            "running" => Self::Running,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "dead" => Self::Dead,
            _ => Self::Exited,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Exited => "exited",
            Self::Dead => "dead",
            Self::Removing => "removing",
        }
    }
}

/// Health of a container with a healthcheck.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

/// A container as listed (one list call; no inspect).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSummary {
    pub id: String,
    /// Name without the leading `/`.
    pub name: String,
    pub labels: HashMap<String, String>,
    /// Image reference the container was created from.
    pub image: String,
    /// Image ID (`sha256:...`) the container runs.
    pub image_id: String,
    pub state: State,
    /// From the status text (`Up 3s (healthy)`); `None` without a healthcheck.
    pub health: Option<Health>,
}

/// A container as inspected.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerDetails {
    pub id: String,
    pub name: String,
    pub labels: HashMap<String, String>,
    pub image_id: String,
    pub state: State,
    pub health: Option<Health>,
    pub exit_code: Option<i64>,
    /// RFC 3339, as the engine reports it.
    pub started_at: Option<String>,
    pub finished_at: Option<String>,
    /// Restarts done by the engine's restart policy since creation.
    pub restart_count: i64,
    pub pid: Option<i64>,
    pub oom_killed: bool,
    /// Volumes mounted (named or anonymous), with where.
    #[serde(default)]
    pub volumes: Vec<VolumeMount>,
}

/// A volume mounted in a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeMount {
    /// The engine's volume name (a 64-hex ID for an anonymous volume).
    pub name: String,
    pub destination: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkSummary {
    pub id: String,
    pub name: String,
    pub labels: HashMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeSummary {
    pub name: String,
    pub labels: HashMap<String, String>,
}

/// Everything needed to create one container.
#[derive(Debug, Clone, Default)]
pub struct ContainerSpec {
    pub name: String,
    /// The create body; its `networking_config` holds at most the first
    /// network (API < 1.44 accepts only one at create).
    pub body: ContainerCreateBody,
    /// Further networks, connected after create and before start.
    pub extra_networks: Vec<(String, EndpointSettings)>,
}

/// An image build.
#[derive(Debug, Clone)]
pub struct BuildSpec {
    /// Tag to give the result.
    pub tag: String,
    /// Absolute path of the build context directory.
    pub context: std::path::PathBuf,
    /// Dockerfile path relative to the context.
    pub dockerfile: String,
    pub args: HashMap<String, String>,
    pub target: Option<String>,
    pub labels: HashMap<String, String>,
    /// Files from outside the context added to it: (path in the context,
    /// file on the host), e.g. the running `turtle` executable.
    pub files: Vec<(String, std::path::PathBuf)>,
}

/// Progress of a pull or a build.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// A pull layer: `id`, status text, bytes done and total when known.
    Layer {
        id: String,
        status: String,
        current: Option<u64>,
        total: Option<u64>,
    },
    /// A line of build output.
    Log(String),
}

/// An engine event about a container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineEvent {
    /// `create`, `start`, `die`, `destroy`, `health_status: unhealthy`, `oom`, ...
    pub action: String,
    pub id: String,
    /// The actor's attributes: the container's labels plus `name`, `image`,
    /// `exitCode` for `die`.
    pub attributes: HashMap<String, String>,
    /// Unix time in nanoseconds.
    pub time_nano: i64,
}

/// A chunk of container output.
#[derive(Debug, Clone, PartialEq)]
pub struct LogChunk {
    pub stderr: bool,
    pub bytes: Vec<u8>,
}

/// The Docker engine, as the supervisor uses it.
///
/// Label filters are `key=value` (or bare `key`) strings, as the engine's
/// `label` filter takes them.
pub trait Engine: Send + Sync + 'static {
    /// Checks the engine answers.
    fn ping(&self) -> impl Future<Output = Result<()>> + Send;

    /// All containers (running or not) carrying every given label.
    fn list_containers(
        &self,
        labels: &[String],
    ) -> impl Future<Output = Result<Vec<ContainerSummary>>> + Send;
    fn inspect_container(&self, id: &str) -> impl Future<Output = Result<ContainerDetails>> + Send;
    /// Creates the container, connects `extra_networks`; returns its ID.
    fn create_container(&self, spec: &ContainerSpec)
    -> impl Future<Output = Result<String>> + Send;
    fn start_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Stops with the engine's stop signal, then SIGKILL after `timeout_secs`.
    fn stop_container(
        &self,
        id: &str,
        timeout_secs: Option<i64>,
    ) -> impl Future<Output = Result<()>> + Send;
    fn restart_container(
        &self,
        id: &str,
        timeout_secs: Option<i64>,
    ) -> impl Future<Output = Result<()>> + Send;
    /// Sets the container's CPU limit in billionths of a CPU. The engine
    /// takes 0 as "unchanged", so lifting a cap means setting the limit the
    /// container had, or every CPU of the host.
    fn update_cpus(&self, id: &str, nano_cpus: i64) -> impl Future<Output = Result<()>> + Send;
    fn pause_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    fn unpause_container(&self, id: &str) -> impl Future<Output = Result<()>> + Send;
    /// Sends a signal (`SIGHUP`, `HUP`, `1`) to the container's main process.
    fn kill_container(&self, id: &str, signal: &str) -> impl Future<Output = Result<()>> + Send;
    /// Force-removes the container (and its anonymous volumes when `volumes`).
    fn remove_container(&self, id: &str, volumes: bool) -> impl Future<Output = Result<()>> + Send;

    fn list_networks(
        &self,
        labels: &[String],
    ) -> impl Future<Output = Result<Vec<NetworkSummary>>> + Send;
    /// Network by exact name, if it exists.
    fn find_network(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Option<NetworkSummary>>> + Send;
    fn create_network(&self, req: &NetworkCreateRequest)
    -> impl Future<Output = Result<()>> + Send;
    fn remove_network(&self, name: &str) -> impl Future<Output = Result<()>> + Send;

    fn list_volumes(
        &self,
        labels: &[String],
    ) -> impl Future<Output = Result<Vec<VolumeSummary>>> + Send;
    /// Volume by exact name, if it exists.
    fn find_volume(&self, name: &str)
    -> impl Future<Output = Result<Option<VolumeSummary>>> + Send;
    fn create_volume(&self, req: &VolumeCreateRequest) -> impl Future<Output = Result<()>> + Send;
    fn remove_volume(&self, name: &str) -> impl Future<Output = Result<()>> + Send;

    /// The image ID for a reference, `None` when the engine does not have it.
    fn image_id(&self, reference: &str) -> impl Future<Output = Result<Option<String>>> + Send;
    /// Pulls an image; the stream ends when the pull is done or failed.
    fn pull_image(&self, reference: &str) -> BoxStream<Result<Progress>>;
    /// Builds an image; the stream ends when the build is done or failed.
    fn build_image(&self, spec: &BuildSpec) -> BoxStream<Result<Progress>>;
    /// Gives `source` (a reference or ID) the reference `target` too.
    fn tag_image(&self, source: &str, target: &str) -> impl Future<Output = Result<()>> + Send;
    /// Makes the image `reference` from a root filesystem tarball
    /// (`docker import`), with Dockerfile-style `changes` (`CMD ["bash"]`).
    fn import_rootfs(
        &self,
        tarball: &std::path::Path,
        reference: &str,
        changes: &[String],
    ) -> impl Future<Output = Result<()>> + Send;
    /// Loads the images of a `docker save` archive (`docker load`).
    fn load_images(&self, archive: &std::path::Path) -> impl Future<Output = Result<()>> + Send;

    /// Container events carrying every given label, from now on. The stream
    /// ends (or yields an error) when the connection to the engine drops.
    fn events(&self, labels: &[String]) -> BoxStream<Result<EngineEvent>>;
    /// A container's output; with `follow`, until the container stops.
    fn logs(&self, id: &str, follow: bool, tail: Option<u64>) -> BoxStream<Result<LogChunk>>;
}
