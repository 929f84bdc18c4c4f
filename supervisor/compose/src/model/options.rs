//! The smaller option types of a service: image pull policy, device
//! requests (GPUs), block I/O limits, lifecycle hooks, and the per-kind
//! options of a mount.

use std::fmt;
use std::str::FromStr;

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Duration, is_false};

/// `pull_policy:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PullPolicy {
    /// Pull before every `up`.
    Always,
    /// Never pull: the image must be present.
    Never,
    /// Pull when the image is missing (the default; `if_not_present` too).
    Missing,
    /// Build the image before every `up`.
    Build,
    /// Pull when the local image is older than this (`daily`, `weekly`,
    /// `every_<duration>`).
    Every(Duration),
}

impl FromStr for PullPolicy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        const DAY: u64 = 24 * 3600 * 1000;
        match s {
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            "missing" | "if_not_present" => Ok(Self::Missing),
            "build" => Ok(Self::Build),
            "daily" => Ok(Self::Every(Duration(DAY))),
            "weekly" => Ok(Self::Every(Duration(7 * DAY))),
            _ => match s.strip_prefix("every_") {
                Some(d) => every(d)
                    .map(Self::Every)
                    .map_err(|e| format!("invalid pull_policy {s:?}: {e}")),
                None => Err(format!(
                    "unknown pull_policy {s:?}: expected always, never, missing, build, daily, weekly or every_<duration>"
                )),
            },
        }
    }
}

/// The period of `every_<duration>`: a duration, where compose also takes
/// days and weeks (`2d`, `1w`).
fn every(d: &str) -> Result<Duration, String> {
    const DAY: u64 = 24 * 3600 * 1000;
    let days = |n: &str, per: u64| n.parse::<u64>().ok().map(|n| Duration(n * per * DAY));
    match (d.strip_suffix('d'), d.strip_suffix('w')) {
        (Some(n), _) => days(n, 1),
        (_, Some(n)) => days(n, 7),
        _ => None,
    }
    .map_or_else(|| d.parse::<Duration>().map_err(|e| e.to_string()), Ok)
}

impl fmt::Display for PullPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Always => f.write_str("always"),
            Self::Never => f.write_str("never"),
            Self::Missing => f.write_str("missing"),
            Self::Build => f.write_str("build"),
            Self::Every(d) => write!(f, "every_{d}"),
        }
    }
}

string_serde!(PullPolicy);

/// A device request: `gpus:` or one `deploy.resources.reservations.devices`
/// entry (the engine's `HostConfig.DeviceRequests`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DeviceRequest {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    /// Number of devices; -1 is all of them. `None` with no `device_ids`
    /// means all, as in compose.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_ids: Vec<String>,
    /// Capabilities, all of which a device must have (e.g. `["gpu"]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub capabilities: Vec<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub options: IndexMap<String, String>,
}

/// `blkio_config:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Blkio {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub weight: Option<u16>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weight_device: Vec<WeightDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_bps: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_read_iops: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_bps: Vec<ThrottleDevice>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub device_write_iops: Vec<ThrottleDevice>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightDevice {
    pub path: String,
    pub weight: u16,
}

/// A rate limit on one device: bytes (`_bps`, written as a size) or
/// operations (`_iops`) per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThrottleDevice {
    pub path: String,
    pub rate: u64,
}

/// A `post_start` or `pre_stop` hook: a command run in the container.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Hook {
    pub command: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(skip_serializing_if = "IndexMap::is_empty")]
    pub environment: IndexMap<String, String>,
}

/// Options of a bind mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BindOptions {
    /// `private`, `rprivate`, `shared`, `rshared`, `slave`, `rslave`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub propagation: Option<String>,
    /// `false`: a missing source is an error instead of being created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub create_host_path: Option<bool>,
    /// SELinux relabelling: `z` (shared) or `Z` (private).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub selinux: Option<String>,
}

/// Options of a volume mount.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct VolumeOptions {
    /// Do not copy the image's files into a new volume.
    #[serde(skip_serializing_if = "is_false")]
    pub nocopy: bool,
    /// Mount a sub-directory of the volume (engine API 1.45 and newer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subpath: Option<String>,
}
