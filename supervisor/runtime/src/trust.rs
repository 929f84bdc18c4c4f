//! Trust and names for every container: Turtle's CA bundle, TLS leaves for
//! the services that serve TLS, and the stack's public names.
//!
//! # Design
//!
//! Before a project is planned, [`decorate`] (pure) adds to each service what
//! the supervisor injects, so that the config hash covers it and `up
//! --dry-run` shows it:
//!
//! - the trust directory (Turtle's root and the box's CAs plus that root),
//!   bind-mounted read-only at [`TRUST_DIR`], and the variables common
//!   runtimes read ([`TRUST_ENV`]) unless the service sets them itself.
//!   A service opts out with `io.turtle.trust: "false"`;
//! - for a service labelled `io.turtle.tls: "@, api"` (its public names:
//!   `@` is the domain itself, a bare label is `<label>.<domain>`), its leaf
//!   directory bind-mounted read-only at [`TLS_DIR`] (`cert.pem`, `chain.pem`,
//!   `fullchain.pem`, `key.pem`);
//! - for every service, `extra_hosts` entries sending each public name of
//!   the project to `host-gateway`: container resolvers do not speak mDNS,
//!   and the host's published ports are reachable at the gateway address
//!   whatever the box's LAN address is (so a DHCP change recreates nothing);
//! - for every service, `TURTLE_DOMAIN` (the domain) unless it sets it.
//!
//! [`Trust::ensure_leaves`] then issues, keeps or renews each TLS service's
//! leaf; the caller reloads the services whose leaf changed (restart, or the
//! signal named by `io.turtle.tls.reload`). Leaf files are replaced by rename
//! inside a directory that is bind-mounted as a whole, so a running
//! container sees the new files.
//!
//! # Limitations
//!
//! The key is readable by root only, or by the service's `user:` when that is
//! numeric (`"101"`, `"101:101"`): a service that drops to a named user before
//! reading its key must read it as root first (HAProxy and nginx do).

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use turtle_certs::{Authority, CaConfig, LeafId, LeafInfo};
use turtle_compose::{Mount, MountKind, NetworkMode, Project, ProjectName, Service, ServiceName};

use crate::config::Config;

/// Set on a service: `false` turns off mounting the trust bundle.
pub const TRUST_LABEL: &str = "io.turtle.trust";
/// Set on a service that serves TLS: its public names, comma-separated.
pub const TLS_LABEL: &str = "io.turtle.tls";

/// The first label of the name in the certificate the box's operator
/// presents to its devices' daemons over the VPN (`turtle devices exec`):
/// no service may ask for a leaf of that name, so no container holds one.
pub const OPERATOR_NAME: &str = "turtle-operator";
/// Set on a TLS service: the signal that makes it reload its certificate
/// (e.g. `SIGHUP`); without it, the service is restarted.
pub const TLS_RELOAD_LABEL: &str = "io.turtle.tls.reload";

/// Set in every container (unless the service sets it): the stack's domain,
/// so services build their public URLs without it being written twice.
pub const DOMAIN_ENV: &str = "TURTLE_DOMAIN";

/// Where every container finds the trust bundle.
pub const TRUST_DIR: &str = "/etc/turtle/trust";
/// The box's system CAs followed by Turtle's root.
pub const BUNDLE_FILE: &str = "ca-bundle.pem";
/// Turtle's root alone.
pub const ROOT_FILE: &str = "root.pem";
/// Where a TLS service finds its certificate and key.
pub const TLS_DIR: &str = "/etc/turtle/tls";

