//! The supervisor's own configuration file (`/etc/turtle/turtle.yaml`).
//!
//! Every key is optional; a missing default file means every default. The
//! daemon and the daemon-less CLI read the same file, so both issue
//! certificates for the same domain. Unknown keys are refused with their
//! name, as in compose files.
//!
//! ```yaml
//! domain: corp.internal        # default: <hostname>.local
//! ca:
//!   leaf_lifetime: 2160h       # default 90 days; renewed at two thirds
//!   permitted_ips: [10.0.0.0/8, 192.168.0.0/16]   # name constraints (default: private ranges)
//! trust:
//!   inject: true               # mount the trust bundle into every container
//!   system_bundle: /etc/ssl/certs/ca-certificates.crt
//! mdns:
//!   enabled: true              # publish <domain> names when the domain ends in .local
//!   interfaces: [eth0]         # default: every LAN interface (not lo, docker0, br-*, veth*)
//! device:
//!   profile: raspberrypi3      # default: detected
//!   profiles_dir: /etc/turtle/device-profiles   # more profiles, or overrides by name
//!   root: /                    # where /proc, /sys, /dev and the swap file are (tests: a fake tree)
//!   tune: true                 # swap file, zram, sysctls at daemon start
//!   shed: true                 # thermal and memory-pressure shedding
//! images:
//!   debian_mirror: http://deb.debian.org/debian   # for bootstrapping the base (a site's mirror)
//!   base_bundle: /media/usb/turtle-debian.tar     # a `docker save` of the base, tried first
//! engine:                      # the box's engine trusts and resolves the stack's registry
//!   certs_dir: /etc/docker/certs.d   # null: do not write per-registry CAs
//!   hosts_file: /etc/hosts           # null: do not add the stack's names
//! health:
//!   probe: true                # probe starting containers' healthchecks (crate::probe)
//! bundles:                     # offline bundles (`turtle bundle verify/apply`, remote push)
//!   trusted_keys: [ed25519:3d40...]   # public keys whose bundles are accepted (several: rotation)
//! remote:                      # remote push (`turtle push --to`): off unless `listen` is set
//!   listen: 0.0.0.0:7443       # the daemon's TLS listener (a leaf from the box's CA)
//!   token_file: /etc/turtle/remote-token   # default STATE_DIR/remote/token, made on first use
//!   max_bundle: 8GiB           # the largest bundle accepted
//!   allow_untrusted: false     # with no trusted_keys: accept bundles on the token alone
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use turtle_units::Duration;

/// Where the daemon and the CLI look when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/turtle/turtle.yaml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The stack's domain: certificates are constrained to it and services
    /// are named under it.
    pub domain: Option<String>,
    pub ca: CaSection,
    pub trust: TrustSection,
    pub mdns: MdnsSection,
    pub device: DeviceSection,
    pub engine: EngineSection,
    pub images: ImagesSection,
    pub health: HealthSection,
    pub bundles: BundlesSection,
    pub releases: ReleasesSection,
    pub remote: RemoteSection,
    pub agent: AgentSection,
}

/// The fleet agent: with a provisioning config, the daemon joins a fleet of
/// a parent backend and follows its releases. Off unless `provisioning` is
/// set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AgentSection {
    /// The provisioning config (`turtle fleet provision FLEET` on the
    /// parent writes it). Its key is dropped from the file once this box
    /// registered.
    pub provisioning: Option<PathBuf>,
    /// How often the fleet's target is asked for [default: 30s]; each wait
    /// is jittered by a tenth either way, and an unreachable parent is
    /// retried sooner, backing off up to this interval.
    pub poll_interval: Option<Duration>,
    /// This box's name in the fleet [default: the host name].
    pub name: Option<String>,
    /// How many log lines of the fleet's services are kept while the
    /// parent cannot be reached [default: 10000]; past it the oldest go,
    /// and the loss is reported.
    pub log_buffer: Option<usize>,
    /// Join the backend's WireGuard network and answer the fleet's
    /// operator (`turtle devices ps|logs|exec` on the parent) on the tunnel
    /// address alone [default: true]. Needs /dev/net/tun, NET_ADMIN and
    /// iproute2's `ip`; decided when the box registers.
    pub vpn: Option<bool>,
    /// The port of that listener on the tunnel address [default: 7444].
    pub vpn_port: Option<u16>,
}

