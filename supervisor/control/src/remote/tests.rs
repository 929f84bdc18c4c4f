//! The listener and the client together over real TLS on 127.0.0.1, on
//! the recording fake engine: each refusal comes with its status before
//! anything reaches the engine or the store. (The real engine, a real
//! bundle and a real push: `tests/remote.rs` at the workspace root.)

use std::sync::Arc;
use std::time::SystemTime;

use turtle_engine::fake::FakeEngine;
use turtle_runtime::config::Config;
use turtle_runtime::release::disk::{Reserve, ReserveFrom};
use turtle_runtime::store::Store;
use turtle_runtime::supervisor::{self, BoxParts, Supervisor};
use turtle_runtime::trust::Trust;

use super::client::{BundleBody, Error, RemoteClient};
use super::server::{self, Settings};
use super::token::TokenFile;
use super::{PushQuery, check_name};

struct TestBox {
    _tmp: tempfile::TempDir,
    engine: Arc<FakeEngine>,
    store: Arc<Store>,
    root: String,
    token: String,
    url: String,
    spool: std::path::PathBuf,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestBox {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// A supervisor on the fake engine with a CA, and its listener on a free
/// port of 127.0.0.1, changed by `tune`.
async fn start(tune: impl FnOnce(&mut Settings)) -> TestBox {
    let tmp = tempfile::tempdir().unwrap();
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    let config = Config::parse("domain: remote-test.local\n").unwrap();
    let trust = Arc::new(Trust::open(&state, &config, SystemTime::now()).unwrap());
    let root = trust.authority().root_pem().to_string();
    let engine = Arc::new(FakeEngine::new());
    let store = Arc::new(Store::open(&state).unwrap());
    let sup = Supervisor::with_box(
        engine.clone(),
        store.clone(),
        supervisor::Config::default(),
        BoxParts {
            trust: Some(trust),
            ..Default::default()
        },
    );
    let key = turtle_bundle::SecretKey::from_seed(&[7; 32]);
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        token: TokenFile::new(&state, None),
        trust: turtle_bundle::Trust::new(vec![key.public()]),
        allow_untrusted: false,
        max_bundle: 1 << 30,
        reserve: Reserve {
            bytes: 0,
            from: ReserveFrom::Default,
        },
        state_dir: state.clone(),
    };
    tune(&mut settings);
    let token = settings.token.ensure().unwrap();
    let listening = server::start(sup, settings).unwrap();
    let port = listening.local_addr().unwrap().port();
    assert_eq!(listening.names(), ["remote-test.local", "127.0.0.1"]);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(listening.run(async {
        let _ = stopped.await;
    }));
    TestBox {
        _tmp: tmp,
        engine,
        store,
        root,
        token,
        url: format!("https://127.0.0.1:{port}"),
        spool: state.join(server::SPOOL_DIR),
        stop: Some(stop),
    }
}

/// `len` bytes of zeros: not a bundle, and large enough that the box
/// answers a refusal before the client has sent it all.
fn zeros(len: u64) -> BundleBody {
    BundleBody {
        len,
        write: Box::new(move |w| {
            let chunk = vec![0u8; 64 << 10];
            let mut left = len;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                w.write_all(&chunk[..n]).map_err(|e| e.to_string())?;
                left -= n as u64;
            }
            Ok(())
        }),
    }
}

async fn push(b: &TestBox, token: &str, body: BundleBody) -> Result<(), Error> {
    let client = RemoteClient::new(&b.url, &b.root, token).unwrap();
    client
        .push(body, &PushQuery::default(), &|_| {})
        .await
        .map(|_| ())
}

/// The box refused with `status`, the message holding `what`.
fn refused(r: Result<(), Error>, status: u16, what: &str) -> Option<String> {
    match r {
        Err(Error::Refused {
            status: s,
            message,
            check,
            ..
        }) => {
            assert_eq!(s, status, "{message}");
            assert!(message.contains(what), "{message}");
            check
        }
        other => panic!("expected a {status} refusal, got {other:?}"),
    }
}