/// The variables runtimes read for extra CAs, and the file each points at.
/// Node adds `NODE_EXTRA_CA_CERTS` to its own store; the others replace the
/// default store, hence the combined bundle.
pub const TRUST_ENV: [(&str, &str); 5] = [
    ("NODE_EXTRA_CA_CERTS", ROOT_FILE),
    ("SSL_CERT_FILE", BUNDLE_FILE),
    ("REQUESTS_CA_BUNDLE", BUNDLE_FILE),
    ("CURL_CA_BUNDLE", BUNDLE_FILE),
    ("GIT_SSL_CAINFO", BUNDLE_FILE),
];

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(
        "service {service}: {TLS_LABEL} name {name:?} is outside the stack's domain {domain}: use @, a bare label (api) or a name under {domain}, or set `domain` in the supervisor config"
    )]
    OutsideDomain {
        service: String,
        name: String,
        domain: String,
    },
    #[error(
        "service {service}: {TLS_LABEL} name {name:?} is not a DNS name (expected @, a label such as api, or a full name)"
    )]
    BadName { service: String, name: String },
    #[error(
        "service {service}: {TLS_LABEL} name {name:?} is reserved: a certificate named {OPERATOR_NAME} opens this box's devices to whoever holds it (turtle devices exec); choose another name"
    )]
    Reserved { service: String, name: String },
    #[error(transparent)]
    Certs(#[from] turtle_certs::Error),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The host paths and settings [`decorate`] works from.
#[derive(Debug, Clone)]
pub struct Injection {
    pub domain: String,
    /// Host directory mounted at [`TRUST_DIR`].
    pub trust_dir: PathBuf,
    /// Host directory holding one directory per leaf.
    pub leaves_dir: PathBuf,
    /// Mount the trust bundle (the config's `trust.inject`).
    pub inject: bool,
}

/// The public names a service asks a certificate for, as full names.
pub fn tls_names(name: &str, service: &Service, domain: &str) -> Result<Vec<String>, TrustError> {
    let Some(value) = service.labels.get(TLS_LABEL) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for item in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let item = item.trim_end_matches('.').to_ascii_lowercase();
        let full = if item == "@" {
            domain.to_string()
        } else if !item.contains('.') {
            format!("{item}.{domain}")
        } else {
            item.clone()
        };
        if full.split('.').next() == Some(OPERATOR_NAME) {
            return Err(TrustError::Reserved {
                service: name.to_string(),
                name: item,
            });
        }
        if crate::config::validate_domain(&full).is_err() {
            return Err(TrustError::BadName {
                service: name.to_string(),
                name: item,
            });
        }
        if full != domain && !full.ends_with(&format!(".{domain}")) {
            return Err(TrustError::OutsideDomain {
                service: name.to_string(),
                name: item,
                domain: domain.to_string(),
            });
        }
        if !out.contains(&full) {
            out.push(full);
        }
    }
    Ok(out)
}

/// Every public name of a project, sorted.
pub fn public_names(project: &Project, domain: &str) -> Result<BTreeSet<String>, TrustError> {
    let mut names = BTreeSet::new();
    for (name, service) in &project.services {
        names.extend(tls_names(name, service, domain)?);
    }
    Ok(names)
}

/// The leaf id of a TLS service: `<project>.<service>` in lowercase,
/// shortened with a hash of the whole when longer than the CA's 64
/// characters. Always a valid id: a project name starts with a letter or
/// digit, and both names hold only characters a leaf id allows.
pub fn leaf_id(project: &ProjectName, service: &ServiceName) -> LeafId {
    let id = format!("{project}.{service}").to_ascii_lowercase();
    let id = if id.len() <= 64 {
        id
    } else {
        use sha2::Digest;
        let hash = hex::encode(&sha2::Sha256::digest(id.as_bytes())[..8]);
        let keep: String = id.chars().take(47).collect();
        format!("{keep}-{hash}")
    };
    id.parse()
        .expect("a project and a service name make a valid leaf id")
}

fn opted_out(service: &Service) -> bool {
    service
        .labels
        .get(TRUST_LABEL)
        .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "false" | "0" | "no"))
}

fn add_bind(service: &mut Service, source: &Path, target: &str) {
    if service.volumes.iter().any(|m| m.target == target) {
        return;
    }
    service.volumes.push(Mount {
        kind: MountKind::Bind,
        source: Some(source.display().to_string()),
        target: target.to_string(),
        read_only: true,
        tmpfs_size: None,
        ..Default::default()
    });
}

