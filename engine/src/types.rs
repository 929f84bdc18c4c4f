//! What the engine reports and what it is asked to create: the observed
//! types the planner reads (our own, small), and the create requests it
//! builds (bollard's bodies, the engine's own vocabulary). No IO.

use std::collections::HashMap;

use bollard_stubs::models::{ContainerCreateBody, EndpointSettings, HealthConfig};
use serde::{Deserialize, Serialize};

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
    /// The healthcheck the engine runs: the container's own, else its
    /// image's. `None` without one (or with `NONE`).
    #[serde(default)]
    pub healthcheck: Option<HealthTest>,
    /// Its IP addresses on its networks (IPv4 and global IPv6), while it
    /// runs; empty when stopped.
    #[serde(default)]
    pub addresses: Vec<String>,
}

/// A healthcheck as the engine runs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthTest {
    /// `["CMD", arg...]` or `["CMD-SHELL", "command"]`.
    pub test: Vec<String>,
    /// How long one check may run; `None` is the engine's default (30 s).
    pub timeout: Option<std::time::Duration>,
}

impl HealthTest {
    /// From a container's (merged) config; `None` for no test or `NONE`.
    pub fn of(config: &HealthConfig) -> Option<Self> {
        let test = config.test.clone()?;
        match test.first().map(String::as_str) {
            Some("CMD" | "CMD-SHELL") if test.len() > 1 => Some(Self {
                test,
                timeout: config
                    .timeout
                    .filter(|t| *t > 0)
                    .map(|t| std::time::Duration::from_nanos(t as u64)),
            }),
            _ => None,
        }
    }
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

/// An image build (the classic builder's options, API 1.41).
#[derive(Debug, Clone, Default)]
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
    /// A Dockerfile given as text: used instead of `dockerfile`.
    pub dockerfile_inline: Option<String>,
    /// More references given to the result once built.
    pub extra_tags: Vec<String>,
    /// Images whose layers the build may reuse.
    pub cache_from: Vec<String>,
    /// `host:ip` entries for the `RUN` steps (at most one: bollard's build
    /// options take a single `extrahosts`).
    pub extra_hosts: Vec<String>,
    /// Network of the `RUN` steps (`host`, `none`, a network name).
    pub network: Option<String>,
    /// `/dev/shm` size of the `RUN` steps, in bytes.
    pub shm_size: Option<u64>,
    pub no_cache: bool,
    /// Pull a newer base image even when one is present.
    pub pull: bool,
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

/// A file written into a container's file system (compose's content-backed
/// secrets and configs): its absolute path, bytes, mode and owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileUpload {
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// A command run inside a running container (`docker exec`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecSpec {
    pub command: Vec<String>,
    pub user: Option<String>,
    pub privileged: bool,
    pub working_dir: Option<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    /// Bytes of stdout and of stderr kept whole, each from its start, in
    /// [`ExecOutcome::stdout`] and [`ExecOutcome::stderr`] (0: none, only
    /// the tail): what a person who ran the command reads.
    pub capture: usize,
}

/// How an exec ended: its exit code and the end of its output (stderr
/// preferred, as the reason of a failure is usually there).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecOutcome {
    pub exit_code: i64,
    pub output_tail: String,
    /// The first [`ExecSpec::capture`] bytes of stdout.
    pub stdout: Vec<u8>,
    /// The first [`ExecSpec::capture`] bytes of stderr.
    pub stderr: Vec<u8>,
    /// Output past `capture` was dropped.
    pub truncated: bool,
}

/// An image as the engine has it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageInfo {
    /// `sha256:...`
    pub id: String,
    pub repo_tags: Vec<String>,
    /// `repo@sha256:...` for an image pulled from (or pushed to) a registry.
    pub repo_digests: Vec<String>,
    /// The layers' diff IDs (`sha256:...`), bottom first.
    pub layers: Vec<String>,
    /// Bytes on disk, shared layers counted in full.
    pub size: u64,
}
