//! Helpers shared by the integration tests: a fixed clock, and a real TLS handshake
//! between a tokio-rustls server and a rustls client that trusts one root.
#![allow(dead_code)]

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::ServerCertVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::time_provider::TimeProvider;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::{TlsAcceptor, TlsConnector};
use turtle_certs::{Authority, CaConfig};

pub const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// 2025-06-01T00:00:00Z: the clock of every test.
pub fn t0() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_748_736_000)
}

pub fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// A new CA for `vm.local` in `dir`, at `t0`.
pub fn authority(dir: &Path) -> Authority {
    Authority::open_or_create(dir, &CaConfig::new("vm.local"), t0()).expect("CA is created")
}

/// The file's permission bits.
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[derive(Debug)]
struct FixedClock(UnixTime);

impl TimeProvider for FixedClock {
    fn current_time(&self) -> Option<UnixTime> {
        Some(self.0)
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A TLS handshake on 127.0.0.1: the server presents `chain_pem` (leaf first) with
/// `key_pem`; the client trusts only `root_pem`, asks for `server_name` and believes
/// it is `now`. Returns the client's TLS error when the handshake fails.
pub async fn handshake(
    chain_pem: &str,
    key_pem: &str,
    root_pem: &str,
    server_name: &str,
    now: SystemTime,
) -> Result<(), rustls::Error> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("chain parses");
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).expect("key parses");
    let server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    let acceptor = TlsAcceptor::from(Arc::new(server));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await?;
        let mut tls = acceptor.accept(tcp).await?;
        tls.write_all(b"hello").await?;
        tls.shutdown().await?;
        Ok::<_, io::Error>(())
    });

    let mut roots = RootCertStore::empty();
    for root in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots
            .add(root.expect("root parses"))
            .expect("root is a usable anchor");
    }
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap();
    let client = ClientConfig::builder_with_details(
        provider(),
        Arc::new(FixedClock(UnixTime::since_unix_epoch(since_epoch))),
    )
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = TlsConnector::from(Arc::new(client));
    let name = ServerName::try_from(server_name.to_string()).expect("a server name");
    let tcp = TcpStream::connect(addr).await.unwrap();
    match connector.connect(name, tcp).await {
        Ok(mut tls) => {
            let mut greeting = Vec::new();
            tls.read_to_end(&mut greeting).await.expect("server's data");
            assert_eq!(greeting, b"hello");
            server.await.unwrap().expect("server side of the handshake");
            Ok(())
        }
        Err(e) => {
            server.abort();
            let tls_error = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
                .unwrap_or_else(|| panic!("not a TLS error: {e}"));
            Err(tls_error.clone())
        }
    }
}

/// Whether the error is webpki's verdict that a name breaks a CA's name constraints.
pub fn is_name_constraint_violation(err: &rustls::Error) -> bool {
    match err {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::NameConstraintViolation)
        ),
        _ => false,
    }
}

/// The verdict of rustls's own verifier (trusting only `root_pem`) on a chain, without
/// a network: for tests that need no server.
pub fn verify(
    chain_pem: &str,
    root_pem: &str,
    server_name: &str,
    now: SystemTime,
) -> Result<(), rustls::Error> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .expect("chain parses");
    let mut roots = RootCertStore::empty();
    for root in CertificateDer::pem_slice_iter(root_pem.as_bytes()) {
        roots.add(root.unwrap()).unwrap();
    }
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .unwrap();
    let since_epoch = now.duration_since(UNIX_EPOCH).unwrap();
    verifier
        .verify_server_cert(
            &chain[0],
            &chain[1..],
            &ServerName::try_from(server_name.to_string()).unwrap(),
            &[],
            UnixTime::since_unix_epoch(since_epoch),
        )
        .map(|_| ())
}