/// The project as the supervisor deploys it: see the module docs.
pub fn decorate(project: &Project, inj: &Injection) -> Result<Project, TrustError> {
    let names = public_names(project, &inj.domain)?;
    let mut out = project.clone();
    for (name, service) in out.services.iter_mut() {
        if inj.inject && !opted_out(service) {
            add_bind(service, &inj.trust_dir, TRUST_DIR);
            for (var, file) in TRUST_ENV {
                if !service.environment.contains_key(var) {
                    service
                        .environment
                        .insert(var.to_string(), format!("{TRUST_DIR}/{file}"));
                }
            }
        }
        if service.labels.contains_key(TLS_LABEL) {
            let dir = inj.leaves_dir.join(leaf_id(&project.name, name));
            add_bind(service, &dir, TLS_DIR);
        }
        // The engine refuses host entries on a container sharing another's
        // network stack; it resolves through that container's.
        let shares = matches!(
            service.network_mode,
            Some(NetworkMode::Service(_) | NetworkMode::Container(_))
        );
        if !service.environment.contains_key(DOMAIN_ENV) {
            service
                .environment
                .insert(DOMAIN_ENV.to_string(), inj.domain.clone());
        }
        if !shares {
            for n in &names {
                let taken = service
                    .extra_hosts
                    .iter()
                    .any(|h| h.split([':', '=']).next() == Some(n.as_str()));
                if !taken {
                    service.extra_hosts.push(format!("{n}:host-gateway"));
                }
            }
        }
    }
    Ok(out)
}

/// A TLS service whose leaf was issued or renewed.
#[derive(Debug, Clone)]
pub struct LeafChange {
    pub service: String,
    pub leaf: LeafInfo,
}

/// The supervisor's CA and the files it shares with containers.
pub struct Trust {
    authority: Authority,
    injection: Injection,
}

impl Trust {
    /// Opens (or creates, once) the CA in `<state_dir>/ca` and writes the
    /// trust directory `<state_dir>/trust`.
    pub fn open(state_dir: &Path, config: &Config, now: SystemTime) -> Result<Self, TrustError> {
        let mut ca = ca_config(config)?;
        let dir = state_dir.join(CA_DIR);
        let authority = match Authority::open_or_create(&dir, &ca, now) {
            // The default domain follows the host name; the CA does not. A
            // renamed box keeps serving the names its CA was made for.
            Err(turtle_certs::Error::DomainMismatch { stored, .. }) if config.domain.is_none() => {
                tracing::warn!(
                    "the host name changed, but the CA in {} is for {stored}: keeping {stored} (set `domain` in the supervisor config to choose)",
                    dir.display()
                );
                ca.domain = stored;
                Authority::open_or_create(&dir, &ca, now)?
            }
            other => other?,
        };
        Self::with_authority(state_dir, config, authority)
    }

    /// Bring your own CA: `cert_pem` and `key_pem` take the place of the
    /// root (see [`Authority::import`]).
    pub fn import(
        state_dir: &Path,
        config: &Config,
        cert_pem: &str,
        key_pem: &str,
        now: SystemTime,
    ) -> Result<Self, TrustError> {
        let ca = ca_config(config)?;
        let authority = Authority::import(&state_dir.join(CA_DIR), &ca, cert_pem, key_pem, now)?;
        Self::with_authority(state_dir, config, authority)
    }

    fn with_authority(
        state_dir: &Path,
        config: &Config,
        authority: Authority,
    ) -> Result<Self, TrustError> {
        let trust_dir = state_dir.join("trust");
        let system = match &config.trust.system_bundle {
            Some(p) => Some(p.clone()),
            None => turtle_certs::find_system_bundle().map(Path::to_path_buf),
        };
        let bundle = turtle_certs::trust_bundle(system.as_deref(), authority.root_pem());
        write_if_changed(&trust_dir, ROOT_FILE, authority.root_pem())?;
        write_if_changed(&trust_dir, BUNDLE_FILE, &bundle)?;
        let injection = Injection {
            domain: authority.domain().to_string(),
            trust_dir,
            leaves_dir: authority.dir().join("leaves"),
            inject: config.trust.inject,
        };
        Ok(Self {
            authority,
            injection,
        })
    }

