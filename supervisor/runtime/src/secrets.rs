//! Secrets the supervisor makes for a project's services: tokens and
//! passwords no one should have to invent, copy into a compose file or
//! commit.
//!
//! # Design
//!
//! A service lists the secrets it needs: `io.turtle.secrets: "admin-token,
//! db-password"`. Each name is one secret of the project, shared by every
//! service that lists it (the api and the db both read `db-password`). At
//! `up` (and at every repair, so a deleted one comes back) [`Secrets::ensure`]
//! creates the missing ones: 32 random bytes as 64 lowercase hex characters,
//! no newline, usable as a token, a password, or a WireGuard private key in
//! the UAPI's hex form. An existing secret is never changed.
//!
//! A pair `<name>.key` / `<name>.crt` is a signing key (P-256, PKCS#8 PEM)
//! and its self-signed certificate, made together when either is listed:
//! the signer lists both, the verifier only the certificate, and trusts that
//! one key rather than everything Turtle's CA issued (see
//! [`turtle_certs::new_signer`]).
//!
//! `<name>.pub` is the WireGuard (X25519) public key, base64, of the secret
//! `<name>` (made first when missing): the vpn holds `vpn-key`, the api
//! only `vpn-key.pub`, which is all it hands to devices.
//!
//! [`decorate`] (pure, beside the trust step) bind-mounts each listed secret
//! read-only as the file `/run/turtle/secrets/<name>`, and no other: a
//! service sees only what it listed.
//!
//! On the host the secrets live in `STATE_DIR/secrets/<project>/<name>`,
//! both parts parsed names ([`ProjectName`], [`SecretName`]), so a path never
//! leaves the state directory. The directories are 0700 root, so no other
//! host user reads them; the files are 0444 so that a service running as a
//! non-root user (PostgreSQL) can read its mount. Turtle makes the
//! directories; one that is there and not Turtle's (a link, another user's,
//! wider than 0700) is refused, never taken over
//! ([`turtle_certs::own_dir`]). `turtle secret NAME` prints one for the
//! box's admin.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use turtle_compose::{Mount, MountKind, Project, ProjectName, Service, ServiceName};

/// Set on a service: the secrets it needs, comma-separated.
pub const SECRETS_LABEL: &str = "io.turtle.secrets";
/// Where a service finds each of its secrets as a file.
pub const SECRETS_DIR: &str = "/run/turtle/secrets";

/// The rule of a secret's name, in every message that refuses one.
const NAME_RULE: &str = "use 1 to 64 of a-z, 0-9, '-', '_', starting with a letter or digit, optionally ending in .key, .crt or .pub";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("service {service}: {SECRETS_LABEL}: {name:?} is not a secret name ({NAME_RULE})")]
    BadName { service: String, name: String },
    #[error("{0:?} is not a secret name ({NAME_RULE})")]
    InvalidName(String),
    #[error("cannot make the secrets directory: {0}")]
    Dir(turtle_certs::Error),
    #[error("cannot write the secret {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "project {project} has no secret {name} (its services list: {known}; secrets are made at `turtle up`)"
    )]
    Unknown {
        project: String,
        name: String,
        known: String,
    },
    #[error("cannot make the signing key {name}: {source}")]
    Signer {
        name: String,
        source: turtle_certs::Error,
    },
    #[error("cannot read the secret {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// A secret's name: 1 to 64 of `a-z0-9-_`, starting with a letter or digit,
/// optionally followed by `.key`, `.crt` (a signing pair's halves) or `.pub`
/// (a WireGuard public key): always a plain file name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SecretName(String);

impl SecretName {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The base of a signing pair's member: `token.key` -> `token`.
    fn pair_base(&self) -> Option<&str> {
        pair_base(&self.0)
    }

    /// The private secret of a public key: `vpn-key.pub` -> `vpn-key`.
    fn public_of(&self) -> Option<SecretName> {
        self.0
            .strip_suffix(".pub")
            .map(|p| SecretName(p.to_string()))
    }
}

impl FromStr for SecretName {
    type Err = SecretError;
    fn from_str(name: &str) -> Result<Self, SecretError> {
        let base = pair_base(name)
            .or_else(|| name.strip_suffix(".pub"))
            .unwrap_or(name);
        let ok = !base.is_empty()
            && base.len() <= 64
            && base
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
            && base.as_bytes()[0].is_ascii_alphanumeric();
        if ok {
            Ok(Self(name.to_string()))
        } else {
            Err(SecretError::InvalidName(name.to_string()))
        }
    }
}

impl std::fmt::Display for SecretName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<Path> for SecretName {
    fn as_ref(&self) -> &Path {
        Path::new(&self.0)
    }
}

