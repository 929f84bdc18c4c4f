//! The box's own Docker engine pulls from (and the builder pushes to) the
//! stack's registry: it must trust Turtle's CA for that registry and resolve
//! its name.
//!
//! # Design
//!
//! A service that serves a registry over TLS says so with
//! `io.turtle.registry: "registry"` (names relative to the domain, as
//! `io.turtle.tls` takes them). For each such name and each host port the
//! service publishes for container port 443, [`EngineTrust::apply`] writes
//! Turtle's root as `CERTS_DIR/<name>[:<port>]/ca.crt`, the per-registry
//! trust the engine reads at every connection (no engine restart; the port
//! is left out for 443, as the engine looks it up). Docker's token
//! authentication fetches its token from the realm (the api) with the same
//! TLS settings, so one directory covers both.
//!
//! The engine resolves names through the host's resolver, which does not
//! speak mDNS everywhere. So every public name of the project goes into a
//! block of `/etc/hosts`, marked with the project's name, pointing at the
//! Docker bridge's gateway: the host's published ports answer there whatever
//! the LAN address is, and an address outside 127.0.0.0/8 keeps the engine
//! from treating the registry as an insecure one (which would skip the very
//! verification this sets up).
//!
//! Each directory written carries a `.turtle-project` marker; `turtle down`
//! removes the project's directories and hosts block, and a later `up`
//! removes those the project no longer needs (a changed port). Both paths
//! are settings (`engine:` in the config file); `null` turns either off.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use turtle_compose::{Project, ProjectName};

use crate::trust::{TrustError, public_names, tls_names};

/// Set on a service serving a registry over TLS: its names, comma-separated.
pub const REGISTRY_LABEL: &str = "io.turtle.registry";
/// The marker file in each certificate directory Turtle wrote.
pub const MARKER: &str = ".turtle-project";

#[derive(Debug, thiserror::Error)]
pub enum EngineTrustError {
    #[error(transparent)]
    Names(#[from] TrustError),
    #[error(
        "service {service}: {REGISTRY_LABEL} is set but the service publishes no host port for container port 443 (add e.g. \"443:443\" to its ports)"
    )]
    NoPort { service: String },
    #[error(
        "{} exists and was not written by Turtle: remove it, or set engine.certs_dir to null in the config file and set the engine's trust up by hand",
        path.display()
    )]
    NotOurs { path: PathBuf },
    #[error(
        "cannot {what} {}: {source} (the engine then cannot reach the stack's registry; check the `engine:` paths in the config file)",
        path.display()
    )]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What the box's engine is set up with for one project.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Setup {
    /// Registry hosts as the engine names them: `registry.box.local`,
    /// `registry.box.local:8443`.
    pub registries: Vec<String>,
    /// The names resolved through the hosts file, and the address.
    pub names: Vec<String>,
    pub address: Option<IpAddr>,
}

/// The registry hosts of the project: see the module docs.
pub fn registries(project: &Project, domain: &str) -> Result<Vec<String>, EngineTrustError> {
    let mut out = BTreeSet::new();
    for (name, service) in &project.services {
        let Some(raw) = service.labels.get(REGISTRY_LABEL) else {
            continue;
        };
        let mut labelled = service.clone();
        labelled
            .labels
            .insert(crate::trust::TLS_LABEL.into(), raw.clone());
        let hosts = tls_names(name, &labelled, domain)?;
        let ports: Vec<u16> = service
            .ports
            .iter()
            .filter(|p| p.target == 443 && p.protocol == "tcp")
            .filter_map(|p| p.published.as_deref()?.parse().ok())
            .collect();
        if ports.is_empty() {
            return Err(EngineTrustError::NoPort {
                service: name.to_string(),
            });
        }
        for h in &hosts {
            for p in &ports {
                out.insert(if *p == 443 {
                    h.clone()
                } else {
                    format!("{h}:{p}")
                });
            }
        }
    }
    Ok(out.into_iter().collect())
}

/// The address the engine reaches the host's published ports at: the Docker
/// bridge's, else the first LAN address, else loopback.
pub fn gateway_address() -> IpAddr {
    let addrs = if_addrs::get_if_addrs().unwrap_or_default();
    let v4 = |name: &str| {
        addrs
            .iter()
            .find(|a| a.name == name && a.ip().is_ipv4())
            .map(|a| a.ip())
    };
    v4("docker0")
        .or_else(|| {
            crate::trust::lan_addresses()
                .into_iter()
                .find(IpAddr::is_ipv4)
        })
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST))
}

