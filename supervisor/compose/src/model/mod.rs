//! The normalized project: what a compose file means once it is loaded.
//!
//! Every short syntax is expanded to its long form, every relative path is made
//! absolute, every duration and byte size is parsed, and every `${VAR}` is
//! already substituted. The supervisor plans from this model only; it never sees
//! raw YAML. The model serializes to the YAML/JSON that `turtle config` prints,
//! and its canonical JSON feeds the per-service config hash.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
pub use turtle_units::{ByteSize, Duration};

use crate::name::{ProjectName, ServiceName};

/// Implements Serialize/Deserialize through Display/FromStr.
macro_rules! string_serde {
    ($t:ty) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

mod options;
pub use options::*;

/// A whole compose project, normalized.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Project {
    /// Project name: `-p`, then `COMPOSE_PROJECT_NAME`, then the top-level
    /// `name:`, then the directory of the first compose file (the last two
    /// normalized the way compose normalizes them: lowercase, only
    /// `[a-z0-9_-]`).
    pub name: ProjectName,
    /// Directory relative paths were resolved against.
    pub working_dir: PathBuf,
    /// The compose files this project was loaded from, in `-f` order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<PathBuf>,
    /// Enabled services only (profiles already applied), sorted by name.
    pub services: IndexMap<ServiceName, Service>,
    /// Declared networks plus the implicit `default` one when a service uses it.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub networks: IndexMap<String, Network>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub volumes: IndexMap<String, Volume>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub secrets: IndexMap<String, FileObject>,
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub configs: IndexMap<String, FileObject>,
}

/// One service, normalized.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Service {
    /// Image reference. For a service with `build` and no `image`, the loader
    /// sets `<project>-<service>` as compose v2 does.
    pub image: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build: Option<Build>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub command: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Resolved environment: `env_file` entries first, `environment` over them.
    /// A bare `FOO` takes its value from the environment; unset, it is dropped.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub environment: IndexMap<String, String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<Port>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expose: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<Mount>,
    /// `tmpfs:` entries (`/path` or `/path:opts`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tmpfs: Vec<String>,
    /// Networks this service joins. Empty when `network_mode` is set;
    /// otherwise at least `default` (compose's implicit network).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub networks: IndexMap<String, ServiceNetwork>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network_mode: Option<NetworkMode>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub depends_on: IndexMap<String, Dependency>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    pub restart: RestartPolicy,
    #[serde(skip_serializing_if = "Resources::is_empty")]
    pub resources: Resources,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// `host:container[:perms]` device mappings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domainname: Option<String>,
    /// `host:ip` entries.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_search: Vec<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub sysctls: IndexMap<String, String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub ulimits: IndexMap<String, Ulimit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_grace_period: Option<Duration>,
    #[serde(skip_serializing_if = "is_false")]
    pub init: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub tty: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub stdin_open: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub logging: Option<Logging>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<FileRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub configs: Vec<FileRef>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub profiles: Vec<String>,
    /// Number of containers (`scale`, `deploy.replicas`); 1 by default.
    pub replicas: u32,
    /// `attach: false`: `turtle logs` leaves the service out unless named.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach: Option<bool>,
    /// When to pull (or build) the image; `None` is compose's `missing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pull_policy: Option<PullPolicy>,
    /// OCI runtime (`runc`, `runsc`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Legacy links, `service[:alias]` (a dependency on the service too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<String>,
    /// Links to containers outside the project, `container[:alias]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub external_links: Vec<String>,
    /// `service[:ro|rw]` or `container:NAME[:ro|rw]` (a dependency on the
    /// service too).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes_from: Vec<String>,
    /// `gpus:` and `deploy.resources.reservations.devices`, in that order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_requests: Vec<DeviceRequest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_cgroup_rules: Vec<String>,
    /// Supplementary groups, names or ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub group_add: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_opt: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub userns_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uts: Option<String>,
    /// Cgroup namespace: `host` or `private`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup_parent: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub storage_opt: IndexMap<String, String>,
    /// OCI annotations (engine API 1.43 and newer).
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub annotations: IndexMap<String, String>,
    #[serde(skip_serializing_if = "is_false")]
    pub oom_kill_disable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oom_score_adj: Option<i64>,
    /// Commands run in the container once it has started.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub post_start: Vec<Hook>,
    /// Commands run in the container before it is stopped.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pre_stop: Vec<Hook>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Build {
    /// Absolute path of the build context.
    pub context: PathBuf,
    /// Dockerfile path relative to the context (compose's meaning).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub args: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A Dockerfile given inline (`dockerfile_inline:`), instead of a file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dockerfile_inline: Option<String>,
    /// Images to use as cache sources.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cache_from: Vec<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
    /// Network for `RUN` steps (`host`, `none`, a network name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shm_size: Option<ByteSize>,
    /// `host:ip` entries for the build.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_hosts: Vec<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub no_cache: bool,
    /// Always try to pull a newer base image.
    #[serde(skip_serializing_if = "is_false")]
    pub pull: bool,
    /// More tags for the built image.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub isolation: Option<String>,
}