fn pair_base(name: &str) -> Option<&str> {
    name.strip_suffix(".key")
        .or_else(|| name.strip_suffix(".crt"))
}

/// The WireGuard (X25519) public key, standard base64, of a private key
/// written as 64 hex characters (how Turtle writes every random secret).
/// Done here with x25519-dalek rather than through the vpn service's crate,
/// which the supervisor does not link.
fn wireguard_public(private_hex: &str) -> Result<String, String> {
    let bytes: [u8; 32] = hex::decode(private_hex.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "expected 64 hex characters".to_string())?;
    let public = x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(bytes));
    Ok(base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        public.as_bytes(),
    ))
}

/// The secrets `service` lists, in order, without duplicates.
pub fn listed(name: &ServiceName, service: &Service) -> Result<Vec<SecretName>, SecretError> {
    let Some(raw) = service.labels.get(SECRETS_LABEL) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<SecretName> = Vec::new();
    for n in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let n: SecretName = n.parse().map_err(|_| SecretError::BadName {
            service: name.to_string(),
            name: n.to_string(),
        })?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// Every secret the project's services list.
pub fn project_secrets(project: &Project) -> Result<Vec<SecretName>, SecretError> {
    let mut all = Vec::new();
    for (name, service) in &project.services {
        for s in listed(name, service)? {
            if !all.contains(&s) {
                all.push(s);
            }
        }
    }
    all.sort();
    Ok(all)
}

/// The project with each service's secrets mounted: see the module docs.
pub fn decorate(project: &Project, dir: &Path) -> Result<Project, SecretError> {
    let mut out = project.clone();
    for (name, service) in out.services.iter_mut() {
        for s in listed(name, service)? {
            let target = format!("{SECRETS_DIR}/{s}");
            if service.volumes.iter().any(|m| m.target == target) {
                continue;
            }
            service.volumes.push(Mount {
                kind: MountKind::Bind,
                source: Some(dir.join(&project.name).join(&s).display().to_string()),
                target,
                read_only: true,
                tmpfs_size: None,
                ..Default::default()
            });
        }
    }
    Ok(out)
}

/// The secrets store of a state directory.
#[derive(Debug, Clone)]
pub struct Secrets {
    /// The state directory: nothing of this store is outside it.
    root: PathBuf,
    dir: PathBuf,
}

impl Secrets {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            root: state_dir.to_path_buf(),
            dir: state_dir.join("secrets"),
        }
    }

    /// `STATE_DIR/secrets`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn decorate(&self, project: &Project) -> Result<Project, SecretError> {
        decorate(project, &self.dir)
    }

    /// Creates the project's missing secrets; returns the names created.
    pub fn ensure(&self, project: &Project) -> Result<Vec<String>, SecretError> {
        let names = project_secrets(project)?;
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let dir = self.dir.join(&project.name);
        turtle_certs::own_dir(&self.root, &dir, 0o700).map_err(SecretError::Dir)?;
        let mut created = Vec::new();
        for n in names {
            let path = dir.join(&n);
            if path.exists() {
                continue;
            }
            match n.pair_base() {
                Some(base) => {
                    // Both made again when either is missing: a certificate
                    // must be of its key.
                    let (key, cert) = turtle_certs::new_signer(
                        &format!("Turtle {} {base} signer", project.name),
                        std::time::SystemTime::now(),
                    )
                    .map_err(|source| SecretError::Signer {
                        name: n.to_string(),
                        source,
                    })?;
                    write_pair(&dir.join(format!("{base}.crt")), &cert)?;
                    write_pair(&dir.join(format!("{base}.key")), &key)?;
                    created.push(format!("{base}.key, {base}.crt"));
                }
                None => match n.public_of() {
                    Some(private) => {
                        let private_path = dir.join(&private);
                        if write_new(&private_path, &random_hex())? {
                            created.push(private.to_string());
                        }
                        let hex = std::fs::read_to_string(&private_path).map_err(|source| {
                            SecretError::Read {
                                path: private_path.clone(),
                                source,
                            }
                        })?;
                        let public = wireguard_public(&hex).map_err(|e| SecretError::Write {
                            path: path.clone(),
                            source: std::io::Error::other(format!(
                                "{} is not a WireGuard key: {e}",
                                private_path.display()
                            )),
                        })?;
                        if write_new(&path, &public)? {
                            created.push(n.to_string());
                        }
                    }
                    None => {
                        if write_new(&path, &random_hex())? {
                            created.push(n.to_string());
                        }
                    }
                },
            }
        }
        created.dedup();
        Ok(created)
    }

    /// The value of one of the project's secrets.
    pub fn read(&self, project: &ProjectName, name: &SecretName) -> Result<String, SecretError> {
        let path = self.dir.join(project).join(name);
        match std::fs::read_to_string(&path) {
            Ok(v) => Ok(v.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(SecretError::Unknown {
                project: project.to_string(),
                name: name.to_string(),
                known: self
                    .names(project)
                    .iter()
                    .map(SecretName::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
            Err(source) => Err(SecretError::Read { path, source }),
        }
    }

    /// The names of the project's existing secrets, sorted.
    pub fn names(&self, project: &ProjectName) -> Vec<SecretName> {
        let mut out: Vec<SecretName> = std::fs::read_dir(self.dir.join(project))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.parse().ok())
            .collect();
        out.sort();
        out
    }

    /// The projects with a secrets directory, sorted (names that are not a
    /// project's are left out).
    pub fn projects(&self) -> Vec<ProjectName> {
        let mut out: Vec<ProjectName> = std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter_map(|n| n.parse().ok())
            .collect();
        out.sort();
        out
    }
}

fn random_hex() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 32];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system's random source works");
    hex::encode(bytes)
}