/// Remote push: the daemon's TCP listener, off unless `listen` is set.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteSection {
    /// The address and port the daemon serves remote pushes on, over TLS
    /// with a leaf from the box's CA (`0.0.0.0:7443`, `[::]:7443`,
    /// `10.0.0.5:7443`). Unset: no listener.
    pub listen: Option<std::net::SocketAddr>,
    /// The file holding the bearer token remote pushes present
    /// [default: STATE_DIR/remote/token]; made (32 random bytes as hex,
    /// mode 0600) when missing. `turtle remote token` prints it.
    pub token_file: Option<PathBuf>,
    /// The largest bundle a remote push may send [default: 8 GiB].
    pub max_bundle: Option<turtle_units::ByteSize>,
    /// With no `bundles.trusted_keys`, accept bundles on the token alone
    /// (their seal is still checked for damage). Without it, a box that
    /// trusts no key refuses every remote push.
    pub allow_untrusted: bool,
}

/// Releases (`turtle push`): the health gate and the disk.
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReleasesSection {
    /// How long a release must run healthy before it is committed
    /// [default: 30s]; a push's `--settle` and a project's
    /// `io.turtle.settle` label come first.
    pub settle: Option<Duration>,
    /// Space kept free on the engine's disk after an update's download
    /// [default: the device profile's, else 512 MiB].
    pub reserve: Option<turtle_units::ByteSize>,
    /// Where bundles to apply on the daemon's first start are
    /// [default: STATE_DIR/preload].
    pub preload_dir: Option<PathBuf>,
}

/// Offline bundles: whose signatures this box accepts.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BundlesSection {
    /// Public keys (`ed25519:<64 hex digits>`, as `turtle bundle keygen`
    /// prints them); several, so a new key can be added before the old one
    /// is retired. Empty: bundles are checked for damage, not for who
    /// signed them, and `apply` refuses them unless told otherwise.
    pub trusted_keys: Vec<String>,
}

/// How the supervisor learns that a starting service is ready.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HealthSection {
    /// Run a starting container's healthcheck through exec at a short
    /// interval, instead of waiting for the engine's first check
    /// ([`crate::probe`]); off for a box whose CPU cannot spare the execs.
    pub probe: bool,
}