/// A published port, long form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Port {
    pub target: u16,
    /// Host port or range (`"8080"`, `"8000-8010"`); `None` lets the engine pick.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_ip: Option<String>,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// A name for the port (metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What the port speaks, e.g. `http` (metadata).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_protocol: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MountKind {
    #[default]
    Volume,
    Bind,
    Tmpfs,
    /// An image's file system, read-only (engine API 1.47 and newer).
    Image,
    /// A Windows named pipe (Windows engines only).
    Npipe,
}

/// A mount, long form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Mount {
    #[serde(rename = "type")]
    pub kind: MountKind,
    /// Volume key in the project's `volumes:` (for a named volume), an absolute
    /// host path (for a bind), `None` for an anonymous volume or a tmpfs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub target: String,
    #[serde(default, skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// tmpfs size limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_size: Option<ByteSize>,
    /// tmpfs file mode (e.g. `0o1777`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmpfs_mode: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<BindOptions>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeOptions>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServiceNetwork {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4_address: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6_address: Option<String>,
    /// Connection order: higher first (compose's `priority`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<i64>,
    /// Which network gives the default gateway (engine API 1.48 and newer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gw_priority: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub link_local_ips: Vec<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub driver_opts: IndexMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac_address: Option<String>,
    /// Interface name in the container (engine API 1.49 and newer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interface_name: Option<String>,
}

/// `network_mode:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkMode {
    Bridge,
    Host,
    None,
    /// `service:NAME`: share the network stack of another service's container.
    Service(String),
    /// `container:NAME_OR_ID`.
    Container(String),
}

impl FromStr for NetworkMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "bridge" => Ok(Self::Bridge),
            "host" => Ok(Self::Host),
            "none" => Ok(Self::None),
            _ => {
                if let Some(svc) = s.strip_prefix("service:") {
                    Ok(Self::Service(svc.to_string()))
                } else if let Some(c) = s.strip_prefix("container:") {
                    Ok(Self::Container(c.to_string()))
                } else {
                    Err(format!(
                        "unknown network_mode {s:?}: expected bridge, host, none, service:NAME or container:NAME"
                    ))
                }
            }
        }
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bridge => f.write_str("bridge"),
            Self::Host => f.write_str("host"),
            Self::None => f.write_str("none"),
            Self::Service(s) => write!(f, "service:{s}"),
            Self::Container(c) => write!(f, "container:{c}"),
        }
    }
}

string_serde!(NetworkMode);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    #[default]
    ServiceStarted,
    ServiceHealthy,
    ServiceCompletedSuccessfully,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    pub condition: Condition,
    /// Restart this service when the dependency is restarted or recreated.
    #[serde(default, skip_serializing_if = "is_false")]
    pub restart: bool,
    /// When false, a missing or disabled dependency is not an error.
    #[serde(default = "yes")]
    pub required: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Healthcheck {
    /// Engine form: `["CMD", ...]`, `["CMD-SHELL", "..."]` or `["NONE"]`.
    pub test: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub interval: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_period: Option<Duration>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<Duration>,
    #[serde(skip_serializing_if = "is_false")]
    pub disable: bool,
}

impl Healthcheck {
    /// True when this healthcheck actually checks something.
    pub fn is_active(&self) -> bool {
        !self.disable && !self.test.is_empty() && self.test[0] != "NONE"
    }
}

/// `restart:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    #[default]
    No,
    Always,
    UnlessStopped,
    /// `on-failure[:max]`; 0 means no maximum.
    OnFailure(u32),
}

impl FromStr for RestartPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "no" | "\"no\"" | "" => Ok(Self::No),
            "always" => Ok(Self::Always),
            "unless-stopped" => Ok(Self::UnlessStopped),
            "on-failure" => Ok(Self::OnFailure(0)),
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => n.parse().map(Self::OnFailure).map_err(|_| {
                    format!("invalid restart {s:?}: the count after on-failure: must be a number")
                }),
                None => Err(format!(
                    "unknown restart policy {s:?}: expected no, always, unless-stopped or on-failure[:N]"
                )),
            },
        }
    }
}

