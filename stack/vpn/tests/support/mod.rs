//! What the tunnel tests stand on: a network namespace per test, a thread
//! inside it, a fake api, the health endpoint's client and a raw-socket ping.
//!
//! How the device gets into a namespace: a thread calls setns(2) and creates
//! what must live there (the device, whose worker threads start from that
//! thread, and sockets, which stay in the namespace they were made in);
//! then the thread ends and the test uses them from anywhere. The fake api
//! and the health endpoint stay in the test's own namespace, where the
//! service's sync loop (on tokio's threads) runs too. Nothing is added to
//! the machine's own network.

#![allow(dead_code)] // each test file uses part of it

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use turtle_vpn::icmp::{Echo, EchoKind, icmp_message};
use turtle_vpn::keys::Key;

/// Whether this process runs as root (namespaces and tun devices need it).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True (after saying so) when the test cannot run here.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() && std::path::Path::new("/dev/net/tun").exists() {
        return false;
    }
    eprintln!("skipping {test}: it needs root and /dev/net/tun (run the tests as root)");
    true
}

/// A network namespace with a unique name and `lo` up; deleted in `Drop`,
/// even when the test failed.
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new() -> Netns {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "turtle-vpn-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        run_ip(&["netns", "add", &name]);
        let ns = Netns { name };
        run_ip(&["-n", &ns.name, "link", "set", "lo", "up"]);
        ns
    }

    /// Runs `f` on a new thread inside the namespace and returns its result.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.name);
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
                rustix::thread::move_into_link_name_space(
                    ns.as_fd(),
                    Some(rustix::thread::LinkNameSpaceType::Network),
                )
                .unwrap_or_else(|e| panic!("setns into {path}: {e}"));
                f()
            })
            .join()
            .expect("the thread in the namespace panicked")
        })
    }

    /// `ip -n NS ARGS`; whether it succeeded, and its stdout.
    pub fn ip(&self, args: &[&str]) -> (bool, String) {
        let out = Command::new("ip")
            .args(["-n", &self.name])
            .args(args)
            .output()
            .expect("run ip");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    /// Whether the interface exists in the namespace and is up.
    pub fn link_up(&self, interface: &str) -> bool {
        let (ok, out) = self.ip(&["-j", "link", "show", "dev", interface]);
        ok && serde_json::from_str::<Value>(&out)
            .ok()
            .and_then(|v| v[0]["flags"].as_array().cloned())
            .is_some_and(|f| f.iter().any(|f| f == "UP"))
    }

    /// Whether the interface exists in the namespace.
    pub fn has_link(&self, interface: &str) -> bool {
        self.ip(&["link", "show", "dev", interface]).0
    }

    /// A command run in the namespace (`ip netns exec NS PROGRAM`).
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name, program]);
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let out = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            eprintln!("could not remove network namespace {}: {out:?}", self.name);
        }
    }
}

fn run_ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

/// Polls `cond` every 50 ms until it holds; panics naming `what` after `timeout`.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !cond().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A peer entry as the api lists it.
pub fn api_peer(device: &str, key: &Key, address: &str) -> Value {
    json!({"device": device, "public_key": key.to_base64(), "allowed_ips": [format!("{address}/32")]})
}

/// What the fake api does and has done.
#[derive(Debug, Default)]
pub struct FakeState {
    pub token: String,
    pub peers: Vec<Value>,
    pub version: u64,
    /// Answer 500 to everything.
    pub failing: bool,
    pub served_200: u64,
    pub served_304: u64,
    pub served_401: u64,
    pub served_500: u64,
}

/// A stand-in for the api's `GET /v1/vpn/peers` (bearer token, ETag, 304),
/// on 127.0.0.1 in the test's own namespace.
#[derive(Clone)]
pub struct FakeApi {
    pub url: String,
    pub state: Arc<Mutex<FakeState>>,
}

impl FakeApi {
    pub async fn start(token: &str, peers: Vec<Value>) -> FakeApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        FakeApi::serve(listener, token, peers)
    }

    /// Serves on `listener` (made in a namespace, it serves there).
    pub fn serve(listener: std::net::TcpListener, token: &str, peers: Vec<Value>) -> FakeApi {
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(Mutex::new(FakeState {
            token: token.to_string(),
            peers,
            version: 1,
            ..Default::default()
        }));
        let app = axum::Router::new()
            .route("/v1/vpn/peers", get(fake_peers))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeApi { url, state }
    }

    /// Replaces the peer list (a new ETag).
    pub fn set_peers(&self, peers: Vec<Value>) {
        let mut s = self.state.lock().unwrap();
        s.peers = peers;
        s.version += 1;
    }

    pub fn set_failing(&self, failing: bool) {
        self.state.lock().unwrap().failing = failing;
    }

    pub fn served_304(&self) -> u64 {
        self.state.lock().unwrap().served_304
    }
}

async fn fake_peers(State(state): State<Arc<Mutex<FakeState>>>, headers: HeaderMap) -> Response {
    let mut s = state.lock().unwrap();
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {}", s.token)) {
        s.served_401 += 1;
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            axum::Json(json!({"error": "wrong token"})),
        )
            .into_response();
    }
    if s.failing {
        s.served_500 += 1;
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": "the fake api is failing on purpose"})),
        )
            .into_response();
    }
    let etag = format!("\"v{}\"", s.version);
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some(&etag)
    {
        s.served_304 += 1;
        return (StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response();
    }
    s.served_200 += 1;
    (
        [(header::ETAG, etag)],
        axum::Json(json!({"peers": s.peers})),
    )
        .into_response()
}

/// GET /health: the status code and the JSON.
pub async fn health(addr: SocketAddr) -> (u16, Value) {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let resp = client
        .get(format!("http://{addr}/health").parse().unwrap())
        .await
        .expect("GET /health");
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&body).expect("health is JSON"),
    )
}

/// A raw ICMP socket (make it inside the namespace, with [`Netns::run`]).
pub fn icmp_socket() -> OwnedFd {
    use rustix::net::{AddressFamily, SocketType, ipproto, socket, sockopt};
    let fd =
        socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::ICMP)).expect("raw ICMP socket");
    sockopt::set_socket_timeout(
        &fd,
        sockopt::Timeout::Recv,
        Some(Duration::from_millis(500)),
    )
    .unwrap();
    fd
}

/// Pings `dst` from the raw socket's namespace (a request every second)
/// until a reply with `id` comes or `timeout` passes (blocking).
pub fn raw_ping(fd: &OwnedFd, dst: Ipv4Addr, id: u16, timeout: Duration) -> Option<Echo> {
    use rustix::net::{RecvFlags, SendFlags, recvfrom, sendto};
    let deadline = Instant::now() + timeout;
    let mut seq = 0u16;
    while Instant::now() < deadline {
        seq += 1;
        let msg = icmp_message(EchoKind::Request, id, seq, b"from the server side");
        sendto(fd, &msg, SendFlags::empty(), &SocketAddr::from((dst, 0))).expect("send the ping");
        let resend = Instant::now() + Duration::from_secs(1);
        while Instant::now() < resend.min(deadline) {
            let mut buf = [0u8; 2048];
            let Ok((_, n, _)) = recvfrom(fd, &mut buf, RecvFlags::empty()) else {
                continue; // the receive timeout: check the clock, maybe resend
            };
            // A raw socket sees every ICMP packet coming in, with its IP header.
            if let Some(e) = Echo::parse(&buf[..n])
                && e.kind == EchoKind::Reply
                && e.src == dst
                && e.id == id
            {
                return Some(e);
            }
        }
    }
    None
}
