//! Two network namespaces joined by a veth pair: two "hosts" on one link, so
//! tests can send real multicast between them (mDNS) without touching the
//! machine's own network.
//!
//! Names are unique per test run (they carry the PID and a counter); link
//! names are at most 15 bytes and do not start with `veth`, which the mDNS
//! publisher skips. [`VethPair`] removes its namespaces in `Drop`, even when
//! the test failed; the veth pair goes with them. Processes started in a
//! namespace must end before that (a process left inside would keep the
//! namespace alive after its name is gone).

use std::ffi::OsStr;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::Value;

use crate::wait_until;

/// Whether this process runs as root (namespaces need it).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1).map(|euid| euid == "0"))
        })
        .unwrap_or(false)
}

/// Runs `ip ARGS`, panicking with its stderr on failure; returns stdout.
pub fn ip(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().expect("run ip");
    assert!(
        out.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One end of the link: a namespace, its end of the veth pair and its IPv4
/// address (a /24 shared with the other end).
#[derive(Debug, Clone)]
pub struct Host {
    pub ns: String,
    pub link: String,
    pub addr: Ipv4Addr,
}

impl Host {
    /// `ip netns exec NS PROGRAM`: add arguments, then run or spawn it.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns]).arg(program);
        cmd
    }

    /// The addresses on this host's end of the link (IPv4, and the IPv6
    /// link-local one when the kernel has IPv6).
    pub fn link_addresses(&self) -> Vec<IpAddr> {
        let out = ip(&["-n", &self.ns, "-j", "addr", "show", "dev", &self.link]);
        let v: Value = serde_json::from_str(&out).expect("ip -j addr");
        v[0]["addr_info"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["local"].as_str()?.parse().ok())
            .collect()
    }

    fn link_ready(&self) -> bool {
        let out = ip(&["-n", &self.ns, "-j", "addr", "show", "dev", &self.link]);
        let v: Value = serde_json::from_str(&out).expect("ip -j addr");
        let up = v[0]["operstate"] == "UP";
        // With IPv6, wait for the link-local address too, so a publisher
        // started now sees every address it will ever have.
        let v6 = !std::path::Path::new("/proc/sys/net/ipv6").exists()
            || self.link_addresses().iter().any(IpAddr::is_ipv6);
        up && v6
    }
}

/// Two namespaces, `a` and `b`, joined by a veth pair (`a.addr` is `.1` and
/// `b.addr` `.2` of a 10.213.x.0/24).
pub struct VethPair {
    pub a: Host,
    pub b: Host,
    created: Vec<String>,
}

impl VethPair {
    pub fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let subnet = 1 + n % 250;
        let host = |side: &str, last: u8| Host {
            ns: format!("turtle-mdns-{pid}-{n}-{side}"),
            // "tm" + PID (at most 7 digits) + "x" + counter + side <= 15 bytes.
            link: format!("tm{pid}x{n}{side}"),
            addr: Ipv4Addr::new(10, 213, subnet as u8, last),
        };
        let mut pair = Self {
            a: host("a", 1),
            b: host("b", 2),
            created: Vec::new(),
        };
        for ns in [pair.a.ns.clone(), pair.b.ns.clone()] {
            ip(&["netns", "add", &ns]);
            pair.created.push(ns);
        }
        // Both ends are created inside their namespaces: nothing appears on
        // the machine's own link list, even for a moment.
        ip(&[
            "link",
            "add",
            &pair.a.link,
            "netns",
            &pair.a.ns,
            "type",
            "veth",
            "peer",
            "name",
            &pair.b.link,
            "netns",
            &pair.b.ns,
        ]);
        for h in [&pair.a, &pair.b] {
            ip(&["-n", &h.ns, "link", "set", "lo", "up"]);
            // No duplicate address detection: the IPv6 link-local address is
            // usable as soon as the link is up, not a second or two later.
            // (Fails harmlessly when the kernel has no IPv6.)
            let _ = h
                .command("sysctl")
                .args(["-qw", &format!("net.ipv6.conf.{}.accept_dad=0", h.link)])
                .output();
            ip(&[
                "-n",
                &h.ns,
                "addr",
                "add",
                &format!("{}/24", h.addr),
                "dev",
                &h.link,
            ]);
            // veth links have MULTICAST set already; mDNS depends on it, so
            // say it rather than rely on the default.
            ip(&["-n", &h.ns, "link", "set", &h.link, "multicast", "on", "up"]);
            // The namespace has no default route. A socket that does not
            // choose its multicast interface (IP_MULTICAST_IF), like the
            // hand-built resolver of mdns_tool, needs a route to the group or
            // sendto fails with ENETUNREACH. (mdns-sd sets the interface
            // itself on each of its sockets.)
            ip(&["-n", &h.ns, "route", "add", "224.0.0.0/4", "dev", &h.link]);
        }
        wait_until(
            "both ends of the veth pair up",
            Duration::from_secs(10),
            || pair.a.link_ready() && pair.b.link_ready(),
        );
        pair
    }
}

