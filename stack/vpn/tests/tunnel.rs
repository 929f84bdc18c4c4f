//! The vpn service for real: the boringtun device in a fresh network
//! namespace, its peers from a fake api, and WireGuard peers built on
//! boringtun's `noise::Tunn` (in-process, and the `turtle-wg-peer` binary)
//! handshaking with it over UDP. Pings cross the tunnel both ways: the
//! namespace's kernel answers the peer's pings to 10.99.0.1, and the peer
//! answers pings the namespace sends to it.
//!
//! The device and the sockets are made by a thread inside the namespace
//! (see `support`); the service's loop, the fake api and the health
//! endpoint run on the test's tokio threads outside it. One test runs the
//! whole `turtle_vpn::run` as a process (`ip netns exec`, this test binary
//! again) to check SIGTERM.
//!
//! The tests need root (namespaces, tun); without it they pass after
//! saying they were skipped.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use support::{
    FakeApi, Netns, api_peer, health, icmp_socket, raw_ping, skip_unless_root, wait_until,
};
use tokio::sync::oneshot;
use tokio::time::Instant;
use turtle_vpn::api::ApiClient;
use turtle_vpn::client::{Client, ClientError, Event};
use turtle_vpn::device::{Device, DeviceSettings};
use turtle_vpn::keys::Key;

const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 99, 0, 1);
const PORT: u16 = 51820;
const ENDPOINT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), PORT);
/// Short, so the tests see several syncs quickly.
const INTERVAL: Duration = Duration::from_millis(200);
/// Generous limits for things that should take well under a second.
const LONG: Duration = Duration::from_secs(20);

fn settings(key: &Key) -> DeviceSettings {
    DeviceSettings {
        interface: "wg0".into(),
        private_key: *key,
        listen_port: PORT,
        address: "10.99.0.1/16".parse().unwrap(),
        threads: 2,
    }
}

/// The service (`turtle_vpn::service::serve`) on a device made in `ns`.
struct Running {
    health: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), turtle_vpn::service::ServiceError>>,
}

impl Running {
    async fn start(device: Device, api: &FakeApi) -> Running {
        let client = ApiClient::new(&api.url, TOKEN, Duration::from_secs(5)).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let health = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(turtle_vpn::service::serve(
            device,
            client,
            INTERVAL,
            listener,
            async {
                let _ = stopped.await;
            },
        ));
        Running {
            health,
            stop: Some(stop),
            task,
        }
    }

    async fn health(&self) -> (u16, Value) {
        health(self.health).await
    }

