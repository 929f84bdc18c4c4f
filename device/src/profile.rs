//! Device profiles: one YAML file per kind of box (`device-profiles/*.yaml` at the
//! repository root, documented field by field in `device-profiles/README.md`).
//!
//! The shipped profiles are compiled into the crate ([`builtin_profiles`]); a
//! directory on disk adds profiles or replaces shipped ones by name
//! ([`load_profiles`]). Every profile is validated when it is loaded, so the rest of
//! the crate works with values already in range: errors name the file and the field
//! path (`device profile raspberrypi3.yaml: thermal.hysteresis: ...`), and unknown
//! keys are refused rather than ignored.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Deserializer, Serialize};

use crate::priority::{Budget, Priority};
use crate::units::{ByteSize, Duration, Millidegrees, Percent};

/// The profiles shipped with Turtle: (file name, text).
const BUILTIN: &[(&str, &str)] = &[
    (
        "intel-nuc.yaml",
        include_str!("../../device-profiles/intel-nuc.yaml"),
    ),
    (
        "generic-amd64.yaml",
        include_str!("../../device-profiles/generic-amd64.yaml"),
    ),
    (
        "qemu-x86-64.yaml",
        include_str!("../../device-profiles/qemu-x86-64.yaml"),
    ),
    (
        "raspberrypi4-64.yaml",
        include_str!("../../device-profiles/raspberrypi4-64.yaml"),
    ),
    (
        "raspberrypi3.yaml",
        include_str!("../../device-profiles/raspberrypi3.yaml"),
    ),
    (
        "balena-fin.yaml",
        include_str!("../../device-profiles/balena-fin.yaml"),
    ),
    (
        "generic-aarch64.yaml",
        include_str!("../../device-profiles/generic-aarch64.yaml"),
    ),
];

/// `std::env::consts::ARCH` values a profile may list under `match.arch`.
pub const KNOWN_ARCHES: &[&str] = &[
    "x86",
    "x86_64",
    "arm",
    "aarch64",
    "riscv32",
    "riscv64",
    "loongarch64",
    "mips",
    "mips64",
    "powerpc",
    "powerpc64",
    "s390x",
];

/// Compression algorithms the Linux zram driver can be built with.
pub const ZRAM_ALGORITHMS: &[&str] = &["lzo-rle", "lzo", "lz4", "lz4hc", "zstd", "deflate", "842"];

/// Errors loading or validating a profile. `file` is the path read, or
/// `device-profiles/NAME.yaml (built in)` for a shipped profile.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("cannot read device profile {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },

    #[error("cannot list device profiles in {}: {source}", dir.display())]
    ReadDir {
        dir: PathBuf,
        source: std::io::Error,
    },

    /// The YAML does not parse, a key is unknown or a value has the wrong type;
    /// `message` starts with the field path and ends with the line.
    #[error("device profile {file}: {message}")]
    Parse { file: String, message: String },

    /// A value parses but is out of range or inconsistent with another.
    #[error("device profile {file}: {field}: {message}")]
    Invalid {
        file: String,
        field: String,
        message: String,
    },

    #[error(
        "device profile {file}: name: {name:?} does not match the file name; \
         name the file {name}.yaml or set name: {stem}"
    )]
    NameMismatch {
        file: String,
        name: String,
        stem: String,
    },

    #[error("device profile {name} is defined twice in {}: in {first} and {second}; remove one", dir.display())]
    Duplicate {
        dir: PathBuf,
        name: String,
        first: String,
        second: String,
    },
}

/// One kind of box: how to recognise it and how to set it up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// `[a-z0-9-]+`, equal to the file name without `.yaml`.
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// How detection recognises the box.
    #[serde(rename = "match", default)]
    pub matching: Match,
    /// Nominal RAM, informational (budgets are absolute).
    #[serde(default)]
    pub memory: Option<ByteSize>,
    /// Space an update must leave free on the engine's disk after its
    /// download (`turtle push`'s disk check); the config's
    /// `releases.reserve` comes first. Absent: 512 MiB.
    #[serde(default)]
    pub update_reserve: Option<ByteSize>,
    /// The swap file; absent or `null`: none.
    #[serde(default)]
    pub swap: Option<SwapConfig>,
    /// The compressed RAM swap device; absent or `null`: none.
    #[serde(default)]
    pub zram: Option<ZramConfig>,
    /// Kernel settings, dotted (`vm.swappiness`) or with slashes, to values.
    #[serde(default, deserialize_with = "sysctl_map")]
    pub sysctls: BTreeMap<String, String>,
    /// Temperature thresholds; absent or `null`: temperature is not watched.
    #[serde(default)]
    pub thermal: Option<ThermalConfig>,
    /// Memory pressure and OOM kills; absent or `null`: not watched.
    #[serde(default)]
    pub pressure: Option<PressureConfig>,
    /// How the daemon samples and how fast the shedding ladder moves.
    #[serde(default)]
    pub shedding: Shedding,
    /// Per-priority resource budgets for services.
    pub budgets: Budgets,
}

