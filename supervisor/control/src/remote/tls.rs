//! TLS of the remote listener: the daemon serves a leaf from the box's own
//! CA, and the pushing side trusts that CA's root alone.
//!
//! The leaf ([`LEAF_ID`]) is for the box's domain and its addresses: the
//! listen address when it is a specific one, else every LAN address and
//! the loopback, each only when the CA may issue for it (its permitted
//! ranges). It is checked at every handshake, not by a timer: past its
//! renewal point, or when the box's addresses changed, the CA issues it
//! again ([`turtle_certs::Authority::ensure_leaf`]), so a daemon that runs
//! for a year serves a current leaf without anyone asking.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use turtle_certs::LeafId;
use turtle_runtime::trust::Trust;

/// The remote listener's leaf, among the CA's leaves. A service's leaf id
/// is `<project>.<service>` and always holds a dot; this one has none, so
/// no project can take it.
pub const LEAF_ID: &str = "turtle-remote";

/// The leaf served, and what it was issued for.
#[derive(Debug)]
struct Current {
    key: Arc<CertifiedKey>,
    ips: Vec<IpAddr>,
    renew_at: SystemTime,
}

/// Hands rustls the listener's leaf, renewing it when due.
pub struct LeafResolver {
    trust: Arc<Trust>,
    listen: SocketAddr,
    /// The leaf's id among the CA's leaves (one per listener).
    id: LeafId,
    current: Mutex<Option<Current>>,
}

impl std::fmt::Debug for LeafResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LeafResolver")
            .field("domain", &self.trust.domain())
            .field("listen", &self.listen)
            .finish_non_exhaustive()
    }
}

impl LeafResolver {
    /// Issues (or reuses) the leaf now, so a CA that cannot issue it fails
    /// the daemon's start rather than the first push.
    pub fn new(trust: Arc<Trust>, listen: SocketAddr, id: &str) -> Result<Arc<Self>, String> {
        let id = id
            .parse()
            .map_err(|e| format!("the listener's leaf id {id:?}: {e}"))?;
        let r = Arc::new(Self {
            trust,
            listen,
            id,
            current: Mutex::new(None),
        });
        r.key(SystemTime::now())?;
        Ok(r)
    }

    /// The names and addresses the leaf is for (what a pushing side may
    /// put in its URL).
    pub fn names(&self) -> Vec<String> {
        let mut out = vec![self.trust.domain().to_string()];
        out.extend(self.ips().iter().map(ToString::to_string));
        out
    }

    fn ips(&self) -> Vec<IpAddr> {
        let ip = self.listen.ip();
        let mut ips = if ip.is_unspecified() {
            let mut all = turtle_runtime::trust::lan_addresses();
            all.push(IpAddr::from([127, 0, 0, 1]));
            all
        } else {
            vec![ip]
        };
        let permitted = self.trust.authority().permitted_ips();
        ips.retain(|ip| permitted.iter().any(|net| net.contains(ip)));
        ips.sort();
        ips.dedup();
        ips
    }

    /// The current leaf, issued again when due or when the addresses moved.
    fn key(&self, now: SystemTime) -> Result<Arc<CertifiedKey>, String> {
        let ips = self.ips();
        let mut current = self.current.lock().expect("the leaf lock");
        if let Some(c) = current.as_ref()
            && now < c.renew_at
            && c.ips == ips
        {
            return Ok(c.key.clone());
        }
        let ca = self.trust.authority();
        let id = &self.id;
        let names = vec![self.trust.domain().to_string()];
        let (info, _) = ca
            .ensure_leaf(id, &names, &ips, now)
            .map_err(|e| format!("cannot issue the leaf {id}: {e}"))?;
        let dir = ca.leaf_dir(id);
        let read = |file: &str| {
            std::fs::read(dir.join(file)).map_err(|e| format!("{}: {e}", dir.join(file).display()))
        };
        let chain = read(turtle_certs::CHAIN_FILE)?;
        let key = read(turtle_certs::KEY_FILE)?;
        let certs = CertificateDer::pem_slice_iter(&chain)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("the remote listener's chain: {e}"))?;
        let key = PrivateKeyDer::from_pem_slice(&key)
            .map_err(|e| format!("the remote listener's key: {e}"))?;
        let signing = rustls::crypto::ring::sign::any_supported_type(&key)
            .map_err(|e| format!("the remote listener's key: {e}"))?;
        let key = Arc::new(CertifiedKey::new(certs, signing));
        tracing::info!(
            leaf = %id,
            names = %info.names.join(", "),
            ips = ?info.ips,
            renew_at = %turtle_certs::rfc3339(info.renew_at),
            "listener leaf"
        );
        *current = Some(Current {
            key: key.clone(),
            ips,
            renew_at: info.renew_at,
        });
        Ok(key)
    }
}

impl ResolvesServerCert for LeafResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.key(SystemTime::now()) {
            Ok(k) => Some(k),
            Err(e) => {
                tracing::error!("{e}");
                None
            }
        }
    }
}

/// The listener's TLS: TLS 1.2 and 1.3 on ring, no client certificates.
pub fn server_config(resolver: Arc<LeafResolver>) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

/// A client trusting the certificates of `root_pem` alone (the target
/// box's root, as `turtle ca export` prints it).
pub fn client_config(root_pem: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("not a usable root certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("it holds no certificate (expected `turtle ca export`'s output)".into());
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
