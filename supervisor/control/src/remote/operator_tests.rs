//! The operator listener over real TLS on the loopback (bound to `lo`, as
//! a device binds it to its tunnel), on the recording fake engine: only
//! the parent's operator certificate gets in, and it reaches the read and
//! exec routes, nothing that changes what runs. (Through a real tunnel to
//! a real child: `tests/child.rs`.)

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use std::time::SystemTime;

use turtle_certs::{Authority, CaConfig};
use turtle_engine::fake::FakeEngine;
use turtle_runtime::config::Config;
use turtle_runtime::store::Store;
use turtle_runtime::supervisor::{self, BoxParts, Supervisor};
use turtle_runtime::trust::Trust;

use super::operator::{self, OPERATOR_NAME};
use super::tls::LeafResolver;
use crate::client::{Client, Dialer, Io};
use crate::wire::{ExecRequest, ProjectName, ServiceName};
use crate::{Control, ControlError};

struct Device {
    _tmp: tempfile::TempDir,
    engine: Arc<FakeEngine>,
    /// The device's own root, which the parent checks it against.
    root: String,
    addr: std::net::SocketAddr,
    parent: Authority,
    other: Authority,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Device {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A device (CA for device.local) whose parent is a CA for parent.local,
/// with its listener on a free port of 127.0.0.1, bound to `lo`.
async fn device() -> Device {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let now = SystemTime::now();
    let config = Config::parse("domain: device.local\n").unwrap();
    let trust = Arc::new(Trust::open(&state, &config, now).unwrap());
    let parent = Authority::open_or_create(
        &tmp.path().join("parent"),
        &CaConfig::new("parent.local"),
        now,
    )
    .unwrap();
    let other = Authority::open_or_create(
        &tmp.path().join("other"),
        &CaConfig::new("parent.local"),
        now,
    )
    .unwrap();
    let engine = Arc::new(FakeEngine::new());
    let store = Arc::new(Store::open(&state).unwrap());
    let sup = Supervisor::with_box(
        engine.clone(),
        store,
        supervisor::Config::default(),
        BoxParts {
            trust: Some(trust.clone()),
            ..Default::default()
        },
    );
    let listener = operator::bind("127.0.0.1:0".parse().unwrap(), "lo").unwrap();
    let addr = listener.local_addr().unwrap();
    let resolver = LeafResolver::new(trust.clone(), addr, operator::LEAF_ID).unwrap();
    let tls = operator::server_config(resolver, parent.root_pem()).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(operator::serve(listener, tls, sup, async {
        let _ = stopped.await;
    }));
    Device {
        _tmp: tmp,
        engine,
        root: trust.authority().root_pem().to_string(),
        addr,
        parent,
        other,
        stop: Some(stop),
    }
}

/// A client presenting a leaf of `ca` for `name`.
async fn dial(d: &Device, ca: &Authority, name: &str) -> crate::Result<Client> {
    let leaf = ca
        .issue(&[name.to_string()], &[], SystemTime::now())
        .unwrap();
    let tls = operator::client_config(&d.root, &leaf.chain_pem, &leaf.key_pem).unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls);
    let addr = d.addr;
    let dial: Dialer = Arc::new(move || {
        let connector = connector.clone();
        Box::pin(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await?;
            let name = rustls::pki_types::ServerName::try_from("device.local").unwrap();
            Ok(Box::new(connector.connect(name, tcp).await?) as Box<dyn Io>)
        })
    });
    Client::dial("the test device", dial).await
}

#[tokio::test]
async fn the_parents_operator_gets_in_and_reaches_only_read_and_exec() {
    let d = device().await;
    let c = dial(&d, &d.parent, &format!("{OPERATOR_NAME}.parent.local"))
        .await
        .expect("the operator's certificate is taken");
    let p: ProjectName = "fleet".parse().unwrap();
    let web: ServiceName = "web".parse().unwrap();
    // The read and exec routes are served: they reach the supervisor.
    assert!(c.projects().await.unwrap().is_empty());
    let e = c
        .exec(
            &p,
            &web,
            &ExecRequest {
                command: vec!["true".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, ControlError::NotFound(_)), "{e:?}");
    // Nothing that changes what runs is: the router answers (405 or 404,
    // no message: no handler ran), the engine never hears of it.
    let before = d.engine.calls();
    let e = c.down(&p, true).await.unwrap_err();
    assert_eq!(e, ControlError::Failed(String::new()), "DELETE was served");
    let e = c
        .service_action(&p, &web, crate::wire::ServiceAction::Stop)
        .await
        .unwrap_err();
    assert_eq!(e, ControlError::NotFound(String::new()), "stop was served");
    assert_eq!(
        d.engine.calls(),
        before,
        "a refused route reached the engine"
    );
}

/// The handshake failed: the client could not connect (TLS 1.2) or the
/// connection broke at its first read (TLS 1.3 sends the refusal then).
fn refused(e: &ControlError) {
    assert!(
        matches!(
            e,
            ControlError::DaemonUnreachable { .. } | ControlError::Protocol(_)
        ),
        "{e:?}"
    );
}

#[tokio::test]
async fn a_leaf_of_the_same_ca_that_is_not_the_operators_is_refused() {
    let d = device().await;
    // What a service of the parent holds (its io.turtle.tls leaf).
    let Err(e) = dial(&d, &d.parent, "api.parent.local").await else {
        panic!("a service's leaf got in");
    };
    refused(&e);
}

#[tokio::test]
async fn the_operators_name_under_another_root_is_refused() {
    let d = device().await;
    let Err(e) = dial(&d, &d.other, &format!("{OPERATOR_NAME}.parent.local")).await else {
        panic!("another root's operator got in");
    };
    refused(&e);
}

#[tokio::test]
async fn a_client_without_a_certificate_is_refused() {
    let d = device().await;
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(d.root.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(d.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("device.local").unwrap();
    // TLS 1.3: the refusal arrives after the client's side is done, at the
    // first read.
    let result = async {
        let mut s = connector.connect(name, tcp).await?;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(b"GET /v1/ping HTTP/1.1\r\nhost: x\r\n\r\n")
            .await?;
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await?;
        Ok::<usize, std::io::Error>(n)
    }
    .await;
    assert!(
        matches!(result, Err(_) | Ok(0)),
        "answered without a certificate: {result:?}"
    );
}

#[test]
fn only_a_name_whose_first_label_is_the_operators_counts() {
    let ca = Authority::open_or_create(
        &tempfile::tempdir().unwrap().keep().join("ca"),
        &CaConfig::new("p.local"),
        SystemTime::now(),
    )
    .unwrap();
    let der = |name: &str| {
        let leaf = ca.issue(&[name.into()], &[], SystemTime::now()).unwrap();
        rustls::pki_types::CertificateDer::pem_slice_iter(leaf.cert_pem.as_bytes())
            .next()
            .unwrap()
            .unwrap()
            .to_vec()
    };
    assert!(operator::is_operator(&der("turtle-operator.p.local")));
    assert!(!operator::is_operator(&der("my-turtle-operator.p.local")));
    assert!(!operator::is_operator(&der("api.p.local")));
}
