//! The mDNS test tool, run inside network namespaces by `tests/mdns.rs`.
//!
//! - `publish`: runs `turtle_mdns::Publisher` until stdin closes or SIGTERM,
//!   printing its status as one JSON line at start, whenever it changes, and
//!   once more before it shuts down. Each line on stdin is an update
//!   (`{"domain", "names", "txt": {k: v}, "port", "interfaces"}`, any subset)
//!   passed to `Publisher::update`; a refused one prints `{"update_error"}`.
//! - `resolve NAME`: a one-shot legacy unicast mDNS query (RFC 6762 §6.7),
//!   built and parsed by hand here, so the publisher is checked against a
//!   client that shares no code with it: A and AAAA questions sent to
//!   224.0.0.251:5353 from an ephemeral port; responders answer by unicast.
//!   Prints `{"name", "addresses", "responders"}`; exits 1 when nothing answered.
//! - `browse TYPE`: mdns-sd's browser; prints each resolution of an instance
//!   as a JSON line (`{"instance", "host", "port", "addresses", "txt"}`): the
//!   browser resolves as soon as it has one address, then again as more
//!   records arrive (the IPv6 answer may come first). Exits at the first one
//!   with an IPv4 address, or with `--until-removed` at the instance's goodbye
//!   (`{"removed": instance}`); exits 1 at `--timeout` otherwise.

use std::collections::BTreeSet;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde_json::json;
use turtle_mdns::{MdnsConfig, Publisher};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish names until stdin closes or SIGTERM; stdin lines are JSON updates.
    Publish {
        #[arg(long)]
        domain: String,
        #[arg(long = "name")]
        names: Vec<String>,
        /// key=value
        #[arg(long = "txt", value_parser = parse_kv)]
        txt: Vec<(String, String)>,
        #[arg(long, default_value_t = 443)]
        port: u16,
        /// Only these interfaces (default: the publisher's own filter).
        #[arg(long = "interface")]
        interfaces: Vec<String>,
    },
    /// Resolve NAME with a hand-built legacy unicast query.
    Resolve {
        name: String,
        /// Seconds to wait for a first answer.
        #[arg(long, default_value_t = 5.0)]
        timeout: f64,
        /// After the first answer, how long to keep collecting others (ms).
        #[arg(long, default_value_t = 500)]
        linger_ms: u64,
    },
    /// Browse a service type with mdns-sd's browser.
    Browse {
        service_type: String,
        #[arg(long, default_value_t = 10.0)]
        timeout: f64,
        /// Only this instance (full name, e.g. `vm._turtle._tcp.local.`).
        #[arg(long)]
        instance: Option<String>,
        /// After resolving, wait (up to --timeout) for the instance's removal.
        #[arg(long)]
        until_removed: bool,
    },
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("{s:?} is not key=value"))
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let result = match Cli::parse().command {
        Command::Publish {
            domain,
            names,
            txt,
            port,
            interfaces,
        } => publish(MdnsConfig {
            domain,
            names,
            port,
            txt,
            interfaces: (!interfaces.is_empty()).then_some(interfaces),
        }),
        Command::Resolve {
            name,
            timeout,
            linger_ms,
        } => resolve(
            &name,
            Duration::from_secs_f64(timeout),
            Duration::from_millis(linger_ms),
        ),
        Command::Browse {
            service_type,
            timeout,
            instance,
            until_removed,
        } => browse(
            &service_type,
            Duration::from_secs_f64(timeout),
            instance.as_deref(),
            until_removed,
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("mdns_tool: {e}");
            ExitCode::from(2)
        }
    }
}

fn print_line(v: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn publish(cfg: MdnsConfig) -> Result<ExitCode, String> {
    // stdin is read by a plain thread: tokio's stdin reads on a blocking
    // thread that the runtime would wait for at exit (forever, after SIGTERM
    // with stdin still open). A plain thread just ends with the process.
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};

        let mut current = cfg.clone();
        let publisher = Publisher::start(cfg).map_err(|e| e.to_string())?;
        let mut status = publisher.subscribe();
        let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
        // Refresh, then print what is current and mark it seen.
        let _ = publisher.status();
        print_line(&json!(*status.borrow_and_update()));
        loop {
            tokio::select! {
                changed = status.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let s = status.borrow_and_update().clone();
                    print_line(&json!(s));
                }
                _ = term.recv() => break,
                line = lines.recv() => {
                    // None: stdin closed.
                    let Some(line) = line else { break };
                    if line.trim().is_empty() {
                        continue;
                    }
                    let result = updated(&current, &line)
                        .and_then(|cfg| {
                            publisher.update(cfg.clone()).map_err(|e| e.to_string())?;
                            current = cfg;
                            Ok(())
                        });
                    if let Err(e) = result {
                        print_line(&json!({ "update_error": e }));
                    }
                }
            }
        }
        // The last word before the goodbyes, for the test to read.
        print_line(&json!(publisher.status()));
        publisher.shutdown();
        Ok(ExitCode::SUCCESS)
    })
}