impl Default for VethPair {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for VethPair {
    fn drop(&mut self) {
        // Deleting a namespace destroys its veth end, and with it the peer.
        for ns in self.created.drain(..).rev() {
            let out = Command::new("ip").args(["netns", "del", &ns]).output();
            if !out.as_ref().is_ok_and(|o| o.status.success()) {
                eprintln!("could not remove network namespace {ns}: {out:?}");
            }
        }
    }
}

/// A process started in a namespace ([`Host::command`]): stdout as lines
/// (read by a thread), stderr kept in a file. Ended by PID in `Drop` if it
/// is still running, so nothing outlives the test (nor keeps its namespace).
pub struct NsChild {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    stderr: tempfile::NamedTempFile,
    what: String,
}

impl NsChild {
    /// Spawns `cmd` with stdin and stdout piped; `what` names it in messages.
    pub fn spawn(mut cmd: Command, what: &str) -> Self {
        use std::process::Stdio;
        let stderr = tempfile::NamedTempFile::new().expect("stderr file");
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr.reopen().expect("reopen the stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("start {what}: {e}"));
        let lines = crate::stdout_lines(&mut child);
        Self {
            child,
            lines,
            stderr,
            what: what.to_string(),
        }
    }

    /// The next stdout line within `timeout`, or None (timed out, or the
    /// process closed its stdout).
    pub fn next_line(&self, timeout: Duration) -> Option<String> {
        self.lines.recv_timeout(timeout).ok()
    }

    /// The lines not read yet, up to the end of its stdout (or `timeout`).
    pub fn remaining_lines(&self, timeout: Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + timeout;
        let mut lines = Vec::new();
        while let Ok(line) = self
            .lines
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
        {
            lines.push(line);
        }
        lines
    }

    /// Reads JSON lines until one satisfies `cond`; panics (with the last line
    /// and stderr) after `timeout`.
    pub fn wait_json(&self, what: &str, timeout: Duration, cond: impl Fn(&Value) -> bool) -> Value {
        let deadline = std::time::Instant::now() + timeout;
        let mut last = None;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let Some(line) = (!left.is_zero()).then(|| self.next_line(left)).flatten() else {
                panic!(
                    "timed out after {timeout:?} waiting for {what} from {}\nlast line: {}\nstderr:\n{}",
                    self.what,
                    last.unwrap_or_default(),
                    self.stderr()
                );
            };
            if let Ok(v) = serde_json::from_str::<Value>(&line)
                && cond(&v)
            {
                return v;
            }
            last = Some(line);
        }
    }

    /// What it wrote to stderr so far.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr.path()).unwrap_or_default()
    }

    /// Writes one line to its stdin.
    pub fn send_line(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().expect("stdin still open");
        writeln!(stdin, "{line}")
            .and_then(|()| stdin.flush())
            .unwrap_or_else(|e| panic!("write to {}: {e}", self.what));
    }

    /// Closes its stdin (the signal to stop, for processes that follow it)
    /// and waits up to `timeout` for it to exit.
    pub fn close_stdin_and_wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        drop(self.child.stdin.take());
        self.wait(timeout)
    }

    /// Sends it SIGTERM (with kill(1): the workspace forbids unsafe code) and
    /// waits up to `timeout` for it to exit. `ip netns exec` runs the program
    /// in its own process, so the signal reaches the program itself.
    pub fn terminate(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {} failed", self.what);
        self.wait(timeout)
    }

    /// Waits up to `timeout` for it to exit.
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let mut status = None;
        wait_until(&format!("{} to exit", self.what), timeout, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        status.unwrap()
    }
}

impl Drop for NsChild {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