impl fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::No => f.write_str("no"),
            Self::Always => f.write_str("always"),
            Self::UnlessStopped => f.write_str("unless-stopped"),
            Self::OnFailure(0) => f.write_str("on-failure"),
            Self::OnFailure(n) => write!(f, "on-failure:{n}"),
        }
    }
}

string_serde!(RestartPolicy);

/// CPU and memory: `deploy.resources` and the legacy `mem_limit`/`cpus`/... keys,
/// merged (the legacy keys win when both are set, as in compose).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Resources {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_limit: Option<ByteSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<ByteSize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memswap_limit: Option<ByteSize>,
    /// CPUs as a decimal string, e.g. `"0.5"` (engine NanoCpus = value * 1e9).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpus: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_shares: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpuset: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pids_limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_percent: Option<i64>,
    /// CFS period and quota, in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_quota: Option<i64>,
    /// Real-time period and runtime, in microseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_rt_period: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_rt_runtime: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mem_swappiness: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blkio: Option<Blkio>,
}

impl Resources {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ulimit {
    pub soft: i64,
    pub hard: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Logging {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub options: IndexMap<String, String>,
}

/// A service's use of a top-level secret or config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileRef {
    /// Key in the project's `secrets:` / `configs:`.
    pub source: String,
    /// Absolute path inside the container (`/run/secrets/<source>` for a
    /// secret, `/<source>` for a config, unless given).
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
    /// Owner of the file in the container (numeric ids, as written).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gid: Option<String>,
}

/// A top-level secret or config: exactly one of `file` and `content` is set,
/// unless it is `external` (swarm's; declared, but a container that uses it
/// is refused).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FileObject {
    /// Absolute path of the file on the host (`file:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The text itself: `content:` (configs), or the value of the
    /// `environment:` variable at load time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// The variable `content` was read from (`environment:`), for display.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub external: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Network {
    /// Engine name: `<project>_<key>` unless `name:` or `external` says otherwise.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub driver_opts: IndexMap<String, String>,
    #[serde(skip_serializing_if = "is_false")]
    pub internal: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub external: bool,
    #[serde(skip_serializing_if = "is_false")]
    pub enable_ipv6: bool,
    /// `enable_ipv4: false` (engine API 1.47 and newer); `None` is true.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub enable_ipv4: Option<bool>,
    #[serde(skip_serializing_if = "is_false")]
    pub attachable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipam: Option<Ipam>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Ipam {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub config: Vec<IpamPool>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub options: IndexMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IpamPool {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subnet: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_range: Option<String>,
    /// Addresses the IPAM driver must not hand out, by host name.
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub aux_addresses: IndexMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Volume {
    /// Engine name: `<project>_<key>` unless `name:` or `external` says otherwise.
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub driver_opts: IndexMap<String, String>,
    #[serde(skip_serializing_if = "is_false")]
    pub external: bool,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub labels: IndexMap<String, String>,
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

fn yes() -> bool {
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_round_trip() {
        for (s, ms, back) in [
            ("30s", 30_000, "30s"),
            ("1m30s", 90_000, "1m30s"),
            ("500ms", 500, "500ms"),
            ("1h", 3_600_000, "1h"),
            ("1.5s", 1500, "1.500s"),
            ("90", 90_000, "1m30s"),
        ] {
            let d: Duration = s.parse().unwrap();
            assert_eq!(d.0, ms, "{s}");
            assert_eq!(d.to_string(), back, "{s}");
        }
        assert!("10x".parse::<Duration>().is_err());
        assert!("s".parse::<Duration>().is_err());
    }

    #[test]
    fn byte_sizes() {
        assert_eq!("512m".parse::<ByteSize>().unwrap().0, 512 << 20);
        assert_eq!("1GB".parse::<ByteSize>().unwrap().0, 1 << 30);
        assert_eq!("1024".parse::<ByteSize>().unwrap().0, 1024);
        // Written as compose writes it: the config hash depends on it.
        assert_eq!(ByteSize(64 << 20).compact(), "64m");
        assert_eq!(
            serde_json::to_string(&ByteSize(64 << 20)).unwrap(),
            "\"64m\""
        );
        assert!("12q".parse::<ByteSize>().is_err());
    }

    #[test]
    fn restart_and_network_mode_parse() {
        assert_eq!("on-failure:3".parse(), Ok(RestartPolicy::OnFailure(3)));
        assert_eq!(RestartPolicy::UnlessStopped.to_string(), "unless-stopped");
        assert!("sometimes".parse::<RestartPolicy>().is_err());
        assert_eq!(
            "service:db".parse(),
            Ok(NetworkMode::Service("db".to_string()))
        );
        assert!("weird".parse::<NetworkMode>().is_err());
    }
}
