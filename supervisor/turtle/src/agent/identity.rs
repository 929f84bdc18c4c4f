//! Joining a fleet: the provisioning config, the pin of its root, this
//! box's identity (made and kept before it registers, so a registration
//! sent again answers the same device), and the registration.
//!
//! Files, in `STATE_DIR/agent/` (0700): `identity.json` (0600: the uuid and
//! device key, whether the api has them, and what the provisioning config
//! said other than its key).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use turtle_fleet_api::{
    Client, Credentials, DeviceVpn, FleetRef, ProvisioningConfig, Registered, Registration,
};

/// This box as its fleet knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub uuid: String,
    pub device_key: String,
    /// The api answered the registration.
    pub registered: bool,
    pub api: String,
    pub registry: String,
    pub fleet: FleetRef,
    /// The parent's root (PEM): the only one trusted for the api and the
    /// registry.
    pub root_ca: String,
    pub root_sha256: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_profile: Option<String>,
    /// This box's WireGuard private key (base64), made with the identity
    /// when the box joins the VPN; its public half goes with the
    /// registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wireguard_key: Option<String>,
    /// The tunnel the api gave this box when it registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpn: Option<DeviceVpn>,
}

impl Identity {
    pub fn credentials(&self) -> Credentials {
        Credentials::Device {
            uuid: self.uuid.clone(),
            key: self.device_key.clone(),
        }
    }

    /// A client of the parent's api trusting its root alone, waiting at
    /// most `timeout` for an answer.
    pub fn client(
        &self,
        credentials: Credentials,
        timeout: std::time::Duration,
    ) -> Result<Client, String> {
        Client::builder(self.api.clone())
            .root_ca_pem(self.root_ca.clone())
            .credentials(credentials)
            .timeout(timeout)
            .build()
            .map_err(|e| format!("a client of {}: {e}", self.api))
    }
}

/// Where the agent keeps its files.
pub fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("agent")
}

/// Reads a provisioning config and checks its root against its pin.
pub fn read_config(path: &Path) -> Result<ProvisioningConfig, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "the provisioning config {}: {e} (`turtle fleet provision FLEET -o FILE` on the parent makes it)",
            path.display()
        )
    })?;
    let config: ProvisioningConfig = serde_json::from_str(&text).map_err(|e| {
        format!(
            "the provisioning config {} is not one `turtle fleet provision` writes: {e}",
            path.display()
        )
    })?;
    check_pin(&config).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(config)
}

/// The root in the config must be the one its pin names: a config whose
/// root was swapped is refused before anything is sent.
pub fn check_pin(config: &ProvisioningConfig) -> Result<(), String> {
    let found = turtle_certs::pem_fingerprint(&config.root_ca)
        .map_err(|e| format!("its root certificate: {e}"))?;
    if !found.eq_ignore_ascii_case(config.root_sha256.trim()) {
        return Err(format!(
            "its root certificate has SHA-256 {found}, and its pin (root_sha256) is {}: the file was altered, or its parts come from two backends; nothing was sent. Make a new one on the parent (`turtle fleet provision`) and compare the pin with `turtle ca status` there",
            config.root_sha256
        ));
    }
    Ok(())
}

/// This box's identity in its fleet: the one kept in the state directory
/// once registered; else registers with the provisioning config at
/// `config_path` (as `name`), keeping the identity before it sends it, and
/// afterwards drops the provisioning key from that file.
pub async fn join(
    state_dir: &Path,
    config_path: &Path,
    name: Option<String>,
    vpn: bool,
) -> Result<Identity, String> {
    let dir = dir(state_dir);
    let path = dir.join("identity.json");
    let kept = read_identity(&path)?;
    if let Some(id) = &kept
        && id.registered
    {
        return Ok(id.clone());
    }
    let config = read_config(config_path)?;
    let key = config.provisioning_key.clone().ok_or_else(|| {
        format!(
            "the provisioning config {} has no provisioning key (a registered box drops it), and this box has no identity in {}: make a new config on the parent (`turtle fleet provision`)",
            config_path.display(),
            path.display()
        )
    })?;
    // The same identity as a registration cut short, when the config is
    // the same fleet's.
    let mut id = match kept {
        Some(k) if k.fleet.id == config.fleet.id && k.api == config.api => k,
        _ => Identity {
            uuid: new_uuid(),
            device_key: random_hex(32),
            registered: false,
            api: config.api.clone(),
            registry: config.registry.clone(),
            fleet: config.fleet.clone(),
            root_ca: config.root_ca.clone(),
            root_sha256: config.root_sha256.clone(),
            device_profile: config.device_profile.clone(),
            wireguard_key: vpn.then(|| turtle_vpn::keys::Key::generate().to_base64()),
            vpn: None,
        },
    };
    write_identity(&dir, &path, &id)?;
    let wireguard_public_key = match &id.wireguard_key {
        Some(k) => Some(
            k.parse::<turtle_vpn::keys::Key>()
                .map_err(|e| format!("the WireGuard key in {}: {e}", path.display()))?
                .public()
                .to_base64(),
        ),
        None => None,
    };
    let client = id.client(Credentials::None, std::time::Duration::from_secs(60))?;
    let registered: Registered = client
        .register(&Registration {
            name,
            provisioning_key: key,
            wireguard_public_key,
            uuid: Some(id.uuid.clone()),
            device_key: Some(id.device_key.clone()),
        })
        .await
        .map_err(|e| {
            format!(
                "registering with {} (fleet {}): {e}",
                config.api, config.fleet.name
            )
        })?;
    if registered.uuid != id.uuid || registered.device_key != id.device_key {
        return Err(format!(
            "{} answered another identity ({}) than the one sent ({})",
            config.api, registered.uuid, id.uuid
        ));
    }
    id.registered = true;
    id.vpn = registered.vpn;
    write_identity(&dir, &path, &id)?;
    drop_key(config_path, &config);
    tracing::info!(
        uuid = %id.uuid,
        fleet = %id.fleet.name,
        api = %id.api,
        "registered in fleet {}",
        id.fleet.name
    );
    Ok(id)
}

