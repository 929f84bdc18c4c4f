//! The proxy under starvation attacks: idle connections and a trickled body.

use std::time::{Duration, Instant};

use crate::fixture::Stack;
use turtle_e2e::{docker, wait_until};

/// Starvation of the proxy, as an attacker on the box would try it: 300
/// TCP connections to the HTTPS port that never start TLS, and a request
/// whose body trickles in a byte a second, while health requests must keep
/// being answered.
pub(crate) fn attack_the_proxy(stack: &Stack) {
    let proxy = stack.env.container("proxy");
    let started_at = |c: &str| turtle_e2e::inspect(c).unwrap()["State"]["StartedAt"].clone();
    let proxy_started = started_at(&proxy);
    let started = Instant::now();
    // The slow body first, so it holds a connection before the source's
    // share is full.
    let root = std::fs::read_to_string(&stack.root).unwrap();
    let tls = slow_body_start(stack.https_addr(), &stack.host("api"), &root);
    let slow = std::thread::spawn(move || slow_body(tls));
    let mut idle: Vec<std::net::TcpStream> = (0..300)
        .map(|_| std::net::TcpStream::connect(stack.https_addr()).expect("connect to the proxy"))
        .collect();

    // More connections than one source may hold (128) from one source are
    // refused at once, the rest closed when no TLS hello came: health then
    // answers again, the attack still running.
    wait_until(
        "GET /v1/health to answer through the proxy under attack",
        Duration::from_secs(60),
        || stack.health_answers(),
    );
    eprintln!(
        "stack: health answered {:?} into the attack",
        started.elapsed()
    );
    wait_until(
        "the proxy to close every connection that never started TLS",
        Duration::from_secs(120),
        || {
            idle.retain(|mut s| {
                use std::io::Read;
                s.set_nonblocking(true).unwrap();
                let mut buf = [0u8; 16];
                // Open: nothing to read yet. Closed: end of stream or reset.
                matches!(s.read(&mut buf), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            });
            idle.is_empty()
        },
    );
    eprintln!(
        "stack: all 300 idle connections closed after {:?}",
        started.elapsed()
    );
    let outcome = slow.join().unwrap();
    eprintln!(
        "stack: the slow body: {outcome} after {:?}",
        started.elapsed()
    );
    assert!(
        outcome.starts_with("HTTP/1.1 408"),
        "the slow body was not cut off: {outcome}"
    );
    // Connections over the per-source limit were refused (HAProxy's
    // counters, read inside the proxy's container).
    let csv = docker(&[
        "exec",
        &proxy,
        "bash",
        "-c",
        "exec 3<>/dev/tcp/127.0.0.1/8404 && printf 'GET /stats;csv HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3",
    ]);
    let header: Vec<&str> = csv
        .lines()
        .find_map(|l| l.strip_prefix("# "))
        .expect("a CSV header")
        .split(',')
        .collect();
    let row: Vec<&str> = csv
        .lines()
        .find(|l| l.starts_with("tls,FRONTEND,"))
        .expect("the tls frontend's row")
        .split(',')
        .collect();
    let refused: u64 = row[header.iter().position(|h| *h == "dcon").unwrap()]
        .parse()
        .unwrap();
    assert!(refused > 0, "no connection refused per source: {csv}");
    assert!(stack.health_answers(), "health after the attack");
    // The proxy held: its own health check was answered throughout, so it
    // was never restarted, which would have cut every client's connection
    // (what got a starved proxy out of the attack before).
    assert_eq!(started_at(&proxy), proxy_started, "the proxy was restarted");
    assert!(stack.env.healthy("proxy"), "{:#}", stack.env.ps());
}

pub(crate) type Tls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// A device registration (the api reads its body first), TLS done and head
/// sent, whose body of 1000 bytes is still to come.
pub(crate) fn slow_body_start(addr: std::net::SocketAddr, host: &str, root: &str) -> Tls {
    use std::io::Write;
    let mut tls = turtle_e2e::tls::connect(addr, host, root).expect("TLS to the proxy");
    let head = format!(
        "POST /v1/devices/register HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
    );
    tls.write_all(head.as_bytes()).expect("send the head");
    tls.flush().unwrap();
    tls.sock
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    tls
}

/// Sends the body a byte a second; returns the first line of the proxy's
/// answer, `closed` when it closed the connection without one, or `still
/// open ...` when the body went on for 90 s (a deadline: the attack stops
/// there).
pub(crate) fn slow_body(mut tls: Tls) -> String {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut buf = [0u8; 256];
    while Instant::now() < deadline {
        if tls.write_all(b" ").and_then(|()| tls.flush()).is_err() {
            return "closed".into();
        }
        // Waits up to the read timeout: the pace of the trickle.
        match tls.read(&mut buf) {
            Ok(0) => return "closed".into(),
            Ok(n) => {
                let text = String::from_utf8_lossy(&buf[..n]);
                return text.lines().next().unwrap_or_default().to_string();
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return "closed".into(),
        }
    }
    "still open after 90 s".into()
}