/// Writes `value` whole under a temporary name (so a crash never leaves a
/// half-written secret that would then be kept); returns that name.
fn write_temp(path: &Path, value: &str) -> Result<PathBuf, SecretError> {
    use std::os::unix::fs::OpenOptionsExt;
    let err = |source| SecretError::Write {
        path: path.to_path_buf(),
        source,
    };
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    // A new file, never one found there (a link would be written through).
    match std::fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
        _ => {}
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o444)
        .open(&tmp)
        .map_err(err)?;
    f.write_all(value.as_bytes()).map_err(err)?;
    f.sync_all().map_err(err)?;
    Ok(tmp)
}

/// Puts a new secret in place unless one appeared meanwhile (another
/// process's `up`): a hard link never replaces, so an existing secret is
/// never changed. Returns whether this one was put in place.
fn write_new(path: &Path, value: &str) -> Result<bool, SecretError> {
    let tmp = write_temp(path, value)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(source) => Err(SecretError::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Puts one half of a signing pair in place, replacing the other's stale half.
fn write_pair(path: &Path, value: &str) -> Result<(), SecretError> {
    let tmp = write_temp(path, value)?;
    std::fs::rename(&tmp, path).map_err(|source| SecretError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn pn() -> ProjectName {
        "p".parse().unwrap()
    }

    fn n(s: &str) -> SecretName {
        s.parse().unwrap()
    }

    fn project(labels: &[(&str, &str)]) -> Project {
        let services = labels
            .iter()
            .map(|(name, secrets)| {
                let mut s = Service::default();
                s.labels.insert(SECRETS_LABEL.into(), secrets.to_string());
                (*name, s)
            })
            .collect();
        turtle_reconcile::test_support::project("p", services)
    }

    #[test]
    fn each_service_gets_only_the_secrets_it_lists() {
        let p = project(&[("api", "admin-token, db-password"), ("db", "db-password")]);
        let d = decorate(&p, Path::new("/s")).unwrap();
        let mounts = |s: &str| -> Vec<(String, String, bool)> {
            d.services[s]
                .volumes
                .iter()
                .map(|m| (m.source.clone().unwrap(), m.target.clone(), m.read_only))
                .collect()
        };
        assert_eq!(
            mounts("api"),
            vec![
                (
                    "/s/p/admin-token".into(),
                    "/run/turtle/secrets/admin-token".into(),
                    true
                ),
                (
                    "/s/p/db-password".into(),
                    "/run/turtle/secrets/db-password".into(),
                    true
                ),
            ]
        );
        assert_eq!(
            mounts("db"),
            vec![(
                "/s/p/db-password".into(),
                "/run/turtle/secrets/db-password".into(),
                true
            )]
        );
    }

    #[test]
    fn a_signing_pair_is_made_together_and_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Secrets::new(tmp.path());
        // The verifier lists only the certificate; the pair is made anyway.
        let p = project(&[("registry", "token.crt")]);
        assert_eq!(s.ensure(&p).unwrap(), vec!["token.key, token.crt"]);
        let key = s.read(&pn(), &n("token.key")).unwrap();
        let cert = s.read(&pn(), &n("token.crt")).unwrap();
        assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
        let p = project(&[("api", "token.key, token.crt"), ("registry", "token.crt")]);
        assert!(s.ensure(&p).unwrap().is_empty());
        assert_eq!(s.read(&pn(), &n("token.key")).unwrap(), key);
        // A name that is not a secret's cannot become a path.
        let e = "../../ca/root.key".parse::<SecretName>().unwrap_err();
        assert!(e.to_string().contains("is not a secret name"), "{e}");
    }

    #[test]
    fn a_public_key_is_derived_from_its_private_secret() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Secrets::new(tmp.path());
        // RFC 7748 section 6.1: Alice's private and public keys.
        std::os::unix::fs::DirBuilderExt::mode(&mut std::fs::DirBuilder::new(), 0o700)
            .recursive(true)
            .create(tmp.path().join("secrets/p"))
            .unwrap();
        std::fs::write(
            tmp.path().join("secrets/p/vpn-key"),
            "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a",
        )
        .unwrap();
        let p = project(&[("api", "vpn-key.pub")]);
        assert_eq!(s.ensure(&p).unwrap(), vec!["vpn-key.pub"]);
        let public = s.read(&pn(), &n("vpn-key.pub")).unwrap();
        assert_eq!(
            hex::encode(
                base64::Engine::decode(&base64::engine::general_purpose::STANDARD, public).unwrap()
            ),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        // Listed alone, the private half is made too (the vpn lists it).
        let p = project(&[("api", "other.pub")]);
        assert_eq!(s.ensure(&p).unwrap(), vec!["other", "other.pub"]);
    }

    #[test]
    fn secret_names_are_plain_file_names() {
        for ok in [
            "admin-token",
            "db_password",
            "a",
            "0x",
            "token.key",
            "token.crt",
            "vpn-key.pub",
        ] {
            assert_eq!(n(ok).as_str(), ok);
        }
        for bad in [
            "",
            ".",
            "..",
            ".key",
            "-x",
            "_x",
            "Admin",
            "a/b",
            "../x",
            "a.b",
            "a.key.pub",
            "a\0",
            "a b",
            &"x".repeat(65),
        ] {
            let e = bad.parse::<SecretName>().unwrap_err().to_string();
            assert!(
                e.contains("is not a secret name (use 1 to 64"),
                "{bad:?}: {e}"
            );
        }
    }

    /// A project's secrets directory that is there and not Turtle's is
    /// refused, not made private and written into.
    #[test]
    fn a_secrets_directory_turtle_did_not_make_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        std::fs::create_dir(&state).unwrap();
        let s = Secrets::new(&state);
        let victim = tmp.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(state.join("secrets")).unwrap();
        std::fs::set_permissions(
            state.join("secrets"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        std::os::unix::fs::symlink(&victim, state.join("secrets/p")).unwrap();
        let e = s.ensure(&project(&[("api", "admin-token")])).unwrap_err();
        assert!(
            e.to_string()
                .contains("is not Turtle's (it is a symbolic link)"),
            "{e}"
        );
        let mode = std::fs::metadata(&victim).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
        // The secrets directory itself, linked elsewhere: the same.
        let s = Secrets::new(&tmp.path().join("other"));
        std::fs::create_dir(tmp.path().join("other")).unwrap();
        std::os::unix::fs::symlink(&victim, tmp.path().join("other/secrets")).unwrap();
        let e = s.ensure(&project(&[("api", "admin-token")])).unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0);
    }

    #[test]
    fn a_bad_name_is_refused_naming_the_service() {
        let p = project(&[("api", "ok, ../etc/passwd")]);
        let e = decorate(&p, Path::new("/s")).unwrap_err().to_string();
        assert!(
            e.contains("service api") && e.contains("../etc/passwd"),
            "{e}"
        );
    }

    #[test]
    fn secrets_are_made_once_private_and_never_changed() {
        let tmp = tempfile::tempdir().unwrap();
        let s = Secrets::new(tmp.path());
        let p = project(&[("api", "admin-token, db-password"), ("db", "db-password")]);
        assert_eq!(s.ensure(&p).unwrap(), vec!["admin-token", "db-password"]);
        let token = s.read(&pn(), &n("admin-token")).unwrap();
        assert_eq!(token.len(), 64);
        assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(token, s.read(&pn(), &n("db-password")).unwrap());
        // A second up keeps them.
        assert!(s.ensure(&p).unwrap().is_empty());
        assert_eq!(s.read(&pn(), &n("admin-token")).unwrap(), token);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&tmp.path().join("secrets")), 0o700);
        assert_eq!(mode(&tmp.path().join("secrets/p")), 0o700);
        assert_eq!(mode(&tmp.path().join("secrets/p/admin-token")), 0o444);
        // A deleted one comes back (new value), the others stay.
        std::fs::remove_file(tmp.path().join("secrets/p/admin-token")).unwrap();
        assert_eq!(s.ensure(&p).unwrap(), vec!["admin-token"]);
        assert_ne!(s.read(&pn(), &n("admin-token")).unwrap(), token);
        let e = s.read(&pn(), &n("nope")).unwrap_err().to_string();
        assert!(
            e.contains("no secret nope") && e.contains("admin-token, db-password"),
            "{e}"
        );
    }
}