/// `match:` — every list given must match (an empty list matches anything).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Match {
    /// `std::env::consts::ARCH` values; at least one.
    pub arch: Vec<String>,
    /// Substrings of `/proc/device-tree/model`.
    pub device_tree_model: Vec<String>,
    /// Substrings of `/sys/class/dmi/id/product_name`.
    pub dmi_product_name: Vec<String>,
    /// Bounds on `MemTotal` (inclusive).
    pub min_memory: Option<ByteSize>,
    pub max_memory: Option<ByteSize>,
}

/// `swap:` — a swap file on the data partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapConfig {
    /// Absolute path of the swap file (joined to the root in tests).
    pub file: PathBuf,
    /// Its size; at least 1 MiB.
    pub size: ByteSize,
    /// Free space that must remain on the file's filesystem after creating it.
    #[serde(default = "default_reserve")]
    pub reserve: ByteSize,
    /// `vm.swappiness` (0..=200); a shorthand for the sysctl.
    #[serde(default)]
    pub swappiness: Option<u32>,
    /// Swap priority (0..=32767); absent: the kernel's (negative, below every
    /// explicit priority, so below zram).
    #[serde(default)]
    pub priority: Option<i32>,
}

fn default_reserve() -> ByteSize {
    ByteSize(256 << 20)
}

/// `zram:` — a compressed swap device in RAM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZramConfig {
    /// Its (uncompressed) size: a share of `MemTotal` (`50%`, 1..=100%) or a size
    /// (`256MiB`).
    pub size: ZramSize,
    /// One of [`ZRAM_ALGORITHMS`] that the kernel offers.
    #[serde(default = "default_algorithm")]
    pub algorithm: String,
    /// Swap priority (0..=32767), above the swap file's.
    #[serde(default = "default_zram_priority")]
    pub priority: i32,
}

fn default_algorithm() -> String {
    "lz4".into()
}

fn default_zram_priority() -> i32 {
    100
}

/// `zram.size`: a share of RAM or a fixed size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZramSize {
    /// `50%` of `MemTotal`.
    Share(Percent),
    /// `256MiB`.
    Bytes(ByteSize),
}

impl ZramSize {
    /// The device's `disksize` on a box with `mem_total` bytes of RAM, rounded down
    /// to whole 4 KiB pages.
    pub fn bytes(self, mem_total: u64) -> u64 {
        let b = match self {
            ZramSize::Share(p) => p.of(mem_total),
            ZramSize::Bytes(b) => b.0,
        };
        b / 4096 * 4096
    }
}

impl fmt::Display for ZramSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ZramSize::Share(p) => write!(f, "{p} of RAM"),
            ZramSize::Bytes(b) => write!(f, "{b}"),
        }
    }
}

impl Serialize for ZramSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ZramSize::Share(p) => p.serialize(s),
            ZramSize::Bytes(b) => b.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for ZramSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = match serde_norway::Value::deserialize(d)? {
            serde_norway::Value::String(s) => s,
            other => {
                return Err(serde::de::Error::custom(format!(
                    "invalid zram size {}: write a share of RAM such as 50% or a size such as 256MiB",
                    serde_norway::to_string(&other).unwrap_or_default().trim()
                )));
            }
        };
        if text.trim().ends_with('%') {
            text.parse()
                .map(ZramSize::Share)
                .map_err(serde::de::Error::custom)
        } else {
            text.parse()
                .map(ZramSize::Bytes)
                .map_err(serde::de::Error::custom)
        }
    }
}

/// `thermal:` — thresholds on the hottest watched zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThermalConfig {
    /// Names under `/sys/class/thermal` (`thermal_zone0`), or `"*"` for all.
    #[serde(default = "all_zones")]
    pub zones: Vec<String>,
    pub warn: Millidegrees,
    pub throttle: Millidegrees,
    pub critical: Millidegrees,
    /// A level is left only below its threshold minus this.
    pub hysteresis: Millidegrees,
}

