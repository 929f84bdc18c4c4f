//! The hand-over strategy through `turtle push` and a daemon (issue 14): a
//! client polling the service through its published port the whole time
//! (loopback, a new connection per request, at most 20 a second) sees no
//! failed request while a push replaces the service; the port is held by
//! the service's `web-ports` companion, whose forwarder image the daemon
//! made from its own executable, and the release is committed.
//!
//! The engine-level measurement (with a slow request in flight, a service
//! that warms up, and docker-compose beside it) is
//! `supervisor/runtime/tests/handover.rs`.

use std::io::{Read, Write};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use turtle_e2e::{Env, IMAGE, free_port, wait_until};

/// The image the daemon makes for forwarders (`handover::Forwarder`).
const FORWARDER_IMAGE: &str = "turtle/forward:1";

/// Removes the forwarder's image at the end, unless a container still uses
/// it (`docker rmi` without force).
struct ForwarderImage;

impl Drop for ForwarderImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", FORWARDER_IMAGE])
            .output();
    }
}

/// A web service saying `version`, ready 2 s after it starts serving.
fn compose(port: u16, version: &str) -> String {
    format!(
        r#"services:
  web:
    image: {IMAGE}
    command: ["sh", "-c", "mkdir -p /tmp/www && echo $$V > /tmp/www/index.html && httpd -p 80 -h /tmp/www && sleep 2 && touch /tmp/ready && exec sleep 86400"]
    init: true
    environment: {{V: "{version}"}}
    ports: ["127.0.0.1:{port}:80"]
    labels:
      io.turtle.update-strategy: hand-over
    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready && wget -q -O /dev/null http://127.0.0.1/"]
      interval: 1s
      timeout: 2s
      retries: 3
"#
    )
}

/// One GET of `/` on a new connection: the body, or why it failed.
fn get(port: u16) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    // The client's own bound on one request: past it, the request failed.
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: web\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    s.read_to_string(&mut answer).map_err(|e| e.to_string())?;
    match answer.split_once("\r\n\r\n") {
        Some((head, body))
            if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") =>
        {
            Ok(body.trim().to_string())
        }
        _ => Err(format!("not a 200: {answer:?}")),
    }
}

#[derive(Default)]
struct Tally {
    ok: usize,
    failed: Vec<String>,
    versions: Vec<String>,
}

#[test]
fn a_push_hands_over_a_published_service_without_a_failed_request() {
    let _image = ForwarderImage;
    let mut env = Env::new("handover");
    env.config(
        "domain: turtle-test.local\nmdns: {enabled: false}\ndevice: {tune: false, shed: false}\n",
    );
    let port = free_port();
    env.compose(&compose(port, "1"));
    env.start_daemon();
    let out = env.turtle(&["push", "--settle", "5s"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("v1 served", Duration::from_secs(60), || {
        get(port).as_deref() == Ok("1")
    });
    assert!(env.running("web-ports"), "the companion holds the port");

    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = {
        let (tally, stop) = (Arc::clone(&tally), Arc::clone(&stop));
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let started = std::time::Instant::now();
                let answer = get(port);
                {
                    let mut t = tally.lock().unwrap();
                    match answer {
                        Ok(v) => {
                            t.ok += 1;
                            if t.versions.last() != Some(&v) {
                                t.versions.push(v);
                            }
                        }
                        Err(e) => t.failed.push(e),
                    }
                }
                // At most 20 requests a second.
                if let Some(rest) = Duration::from_millis(50).checked_sub(started.elapsed()) {
                    std::thread::sleep(rest);
                }
            }
        })
    };
    wait_until(
        "10 answers before the push",
        Duration::from_secs(30),
        || tally.lock().unwrap().ok >= 10,
    );
    let old = env.id("web").expect("web runs");
    env.compose(&compose(port, "2"));
    let out = env.turtle(&["push", "--settle", "5s"]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("committed"), "{said}");
    let after = tally.lock().unwrap().ok;
    wait_until("10 answers after the push", Duration::from_secs(30), || {
        tally.lock().unwrap().ok >= after + 10
    });
    stop.store(true, Ordering::SeqCst);
    client.join().unwrap();

    let t = tally.lock().unwrap();
    eprintln!(
        "push with hand-over: {} requests, {} failed, versions {:?}",
        t.ok + t.failed.len(),
        t.failed.len(),
        t.versions
    );
    assert!(t.failed.is_empty(), "failed requests: {:?}", t.failed);
    assert_eq!(t.versions, vec!["1", "2"], "old, then new, never back");
    assert_ne!(env.id("web"), Some(old), "web was replaced");
    assert!(said.contains("web-1-next"), "replaced by hand-over: {said}");
    assert_eq!(
        env.container("web"),
        format!("{}-web-1", env.project),
        "the new container has the canonical name"
    );
}