    /// What [`decorate`] would inject, read from the config and the state
    /// directory without writing anything: for `up --dry-run` on a box
    /// whose CA does not exist yet. The domain is the one the CA would be
    /// made for; the paths are those [`Trust::open`] would use.
    pub fn preview(state_dir: &Path, config: &Config) -> Result<Injection, TrustError> {
        let ca = ca_config(config)?;
        Ok(Injection {
            domain: ca.domain,
            trust_dir: state_dir.join("trust"),
            leaves_dir: state_dir.join(CA_DIR).join("leaves"),
            inject: config.trust.inject,
        })
    }

    /// Whether the CA of `state_dir` exists (then [`Trust::open`] writes
    /// nothing new in it).
    pub fn exists(state_dir: &Path) -> bool {
        state_dir.join(CA_DIR).is_dir()
    }

    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    pub fn domain(&self) -> &str {
        &self.injection.domain
    }

    pub fn injection(&self) -> &Injection {
        &self.injection
    }

    pub fn decorate(&self, project: &Project) -> Result<Project, TrustError> {
        decorate(project, &self.injection)
    }

    /// Issues, keeps or renews the leaf of every TLS service of `project`;
    /// returns those that changed.
    pub fn ensure_leaves(
        &self,
        project: &Project,
        now: SystemTime,
    ) -> Result<Vec<LeafChange>, TrustError> {
        // Listing the interfaces costs a syscall or two per interface, and
        // a box has a veth per container: only when a leaf is needed.
        let mut ips = None;
        let mut changes = Vec::new();
        for (name, service) in &project.services {
            let names = tls_names(name, service, self.domain())?;
            if names.is_empty() {
                continue;
            }
            let ips = ips.get_or_insert_with(|| self.leaf_ips());
            let id = leaf_id(&project.name, name);
            let (leaf, changed) = self.authority.ensure_leaf(&id, &names, ips, now)?;
            // The key only, and never through a link: the directory stays
            // root's.
            if let Some(owner) = service.user.as_deref().and_then(numeric_owner) {
                let path = self.authority.leaf_dir(&id).join(turtle_certs::KEY_FILE);
                std::os::unix::fs::lchown(&path, Some(owner.0), owner.1)
                    .map_err(|source| TrustError::Io { path, source })?;
            }
            if changed {
                changes.push(LeafChange {
                    service: name.to_string(),
                    leaf,
                });
            }
        }
        Ok(changes)
    }

    /// The box's LAN addresses that the CA may put in a certificate.
    fn leaf_ips(&self) -> Vec<IpAddr> {
        let permitted = self.authority.permitted_ips();
        lan_addresses()
            .into_iter()
            .filter(|ip| permitted.iter().any(|net| net.contains(ip)))
            .collect()
    }
}

/// Where the CA lives under the state directory.
const CA_DIR: &str = "ca";

/// The CA settings of the supervisor config.
fn ca_config(config: &Config) -> Result<CaConfig, TrustError> {
    let mut ca = CaConfig::new(config.domain());
    if let Some(l) = config.ca.leaf_lifetime {
        ca.leaf_lifetime = l.as_std();
    }
    if let Some(ranges) = &config.ca.permitted_ips {
        ca.permitted_ips = ranges.iter().map(|r| r.parse()).collect::<Result<_, _>>()?;
    }
    Ok(ca)
}

/// `"101"` or `"101:102"` -> (uid, gid).
fn numeric_owner(user: &str) -> Option<(u32, Option<u32>)> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let uid = u.parse().ok()?;
    let gid = match g {
        Some(g) => Some(g.parse().ok()?),
        None => None,
    };
    Some((uid, gid))
}

/// Whether an interface is the box's own link rather than a container
/// bridge or the loopback.
pub fn is_lan_interface(name: &str) -> bool {
    !(name == "lo"
        || name == "docker0"
        || name.starts_with("br-")
        || name.starts_with("veth")
        || name.starts_with("docker")
        || name.starts_with("cni")
        || name.starts_with("flannel"))
}

