//! A TLS client for the tests: rustls trusting only the root it is given,
//! so a handshake that succeeds proves the chain leads to that root.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use sha2::{Digest, Sha256};

/// What a successful handshake showed.
#[derive(Debug)]
pub struct Served {
    /// SHA-256 of the leaf's DER, uppercase hex pairs joined by ':'.
    pub leaf_fingerprint: String,
    /// Certificates the server sent, leaf first.
    pub chain_len: usize,
}

/// A client configuration trusting `root_pem` only.
fn client_config(root_pem: &str) -> Result<Arc<rustls::ClientConfig>, String> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots
            .add(cert.map_err(|e| format!("root PEM: {e}"))?)
            .map_err(|e| format!("root: {e}"))?;
    }
    Ok(Arc::new(
        rustls::ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}

/// A TLS connection to `addr`, the server verified as `name` against
/// `root_pem` only; the handshake completes with the first write or read.
pub fn connect(
    addr: SocketAddr,
    name: &str,
    root_pem: &str,
) -> Result<rustls::StreamOwned<rustls::ClientConnection, TcpStream>, String> {
    let server_name = ServerName::try_from(name.to_string()).map_err(|e| e.to_string())?;
    let conn = rustls::ClientConnection::new(client_config(root_pem)?, server_name)
        .map_err(|e| e.to_string())?;
    let sock = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    Ok(rustls::StreamOwned::new(conn, sock))
}

/// Connects to `addr`, verifying the server as `name` against `root_pem`
/// only; sends an HTTP GET so servers that wait for a request answer.
pub fn handshake(addr: SocketAddr, name: &str, root_pem: &str) -> Result<Served, String> {
    let mut tls = connect(addr, name, root_pem)?;
    tls.sock.set_read_timeout(Some(Duration::from_secs(5))).ok();
    tls.write_all(format!("GET / HTTP/1.0\r\nHost: {name}\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 64];
    let _ = tls.read(&mut buf);
    let certs = tls
        .conn
        .peer_certificates()
        .ok_or("no certificate from the server")?;
    Ok(Served {
        leaf_fingerprint: fingerprint(&certs[0]),
        chain_len: certs.len(),
    })
}

pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}