fn all_zones() -> Vec<String> {
    vec!["*".into()]
}

impl ThermalConfig {
    /// Whether `zone` is watched.
    pub fn watches(&self, zone: &str) -> bool {
        self.zones.iter().any(|z| z == "*" || z == zone)
    }
}

/// `pressure:` — memory pressure (PSI) and OOM kills.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PressureConfig {
    /// PSI memory `some avg10` (percent) at which the throttle level is entered.
    pub throttle: f64,
    /// PSI memory `some avg10` at which the critical level is entered; absent: never.
    #[serde(default)]
    pub critical: Option<f64>,
    /// A level is left only below its threshold minus this (percentage points).
    #[serde(default = "default_pressure_hysteresis")]
    pub hysteresis: f64,
    /// After an OOM kill, hold at least the throttle level this long.
    #[serde(default = "default_oom_hold")]
    pub oom_hold: Duration,
}

fn default_pressure_hysteresis() -> f64 {
    10.0
}

fn default_oom_hold() -> Duration {
    Duration::from_secs(60)
}

/// `shedding:` — the daemon's sampling and the ladder's pace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Shedding {
    /// How often the daemon samples temperatures, PSI and OOM kills.
    pub poll: Duration,
    /// Time between two steps of the ladder, up or down.
    pub hold: Duration,
    /// The CPU cap (in CPUs) put on low-priority services at the throttle level.
    pub throttle_cpus: f64,
}

impl Default for Shedding {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(5),
            hold: Duration::from_secs(10),
            throttle_cpus: 0.25,
        }
    }
}

impl Shedding {
    /// [`Shedding::throttle_cpus`] in the engine's unit (1e9 per CPU).
    pub fn throttle_nano_cpus(&self) -> i64 {
        (self.throttle_cpus * 1e9).round() as i64
    }
}

/// `budgets:` — one per [`Priority`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budgets {
    pub critical: BudgetConfig,
    pub normal: BudgetConfig,
    pub low: BudgetConfig,
}

/// One priority's budget as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetConfig {
    /// Memory limit per container; at least 6 MiB (the engine's minimum).
    pub memory: ByteSize,
    /// Relative CPU weight (the engine's `CpuShares`), 2..=262144.
    #[serde(default = "default_cpu_shares")]
    pub cpu_shares: i64,
    /// Hard CPU cap in CPUs (`0.5`); absent: none.
    #[serde(default)]
    pub cpus: Option<f64>,
}

fn default_cpu_shares() -> i64 {
    1024
}

fn sysctl_map<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Str(String),
        Int(i64),
        Float(f64),
    }
    let raw = Option::<BTreeMap<String, Value>>::deserialize(d)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                Value::Str(s) => s,
                Value::Int(n) => n.to_string(),
                Value::Float(x) => x.to_string(),
            };
            (k, v)
        })
        .collect())
}

impl Profile {
    /// Parses and validates one profile; `file` names it in errors.
    pub fn from_yaml(text: &str, file: &str) -> Result<Profile, ProfileError> {
        let de = serde_norway::Deserializer::from_str(text);
        let profile: Profile =
            serde_path_to_error::deserialize(de).map_err(|e| ProfileError::Parse {
                file: file.to_string(),
                message: parse_message(&e),
            })?;
        profile.validate(file)?;
        Ok(profile)
    }

    /// Reads, parses and validates a profile file; its `name` must be its file stem.
    pub fn from_file(path: &Path) -> Result<Profile, ProfileError> {
        let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let file = path.display().to_string();
        let profile = Profile::from_yaml(&text, &file)?;
        check_stem(&profile, path, &file)?;
        Ok(profile)
    }

    /// The budget of a priority, in the engine's units.
    pub fn budget(&self, priority: Priority) -> Budget {
        let b = match priority {
            Priority::Critical => &self.budgets.critical,
            Priority::Normal => &self.budgets.normal,
            Priority::Low => &self.budgets.low,
        };
        Budget {
            memory_bytes: b.memory.0 as i64,
            cpu_shares: b.cpu_shares,
            nano_cpus: b.cpus.map(|c| (c * 1e9).round() as i64),
        }
    }

    /// Every sysctl the profile sets: `sysctls` (keys as written, values trimmed)
    /// plus `swap.swappiness` as `vm.swappiness`.
    pub fn effective_sysctls(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = self
            .sysctls
            .iter()
            .map(|(k, v)| (k.clone(), v.trim().to_string()))
            .collect();
        if let Some(s) = self.swap.as_ref().and_then(|s| s.swappiness) {
            out.insert("vm.swappiness".into(), s.to_string());
        }
        out
    }