fn read_identity(path: &Path) -> Result<Option<Identity>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| format!("{}: {e}: remove it to register again", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

fn write_identity(dir: &Path, path: &Path, id: &Identity) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = path.with_extension("json.tmp");
    let _ = std::fs::remove_file(&tmp);
    let text = serde_json::to_string_pretty(id).expect("the identity serializes");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Rewrites the provisioning config without its key (as balena's
/// supervisor does): a copy of the file found later registers nothing. A
/// file this box cannot write (mounted read-only) is left, with a warning.
fn drop_key(path: &Path, config: &ProvisioningConfig) {
    let without = ProvisioningConfig {
        provisioning_key: None,
        ..config.clone()
    };
    let text = serde_json::to_string_pretty(&without).expect("the config serializes");
    let tmp = path.with_extension("tmp");
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(
            "the provisioning key stays in {} ({e}): remove it by hand; it is used up or expires anyway",
            path.display()
        );
    }
}

fn random_bytes<const N: usize>() -> [u8; N] {
    use ring::rand::SecureRandom;
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .expect("the system random generator works");
    b
}

fn random_hex(n: usize) -> String {
    let b: [u8; 64] = random_bytes();
    b[..n].iter().map(|x| format!("{x:02x}")).collect()
}

/// A random (version 4) UUID.
fn new_uuid() -> String {
    let mut b: [u8; 16] = random_bytes();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(root: &str, pin: &str) -> ProvisioningConfig {
        ProvisioningConfig {
            api: "https://api.p.local".into(),
            registry: "registry.p.local".into(),
            fleet: FleetRef {
                id: 1,
                name: turtle_fleet_api::FleetName::parse("prod").unwrap(),
            },
            provisioning_key: Some("k".into()),
            provisioning_key_id: 1,
            expires_at: "t".into(),
            max_uses: 1,
            root_ca: root.into(),
            root_sha256: pin.into(),
            vpn: turtle_fleet_api::VpnEndpoint {
                host: "p.local".into(),
                port: 51820,
            },
            device_profile: None,
        }
    }

    #[test]
    fn a_root_that_is_not_the_pinned_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let now = std::time::SystemTime::now();
        let a = turtle_certs::Authority::open_or_create(
            &dir.path().join("a"),
            &turtle_certs::CaConfig::new("a.local"),
            now,
        )
        .unwrap();
        let b = turtle_certs::Authority::open_or_create(
            &dir.path().join("b"),
            &turtle_certs::CaConfig::new("b.local"),
            now,
        )
        .unwrap();
        check_pin(&config(a.root_pem(), &a.fingerprint())).unwrap();
        // Lowercase pins are the same pin.
        check_pin(&config(a.root_pem(), &a.fingerprint().to_lowercase())).unwrap();
        let e = check_pin(&config(b.root_pem(), &a.fingerprint())).unwrap_err();
        assert!(
            e.contains(&b.fingerprint()) && e.contains(&a.fingerprint()),
            "{e}"
        );
        assert!(e.contains("nothing was sent"), "{e}");
        let e = check_pin(&config("not a certificate", &a.fingerprint())).unwrap_err();
        assert!(e.contains("root certificate"), "{e}");
    }

    #[test]
    fn identities_are_random_uuids_and_keys() {
        let (a, b) = (new_uuid(), new_uuid());
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4", "version 4: {a}");
        let k = random_hex(32);
        assert_eq!(k.len(), 64);
        assert!(
            k.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[tokio::test]
    async fn a_registered_identity_is_kept_and_the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let state = tempfile::tempdir().unwrap();
        let id = Identity {
            uuid: new_uuid(),
            device_key: random_hex(32),
            registered: true,
            api: "https://api.p.local".into(),
            registry: "registry.p.local".into(),
            fleet: config("", "").fleet,
            root_ca: "R".into(),
            root_sha256: "S".into(),
            device_profile: None,
            wireguard_key: None,
            vpn: None,
        };
        let d = dir(state.path());
        let path = d.join("identity.json");
        write_identity(&d, &path, &id).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dmode = std::fs::metadata(&d).unwrap().permissions().mode();
        assert_eq!(dmode & 0o777, 0o700);
        // Registered: no config is read, nothing is sent.
        let joined = join(state.path(), Path::new("/nonexistent"), None, true)
            .await
            .unwrap();
        assert_eq!(joined, id);
    }
}