/// The box's addresses on its LAN interfaces (no link-local IPv6).
pub fn lan_addresses() -> Vec<IpAddr> {
    let Ok(ifaces) = if_addrs::get_if_addrs() else {
        return Vec::new();
    };
    let mut out: Vec<IpAddr> = ifaces
        .into_iter()
        .filter(|i| is_lan_interface(&i.name) && !i.is_loopback())
        .map(|i| i.ip())
        .filter(|ip| match ip {
            IpAddr::V4(_) => true,
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) != 0xfe80,
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

fn write_if_changed(dir: &Path, file: &str, content: &str) -> Result<(), TrustError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrustError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(file);
    if std::fs::read_to_string(&path).ok().as_deref() == Some(content) {
        return Ok(());
    }
    // Per process: the daemon and a CLI may write at once.
    let tmp = dir.join(format!(".{file}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, content).map_err(io(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use turtle_reconcile::test_support::project;

    fn inj() -> Injection {
        Injection {
            domain: "box.local".into(),
            trust_dir: "/state/trust".into(),
            leaves_dir: "/state/ca/leaves".into(),
            inject: true,
        }
    }

    fn tls(names: &str) -> Service {
        let mut s = Service::default();
        s.labels.insert(TLS_LABEL.into(), names.into());
        s
    }

    #[test]
    fn tls_names_expand_relative_to_the_domain() {
        let names = tls_names(
            "proxy",
            &tls("@, api , Registry., api.box.local"),
            "box.local",
        )
        .unwrap();
        assert_eq!(names, ["box.local", "api.box.local", "registry.box.local"]);
    }

    #[test]
    fn no_service_may_take_the_operators_name() {
        for asked in [
            "turtle-operator",
            "turtle-operator.box.local",
            "Turtle-Operator.",
        ] {
            let e = tls_names("web", &tls(asked), "box.local").unwrap_err();
            assert!(matches!(e, TrustError::Reserved { .. }), "{asked}: {e}");
            assert!(e.to_string().contains("reserved"), "{e}");
        }
        // A name that merely contains it is another name.
        tls_names("web", &tls("my-turtle-operator"), "box.local").unwrap();
    }

    #[test]
    fn a_name_outside_the_domain_is_refused_with_the_fix() {
        let e = tls_names("proxy", &tls("api.example.com"), "box.local").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("proxy") && msg.contains("outside the stack's domain box.local"),
            "{msg}"
        );
        let e = tls_names("proxy", &tls("a_b"), "box.local").unwrap_err();
        assert!(e.to_string().contains("not a DNS name"), "{e}");
    }

    #[test]
    fn every_service_gets_the_bundle_and_variables_it_did_not_set() {
        let mut own = Service::default();
        own.environment
            .insert("SSL_CERT_FILE".into(), "/mine.pem".into());
        let p = project("p", vec![("a", Service::default()), ("b", own)]);
        let d = decorate(&p, &inj()).unwrap();
        let a = &d.services["a"];
        assert!(a.volumes.iter().any(|m| m.target == TRUST_DIR
            && m.read_only
            && m.source.as_deref() == Some("/state/trust")));
        assert_eq!(
            a.environment["SSL_CERT_FILE"],
            "/etc/turtle/trust/ca-bundle.pem"
        );
        assert_eq!(
            a.environment["NODE_EXTRA_CA_CERTS"],
            "/etc/turtle/trust/root.pem"
        );
        assert_eq!(
            a.environment["CURL_CA_BUNDLE"],
            "/etc/turtle/trust/ca-bundle.pem"
        );
        let b = &d.services["b"];
        assert_eq!(b.environment["SSL_CERT_FILE"], "/mine.pem");
        assert_eq!(
            b.environment["GIT_SSL_CAINFO"],
            "/etc/turtle/trust/ca-bundle.pem"
        );
    }

    #[test]
    fn opting_out_leaves_the_service_as_written_but_for_the_domain() {
        let mut s = Service::default();
        s.labels.insert(TRUST_LABEL.into(), "false".into());
        let p = project("p", vec![("a", s.clone())]);
        let d = decorate(&p, &inj()).unwrap();
        let mut expected = s.clone();
        expected
            .environment
            .insert(DOMAIN_ENV.into(), "box.local".into());
        assert_eq!(d.services["a"], expected);
        let off = Injection {
            inject: false,
            ..inj()
        };
        let p = project("p", vec![("a", Service::default())]);
        let mut expected = Service::default();
        expected
            .environment
            .insert(DOMAIN_ENV.into(), "box.local".into());
        assert_eq!(decorate(&p, &off).unwrap().services["a"], expected);
        // A service's own value wins.
        let mut own = Service::default();
        own.environment
            .insert(DOMAIN_ENV.into(), "elsewhere.local".into());
        let p = project("p", vec![("a", own.clone())]);
        assert_eq!(decorate(&p, &off).unwrap().services["a"], own);
    }

    #[test]
    fn a_tls_service_gets_its_leaf_and_everyone_its_names() {
        let shared = Service {
            network_mode: Some(NetworkMode::Service("proxy".into())),
            ..Default::default()
        };
        let pinned = Service {
            extra_hosts: vec!["api.box.local:10.1.1.1".into()],
            ..Default::default()
        };
        let p = project(
            "p",
            vec![("proxy", tls("@, api")), ("side", shared), ("web", pinned)],
        );
        let d = decorate(&p, &inj()).unwrap();
        let proxy = &d.services["proxy"];
        assert!(proxy.volumes.iter().any(|m| m.target == TLS_DIR
            && m.read_only
            && m.source.as_deref() == Some("/state/ca/leaves/p.proxy")));
        assert_eq!(
            proxy.extra_hosts,
            ["api.box.local:host-gateway", "box.local:host-gateway"]
        );
        assert!(d.services["side"].extra_hosts.is_empty());
        assert!(
            !d.services["side"]
                .volumes
                .iter()
                .any(|m| m.target == TLS_DIR)
        );
        assert_eq!(
            d.services["web"].extra_hosts,
            ["api.box.local:10.1.1.1", "box.local:host-gateway"]
        );
    }

    #[test]
    fn decorating_twice_changes_nothing_more() {
        let p = project("p", vec![("proxy", tls("api"))]);
        let once = decorate(&p, &inj()).unwrap();
        assert_eq!(decorate(&once, &inj()).unwrap(), once);
    }

    #[test]
    fn a_renamed_host_keeps_its_cas_domain_unless_one_is_configured() {
        let state = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let mut config = Config::parse("domain: turtle-old-name.local\n").unwrap();
        config.trust.system_bundle = Some("/nonexistent".into());
        let first = Trust::open(state.path(), &config, now).unwrap();
        // No domain configured: the default (<hostname>.local) differs from
        // the CA's, which wins.
        config.domain = None;
        let again = Trust::open(state.path(), &config, now).unwrap();
        assert_eq!(again.domain(), "turtle-old-name.local");
        assert_eq!(
            again.authority().fingerprint(),
            first.authority().fingerprint()
        );
        // A configured domain that differs is an error naming both.
        config.domain = Some("other.local".into());
        let e = Trust::open(state.path(), &config, now).err().unwrap();
        assert!(e.to_string().contains("turtle-old-name.local"), "{e}");
    }

    #[test]
    fn long_leaf_ids_are_shortened_and_stay_distinct() {
        let p = |s: &str| s.parse::<ProjectName>().unwrap();
        let s = |s: &str| s.parse::<ServiceName>().unwrap();
        let project = p(&"a".repeat(40));
        let a = leaf_id(&project, &s(&"s".repeat(30)));
        let b = leaf_id(&project, &s(&format!("{}t", "s".repeat(29))));
        assert!(a.as_str().len() <= 64 && b.as_str().len() <= 64, "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(leaf_id(&p("p"), &s("Web")).as_str(), "p.web");
        // The longest names and the oddest service names still make an id.
        for service in ["-", "...", ".x", "_", &"Z".repeat(255)] {
            leaf_id(&p(&"9".repeat(255)), &s(service));
            leaf_id(&p("p"), &s(service));
        }
    }

    #[test]
    fn numeric_users_own_their_key() {
        assert_eq!(numeric_owner("101"), Some((101, None)));
        assert_eq!(numeric_owner("101:7"), Some((101, Some(7))));
        assert_eq!(numeric_owner("haproxy"), None);
    }

    #[test]
    fn container_bridges_are_not_lan_interfaces() {
        for i in ["lo", "docker0", "br-12ab", "veth1234"] {
            assert!(!is_lan_interface(i), "{i}");
        }
        for i in ["eth0", "enp3s0", "wlan0", "tmdA123"] {
            assert!(is_lan_interface(i), "{i}");
        }
    }
}
