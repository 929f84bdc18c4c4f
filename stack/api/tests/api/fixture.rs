//! A running API for a test: a throwaway PostgreSQL, the secret files, a throwaway
//! CA with the api's leaf, and the API serving on a real TCP listener on
//! 127.0.0.1, stopped when the fixture drops.
//!
//! Tests call the routes through `turtle_fleet_api::Client`, as the api's own
//! clients do; `Stack::get` and friends build raw requests for what that client
//! never sends (malformed bodies, unknown routes, foreign credentials).

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Method, StatusCode};
use hyper_util::client::legacy::Client as RawClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::oneshot;
use turtle_api::{App, Args};
use turtle_fleet_api::{
    Client, Credentials, NewFleet, NewProvisioningKey, ProvisioningKey, Registered, Registration,
};

use crate::postgres::{self, Postgres};

pub const DOMAIN: &str = "turtle.test";
pub const HTTPS_PORT: u16 = 8443;
pub const VPN_PORT: u16 = 51999;
pub const ADMIN_TOKEN: &str = "admin-0123456789abcdef0123456789abcdef0123456789abcdef0123456789";
pub const BUILDER_TOKEN: &str = "builder-0123456789abcdef0123456789abcdef0123456789abcdef01234567";
pub const VPN_TOKEN: &str = "vpn-0123456789abcdef0123456789abcdef0123456789abcdef0123456789ab";
/// The VPN server's private key (RFC 7748's test key).
/// The vpn's public key (RFC 7748 section 6.1, Alice's), as the supervisor's
/// `vpn-key.pub` secret holds it.
pub const VPN_PUBLIC_KEY: &str = "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=";

/// The flags parsed as the binary parses them (a later flag overrides an earlier
/// one, so tests can change one).
#[derive(Parser)]
#[command(args_override_self = true)]
struct Cli {
    #[command(flatten)]
    args: Args,
}

/// Secrets and certificates in a temporary directory.
pub struct Files {
    pub dir: tempfile::TempDir,
    /// The leaf the tokens are signed with.
    pub leaf_cert_pem: String,
    pub intermediate_pem: String,
    pub root_pem: String,
    /// The root's SHA-256 as `turtle ca status` shows it.
    pub root_fingerprint: String,
}