/// The engine's certificate directory and the hosts file it resolves with.
#[derive(Debug, Clone)]
pub struct EngineTrust {
    pub certs_dir: Option<PathBuf>,
    pub hosts_file: Option<PathBuf>,
}

impl EngineTrust {
    /// Sets the engine up for `project`'s registries, their names resolving
    /// to `address()`; a project with none gets nothing (and loses what an
    /// earlier version of it had).
    pub fn apply(
        &self,
        project: &Project,
        domain: &str,
        root_pem: &str,
        address: impl FnOnce() -> IpAddr,
    ) -> Result<Setup, EngineTrustError> {
        let registries = registries(project, domain)?;
        if registries.is_empty() {
            self.remove(&project.name)?;
            return Ok(Setup::default());
        }
        // Looked up only here: reading the interfaces at every repair of
        // every project would cost a small board for nothing.
        let address = address();
        if let Some(dir) = &self.certs_dir {
            for r in &registries {
                let d = dir.join(r);
                // Another's directory (an admin's own CA, client keys) is
                // never taken over.
                if d.exists() && !is_ours(&d, &project.name) {
                    return Err(EngineTrustError::NotOurs { path: d });
                }
                std::fs::create_dir_all(&d).map_err(io("create", &d))?;
                write_if_changed(&d.join("ca.crt"), root_pem)?;
                write_if_changed(&d.join(MARKER), &project.name)?;
            }
            remove_dirs(dir, &project.name, &registries)?;
        }
        let names: Vec<String> = public_names(project, domain)?.into_iter().collect();
        if let Some(hosts) = &self.hosts_file {
            let line = format!("{address} {}", names.join(" "));
            edit_hosts(hosts, &project.name, Some(&line))?;
        }
        Ok(Setup {
            registries,
            names,
            address: Some(address),
        })
    }

    /// Trusts `root_pem` for one registry (`host[:port]`) that is not this
    /// box's own: a fleet agent's parent registry. The directory carries
    /// `owner` as its marker; another's directory is never taken over.
    pub fn trust_registry(
        &self,
        registry: &str,
        owner: &str,
        root_pem: &str,
    ) -> Result<(), EngineTrustError> {
        let Some(dir) = &self.certs_dir else {
            return Ok(());
        };
        // `host:443` is looked up as `host`.
        let name = registry.strip_suffix(":443").unwrap_or(registry);
        let d = dir.join(name);
        if d.exists() && !is_ours(&d, owner) {
            return Err(EngineTrustError::NotOurs { path: d });
        }
        std::fs::create_dir_all(&d).map_err(io("create", &d))?;
        write_if_changed(&d.join("ca.crt"), root_pem)?;
        write_if_changed(&d.join(MARKER), owner)
    }

    /// Removes what [`Self::apply`] wrote for the project.
    pub fn remove(&self, project: &ProjectName) -> Result<(), EngineTrustError> {
        if let Some(dir) = &self.certs_dir {
            remove_dirs(dir, project, &[])?;
        }
        if let Some(hosts) = &self.hosts_file {
            edit_hosts(hosts, project, None)?;
        }
        Ok(())
    }
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> EngineTrustError {
    let path = path.to_path_buf();
    move |source| EngineTrustError::Io { what, path, source }
}

fn write_if_changed(path: &Path, content: &str) -> Result<(), EngineTrustError> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(content) {
        return Ok(());
    }
    std::fs::write(path, content).map_err(io("write", path))
}

fn is_ours(dir: &Path, project: &str) -> bool {
    std::fs::read_to_string(dir.join(MARKER)).ok().as_deref() == Some(project)
}

/// Removes what Turtle wrote in the project's certificate directories other
/// than `keep`: its `ca.crt` and marker, then the directory if nothing else
/// is left in it (files someone added stay).
fn remove_dirs(dir: &Path, project: &str, keep: &[String]) -> Result<(), EngineTrustError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !is_ours(&e.path(), project) || keep.contains(&name) {
            continue;
        }
        for f in ["ca.crt", MARKER] {
            let p = e.path().join(f);
            match std::fs::remove_file(&p) {
                Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io("remove", &p)(err));
                }
                _ => {}
            }
        }
        // Fails (and is left) when not empty.
        let _ = std::fs::remove_dir(e.path());
    }
    Ok(())
}

fn markers(project: &str) -> (String, String) {
    (
        format!("# BEGIN turtle project={project} (written by turtle up, removed by turtle down)"),
        format!("# END turtle project={project}"),
    )
}

