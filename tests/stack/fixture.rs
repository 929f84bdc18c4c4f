//! The stack brought up for one test, torn down when it ends, and what
//! the scenario calls on it: docker with a login of its own, outputs that
//! must succeed or fail, guards that remove what a step made.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use turtle_e2e::{Env, free_port, turtle_bin};

pub(crate) const SERVICES: [&str; 6] = ["proxy", "api", "db", "registry", "builder", "vpn"];

pub(crate) struct Stack {
    pub(crate) env: Env,
    pub(crate) domain: String,
    pub(crate) http: u16,
    pub(crate) https: u16,
    pub(crate) vpn: u16,
    pub(crate) root: PathBuf,
}

pub(crate) fn compose_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../stack/docker-compose.yml")
}

/// A binary built beside `turtle`.
pub(crate) fn sibling(name: &str) -> PathBuf {
    let bin = turtle_bin().with_file_name(name);
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --workspace --bins`",
        bin.display()
    );
    bin
}

/// A UDP port free on the host right now.
pub(crate) fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Stack {
    pub(crate) fn new() -> Self {
        let env = Env::new("stack");
        // A domain of its own: the engine's certs.d and /etc/hosts entries
        // are per name, and the names must not collide with another run.
        let domain = format!("st{}.turtle-test.local", std::process::id());
        // The 1 GB board's profile: every service runs within its budget.
        env.config(&format!(
            "domain: {domain}\nmdns: {{enabled: false}}\ndevice: {{profile: raspberrypi3, tune: false, shed: false}}\n"
        ));
        let root = env.dir.path().join("root.pem");
        Self {
            env,
            domain,
            http: free_port(),
            https: free_port(),
            vpn: free_udp_port(),
            root,
        }
    }

    pub(crate) fn command(&self, args: &[&str]) -> Command {
        let mut c = self.env.command(args);
        c.env("TURTLE_HTTP_PORT", self.http.to_string())
            .env("TURTLE_HTTPS_PORT", self.https.to_string())
            .env("TURTLE_VPN_PORT", self.vpn.to_string());
        c
    }

    /// `turtle up` of the stack, waiting for every service to be healthy.
    pub(crate) fn up(&self) -> Output {
        let file = compose_file();
        self.command(&[
            "up",
            "-f",
            file.to_str().unwrap(),
            "-p",
            &self.env.project,
            "--wait",
            "--wait-timeout",
            "900",
        ])
        .output()
        .expect("run turtle up")
    }

    pub(crate) fn down(&self) -> Output {
        self.command(&["down", "-p", &self.env.project])
            .output()
            .expect("run turtle down")
    }

    pub(crate) fn secret(&self, name: &str) -> String {
        self.env
            .box_ok(&["secret", name, "-p", &self.env.project])
            .trim()
            .to_string()
    }

    pub(crate) fn host(&self, service: &str) -> String {
        if service.is_empty() {
            self.domain.clone()
        } else {
            format!("{service}.{}", self.domain)
        }
    }

    pub(crate) fn registry(&self) -> String {
        format!("{}:{}", self.host("registry"), self.https)
    }

    /// `curl ARGS https://<service>.<domain>:<port><path>` through the
    /// proxy, verified against Turtle's root only (curl's --cacert replaces
    /// its CA bundle).
    pub(crate) fn curl(&self, service: &str, path: &str, args: &[&str]) -> Output {
        let host = self.host(service);
        Command::new("curl")
            .args(["-sS", "--cacert"])
            .arg(&self.root)
            .arg("--resolve")
            .arg(format!("{host}:{}:127.0.0.1", self.https))
            .args(args)
            .arg(format!("https://{host}:{}{path}", self.https))
            .output()
            .expect("run curl")
    }

    /// An HTTPS request (see [`Self::curl`]); returns status and body.
    pub(crate) fn https(
        &self,
        method: &str,
        service: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, String) {
        let auth = auth.map(|a| format!("Authorization: {a}"));
        let body = body.map(Value::to_string);
        let mut args = vec!["--max-time", "60", "-X", method, "-w", "\n%{http_code}"];
        if let Some(a) = &auth {
            args.extend(["-H", a]);
        }
        if let Some(b) = &body {
            args.extend(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let host = self.host(service);
        let out = self.curl(service, path, &args);
        assert!(
            out.status.success(),
            "curl {method} {host}{path}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().expect("HTTP status"), body.to_string())
    }

    /// A JSON request to the api that must answer `want` (`auth` empty: no
    /// Authorization header); returns the JSON body.
    pub(crate) fn json(
        &self,
        method: &str,
        path: &str,
        auth: &str,
        body: Option<Value>,
        want: u16,
    ) -> Value {
        let auth = (!auth.is_empty()).then_some(auth);
        let (status, text) = self.https(method, "api", path, auth, body.as_ref());
        assert_eq!(status, want, "{method} {path}: {text}");
        if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
        }
    }

    /// Whether `GET /v1/health` through the proxy answers 200 within 10 s
    /// (a refused or cut connection is a no, not a failure).
    pub(crate) fn health_answers(&self) -> bool {
        let out = self.curl(
            "api",
            "/v1/health",
            &["--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}"],
        );
        out.status.success() && out.stdout == b"200"
    }

    /// The proxy's published HTTPS port on the host.
    pub(crate) fn https_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.https))
    }

    pub(crate) fn all_healthy(&self) -> bool {
        SERVICES.iter().all(|s| self.env.healthy(s))
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // Removes the engine's certs.d entries and the hosts block too.
        let _ = self.down();
    }
}

/// `docker ARGS` with a client config directory of its own (the login).
pub(crate) fn docker_as(config: &Path, args: &[&str]) -> Output {
    Command::new("docker")
        .env("DOCKER_CONFIG", config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker")
}

pub(crate) fn docker_login(config: &Path, registry: &str, user: &str, password: &str) -> Output {
    let mut child = Command::new("docker")
        .env("DOCKER_CONFIG", config)
        .args(["login", registry, "-u", user, "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run docker login");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(password.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn ok(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn failed(what: &str, out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{what} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Removes the images a test tagged or pulled, even when it fails.
#[derive(Default)]
pub(crate) struct ImageGuard(pub(crate) Vec<String>);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        for i in &self.0 {
            let _ = Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}

pub(crate) struct ContainerGuard(pub(crate) String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}