    /// Checks every range and relation; `file` names the profile in errors.
    pub fn validate(&self, file: &str) -> Result<(), ProfileError> {
        let invalid = |field: &str, message: String| ProfileError::Invalid {
            file: file.to_string(),
            field: field.to_string(),
            message,
        };

        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid(
                "name",
                format!(
                    "{:?} is not a profile name: use lowercase letters, digits and '-'",
                    self.name
                ),
            ));
        }

        let m = &self.matching;
        if m.arch.is_empty() {
            return Err(invalid(
                "match.arch",
                "list at least one architecture, such as [x86_64] or [aarch64, arm]".into(),
            ));
        }
        for (i, a) in m.arch.iter().enumerate() {
            if !KNOWN_ARCHES.contains(&a.as_str()) {
                return Err(invalid(
                    &format!("match.arch[{i}]"),
                    format!(
                        "unknown architecture {a:?}: use one of {}",
                        KNOWN_ARCHES.join(", ")
                    ),
                ));
            }
        }
        for (list, field) in [
            (&m.device_tree_model, "match.device_tree_model"),
            (&m.dmi_product_name, "match.dmi_product_name"),
        ] {
            for (i, p) in list.iter().enumerate() {
                if p.trim().is_empty() {
                    return Err(invalid(
                        &format!("{field}[{i}]"),
                        "an empty pattern matches every box; remove it".into(),
                    ));
                }
            }
        }
        if let (Some(lo), Some(hi)) = (m.min_memory, m.max_memory)
            && lo > hi
        {
            return Err(invalid(
                "match.min_memory",
                format!("{lo} is above match.max_memory {hi}"),
            ));
        }

        if let Some(swap) = &self.swap {
            if !swap.file.is_absolute() {
                return Err(invalid(
                    "swap.file",
                    format!(
                        "{} is not an absolute path: write it from /, such as /var/lib/turtle/swapfile",
                        swap.file.display()
                    ),
                ));
            }
            if swap.file.file_name().is_none() {
                return Err(invalid(
                    "swap.file",
                    format!("{} names no file", swap.file.display()),
                ));
            }
            if swap.size.0 == 0 {
                return Err(invalid(
                    "swap.size",
                    "must be above 0; use swap: null for no swap file".into(),
                ));
            }
            if swap.size.0 < ByteSize::MIB {
                return Err(invalid(
                    "swap.size",
                    format!(
                        "{} is too small for a swap file: use at least 1MiB",
                        swap.size
                    ),
                ));
            }
            if let Some(s) = swap.swappiness {
                if s > 200 {
                    return Err(invalid(
                        "swap.swappiness",
                        format!("{s} is out of range: use 0..=200"),
                    ));
                }
                if self
                    .sysctls
                    .keys()
                    .any(|k| sysctl_path(k) == "vm/swappiness")
                {
                    return Err(invalid(
                        "swap.swappiness",
                        "sysctls also sets vm.swappiness: set it in one place".into(),
                    ));
                }
            }
            if let Some(p) = swap.priority
                && !(0..=32767).contains(&p)
            {
                return Err(invalid(
                    "swap.priority",
                    format!("{p} is out of range: use 0..=32767, or leave it out for the kernel's"),
                ));
            }
        }

        if let Some(zram) = &self.zram {
            match zram.size {
                ZramSize::Share(p) if !(1..=100).contains(&p.0) => {
                    return Err(invalid(
                        "zram.size",
                        format!("{p} is out of range: use 1%..100% of RAM, or zram: null for none"),
                    ));
                }
                ZramSize::Bytes(b) if b.0 < ByteSize::MIB => {
                    return Err(invalid(
                        "zram.size",
                        format!("{b} is too small: use at least 1MiB, or a share such as 50%"),
                    ));
                }
                _ => {}
            }
            if !ZRAM_ALGORITHMS.contains(&zram.algorithm.as_str()) {
                return Err(invalid(
                    "zram.algorithm",
                    format!(
                        "unknown algorithm {:?}: use one of {}",
                        zram.algorithm,
                        ZRAM_ALGORITHMS.join(", ")
                    ),
                ));
            }
            if !(0..=32767).contains(&zram.priority) {
                return Err(invalid(
                    "zram.priority",
                    format!("{} is out of range: use 0..=32767", zram.priority),
                ));
            }
            if let Some(p) = self.swap.as_ref().and_then(|s| s.priority)
                && zram.priority <= p
            {
                return Err(invalid(
                    "zram.priority",
                    format!(
                        "{} is not above swap.priority {p}: zram must be used before the swap file",
                        zram.priority
                    ),
                ));
            }
        }

        for (key, value) in &self.sysctls {
            let field = format!("sysctls.{key}");
            if key.is_empty()
                || key.starts_with(['.', '/'])
                || key.ends_with(['.', '/'])
                || key.contains("..")
                || !key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '/' | '_' | '-'))
            {
                return Err(invalid(
                    &field,
                    format!("{key:?} is not a sysctl name such as vm.swappiness"),
                ));
            }
            if value.trim().is_empty() || value.contains('\n') {
                return Err(invalid(
                    &field,
                    format!("{value:?} is not a sysctl value: write one line, such as \"60\""),
                ));
            }
        }

        if let Some(t) = &self.thermal {
            if t.zones.is_empty() {
                return Err(invalid(
                    "thermal.zones",
                    "list zones such as [thermal_zone0], or [\"*\"] for every zone".into(),
                ));
            }
            for (i, z) in t.zones.iter().enumerate() {
                if z != "*" && (z.is_empty() || z.contains('/') || z == "." || z == "..") {
                    return Err(invalid(
                        &format!("thermal.zones[{i}]"),
                        format!("{z:?} is not a zone name such as thermal_zone0"),
                    ));
                }
            }
            for (field, v) in [
                ("thermal.warn", t.warn),
                ("thermal.throttle", t.throttle),
                ("thermal.critical", t.critical),
            ] {
                if !(20_000..=150_000).contains(&v.0) {
                    return Err(invalid(
                        field,
                        format!(
                            "{v} is out of range 20..150 °C (a bare number is millidegrees: write 80C or 80000)"
                        ),
                    ));
                }
            }
            if t.warn >= t.throttle {
                return Err(invalid(
                    "thermal.warn",
                    format!("warn {} must be below throttle {}", t.warn, t.throttle),
                ));
            }
            if t.throttle >= t.critical {
                return Err(invalid(
                    "thermal.throttle",
                    format!(
                        "throttle {} must be below critical {}",
                        t.throttle, t.critical
                    ),
                ));
            }
            let gap = (t.throttle.0 - t.warn.0).min(t.critical.0 - t.throttle.0);
            if t.hysteresis.0 < 0 || t.hysteresis.0 > gap {
                return Err(invalid(
                    "thermal.hysteresis",
                    format!(
                        "{} must be between 0 and the smallest gap between thresholds ({}), \
                         so leaving a level never skips the one below",
                        t.hysteresis,
                        Millidegrees(gap)
                    ),
                ));
            }
        }

        if let Some(p) = &self.pressure {
            if !(p.throttle > 0.0 && p.throttle <= 100.0) {
                return Err(invalid(
                    "pressure.throttle",
                    format!(
                        "{} is out of range: use a percentage above 0, up to 100",
                        p.throttle
                    ),
                ));
            }
            if let Some(c) = p.critical
                && !(c > p.throttle && c <= 100.0)
            {
                return Err(invalid(
                    "pressure.critical",
                    format!(
                        "{c} must be above pressure.throttle {} and at most 100",
                        p.throttle
                    ),
                ));
            }
            if !(p.hysteresis >= 0.0 && p.hysteresis < p.throttle) {
                return Err(invalid(
                    "pressure.hysteresis",
                    format!(
                        "{} must be at least 0 and below pressure.throttle {}",
                        p.hysteresis, p.throttle
                    ),
                ));
            }
        }

        let s = &self.shedding;
        if s.poll.is_zero() {
            return Err(invalid(
                "shedding.poll",
                "must be above 0, such as 5s".into(),
            ));
        }
        if s.hold < s.poll {
            return Err(invalid(
                "shedding.hold",
                format!(
                    "{} is shorter than shedding.poll {}: the ladder moves at most one step per poll",
                    s.hold, s.poll
                ),
            ));
        }
        if !(s.throttle_cpus > 0.0 && s.throttle_cpus.is_finite()) {
            return Err(invalid(
                "shedding.throttle_cpus",
                format!("{} must be above 0, such as 0.25", s.throttle_cpus),
            ));
        }

        for (name, b) in [
            ("critical", &self.budgets.critical),
            ("normal", &self.budgets.normal),
            ("low", &self.budgets.low),
        ] {
            if b.memory.0 < 6 * ByteSize::MIB {
                return Err(invalid(
                    &format!("budgets.{name}.memory"),
                    format!("{} is below the engine's minimum of 6 MiB", b.memory),
                ));
            }
            if b.memory.0 > i64::MAX as u64 {
                return Err(invalid(
                    &format!("budgets.{name}.memory"),
                    format!("{} is too large", b.memory),
                ));
            }
            if !(2..=262_144).contains(&b.cpu_shares) {
                return Err(invalid(
                    &format!("budgets.{name}.cpu_shares"),
                    format!(
                        "{} is out of range: use 2..=262144 (1024 is the default weight)",
                        b.cpu_shares
                    ),
                ));
            }
            if let Some(c) = b.cpus
                && !(c > 0.0 && c.is_finite() && c <= 1024.0)
            {
                return Err(invalid(
                    &format!("budgets.{name}.cpus"),
                    format!("{c} must be above 0, such as 0.5"),
                ));
            }
        }
        Ok(())
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.description.is_empty() {
            write!(f, "{}", self.name)
        } else {
            write!(f, "{} ({})", self.name, self.description)
        }
    }
}