/// The hosts file with the project's block replaced by `line` (or removed).
/// A block is Turtle's only from its BEGIN line to its END line: a BEGIN
/// with no END (an edit by hand) is left as it is, with every line after it.
pub fn with_block(text: &str, project: &str, line: Option<&str>) -> String {
    let (begin, end) = markers(project);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = String::new();
    let mut placed = false;
    let mut i = 0;
    while i < lines.len() {
        let closing = (lines[i] == begin)
            .then(|| lines[i + 1..].iter().position(|l| *l == end))
            .flatten();
        if let Some(n) = closing {
            if let (Some(line), false) = (line, placed) {
                out.push_str(&format!("{begin}\n{line}\n{end}\n"));
                placed = true;
            }
            i += n + 2;
            continue;
        }
        out.push_str(lines[i]);
        out.push('\n');
        i += 1;
    }
    if let (Some(line), false) = (line, placed) {
        out.push_str(&format!("{begin}\n{line}\n{end}\n"));
    }
    out
}

/// One edit of the hosts file at a time in this process (an `up` of one
/// project beside a repair of another).
static HOSTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Rewrites the project's block: a new file renamed over the old one, so a
/// crash never leaves a torn `/etc/hosts`; in place only when the rename
/// cannot work (`/etc/hosts` bind-mounted into a container or sandbox).
fn edit_hosts(path: &Path, project: &str, line: Option<&str>) -> Result<(), EngineTrustError> {
    let _one = HOSTS.lock().unwrap_or_else(|e| e.into_inner());
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && line.is_none() => return Ok(()),
        Err(e) => return Err(io("read", path)(e)),
    };
    let new = with_block(&text, project, line);
    if new == text {
        return Ok(());
    }
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.turtle{}", std::process::id()));
    let renamed = (|| {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(new.as_bytes())?;
        f.sync_all()?;
        if let Ok(meta) = std::fs::metadata(path) {
            std::fs::set_permissions(&tmp, meta.permissions())?;
        }
        std::fs::rename(&tmp, path)
    })();
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
        std::fs::write(path, new).map_err(io("write", path))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use turtle_compose::{Port, Service};
    use turtle_reconcile::test_support::project;

    fn proxy(ports: &[(u16, &str)]) -> Service {
        let mut s = Service::default();
        s.labels.insert(REGISTRY_LABEL.into(), "registry".into());
        s.labels
            .insert(crate::trust::TLS_LABEL.into(), "@, api, registry".into());
        s.ports = ports
            .iter()
            .map(|(t, p)| Port {
                target: *t,
                published: Some(p.to_string()),
                host_ip: None,
                protocol: "tcp".into(),
                ..Default::default()
            })
            .collect();
        s
    }

    #[test]
    fn registries_carry_the_port_unless_it_is_443() {
        let p = project("s", vec![("proxy", proxy(&[(80, "80"), (443, "443")]))]);
        assert_eq!(registries(&p, "box.local").unwrap(), ["registry.box.local"]);
        let p = project("s", vec![("proxy", proxy(&[(443, "8443")]))]);
        assert_eq!(
            registries(&p, "box.local").unwrap(),
            ["registry.box.local:8443"]
        );
        let p = project("s", vec![("proxy", proxy(&[(80, "80")]))]);
        let e = registries(&p, "box.local").unwrap_err().to_string();
        assert!(e.contains("service proxy") && e.contains("443"), "{e}");
    }

    #[test]
    fn a_parent_registry_is_trusted_and_anothers_directory_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let t = EngineTrust {
            certs_dir: Some(dir.path().to_path_buf()),
            hosts_file: None,
        };
        t.trust_registry("registry.parent.local:8443", "fleet-agent", "ROOT")
            .unwrap();
        let d = dir.path().join("registry.parent.local:8443");
        assert_eq!(std::fs::read_to_string(d.join("ca.crt")).unwrap(), "ROOT");
        // Again, with a new root: replaced.
        t.trust_registry("registry.parent.local:8443", "fleet-agent", "NEW")
            .unwrap();
        assert_eq!(std::fs::read_to_string(d.join("ca.crt")).unwrap(), "NEW");
        // Port 443 is looked up without it.
        t.trust_registry("registry.p.local:443", "fleet-agent", "R")
            .unwrap();
        assert!(dir.path().join("registry.p.local/ca.crt").exists());
        // An admin's own directory is not taken over.
        let mine = dir.path().join("registry.mine.local");
        std::fs::create_dir_all(&mine).unwrap();
        std::fs::write(mine.join("ca.crt"), "ADMIN").unwrap();
        let e = t
            .trust_registry("registry.mine.local", "fleet-agent", "R")
            .unwrap_err();
        assert!(matches!(e, EngineTrustError::NotOurs { .. }), "{e}");
        assert_eq!(
            std::fs::read_to_string(mine.join("ca.crt")).unwrap(),
            "ADMIN"
        );
    }

    #[test]
    fn the_hosts_block_is_replaced_in_place_and_removed_whole() {
        let base = "127.0.0.1 localhost\n::1 localhost\n";
        let one = with_block(base, "s", Some("172.17.0.1 box.local api.box.local"));
        assert_eq!(
            one,
            format!(
                "{base}# BEGIN turtle project=s (written by turtle up, removed by turtle down)\n172.17.0.1 box.local api.box.local\n# END turtle project=s\n"
            )
        );
        let other = with_block(&one, "t", Some("172.17.0.1 t.local"));
        let changed = with_block(&other, "s", Some("172.17.0.1 box.local"));
        assert_eq!(changed.matches("BEGIN turtle").count(), 2);
        assert!(changed.contains("172.17.0.1 box.local\n") && !changed.contains("api.box.local"));
        // The order of the file is kept: s's block stays where it was.
        assert!(changed.find("project=s").unwrap() < changed.find("project=t").unwrap());
        let gone = with_block(&with_block(&changed, "s", None), "t", None);
        assert_eq!(gone, base);
        // A BEGIN without its END is not Turtle's block: nothing after it is lost.
        let torn = format!(
            "{base}# BEGIN turtle project=s (written by turtle up, removed by turtle down)\n10.0.0.1 mine\n"
        );
        let kept = with_block(&torn, "s", None);
        assert_eq!(kept, torn);
    }

    #[test]
    fn apply_writes_the_root_for_each_registry_and_down_removes_only_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let hosts = tmp.path().join("hosts");
        std::fs::write(&hosts, "127.0.0.1 localhost\n").unwrap();
        let certs = tmp.path().join("certs.d");
        std::fs::create_dir_all(certs.join("other.example:5000")).unwrap();
        let et = EngineTrust {
            certs_dir: Some(certs.clone()),
            hosts_file: Some(hosts.clone()),
        };
        let addr: IpAddr = "172.17.0.1".parse().unwrap();
        let p = project("s", vec![("proxy", proxy(&[(443, "8443")]))]);
        let setup = et.apply(&p, "box.local", "ROOT", || addr).unwrap();
        assert_eq!(setup.registries, ["registry.box.local:8443"]);
        assert_eq!(
            std::fs::read_to_string(certs.join("registry.box.local:8443/ca.crt")).unwrap(),
            "ROOT"
        );
        let text = std::fs::read_to_string(&hosts).unwrap();
        assert!(
            text.contains("172.17.0.1 api.box.local box.local registry.box.local\n"),
            "{text}"
        );
        // A changed port moves the directory.
        let p2 = project("s", vec![("proxy", proxy(&[(443, "443")]))]);
        et.apply(&p2, "box.local", "ROOT", || addr).unwrap();
        assert!(certs.join("registry.box.local/ca.crt").exists());
        assert!(!certs.join("registry.box.local:8443").exists());
        // A file someone added to our directory stays, and so does the directory.
        std::fs::write(certs.join("registry.box.local/client.cert"), "mine").unwrap();
        et.remove(&"s".parse().unwrap()).unwrap();
        assert!(!certs.join("registry.box.local/ca.crt").exists());
        assert!(certs.join("registry.box.local/client.cert").exists());
        std::fs::remove_dir_all(certs.join("registry.box.local")).unwrap();
        assert!(certs.join("other.example:5000").exists());
        // A directory Turtle did not write is never taken over.
        std::fs::create_dir_all(certs.join("registry.box.local")).unwrap();
        std::fs::write(certs.join("registry.box.local/ca.crt"), "ADMIN'S").unwrap();
        let e = et
            .apply(&p2, "box.local", "ROOT", || addr)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not written by Turtle"), "{e}");
        assert_eq!(
            std::fs::read_to_string(certs.join("registry.box.local/ca.crt")).unwrap(),
            "ADMIN'S"
        );
        assert_eq!(
            std::fs::read_to_string(&hosts).unwrap(),
            "127.0.0.1 localhost\n"
        );
    }
}