impl Default for HealthSection {
    fn default() -> Self {
        Self { probe: true }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImagesSection {
    /// The Debian mirror the base is bootstrapped from [default: deb.debian.org].
    pub debian_mirror: Option<String>,
    /// A `docker save` archive holding the base, loaded before anything else is tried.
    pub base_bundle: Option<PathBuf>,
}

impl ImagesSection {
    pub fn base_settings(&self) -> crate::base::Settings {
        crate::base::Settings {
            mirror: self
                .debian_mirror
                .clone()
                .unwrap_or_else(|| crate::base::DEFAULT_MIRROR.into()),
            bundle: self.base_bundle.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineSection {
    /// Where the engine reads per-registry CAs (`<host[:port]>/ca.crt`).
    pub certs_dir: Option<PathBuf>,
    /// The hosts file the engine resolves with.
    pub hosts_file: Option<PathBuf>,
}

impl Default for EngineSection {
    fn default() -> Self {
        Self {
            certs_dir: Some(PathBuf::from("/etc/docker/certs.d")),
            hosts_file: Some(PathBuf::from("/etc/hosts")),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeviceSection {
    /// A profile by name instead of the detected one.
    pub profile: Option<String>,
    /// A directory of more profiles (`NAME.yaml`), overriding shipped ones by name.
    pub profiles_dir: Option<PathBuf>,
    /// The root under which `/proc`, `/sys`, `/dev` and the swap file are.
    pub root: PathBuf,
    /// Set up the swap file, zram and sysctls at daemon start.
    pub tune: bool,
    /// Shed load when the box is hot or short of memory.
    pub shed: bool,
}

impl Default for DeviceSection {
    fn default() -> Self {
        Self {
            profile: None,
            profiles_dir: None,
            root: PathBuf::from("/"),
            tune: true,
            shed: true,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaSection {
    /// Lifetime of the leaf certificates Turtle issues (`2160h`, `30s`).
    pub leaf_lifetime: Option<Duration>,
    /// CIDR ranges the CA may issue IP addresses in.
    pub permitted_ips: Option<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrustSection {
    pub inject: bool,
    /// The box's CA bundle to combine with Turtle's root [default: the first
    /// of the usual distribution paths that exists].
    pub system_bundle: Option<PathBuf>,
}

impl Default for TrustSection {
    fn default() -> Self {
        Self {
            inject: true,
            system_bundle: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MdnsSection {
    pub enabled: bool,
    pub interfaces: Option<Vec<String>>,
}

impl Default for MdnsSection {
    fn default() -> Self {
        Self {
            enabled: true,
            interfaces: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the supervisor config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("supervisor config {path}: {message}")]
    Invalid { path: PathBuf, message: String },
}

impl Config {
    /// Reads `path`; `None` reads [`DEFAULT_PATH`] when it exists and
    /// otherwise uses every default. An explicit path must exist.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(DEFAULT_PATH), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self::default());
            }
            Err(source) => return Err(ConfigError::Read { path, source }),
        };
        Self::parse(&text).map_err(|message| ConfigError::Invalid { path, message })
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        let config: Self = serde_norway::from_str(text).map_err(|e| e.to_string())?;
        if let Some(d) = &config.domain {
            validate_domain(d)?;
        }
        Ok(config)
    }

    /// The configured domain, or `<hostname>.local`.
    pub fn domain(&self) -> String {
        match &self.domain {
            Some(d) => d.trim_end_matches('.').to_ascii_lowercase(),
            None => format!("{}.local", host_label()),
        }
    }
}

/// The box's host name as one DNS label (`vm`, from `vm.example.com`),
/// `turtle` when it cannot be read or is not a valid label.
pub fn host_label() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let label = raw
        .trim()
        .split('.')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    if is_label(&label) {
        label
    } else {
        "turtle".to_string()
    }
}

fn is_label(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 63
        && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// A domain: two or more DNS labels (`vm.local`, `corp.internal`).
pub fn validate_domain(d: &str) -> Result<(), String> {
    let d = d.trim_end_matches('.');
    let labels: Vec<&str> = d.split('.').collect();
    if d.len() > 253 || labels.len() < 2 || !labels.iter().all(|l| is_label(l)) {
        return Err(format!(
            "domain {d:?} is not a DNS name of two or more labels (letters, digits, '-'), e.g. vm.local or corp.internal"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_means_every_default() {
        let c = Config::parse("").unwrap();
        assert!(c.trust.inject && c.mdns.enabled);
        assert!(c.domain().ends_with(".local"));
    }

    #[test]
    fn keys_are_read_and_unknown_ones_refused() {
        let c = Config::parse(
            "domain: Corp.Internal.\nca: {leaf_lifetime: 30s}\nmdns: {enabled: false}\n",
        )
        .unwrap();
        assert_eq!(c.domain(), "corp.internal");
        assert_eq!(c.ca.leaf_lifetime, Some(Duration::from_secs(30)));
        assert!(!c.mdns.enabled);
        let e = Config::parse("mdsn: {enabled: false}\n").unwrap_err();
        assert!(e.contains("mdsn"), "{e}");
    }

    #[test]
    fn the_remote_listener_is_off_unless_configured() {
        let c = Config::parse("").unwrap();
        assert!(c.remote.listen.is_none());
        let c = Config::parse(
            "remote: {listen: \"127.0.0.1:7443\", max_bundle: 1GiB, allow_untrusted: true}\n",
        )
        .unwrap();
        assert_eq!(c.remote.listen, Some("127.0.0.1:7443".parse().unwrap()));
        assert_eq!(c.remote.max_bundle.map(|b| b.bytes()), Some(1 << 30));
        assert!(c.remote.allow_untrusted);
        let e = Config::parse("remote: {listen: 7443}\n").unwrap_err();
        assert!(e.contains("remote"), "{e}");
        let e = Config::parse("remote: {port: 7443}\n").unwrap_err();
        assert!(e.contains("port"), "{e}");
    }

    #[test]
    fn a_bad_domain_is_refused() {
        for d in ["local", "a..b", "-a.local", "a_b.local"] {
            let e = Config::parse(&format!("domain: {d}\n")).unwrap_err();
            assert!(e.contains("not a DNS name"), "{d}: {e}");
        }
    }

    #[test]
    fn an_explicit_missing_file_is_an_error() {
        let e = Config::load(Some(Path::new("/nonexistent/turtle.yaml"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/turtle.yaml"), "{e}");
    }
}
