//! The fleet operator's way into a device: the daemon's listener on its
//! VPN tunnel address, which `turtle devices ps|logs|exec` on the parent
//! reaches through the backend's WireGuard server.
//!
//! # Design
//!
//! - **The tunnel only.** The fleet agent starts the listener once the
//!   tunnel is up, on the tunnel address, bound to the tunnel's interface
//!   as well (`SO_BINDTODEVICE`, [`bind`]): Linux accepts a packet for any
//!   local address on any interface, so an address alone would still let a
//!   LAN host that routes the tunnel's subnet to the device in.
//! - **Both sides authenticated, each by the root it already trusts.** The
//!   device serves a leaf of its own CA for its domain (its tunnel address
//!   is outside what its CA may issue for), and the parent checks it
//!   against the device's root, which the device reported over the api
//!   with its device key. The parent presents a certificate of *its* CA,
//!   the root the device pinned when it was provisioned, named
//!   [`OPERATOR_NAME`]`.<parent's domain>`: the verifier ([`server_config`])
//!   requires the chain and that name. No container of the parent can hold
//!   such a leaf (`io.turtle.tls` refuses the name), so a service's leaf,
//!   which the same CA issues, opens no device.
//! - **Read and run, nothing else** ([`crate::server::operator_router`]):
//!   ping, projects, releases, logs, exec, the device report. What runs
//!   changes through the fleet's releases, never from here.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::DistinguishedName;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ResolvesServerCert, WebPkiClientVerifier};
pub use turtle_runtime::trust::OPERATOR_NAME;

use crate::Control;

/// The port of the listener on the tunnel address.
pub const DEFAULT_PORT: u16 = 7444;
/// Its leaf among the box's CA's leaves (no dot: no project can take it).
pub const LEAF_ID: &str = "turtle-vpn-listener";

/// Binds `addr`, and only on `interface`: packets for that address that
/// arrive on another interface find no listener.
pub fn bind(addr: SocketAddr, interface: &str) -> std::io::Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.bind_device(Some(interface.as_bytes()))?;
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(64)
}

fn roots(what: &str, pem: &str) -> Result<rustls::RootCertStore, String> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| format!("{what}: not a PEM certificate: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("{what}: not a usable root certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!("{what}: no certificate"));
    }
    Ok(roots)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The device side: its own leaf (`resolver`), and only clients holding an
/// operator certificate under `parent_root_pem`.
pub fn server_config(
    resolver: Arc<dyn ResolvesServerCert>,
    parent_root_pem: &str,
) -> Result<Arc<rustls::ServerConfig>, String> {
    let inner = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots("the parent's root", parent_root_pem)?),
        provider(),
    )
    .build()
    .map_err(|e| format!("a verifier of the parent's certificates: {e}"))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_client_cert_verifier(Arc::new(OperatorVerifier { inner }))
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The parent side: trusts `device_root_pem` alone, and presents the
/// operator's chain and key.
pub fn client_config(
    device_root_pem: &str,
    operator_chain_pem: &str,
    operator_key_pem: &str,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let chain = CertificateDer::pem_slice_iter(operator_chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the operator's certificate: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(operator_key_pem.as_bytes())
        .map_err(|e| format!("the operator's key: {e}"))?;
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots("the device's root", device_root_pem)?)
        .with_client_auth_cert(chain, key)
        .map_err(|e| format!("the operator's certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Whether a certificate (DER) is the operator's: one of its DNS names has
/// [`OPERATOR_NAME`] as its first label.
pub fn is_operator(der: &[u8]) -> bool {
    turtle_certs::dns_names(der).is_ok_and(|names| {
        names
            .iter()
            .any(|n| n.split('.').next() == Some(OPERATOR_NAME))
    })
}

/// The parent's WebPKI verification, then the operator's name.
#[derive(Debug)]
struct OperatorVerifier {
    inner: Arc<dyn ClientCertVerifier>,
}

impl ClientCertVerifier for OperatorVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if !is_operator(end_entity) {
            return Err(rustls::Error::General(format!(
                "the client certificate is the parent's, but not its operator's (no name {OPERATOR_NAME}.*)"
            )));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Serves the operator's routes on `control` over TLS until `shutdown`.
pub async fn serve<C: Control + 'static>(
    listener: tokio::net::TcpListener,
    tls: Arc<rustls::ServerConfig>,
    control: Arc<C>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    super::server::serve_tls(
        listener,
        tls,
        crate::server::operator_router(control),
        "vpn listener",
        shutdown,
    )
    .await
}