impl Files {
    pub fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let secrets = [
            ("admin-token", format!("{ADMIN_TOKEN}\n")),
            ("builder-token", BUILDER_TOKEN.to_string()),
            ("vpn-token", format!("  {VPN_TOKEN}\n")),
            ("vpn-key.pub", VPN_PUBLIC_KEY.to_string()),
            ("db-password", format!("{}\n", postgres::PASSWORD)),
        ];
        for (name, value) in secrets {
            std::fs::write(dir.path().join(name), value).unwrap();
        }
        let now = SystemTime::now();
        let ca = turtle_certs::Authority::open_or_create(
            &dir.path().join("ca"),
            &turtle_certs::CaConfig::new(DOMAIN),
            now,
        )
        .unwrap();
        let leaf = ca.issue(&[format!("api.{DOMAIN}")], &[], now).unwrap();
        std::fs::write(dir.path().join("key.pem"), &leaf.key_pem).unwrap();
        std::fs::write(dir.path().join("fullchain.pem"), &leaf.fullchain_pem).unwrap();
        std::fs::write(dir.path().join("root.pem"), ca.root_pem()).unwrap();
        Files {
            leaf_cert_pem: leaf.cert_pem.clone(),
            intermediate_pem: ca.intermediate_pem().to_string(),
            root_pem: ca.root_pem().to_string(),
            root_fingerprint: ca.fingerprint(),
            dir,
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// The flags of an API on `pg`, plus `extra` (later flags win).
    pub fn args(&self, pg: &Postgres, extra: &[&str]) -> Args {
        let p = |name: &str| self.path(name).display().to_string();
        let mut argv: Vec<String> = vec![
            "api".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--database-url".into(),
            pg.url(),
            "--database-password-file".into(),
            p("db-password"),
            "--admin-token-file".into(),
            p("admin-token"),
            "--builder-token-file".into(),
            p("builder-token"),
            "--vpn-token-file".into(),
            p("vpn-token"),
            "--vpn-public-key-file".into(),
            p("vpn-key.pub"),
            "--domain".into(),
            DOMAIN.into(),
            "--https-port".into(),
            HTTPS_PORT.to_string(),
            "--vpn-port".into(),
            VPN_PORT.to_string(),
            "--token-key".into(),
            p("key.pem"),
            "--token-chain".into(),
            p("fullchain.pem"),
            "--ca-file".into(),
            p("root.pem"),
        ];
        argv.extend(extra.iter().map(|s| s.to_string()));
        Cli::try_parse_from(argv).unwrap().args
    }
}

/// The API served on 127.0.0.1, stopped on drop (with the app's maintenance
/// task).
pub struct Server {
    pub base: String,
    shutdown: Option<oneshot::Sender<()>>,
    _app: App,
}

impl Server {
    pub async fn start(app: App) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel();
        let router = app.router();
        tokio::spawn(async move {
            turtle_api::serve(listener, router, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        Server {
            base,
            shutdown: Some(tx),
            _app: app,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Everything a test of the routes needs. Field order is drop order: the server
/// stops before the database.
pub struct Stack {
    pub server: Server,
    pub files: Files,
    pub pg: Postgres,
    /// The typed client, without credentials.
    pub api: Client,
    raw: RawClient<HttpConnector, Full<Bytes>>,
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::start_with(&[]).await
    }

    /// A stack whose api takes these flags too (later flags win).
    pub async fn start_with(extra: &[&str]) -> Stack {
        let pg = Postgres::start_new();
        let files = Files::new();
        let app = App::start_with_env(&files.args(&pg, extra), &|_| None)
            .await
            .unwrap();
        let server = Server::start(app).await;
        let api = Client::new(&server.base, Credentials::None).unwrap();
        Stack {
            server,
            files,
            pg,
            api,
            raw: RawClient::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// The typed client with the admin token.
    pub fn admin(&self) -> Client {
        self.calling(Credentials::Admin(ADMIN_TOKEN.into()))
    }

    /// The typed client with these credentials.
    pub fn calling(&self, credentials: Credentials) -> Client {
        self.api.with_credentials(credentials)
    }

    /// The typed client of a registered device.
    pub fn as_device(&self, device: &Registered) -> Client {
        self.calling(Credentials::device(device))
    }

    pub fn get(&self, path: &str) -> Req<'_> {
        self.req(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Req<'_> {
        self.req(Method::POST, path)
    }

    pub fn req(&self, method: Method, path: &str) -> Req<'_> {
        Req {
            stack: self,
            builder: hyper::Request::builder()
                .method(method)
                .uri(format!("{}{path}", self.server.base)),
            body: Bytes::new(),
        }
    }

    /// Creates a fleet; returns its id.
    pub async fn fleet(&self, name: &str) -> i64 {
        let fleet = NewFleet {
            name: name.parse().unwrap(),
        };
        self.admin().create_fleet(&fleet).await.unwrap().id
    }

    /// Creates a provisioning key for a fleet (one use).
    pub async fn provisioning_key(&self, fleet: i64, expires_in_secs: i64) -> ProvisioningKey {
        self.provisioning_key_for(fleet, expires_in_secs, 1).await
    }

    /// Creates a provisioning key for `max_uses` devices.
    pub async fn provisioning_key_for(
        &self,
        fleet: i64,
        expires_in_secs: i64,
        max_uses: i32,
    ) -> ProvisioningKey {
        let key = NewProvisioningKey {
            expires_in_secs: Some(expires_in_secs),
            max_uses: Some(max_uses),
            ..Default::default()
        };
        self.admin()
            .create_provisioning_key(fleet, Some(&key))
            .await
            .unwrap()
    }

    /// Registers a device into a fleet (with a new provisioning key); returns the
    /// registration answer.
    pub async fn device(&self, fleet: i64, wireguard_public_key: Option<&str>) -> Registered {
        let key = self.provisioning_key(fleet, 3600).await;
        self.api
            .register(&Registration {
                name: Some("test device".into()),
                provisioning_key: key.key,
                wireguard_public_key: wireguard_public_key.map(str::to_string),
                ..Default::default()
            })
            .await
            .unwrap()
    }
}

/// A request being built.
pub struct Req<'a> {
    stack: &'a Stack,
    builder: hyper::http::request::Builder,
    body: Bytes,
}

impl Req<'_> {
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn admin(self) -> Self {
        self.bearer(ADMIN_TOKEN)
    }

    pub fn basic(self, user: &str, password: &str) -> Self {
        use base64::Engine;
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        self.header("authorization", &format!("Basic {encoded}"))
    }

    pub fn json(mut self, body: serde_json::Value) -> Self {
        self.body = Bytes::from(serde_json::to_vec(&body).unwrap());
        self.header("content-type", "application/json")
    }

    /// A JSON body as written (for what `serde_json::Value` would not write).
    pub fn json_text(mut self, body: &str) -> Self {
        self.body = Bytes::from(body.to_string());
        self.header("content-type", "application/json")
    }

    pub async fn send(self) -> Answer {
        let request = self.builder.body(Full::new(self.body)).unwrap();
        let response = self.stack.raw.request(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body,
        }
    }
}

/// A response, read whole.
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    /// The `error` of a JSON error answer.
    pub fn error(&self) -> String {
        self.json()["error"]
            .as_str()
            .unwrap_or_else(|| panic!("not an error answer: {}", self.text()))
            .to_string()
    }
}

/// Polls `check` every 50 ms until it returns `Some`, for at most `secs` seconds.
pub async fn poll<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {secs} s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A log sink for one test (the thread's default subscriber).
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// A sink installed as this thread's subscriber until the guard drops
    /// (the tests' runtime runs the server on the test's thread).
    pub fn install() -> (Captured, tracing::subscriber::DefaultGuard) {
        let log = Captured::default();
        let sink = log.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        (log, tracing::subscriber::set_default(subscriber))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}