/// The path of a sysctl under `/proc/sys`: `vm.swappiness` -> `vm/swappiness`. A key
/// written with slashes is taken as it is (for names with dots in a component, such
/// as `net/ipv4/conf/eth0.100/rp_filter`).
pub fn sysctl_path(key: &str) -> String {
    if key.contains('/') {
        key.to_string()
    } else {
        key.replace('.', "/")
    }
}

/// `budgets.low.memory: invalid size "lots": ... at line 23 column 13`: the full
/// field path from serde_path_to_error, then serde_norway's message without its own
/// (shorter, parent-only) path prefix.
fn parse_message(e: &serde_path_to_error::Error<serde_norway::Error>) -> String {
    let path = e.path().to_string();
    let inner = e.inner().to_string();
    if path == "." {
        return inner;
    }
    let segments: Vec<&str> = path.split('.').collect();
    let rest = (1..=segments.len())
        .rev()
        .find_map(|n| inner.strip_prefix(&format!("{}: ", segments[..n].join("."))))
        .unwrap_or(&inner);
    format!("{path}: {rest}")
}

fn check_stem(profile: &Profile, path: &Path, file: &str) -> Result<(), ProfileError> {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    if profile.name != stem {
        return Err(ProfileError::NameMismatch {
            file: file.to_string(),
            name: profile.name.clone(),
            stem,
        });
    }
    Ok(())
}