    /// Waits until the health report shows exactly these peers (base64 keys).
    async fn wait_peers(&self, what: &str, keys: &[&Key]) {
        let mut want: Vec<String> = keys.iter().map(|k| k.to_base64()).collect();
        want.sort();
        wait_until(what, LONG, || async {
            let (code, h) = self.health().await;
            let mut have: Vec<String> = h["peers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["public_key"].as_str().unwrap().to_string())
                .collect();
            have.sort();
            code == 200 && have == want
        })
        .await;
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task
            .await
            .expect("the service panicked")
            .expect("the service stopped with an error");
    }
}

/// A client on a socket made in the namespace.
fn client(socket: std::net::UdpSocket, key: &Key, server: &Key, address: Ipv4Addr) -> Client {
    let socket = tokio::net::UdpSocket::from_std(socket).unwrap();
    Client::new(socket, ENDPOINT, key, *server, address, None)
}

fn udp_socket() -> std::net::UdpSocket {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

fn deadline(d: Duration) -> Instant {
    Instant::now() + d
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_cross_the_tunnel_both_ways_and_a_removed_peer_is_cut_off() {
    if skip_unless_root("pings_cross_the_tunnel_both_ways_and_a_removed_peer_is_cut_off") {
        return;
    }
    let ns = Netns::new();
    let server = Key::generate();
    let (p_key, q_key) = (Key::generate(), Key::generate());
    let api = FakeApi::start(TOKEN, vec![api_peer("dev-p", &p_key.public(), "10.99.0.2")]).await;
    let s = settings(&server);
    let (device, mut sockets, icmp) = ns.run(move || {
        let device = Device::create(&s).expect("create the device");
        let sockets: Vec<_> = (0..3).map(|_| udp_socket()).collect();
        (device, sockets, icmp_socket())
    });
    assert!(ns.link_up("wg0"), "wg0 is up in the namespace");
    let svc = Running::start(device, &api).await;
    svc.wait_peers("the api's peer on the device", &[&p_key.public()])
        .await;

    // The peer handshakes, and its ping to 10.99.0.1 is answered by the
    // namespace's kernel, through the tunnel both ways.
    let p_addr = Ipv4Addr::new(10, 99, 0, 2);
    let mut p = client(sockets.remove(0), &p_key, &server.public(), p_addr);
    p.handshake(deadline(LONG)).await.expect("handshake");
    p.ping(SERVER, deadline(LONG), |_| {})
        .await
        .expect("an echo reply from 10.99.0.1");

    // The server side pings the peer: the request goes out through wg0,
    // the peer answers it.
    let icmp = std::sync::Arc::new(icmp);
    let pinger = {
        let icmp = icmp.clone();
        tokio::task::spawn_blocking(move || raw_ping(&icmp, p_addr, 0x7e57, LONG))
    };
    let mut answered = Vec::new();
    tokio::pin!(pinger);
    let reply = loop {
        tokio::select! {
            r = &mut pinger => break r.unwrap(),
            e = p.next_event(deadline(LONG)) => {
                if let Some(Event::EchoAnswered(e)) = e.unwrap() {
                    answered.push(e);
                }
            }
        }
    };
    let reply = reply.expect("an echo reply from the peer, 10.99.0.2");
    assert_eq!(reply.src, p_addr);
    assert!(
        answered.iter().any(|e| e.id == 0x7e57 && e.src == SERVER),
        "the peer saw the server's echo request: {answered:?}"
    );

    // The health report shows the handshake (from the next sync on).
    wait_until("the handshake in the health report", LONG, || async {
        let (code, h) = svc.health().await;
        code == 200 && h["peers"][0]["last_handshake_age_secs"].is_u64()
    })
    .await;
    let (_, h) = svc.health().await;
    assert_eq!(h["status"], "ok");
    assert_eq!(h["peer_count"], 1);
    assert_eq!(h["peers"][0]["device"], "dev-p");
    assert!(
        h["peers"][0]["endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with("127.0.0.1:")),
        "{h}"
    );

    // An unchanged list is fetched with If-None-Match and answered 304.
    wait_until("a 304 from the api", LONG, || async {
        api.served_304() > 0
    })
    .await;

    // The api drops P and lists Q: after the next sync Q handshakes, and P
    // neither gets a new handshake nor through its old session.
    api.set_peers(vec![api_peer("dev-q", &q_key.public(), "10.99.0.3")]);
    svc.wait_peers("Q instead of P on the device", &[&q_key.public()])
        .await;
    let mut q = client(
        sockets.remove(0),
        &q_key,
        &server.public(),
        Ipv4Addr::new(10, 99, 0, 3),
    );
    q.handshake(deadline(LONG)).await.expect("Q's handshake");
    q.ping(SERVER, deadline(LONG), |_| {})
        .await
        .expect("Q's ping");

    let old_session = p
        .ping(SERVER, deadline(Duration::from_secs(3)), |_| {})
        .await;
    assert!(
        matches!(old_session, Err(ClientError::NoReply { .. })),
        "P's old session still carries pings: {old_session:?}"
    );
    // Past the first retry of the handshake (5 s).
    let mut p_again = client(sockets.remove(0), &p_key, &server.public(), p_addr);
    let again = p_again.handshake(deadline(Duration::from_secs(7))).await;
    assert!(
        matches!(again, Err(ClientError::NoHandshake { .. })),
        "a removed peer handshook: {again:?}"
    );

    // Stopping the service removes the interface.
    svc.stop().await;
    wait_until("wg0 gone after the stop", LONG, || async {
        !ns.has_link("wg0")
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_api_keeps_the_last_good_peers() {
    if skip_unless_root("a_failing_api_keeps_the_last_good_peers") {
        return;
    }
    let ns = Netns::new();
    let server = Key::generate();
    let p_key = Key::generate();
    let api = FakeApi::start(TOKEN, vec![api_peer("dev-p", &p_key.public(), "10.99.0.2")]).await;
    let s = settings(&server);
    let (device, socket, second) = ns.run(move || {
        let device = Device::create(&s).expect("device");
        // A second service with the same interface is refused (boringtun
        // would attach to the first one's interface).
        let second = Device::create(&s).err().map(|e| e.to_string());
        (device, udp_socket(), second)
    });
    let second = second.expect("a second wg0 in the namespace was created");
    assert!(second.contains("wg0 already exists"), "{second}");
    let svc = Running::start(device, &api).await;
    svc.wait_peers("the api's peer on the device", &[&p_key.public()])
        .await;

    api.set_failing(true);
    wait_until("unhealthy after 3 failed intervals", LONG, || async {
        let (code, h) = svc.health().await;
        code == 503
            && h["last_sync_error"]
                .as_str()
                .is_some_and(|e| e.contains("500") && e.contains("failing on purpose"))
    })
    .await;
    // The device kept the peer: it handshakes and pings while the api fails.
    let (_, h) = svc.health().await;
    assert_eq!(h["peer_count"], 1, "{h}");
    assert_eq!(h["device_up"], true);
    let mut p = client(
        socket,
        &p_key,
        &server.public(),
        Ipv4Addr::new(10, 99, 0, 2),
    );
    p.handshake(deadline(LONG))
        .await
        .expect("handshake while the api fails");
    p.ping(SERVER, deadline(LONG), |_| {})
        .await
        .expect("ping while the api fails");

    api.set_failing(false);
    wait_until("healthy again", LONG, || async {
        let (code, h) = svc.health().await;
        code == 200 && h["last_sync_error"].is_null()
    })
    .await;

    // A wrong token is named as such.
    api.state.lock().unwrap().token = "another".into();
    wait_until("the token refusal in the report", LONG, || async {
        let (_, h) = svc.health().await;
        h["last_sync_error"]
            .as_str()
            .is_some_and(|e| e.contains("refused the vpn token"))
    })
    .await;
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wg_peer_binary_handshakes_pings_and_answers() {
    if skip_unless_root("the_wg_peer_binary_handshakes_pings_and_answers") {
        return;
    }
    const PEER: &str = env!("CARGO_BIN_EXE_turtle-wg-peer");
    let out = std::process::Command::new(PEER)
        .arg("--generate-key")
        .output()
        .unwrap();
    assert!(out.status.success());
    let pair: Value = serde_json::from_slice(&out.stdout).expect("--generate-key prints JSON");
    let private: Key = pair["private_key"].as_str().unwrap().parse().unwrap();
    let public: Key = pair["public_key"].as_str().unwrap().parse().unwrap();
    assert_eq!(private.public(), public);
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{}\n", private.to_base64())).unwrap();

    let ns = Netns::new();
    let server = Key::generate();
    let api = FakeApi::start(TOKEN, vec![api_peer("dev-bin", &public, "10.99.0.7")]).await;
    let s = settings(&server);
    let (device, icmp) = ns.run(move || (Device::create(&s).expect("device"), icmp_socket()));
    let svc = Running::start(device, &api).await;
    svc.wait_peers("the binary's key on the device", &[&public])
        .await;

    let peer = |serve_secs: u64, server_key: &Key, timeout: u64| {
        let mut c = ns.command(PEER);
        c.args(["--endpoint", &ENDPOINT.to_string()])
            .args(["--server-public-key", &server_key.to_base64()])
            .arg("--private-key-file")
            .arg(&key_file)
            .args(["--address", "10.99.0.7"])
            .args(["--serve-secs", &serve_secs.to_string()])
            .args(["--timeout", &timeout.to_string()]);
        c
    };

    // Handshake, ping, exit 0.
    let out = peer(0, &server.public(), 20).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON lines"))
        .collect();
    assert_eq!(lines.len(), 2, "{stdout}");
    assert_eq!(lines[0]["event"], "handshake");
    assert_eq!(lines[0]["public_key"], public.to_base64());
    assert_eq!(lines[1]["event"], "ping");
    assert_eq!(lines[1]["from"], "10.99.0.1");

    // Serving: a ping from the server side is answered and reported.
    let mut child = ChildGuard(
        peer(600, &server.public(), 20)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let lines = support_lines(child.0.stdout.take().unwrap());
    let next = |what: &str| {
        let l = lines
            .recv_timeout(LONG)
            .unwrap_or_else(|_| panic!("no {what} line from turtle-wg-peer"));
        serde_json::from_str::<Value>(&l).unwrap()
    };
    assert_eq!(next("handshake")["event"], "handshake");
    assert_eq!(next("ping")["event"], "ping");
    let icmp = std::sync::Arc::new(icmp);
    let reply = tokio::task::spawn_blocking(move || {
        raw_ping(&icmp, Ipv4Addr::new(10, 99, 0, 7), 0x0b1e, LONG)
    })
    .await
    .unwrap();
    assert!(reply.is_some(), "no echo reply from turtle-wg-peer");
    let echo = next("echo");
    assert_eq!(echo["event"], "echo");
    assert_eq!(echo["from"], "10.99.0.1");
    assert_eq!(echo["id"], 0x0b1e);
    drop(child);

    // A wrong server key: no handshake, exit 1, a message that says so.
    let out = peer(0, &Key::generate().public(), 2).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no handshake with 127.0.0.1:51820"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
    svc.stop().await;
}

/// Kills the child (by its PID, via std) in `Drop` if it still runs.
struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A process's stdout as lines, read by a thread.
fn support_lines(stdout: std::process::ChildStdout) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The environment variable that makes [`run_service_helper`] run.
const HELPER: &str = "TURTLE_VPN_TEST_RUN_SERVICE";

/// Not a test: `sigterm_stops_the_service_and_removes_the_interface` runs
/// this test binary again in a namespace with only this test selected, and
/// it runs the whole service (`turtle_vpn::run`) with its flags from the
/// TURTLE_VPN_* environment, until SIGTERM.
#[test]
#[ignore = "a helper process of sigterm_stops_the_service_and_removes_the_interface"]
fn run_service_helper() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: turtle_vpn::Args,
    }
    if std::env::var_os(HELPER).is_none() {
        return;
    }
    let args = Cli::parse_from(["vpn"]).args;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(turtle_vpn::run(args))
        .expect("the service failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_the_service_and_removes_the_interface() {
    if skip_unless_root("sigterm_stops_the_service_and_removes_the_interface") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (key_file, token_file) = (dir.path().join("vpn-key"), dir.path().join("vpn-token"));
    let server = Key::generate();
    std::fs::write(&key_file, server.to_hex()).unwrap();
    std::fs::write(&token_file, TOKEN).unwrap();
    let ns = Netns::new();
    // The api answers 500 the whole time, which must not stop the service
    // (and is logged once, not at every sync).
    let api = FakeApi::serve(
        ns.run(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap()),
        TOKEN,
        vec![],
    );
    api.set_failing(true);
    let me = std::env::current_exe().unwrap();
    let mut cmd = ns.command(me.to_str().unwrap());
    cmd.args(["--exact", "run_service_helper", "--ignored", "--nocapture"])
        .env(HELPER, "1")
        .env("TURTLE_VPN_KEY_FILE", &key_file)
        .env("TURTLE_VPN_TOKEN_FILE", &token_file)
        .env("TURTLE_VPN_API", &api.url)
        .env("TURTLE_VPN_SYNC_INTERVAL", "100ms")
        .env("TURTLE_VPN_INTERFACE", "wgt0")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = ChildGuard(cmd.spawn().unwrap());

    wait_until("wgt0 up in the namespace", LONG, || async {
        ns.link_up("wgt0")
    })
    .await;
    // The health endpoint (inside the namespace) says why it is unhealthy.
    let health_in_ns = || {
        ns.run(|| {
            use std::io::{Read, Write};
            let Ok(mut s) = std::net::TcpStream::connect("127.0.0.1:8081") else {
                return String::new();
            };
            let _ = s.write_all(b"GET /health HTTP/1.0\r\nHost: x\r\n\r\n");
            let mut out = String::new();
            let _ = s.read_to_string(&mut out);
            out
        })
    };
    wait_until("the health report of the api failure", LONG, || {
        let h = health_in_ns();
        async move { h.starts_with("HTTP/1.0 503") && h.contains("failing on purpose") }
    })
    .await;
    wait_until("several failed syncs", LONG, || async {
        api.state.lock().unwrap().served_500 >= 5
    })
    .await;
    assert!(child.0.try_wait().unwrap().is_none(), "the service exited");

    let pid = rustix::process::Pid::from_raw(child.0.id() as i32).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::TERM).unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            started.elapsed() < LONG,
            "still running {LONG:?} after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "exit {status:?}\n{stderr}");
    let failures = stderr.matches("failing on purpose").count();
    assert_eq!(failures, 1, "the api failure is logged once:\n{stderr}");
    assert!(stderr.contains("SIGTERM: stopping"), "{stderr}");
    wait_until("wgt0 gone", LONG, || async { !ns.has_link("wgt0") }).await;
}