/// Nothing reached the engine or the store, and the spool is empty.
fn untouched(b: &TestBox) {
    assert!(b.engine.calls().is_empty(), "{:?}", b.engine.calls());
    assert!(b.store.projects().unwrap().is_empty());
    assert_eq!(std::fs::read_dir(&b.spool).unwrap().count(), 0);
}

#[tokio::test]
async fn the_token_guards_every_route() {
    let b = start(|_| {}).await;
    let client = RemoteClient::new(&b.url, &b.root, &b.token).unwrap();
    let info = client.info().await.unwrap();
    assert_eq!(info.domain, "remote-test.local");
    assert_eq!(info.trusted_keys.len(), 1);
    assert!(!info.allow_untrusted);

    let wrong = RemoteClient::new(&b.url, &b.root, "nope").unwrap();
    let e = wrong.info().await.map(|_| ());
    refused(e, 401, "no valid token");
    let e = wrong
        .current_release(&"app".parse().unwrap())
        .await
        .map(|_| ());
    refused(e, 401, "no valid token");
    refused(
        push(&b, "nope", zeros(4 << 20)).await,
        401,
        "no valid token",
    );
    // A project the box has no release of.
    assert!(
        client
            .current_release(&"app".parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    untouched(&b);
}

#[tokio::test]
async fn a_bundle_is_refused_before_anything_is_loaded() {
    let b = start(|_| {}).await;
    // Not a bundle: the header check names itself.
    let check = refused(
        push(&b, &b.token, zeros(100 << 10)).await,
        422,
        "header check failed",
    );
    assert_eq!(
        check.as_deref(),
        Some(check_name(turtle_bundle::Check::Header))
    );
    untouched(&b);
}

#[tokio::test]
async fn a_box_that_trusts_no_key_refuses_unless_told_otherwise() {
    let b = start(|s| s.trust = turtle_bundle::Trust::default()).await;
    refused(
        push(&b, &b.token, zeros(4 << 20)).await,
        403,
        "trusts no bundle key",
    );
    untouched(&b);

    let b = start(|s| {
        s.trust = turtle_bundle::Trust::default();
        s.allow_untrusted = true;
    })
    .await;
    // Past the keys: the bundle itself is checked.
    refused(
        push(&b, &b.token, zeros(1 << 10)).await,
        422,
        "header check failed",
    );
    untouched(&b);
}

#[tokio::test]
async fn size_and_space_are_checked_before_the_body_is_read() {
    let b = start(|s| s.max_bundle = 1 << 20).await;
    refused(
        push(&b, &b.token, zeros(4 << 20)).await,
        413,
        "accepts at most 1048576",
    );
    untouched(&b);

    let b = start(|s| s.reserve.bytes = u64::MAX / 4).await;
    let r = push(&b, &b.token, zeros(4 << 20)).await;
    refused(r, 507, "not enough disk");
    untouched(&b);
}

#[tokio::test]
async fn a_client_that_trusts_another_root_refuses_the_box() {
    let b = start(|_| {}).await;
    let other = start(|_| {}).await;
    let client = RemoteClient::new(&b.url, &other.root, &b.token).unwrap();
    match client.info().await {
        Err(Error::Tls { reason, .. }) => assert!(reason.contains("UnknownIssuer"), "{reason}"),
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    // By another name than the leaf's: refused too.
    let url = b.url.replace("127.0.0.1", "localhost");
    let client = RemoteClient::new(&url, &b.root, &b.token).unwrap();
    match client.info().await {
        Err(Error::Tls { reason, .. }) => {
            assert!(reason.contains("not valid for name"), "{reason}")
        }
        other => panic!("expected a TLS failure, got {other:?}"),
    }
    untouched(&b);
}