/// The profiles shipped with Turtle, in a fixed order. They are validated by the
/// crate's tests, so an error here means a broken build.
pub fn builtin_profiles() -> Result<Vec<Profile>, ProfileError> {
    BUILTIN
        .iter()
        .map(|(file, text)| {
            let label = format!("device-profiles/{file} (built in)");
            let profile = Profile::from_yaml(text, &label)?;
            check_stem(&profile, Path::new(file), &label)?;
            Ok(profile)
        })
        .collect()
}

/// The shipped profiles, then every `*.yaml` / `*.yml` in `dir` (sorted by file
/// name): a profile from `dir` replaces the shipped one of the same name, others are
/// added. A `dir` that does not exist adds nothing.
pub fn load_profiles(dir: Option<&Path>) -> Result<Vec<Profile>, ProfileError> {
    let mut profiles = builtin_profiles()?;
    let Some(dir) = dir else {
        return Ok(profiles);
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(profiles),
        Err(source) => {
            return Err(ProfileError::ReadDir {
                dir: dir.to_path_buf(),
                source,
            });
        }
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| ProfileError::ReadDir {
            dir: dir.to_path_buf(),
            source,
        })?;
        let path = entry.path();
        if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) && path.is_file()
        {
            files.push(path);
        }
    }
    files.sort();
    let mut from_dir: BTreeMap<String, PathBuf> = BTreeMap::new();
    for path in files {
        let profile = Profile::from_file(&path)?;
        if let Some(first) = from_dir.insert(profile.name.clone(), path.clone()) {
            return Err(ProfileError::Duplicate {
                dir: dir.to_path_buf(),
                name: profile.name,
                first: first.display().to_string(),
                second: path.display().to_string(),
            });
        }
        match profiles.iter_mut().find(|p| p.name == profile.name) {
            Some(slot) => *slot = profile,
            None => profiles.push(profile),
        }
    }
    Ok(profiles)
}