/// `cfg` with the fields a JSON update line sets: `domain`, `names` (list),
/// `txt` (object), `port`, `interfaces` (list or null).
fn updated(cfg: &MdnsConfig, line: &str) -> Result<MdnsConfig, String> {
    let v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("update is not JSON: {e}"))?;
    let strings = |v: &serde_json::Value| -> Result<Vec<String>, String> {
        v.as_array()
            .ok_or("expected a list")?
            .iter()
            .map(|s| {
                s.as_str()
                    .map(String::from)
                    .ok_or("expected strings".into())
            })
            .collect()
    };
    let mut cfg = cfg.clone();
    if let Some(d) = v.get("domain") {
        cfg.domain = d.as_str().ok_or("domain: expected a string")?.into();
    }
    if let Some(n) = v.get("names") {
        cfg.names = strings(n)?;
    }
    if let Some(t) = v.get("txt") {
        cfg.txt = t
            .as_object()
            .ok_or("txt: expected an object")?
            .iter()
            .map(|(k, v)| Ok((k.clone(), v.as_str().ok_or("txt: expected strings")?.into())))
            .collect::<Result<_, String>>()?;
    }
    if let Some(p) = v.get("port") {
        cfg.port = p
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or("port: expected a port number")?;
    }
    if let Some(i) = v.get("interfaces") {
        cfg.interfaces = if i.is_null() { None } else { Some(strings(i)?) };
    }
    Ok(cfg)
}

const MDNS_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 251);
const TYPE_A: u16 = 1;
const TYPE_AAAA: u16 = 28;
const CLASS_IN: u16 = 1;

fn resolve(name: &str, timeout: Duration, linger: Duration) -> Result<ExitCode, String> {
    let name = name.trim_end_matches('.');
    let sock = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("bind: {e}"))?;
    let id = (std::process::id() & 0xffff) as u16;
    let query = query_packet(id, name)?;
    let start = Instant::now();
    let mut deadline = start + timeout;
    let mut next_send = start;
    let mut addresses = BTreeSet::new();
    let mut responders = BTreeSet::new();
    let mut buf = [0u8; 9000];
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Resend each second until someone answers (the responder may still
        // be probing its name).
        if addresses.is_empty() && now >= next_send {
            sock.send_to(&query, (MDNS_GROUP, 5353))
                .map_err(|e| format!("send the query to {MDNS_GROUP}:5353: {e}"))?;
            next_send = now + Duration::from_secs(1);
        }
        let wait = deadline.min(next_send).saturating_duration_since(now);
        sock.set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(|e| e.to_string())?;
        let (n, from) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(format!("receive: {e}")),
        };
        let Ok(msg) = parse_message(&buf[..n]) else {
            continue;
        };
        // A response (QR) to our query.
        if msg.id != id || msg.flags & 0x8000 == 0 {
            continue;
        }
        let mut found = false;
        for r in &msg.records {
            if !r.name.eq_ignore_ascii_case(name) || r.class & 0x7fff != CLASS_IN {
                continue;
            }
            let addr = match (r.rtype, r.rdata.len()) {
                (TYPE_A, 4) => IpAddr::V4(Ipv4Addr::new(
                    r.rdata[0], r.rdata[1], r.rdata[2], r.rdata[3],
                )),
                (TYPE_AAAA, 16) => {
                    let b: [u8; 16] = r.rdata[..].try_into().unwrap();
                    IpAddr::V6(Ipv6Addr::from(b))
                }
                _ => continue,
            };
            addresses.insert(addr);
            found = true;
        }
        if found {
            if responders.is_empty() {
                deadline = Instant::now() + linger;
            }
            responders.insert(from.ip());
        }
    }
    print_line(&json!({
        "name": name,
        "addresses": addresses,
        "responders": responders,
    }));
    Ok(if addresses.is_empty() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// A standard query (id, no flags) with two questions: NAME A and NAME AAAA.
fn query_packet(id: u16, name: &str) -> Result<Vec<u8>, String> {
    let mut p = Vec::with_capacity(64);
    p.extend(id.to_be_bytes());
    p.extend(0u16.to_be_bytes()); // flags: a standard query
    p.extend(2u16.to_be_bytes()); // questions
    p.extend([0u8; 6]); // answers, authorities, additionals
    for qtype in [TYPE_A, TYPE_AAAA] {
        for label in name.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(format!("{name:?} has an empty or over-long label"));
            }
            p.push(label.len() as u8);
            p.extend(label.as_bytes());
        }
        p.push(0);
        p.extend(qtype.to_be_bytes());
        p.extend(CLASS_IN.to_be_bytes());
    }
    Ok(p)
}

