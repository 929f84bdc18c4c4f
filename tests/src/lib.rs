//! The end-to-end test harness: runs the real `turtle` binary against the
//! machine's Docker engine.
//!
//! Each [`Env`] has a unique project name and its own state directory; it owns
//! the daemon it starts (ended by PID) and, on drop, removes every container,
//! network and volume carrying its project label, even when the test failed.
//! Waits poll a condition with a deadline ([`wait_until`]); nothing sleeps in
//! place of a condition.
//!
//! [`netns`] builds two network namespaces joined by a veth pair, for the mDNS
//! tests (real multicast, no Docker).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

pub mod netns;
pub mod tls;

pub const IMAGE: &str = "turtle-test-busybox:latest";

/// The `turtle` binary next to this test binary (`target/<profile>/turtle`).
pub fn turtle_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let bin = dir.join("turtle");
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --bins` first",
        bin.display()
    );
    bin
}

/// Builds the busybox test image once per test binary.
pub fn test_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| build_image("test-busybox", IMAGE));
    IMAGE
}

/// The supervisor config every [`Env`] starts with.
pub const DEFAULT_CONFIG: &str =
    "domain: turtle-test.local\nmdns: {enabled: false}\ndevice: {tune: false}\n";

/// The Debian test image (curl, python3, openssl), built once per test binary.
pub const DEBIAN_IMAGE: &str = "turtle-test-debian:latest";

pub fn debian_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| build_image("test-debian", DEBIAN_IMAGE));
    DEBIAN_IMAGE
}

/// Runs `images/<recipe>/build.sh TAG`.
fn build_image(recipe: &str, tag: &str) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../images")
        .join(recipe)
        .join("build.sh");
    let out = Command::new("sh")
        .arg(&script)
        .arg(tag)
        // The Debian base is made by `turtle base`.
        .env("TURTLE", turtle_bin())
        .output()
        .expect("run build.sh");
    assert!(
        out.status.success(),
        "building {tag} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds `tag` from a Dockerfile of `FROM from` and `steps` (classic
/// builder, no context), e.g. an image with a layer of its own that `docker
/// rmi` really removes.
pub fn build_from(from: &str, tag: &str, steps: &str) {
    use std::io::Write;
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", tag, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run docker build");
    child
        .stdin
        .take()
        .expect("stdin piped")
        .write_all(format!("FROM {from}\n{steps}\n").as_bytes())
        .expect("write the Dockerfile");
    let out = child.wait_with_output().expect("docker build");
    assert!(
        out.status.success(),
        "docker build {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Image tags a test made, removed when it ends (even when it fails), the
/// last made first, so an image goes before the one it builds FROM.
#[derive(Default)]
pub struct Images(pub Vec<String>);

impl Images {
    /// Builds `tag` as [`build_from`] does and removes it at the end.
    pub fn build(&mut self, from: &str, tag: &str, steps: &str) {
        self.0.push(tag.to_string());
        build_from(from, tag, steps);
    }
}

impl Drop for Images {
    fn drop(&mut self) {
        for tag in self.0.iter().rev() {
            let _ = Command::new("docker")
                .args(["rmi", "-f", tag])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Whether the engine has the image `reference` (or ID).
pub fn has_image(reference: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", reference])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A TCP port free on the host right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("0.0.0.0:0")
        .and_then(|l| l.local_addr())
        .expect("bind port 0")
        .port()
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes.
pub fn wait_until(what: &str, timeout: Duration, cond: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, cond),
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// Polls `cond` every 100 ms until it holds (true) or `timeout` passes
/// (false): for a caller that says more than "timed out" on failure.
pub fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    true
}

/// Runs `docker ARGS`, returning stdout (trimmed); panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    host("docker", args).trim().to_string()
}

/// Runs a host program, returning stdout; panics with stderr on failure.
pub fn host(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `docker inspect` of one object, or None when it does not exist.
pub fn inspect(name: &str) -> Option<Value> {
    let out = Command::new("docker")
        .args(["inspect", name])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v.get(0).cloned()
}

pub struct Env {
    pub project: String,
    pub dir: tempfile::TempDir,
    daemon: Option<Child>,
}

impl Env {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        test_image();
        let n = N.fetch_add(1, Ordering::SeqCst);
        let env = Self {
            project: format!("tt{}{}-{tag}", std::process::id(), n),
            dir: tempfile::tempdir().expect("temp dir"),
            daemon: None,
        };
        // Tests run side by side: none publishes names on the LAN or tunes
        // the machine's swap unless it says so, and all share one test domain.
        env.config(DEFAULT_CONFIG);
        env
    }

    /// Writes the supervisor config (`turtle.yaml`, passed as TURTLE_CONFIG).
    pub fn config(&self, yaml: &str) {
        std::fs::write(self.config_path(), yaml).expect("write turtle.yaml");
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("turtle.yaml")
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes `compose.yaml` in the test directory.
    pub fn compose(&self, yaml: &str) {
        std::fs::write(self.dir.path().join("compose.yaml"), yaml).expect("write compose.yaml");
    }

    /// Runs `turtle ARGS -p PROJECT` in the test directory.
    pub fn turtle(&self, args: &[&str]) -> Output {
        let mut cmd = self.command(args);
        cmd.arg("-p").arg(&self.project);
        cmd.output().expect("run turtle")
    }

    /// Runs turtle without adding `-p`.
    pub fn command(&self, args: &[&str]) -> Command {
        self.command_via(&[], args)
    }

    /// Runs `PREFIX... turtle ARGS` (e.g. `ip netns exec NS`) with this
    /// test's environment.
    pub fn command_via(&self, prefix: &[&str], args: &[&str]) -> Command {
        let mut cmd = match prefix.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(turtle_bin());
                c
            }
            None => Command::new(turtle_bin()),
        };
        cmd.args(args)
            .current_dir(self.dir.path())
            .env("TURTLE_STATE_DIR", self.state_dir())
            .env("TURTLE_CONFIG", self.config_path())
            .env_remove("TURTLE_SOCKET")
            .env_remove("COMPOSE_PROJECT_NAME")
            .stdin(Stdio::null());
        cmd
    }

    /// Runs turtle and asserts it succeeded; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        succeeded(args, self.turtle(args))
    }

    /// Runs turtle without `-p` (verbs about the box: `ca`, `names`) and
    /// asserts it succeeded; returns stdout.
    pub fn box_ok(&self, args: &[&str]) -> String {
        succeeded(args, self.command(args).output().expect("run turtle"))
    }

    /// Starts `turtle daemon` (resync every 2 s) and waits for its socket.
    pub fn start_daemon(&mut self) {
        self.start_daemon_with(&["--resync-interval", "2"]);
    }

    /// Starts `turtle daemon ARGS` and waits for its socket.
    pub fn start_daemon_with(&mut self, args: &[&str]) {
        self.start_daemon_via(&[], args);
    }

    /// Starts `PREFIX... turtle daemon ARGS` (e.g. in a network namespace)
    /// and waits for its socket.
    pub fn start_daemon_via(&mut self, prefix: &[&str], args: &[&str]) {
        assert!(self.daemon.is_none(), "daemon already running");
        let log = std::fs::File::create(self.dir.path().join("daemon.log")).expect("daemon log");
        let mut all = vec!["daemon"];
        all.extend_from_slice(args);
        let child = self
            .command_via(prefix, &all)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start turtle daemon");
        self.daemon = Some(child);
        let socket = self.state_dir().join("turtle.sock");
        wait_until("the daemon's socket", Duration::from_secs(20), || {
            std::os::unix::net::UnixStream::connect(&socket).is_ok()
        });
    }

    /// GET `path` from the daemon's API; returns the body.
    pub fn api_get(&self, path: &str) -> String {
        self.api_request("GET", path, "").1
    }

    /// One raw HTTP/1.1 request to the daemon's API socket, `path` sent as
    /// it is (no client in between to clean it up); returns the status and
    /// the body.
    pub fn api_request(&self, method: &str, path: &str, body: &str) -> (u16, String) {
        use std::io::{Read, Write};
        let mut s = std::os::unix::net::UnixStream::connect(self.state_dir().join("turtle.sock"))
            .expect("connect to the daemon");
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: turtle\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        let status = out
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("not an HTTP answer: {out:?}"));
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        (status, body)
    }

    /// Full resyncs the daemon has done.
    pub fn resyncs(&self) -> u64 {
        let body = self.api_get("/v1/ping");
        let v: Value = serde_json::from_str(&body).expect("ping answer");
        v["resyncs"].as_u64().expect("resyncs")
    }

    /// SIGKILLs the daemon and reaps it.
    pub fn kill_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the daemon with SIGTERM, as a service manager does, and waits
    /// for it to exit.
    pub fn stop_daemon(&mut self) {
        if let Some(mut c) = self.daemon.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(30);
            while c.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!("the daemon did not stop within 30 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }

    pub fn daemon_pid(&self) -> Option<u32> {
        self.daemon.as_ref().map(Child::id)
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("daemon.log")).unwrap_or_default()
    }

    /// `<project>-<service>-1`.
    pub fn container(&self, service: &str) -> String {
        format!("{}-{service}-1", self.project)
    }

    /// The container's ID, or None when it does not exist.
    pub fn id(&self, service: &str) -> Option<String> {
        inspect(&self.container(service)).and_then(|v| v["Id"].as_str().map(String::from))
    }

    pub fn state(&self, service: &str) -> Option<Value> {
        inspect(&self.container(service)).map(|v| v["State"].clone())
    }

    pub fn running(&self, service: &str) -> bool {
        self.state(service).is_some_and(|s| s["Running"] == true)
    }

    pub fn healthy(&self, service: &str) -> bool {
        self.state(service)
            .is_some_and(|s| s["Health"]["Status"] == "healthy")
    }

    /// `turtle ps --format json`.
    pub fn ps(&self) -> Value {
        serde_json::from_str(&self.ok(&["ps", "--format", "json"])).expect("ps json")
    }

    /// Engine events of this project's containers that change state, since
    /// `since` (a [`now_stamp`]).
    pub fn mutating_events(&self, since: &str) -> Vec<String> {
        let until = now_stamp();
        let out = docker(&[
            "events",
            "--since",
            since,
            "--until",
            &until,
            "--filter",
            &format!("label=com.docker.compose.project={}", self.project),
            "--format",
            "{{.Type}} {{.Action}} {{.Actor.Attributes.name}}",
        ]);
        out.lines()
            .filter(|l| !l.contains("exec_") && !l.contains("health_status"))
            .map(String::from)
            .collect()
    }
}

/// Now, as `docker events --since` takes it with nanoseconds (`secs.nanos`).
/// Asserts a turtle run succeeded; returns its stdout.
fn succeeded(args: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "turtle {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn now_stamp() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

impl Drop for Env {
    fn drop(&mut self) {
        self.kill_daemon();
        // A failed test shows what its daemon said: the log goes with the
        // temporary directory.
        if std::thread::panicking() {
            let log = self.daemon_log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!("--- the daemon's log (last {} lines) ---", tail.len());
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
        remove_project(&self.project);
    }
}

/// Removes what carries compose project `project`'s label from the engine:
/// containers (with their volumes, also those carried over a recreate),
/// networks, volumes and images.
pub fn remove_project(project: &str) {
    let label = format!("label=com.docker.compose.project={}", project);
    let ids = |kind: &[&str]| -> Vec<String> {
        let mut args: Vec<&str> = kind.to_vec();
        args.extend(["--filter", &label, "-q"]);
        Command::new("docker")
            .args(&args)
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let rm = |cmd: &[&str], ids: Vec<String>| {
        if !ids.is_empty() {
            let _ = Command::new("docker").args(cmd).args(&ids).output();
        }
    };
    let containers = ids(&["ps", "-a"]);
    // Volumes carried over a recreate are mounted by name: `rm -v` keeps them.
    let mut mounted = Vec::new();
    for c in &containers {
        if let Ok(o) = Command::new("docker")
            .args(["inspect", "-f", "{{range .Mounts}}{{.Name}} {{end}}", c])
            .output()
        {
            mounted.extend(
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter(|n| n.len() == 64)
                    .map(String::from),
            );
        }
    }
    rm(&["rm", "-f", "-v"], containers);
    rm(&["volume", "rm", "-f"], mounted);
    rm(&["network", "rm"], ids(&["network", "ls"]));
    rm(&["volume", "rm", "-f"], ids(&["volume", "ls"]));
    rm(&["image", "rm", "-f"], ids(&["image", "ls"]));
}

/// The lines a child writes to its piped stdout, as they come (read by a
/// thread, so a test can wait for one with `recv_timeout`).
pub fn stdout_lines(child: &mut Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    let out = child.stdout.take().expect("stdout piped");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Sends SIGKILL to a host PID.
pub fn kill9(pid: i64) {
    // The workspace forbids unsafe code, so no libc::kill: use kill(1).
    let status = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -9 {pid} failed");
}

/// A unix-socket proxy in front of dockerd that a test can cut and restore,
/// as if the engine restarted: [`DockerProxy::cut`] closes every connection
/// and stops listening.
pub struct DockerProxy {
    path: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    conns: std::sync::Arc<std::sync::Mutex<Vec<std::os::unix::net::UnixStream>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DockerProxy {
    pub const ENGINE: &str = "/var/run/docker.sock";

    pub fn start(path: &Path) -> Self {
        let mut p = Self {
            path: path.to_path_buf(),
            stop: Default::default(),
            conns: Default::default(),
            thread: None,
        };
        p.listen();
        p
    }

    fn listen(&mut self) {
        use std::os::unix::net::{UnixListener, UnixStream};
        let _ = std::fs::remove_file(&self.path);
        let listener = UnixListener::bind(&self.path).expect("bind the proxy socket");
        listener.set_nonblocking(true).unwrap();
        self.stop.store(false, Ordering::SeqCst);
        let (stop, conns) = (self.stop.clone(), self.conns.clone());
        self.thread = Some(std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                let client = match listener.accept() {
                    Ok((c, _)) => c,
                    Err(_) => {
                        // Nothing to accept: look again shortly (and at `stop`).
                        std::thread::sleep(Duration::from_millis(10));
                        continue;
                    }
                };
                let Ok(upstream) = UnixStream::connect(Self::ENGINE) else {
                    continue;
                };
                client.set_nonblocking(false).unwrap();
                let pipe = |mut from: UnixStream, mut to: UnixStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                };
                let mut c = conns.lock().unwrap();
                c.push(client.try_clone().unwrap());
                c.push(upstream.try_clone().unwrap());
                pipe(client.try_clone().unwrap(), upstream.try_clone().unwrap());
                pipe(upstream, client);
            }
        }));
    }

    /// Drops every connection and stops listening.
    pub fn cut(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        let _ = std::fs::remove_file(&self.path);
    }

    /// Listens again.
    pub fn restore(&mut self) {
        self.listen();
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for DockerProxy {
    fn drop(&mut self) {
        self.cut();
    }
}