struct Message {
    id: u16,
    flags: u16,
    /// Answers, authorities and additionals.
    records: Vec<Record>,
}

struct Record {
    name: String,
    rtype: u16,
    class: u16,
    rdata: Vec<u8>,
}

fn u16_at(buf: &[u8], pos: usize) -> Result<u16, String> {
    buf.get(pos..pos + 2)
        .map(|b| u16::from_be_bytes([b[0], b[1]]))
        .ok_or_else(|| "truncated".to_string())
}

fn parse_message(buf: &[u8]) -> Result<Message, String> {
    let id = u16_at(buf, 0)?;
    let flags = u16_at(buf, 2)?;
    let qd = u16_at(buf, 4)?;
    let rr = u16_at(buf, 6)? as usize + u16_at(buf, 8)? as usize + u16_at(buf, 10)? as usize;
    let mut pos = 12;
    for _ in 0..qd {
        let (_, next) = read_name(buf, pos)?;
        pos = next + 4; // type, class
    }
    let mut records = Vec::with_capacity(rr);
    for _ in 0..rr {
        let (name, next) = read_name(buf, pos)?;
        let rtype = u16_at(buf, next)?;
        let class = u16_at(buf, next + 2)?;
        let len = u16_at(buf, next + 8)? as usize; // after the 32-bit TTL
        let start = next + 10;
        let rdata = buf
            .get(start..start + len)
            .ok_or("truncated rdata")?
            .to_vec();
        pos = start + len;
        records.push(Record {
            name,
            rtype,
            class,
            rdata,
        });
    }
    Ok(Message { id, flags, records })
}

/// A possibly compressed name at `pos`; returns it (no trailing dot) and the
/// position after it in the record.
fn read_name(buf: &[u8], mut pos: usize) -> Result<(String, usize), String> {
    let mut labels = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *buf.get(pos).ok_or("truncated name")? as usize;
        match len {
            0 => {
                return Ok((labels.join("."), end.unwrap_or(pos + 1)));
            }
            l if l & 0xc0 == 0xc0 => {
                let target = (u16_at(buf, pos)? & 0x3fff) as usize;
                end.get_or_insert(pos + 2);
                pos = target;
            }
            l if l < 64 => {
                let label = buf.get(pos + 1..pos + 1 + l).ok_or("truncated label")?;
                labels.push(String::from_utf8_lossy(label).into_owned());
                pos += 1 + l;
            }
            _ => return Err("bad label length".into()),
        }
    }
    Err("name compression loop".into())
}

fn browse(
    service_type: &str,
    timeout: Duration,
    instance: Option<&str>,
    until_removed: bool,
) -> Result<ExitCode, String> {
    use mdns_sd::{ServiceDaemon, ServiceEvent};

    let daemon = ServiceDaemon::new().map_err(|e| e.to_string())?;
    let events = daemon.browse(service_type).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + timeout;
    let wanted = |fullname: &str| instance.is_none_or(|i| i.eq_ignore_ascii_case(fullname));
    let mut resolved: Option<String> = None;
    let mut done = false;
    while let Ok(event) = events.recv_deadline(deadline) {
        match event {
            ServiceEvent::ServiceResolved(s) if wanted(&s.fullname) => {
                let addresses: BTreeSet<IpAddr> =
                    s.addresses.iter().map(|a| a.to_ip_addr()).collect();
                let txt: serde_json::Map<String, serde_json::Value> = s
                    .txt_properties
                    .iter()
                    .map(|p| (p.key().to_string(), json!(p.val_str())))
                    .collect();
                print_line(&json!({
                    "instance": s.fullname,
                    "host": s.host,
                    "port": s.port,
                    "addresses": addresses,
                    "txt": txt,
                }));
                resolved = Some(s.fullname.clone());
                if !until_removed && addresses.iter().any(IpAddr::is_ipv4) {
                    done = true;
                    break;
                }
            }
            ServiceEvent::ServiceRemoved(_, fullname)
                if until_removed && resolved.as_ref() == Some(&fullname) =>
            {
                print_line(&json!({ "removed": fullname }));
                done = true;
                break;
            }
            _ => {}
        }
    }
    if let Ok(stopped) = daemon.shutdown() {
        let _ = stopped.recv_timeout(Duration::from_secs(2));
    }
    Ok(if done {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
