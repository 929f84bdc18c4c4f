//! The management backend (stack/docker-compose.yml) end to end, against
//! the real engine, from images built on this machine with no registry and
//! no internet.
//!
//! One scenario, in order, because bringing the stack up is the expensive
//! part: up from nothing to healthy; each service confined (its user, its
//! capabilities, a read-only root, only its own secrets); the api through
//! the proxy (TLS verified against Turtle's root only), the :80 redirect to
//! the stack's own names only, and the proxy under starvation attacks (idle
//! connections, a trickled body); the registry with tokens from the api
//! through the box's own engine; a build through the builder; a WireGuard
//! peer in a container through the vpn; the database killed; down and up
//! again with every piece of data still there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use turtle_e2e::{Env, debian_image, docker, free_port, test_image, turtle_bin, wait_until};

const SERVICES: [&str; 6] = ["proxy", "api", "db", "registry", "builder", "vpn"];

struct Stack {
    env: Env,
    domain: String,
    http: u16,
    https: u16,
    vpn: u16,
    root: PathBuf,
}

fn compose_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../stack/docker-compose.yml")
}

/// A binary built beside `turtle`.
fn sibling(name: &str) -> PathBuf {
    let bin = turtle_bin().with_file_name(name);
    assert!(
        bin.exists(),
        "{} missing: run `cargo build --workspace --bins`",
        bin.display()
    );
    bin
}

/// A UDP port free on the host right now.
fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Stack {
    fn new() -> Self {
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

    fn command(&self, args: &[&str]) -> Command {
        let mut c = self.env.command(args);
        c.env("TURTLE_HTTP_PORT", self.http.to_string())
            .env("TURTLE_HTTPS_PORT", self.https.to_string())
            .env("TURTLE_VPN_PORT", self.vpn.to_string());
        c
    }

    /// `turtle up` of the stack, waiting for every service to be healthy.
    fn up(&self) -> Output {
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

    fn down(&self) -> Output {
        self.command(&["down", "-p", &self.env.project])
            .output()
            .expect("run turtle down")
    }

    fn secret(&self, name: &str) -> String {
        self.env
            .box_ok(&["secret", name, "-p", &self.env.project])
            .trim()
            .to_string()
    }

    fn host(&self, service: &str) -> String {
        if service.is_empty() {
            self.domain.clone()
        } else {
            format!("{service}.{}", self.domain)
        }
    }

    fn registry(&self) -> String {
        format!("{}:{}", self.host("registry"), self.https)
    }

    /// `curl ARGS https://<service>.<domain>:<port><path>` through the
    /// proxy, verified against Turtle's root only (curl's --cacert replaces
    /// its CA bundle).
    fn curl(&self, service: &str, path: &str, args: &[&str]) -> Output {
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
    fn https(
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
    fn json(&self, method: &str, path: &str, auth: &str, body: Option<Value>, want: u16) -> Value {
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
    fn health_answers(&self) -> bool {
        let out = self.curl(
            "api",
            "/v1/health",
            &["--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}"],
        );
        out.status.success() && out.stdout == b"200"
    }

    /// The proxy's published HTTPS port on the host.
    fn https_addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.https))
    }

    fn all_healthy(&self) -> bool {
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
fn docker_as(config: &Path, args: &[&str]) -> Output {
    Command::new("docker")
        .env("DOCKER_CONFIG", config)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run docker")
}

fn docker_login(config: &Path, registry: &str, user: &str, password: &str) -> Output {
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

fn ok(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn failed(what: &str, out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{what} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_backend_stack_runs_end_to_end() {
    let mut stack = Stack::new();
    stack.env.start_daemon();
    let stack = stack;
    let env = &stack.env;
    let mut guard = ImageGuard::default();

    // --- Up from nothing: every image built here, every service healthy.
    let started = Instant::now();
    ok("turtle up", stack.up());
    eprintln!("stack: up and healthy in {:?}", started.elapsed());
    assert!(stack.all_healthy(), "{:#}", env.ps());
    std::fs::write(&stack.root, env.box_ok(&["ca", "export"])).unwrap();
    // Budgets of the 1 GB profile: the db is critical (256 MiB), the builder low (64 MiB).
    let memory =
        |s: &str| turtle_e2e::inspect(&env.container(s)).unwrap()["HostConfig"]["Memory"].as_i64();
    assert_eq!(memory("db"), Some(256 << 20));
    assert_eq!(memory("builder"), Some(64 << 20));
    least_privilege(env);

    // --- The api through the proxy.
    let (status, body) = stack.https("GET", "api", "/v1/health", None, None);
    assert_eq!(status, 200, "{body}");
    let health: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["database"], "ok", "{health}");
    // Plain HTTP only redirects to HTTPS.
    let redirect = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{redirect_url}",
        ])
        .arg("--resolve")
        .arg(format!("{}:{}:127.0.0.1", stack.host("api"), stack.http))
        .arg(format!(
            "http://{}:{}/v1/health",
            stack.host("api"),
            stack.http
        ))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&redirect.stdout),
        format!(
            "301 https://{}:{}/v1/health",
            stack.host("api"),
            stack.https
        )
    );
    // Any other Host is sent to the domain's front page, never to itself.
    for host in ["evil.example", "127.0.0.1", "api.evil.example"] {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{redirect_url}",
            ])
            .args(["-H", &format!("Host: {host}")])
            .arg(format!("http://127.0.0.1:{}/v1/health", stack.http))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("301 https://{}:{}/", stack.domain, stack.https),
            "Host: {host}"
        );
    }
    // A connection opened for one name does not serve another's host (the
    // registry's long timeouts are not the api's).
    let misdirected = stack.curl(
        "registry",
        "/v1/health",
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &format!("Host: {}", stack.host("api")),
        ],
    );
    assert_eq!(String::from_utf8_lossy(&misdirected.stdout), "421");
    attack_the_proxy(&stack);
    // The domain itself serves the front page.
    let (status, page) = stack.https("GET", "", "/", None, None);
    assert_eq!(status, 200, "{page}");

    let admin = format!("Bearer {}", stack.secret("admin-token"));
    let (status, _) = stack.https("GET", "api", "/v1/fleets", Some("Bearer wrong"), None);
    assert_eq!(status, 401);
    let (status, _) = stack.https("GET", "api", "/v1/fleets", None, None);
    assert_eq!(status, 401);
    let spec = stack.json("GET", "/v1/openapi.json", &admin, None, 200);
    assert!(spec["paths"]["/v1/registry/token"].is_object(), "{spec}");

    let fleet_a = stack.json(
        "POST",
        "/v1/fleets",
        &admin,
        Some(json!({"name": "fleet-a"})),
        201,
    );
    let fleet_b = stack.json(
        "POST",
        "/v1/fleets",
        &admin,
        Some(json!({"name": "fleet-b"})),
        201,
    );
    let fa = fleet_a["id"].to_string();
    let key = stack.json(
        "POST",
        &format!("/v1/fleets/{fa}/provisioning-keys"),
        &admin,
        Some(json!({"expires_in_secs": 3600})),
        201,
    );
    let expired = stack.json(
        "POST",
        &format!("/v1/fleets/{fa}/provisioning-keys"),
        &admin,
        Some(json!({"expires_in_secs": 0})),
        201,
    );
    // The WireGuard key of the test peer, registered with the device.
    let peer_bin = sibling("turtle-wg-peer");
    let keys: Value = serde_json::from_str(&ok(
        "turtle-wg-peer --generate-key",
        Command::new(&peer_bin)
            .arg("--generate-key")
            .output()
            .unwrap(),
    ))
    .unwrap();
    let (status, refused) = stack.https(
        "POST",
        "api",
        "/v1/devices/register",
        None,
        Some(&json!({"provisioning_key": expired["key"], "name": "late"})),
    );
    assert_eq!(status, 401, "{refused}");
    assert!(refused.contains("expired"), "{refused}");
    let device = stack.json(
        "POST",
        "/v1/devices/register",
        "",
        Some(json!({
            "provisioning_key": key["key"],
            "name": "dev-1",
            "wireguard_public_key": keys["public_key"],
        })),
        201,
    );
    let uuid = device["uuid"].as_str().unwrap().to_string();
    let device_auth = format!("Bearer {}", device["device_key"].as_str().unwrap());

    // A release pinned by digest, then the device's target state with ETag.
    let release = stack.json(
        "POST",
        &format!("/v1/fleets/{fa}/releases"),
        &admin,
        Some(json!({
            "compose": "services:\n  hello:\n    image: hello\n",
            "images": {"hello": format!("{}/fleet-a/hello@sha256:{}", stack.registry(), "a".repeat(64))},
        })),
        201,
    );
    let target = stack.json("GET", "/v1/device/target", &device_auth, None, 200);
    assert_eq!(target["release"]["id"], release["id"], "{target}");
    let auth_header = format!("Authorization: {device_auth}");
    let etag_out = stack.curl(
        "api",
        "/v1/device/target",
        &["-D", "-", "-o", "/dev/null", "-H", &auth_header],
    );
    let headers = String::from_utf8_lossy(&etag_out.stdout).to_string();
    let etag = headers
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .starts_with("etag:")
                .then(|| l[5..].trim().to_string())
        })
        .unwrap_or_else(|| panic!("no ETag in {headers}"));
    let if_none_match = format!("If-None-Match: {etag}");
    let not_modified = stack.curl(
        "api",
        "/v1/device/target",
        &[
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &auth_header,
            "-H",
            &if_none_match,
        ],
    );
    assert_eq!(String::from_utf8_lossy(&not_modified.stdout), "304");

    stack.json(
        "PUT",
        "/v1/device/state",
        &device_auth,
        Some(json!({"release": release["id"], "status": "running"})),
        204,
    );
    stack.json(
        "POST",
        "/v1/device/logs",
        &device_auth,
        Some(json!([{"service": "hello", "message": "hello from dev-1"}])),
        204,
    );
    let logs = stack.json(
        "GET",
        &format!("/v1/devices/{uuid}/logs"),
        &admin,
        None,
        200,
    );
    assert!(logs.to_string().contains("hello from dev-1"), "{logs}");
    let seen = stack.json("GET", &format!("/v1/devices/{uuid}"), &admin, None, 200);
    assert!(seen.to_string().contains("running"), "{seen}");

    // --- The registry, through the box's own engine (certs.d + hosts).
    let registry = stack.registry();
    let admin_cfg = tempfile::tempdir().unwrap();
    ok(
        "docker login as admin",
        docker_login(
            admin_cfg.path(),
            &registry,
            "admin",
            &stack.secret("admin-token"),
        ),
    );
    let pushed = format!("{registry}/fleet-a/hello:1");
    guard.0.push(pushed.clone());
    docker(&["tag", test_image(), &pushed]);
    ok(
        "docker push",
        docker_as(admin_cfg.path(), &["push", &pushed]),
    );
    docker(&["rmi", &pushed]);
    ok(
        "docker pull",
        docker_as(admin_cfg.path(), &["pull", &pushed]),
    );
    // Another fleet's image, pushed by the admin.
    let other = format!("{registry}/fleet-b/secret:1");
    guard.0.push(other.clone());
    docker(&["tag", test_image(), &other]);
    ok(
        "docker push fleet-b",
        docker_as(admin_cfg.path(), &["push", &other]),
    );
    docker(&["rmi", &other]);

    // A device pulls its fleet's images only, and pushes nothing.
    let device_cfg = tempfile::tempdir().unwrap();
    ok(
        "docker login as the device",
        docker_login(
            device_cfg.path(),
            &registry,
            &uuid,
            device["device_key"].as_str().unwrap(),
        ),
    );
    docker(&["rmi", &pushed]);
    ok(
        "device pulls its fleet's image",
        docker_as(device_cfg.path(), &["pull", &pushed]),
    );
    let denied = format!("{registry}/fleet-a/from-device:1");
    guard.0.push(denied.clone());
    docker(&["tag", test_image(), &denied]);
    let err = failed(
        "device push",
        &docker_as(device_cfg.path(), &["push", &denied]),
    );
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "{err}"
    );
    let err = failed(
        "device pull of fleet-b",
        &docker_as(device_cfg.path(), &["pull", &other]),
    );
    assert!(
        err.contains("denied") || err.contains("unauthorized"),
        "{err}"
    );
    let _ = fleet_b;

    // The registry trusts the api's signing key alone: a token the api gives
    // reads a repository, the same claims signed by another key under
    // Turtle's root (a leaf `turtle ca issue` hands out) are refused.
    let service = stack.registry();
    let tags = "/v2/fleet-a/hello/tags/list";
    let (status, body) = stack.https(
        "GET",
        "api",
        &format!("/v1/registry/token?service={service}&scope=repository:fleet-a/hello:pull"),
        Some(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD
                .encode(format!("admin:{}", stack.secret("admin-token")))
        )),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let token: Value = serde_json::from_str(&body).unwrap();
    let bearer = format!("Bearer {}", token["token"].as_str().unwrap());
    let (status, body) = stack.https("GET", "registry", tags, Some(&bearer), None);
    assert_eq!(status, 200, "the api's token reads the repository: {body}");
    // The same claims made here and signed with the api's key pass (so the
    // token below is well-formed), signed with a CA leaf's key they do not.
    let secrets = env.state_dir().join("secrets").join(&env.project);
    let own = forge_token(
        &secrets.join("registry-token.key"),
        &secrets.join("registry-token.crt"),
        &service,
        "fleet-a/hello",
    );
    let (status, body) = stack.https("GET", "registry", tags, Some(&own), None);
    assert_eq!(status, 200, "a token signed with the api's key: {body}");
    let leaf = env.box_ok(&["ca", "issue", &format!("forger.{}", stack.domain)]);
    let leaf = Path::new(leaf.trim());
    let forged = forge_token(
        &leaf.join("key.pem"),
        &leaf.join("fullchain.pem"),
        &service,
        "fleet-a/hello",
    );
    let (status, body) = stack.https("GET", "registry", tags, Some(&forged), None);
    assert_eq!(status, 401, "a token signed by another leaf: {body}");

    // --- The builder: a context in, a digest out, pullable from the registry.
    let ctx = tempfile::tempdir().unwrap();
    let marker = format!("built-{}", std::process::id());
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {}\nRUN echo {marker} > /marker\n", test_image()),
    )
    .unwrap();
    let tarball = ctx.path().join("ctx.tar");
    ok(
        "tar",
        Command::new("tar")
            .arg("-C")
            .arg(ctx.path())
            .args(["-cf"])
            .arg(&tarball)
            .arg("Dockerfile")
            .output()
            .unwrap(),
    );
    let builder_token = stack.secret("builder-token");
    let builder_auth = format!("Authorization: Bearer {builder_token}");
    let context = format!("@{}", tarball.display());
    let built = stack.curl(
        "builder",
        "/v1/builds?tag=fleet-a/built:1",
        &[
            "--max-time",
            "300",
            "-H",
            &builder_auth,
            "-H",
            "Content-Type: application/x-tar",
            "--data-binary",
            &context,
        ],
    );
    let stream = ok("build", built);
    assert!(
        stream.contains(&marker),
        "the build log is streamed: {stream}"
    );
    let last: Value = serde_json::from_str(stream.trim().lines().last().unwrap()).unwrap();
    let digest = last["digest"]
        .as_str()
        .unwrap_or_else(|| panic!("no digest: {stream}"))
        .to_string();
    let by_digest = format!("{registry}/fleet-a/built@{digest}");
    guard.0.push(format!("{registry}/fleet-a/built:1"));
    guard.0.push(by_digest.clone());
    let _ = docker_as(
        admin_cfg.path(),
        &["rmi", &format!("{registry}/fleet-a/built:1")],
    );
    ok(
        "pull the built image",
        docker_as(admin_cfg.path(), &["pull", &by_digest]),
    );
    let run = docker(&["run", "--rm", &by_digest, "cat", "/marker"]);
    assert_eq!(run.trim(), marker);

    // --- WireGuard: a peer in a container completes a handshake with the
    // vpn and exchanges traffic both ways through the tunnel.
    let vpn = &device["vpn"];
    let address = vpn["address"].as_str().unwrap().to_string();
    let key_file = env.dir.path().join("wg.key");
    std::fs::write(&key_file, keys["private_key"].as_str().unwrap()).unwrap();
    let peer_name = format!("{}-wgpeer", env.project);
    let peer = Command::new("docker")
        .args([
            "run",
            "--rm",
            "--name",
            &peer_name,
            "--add-host",
            "vpn-host:host-gateway",
        ])
        .arg("-v")
        .arg(format!("{}:/wg-peer:ro", peer_bin.display()))
        .arg("-v")
        .arg(format!("{}:/wg.key:ro", key_file.display()))
        .args([debian_image(), "/wg-peer", "--endpoint"])
        .arg(format!("vpn-host:{}", stack.vpn))
        .args([
            "--server-public-key",
            vpn["server_public_key"].as_str().unwrap(),
        ])
        .args(["--private-key-file", "/wg.key", "--address", &address])
        .args(["--server-address", vpn["server_address"].as_str().unwrap()])
        .args(["--serve-secs", "15", "--timeout", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the WireGuard peer");
    let _peer_guard = ContainerGuard(peer_name.clone());
    // The backend reaches the device through the tunnel: once the peer's
    // own ping got through, the vpn container pings it back.
    wait_until(
        "the vpn reaches the device through the tunnel",
        Duration::from_secs(40),
        || {
            Command::new("docker")
                .args([
                    "exec",
                    &env.container("vpn"),
                    "ping",
                    "-c",
                    "1",
                    "-W",
                    "1",
                    &address,
                ])
                .output()
                .is_ok_and(|o| o.status.success())
        },
    );
    let out = peer.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "peer: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The peer's own ping was answered through the tunnel, and it answered
    // the vpn's.
    assert!(text.contains(r#""event":"handshake""#), "{text}");
    assert!(text.contains(r#""event":"ping""#), "{text}");
    assert!(text.contains(r#""event":"echo""#), "{text}");

    // --- Kill the db: the api says so, the stack recovers, data stays.
    let db_before = env.id("db").unwrap();
    // The database crashes (SIGKILL to postgres from the host, as the OOM
    // killer would); `docker kill` would be a deliberate stop, which the
    // supervisor respects.
    let pid = env.state("db").unwrap()["Pid"].as_i64().unwrap();
    turtle_e2e::kill9(pid);
    wait_until(
        "the api to report the database down",
        Duration::from_secs(30),
        || stack.https("GET", "api", "/v1/health", None, None).0 == 503,
    );
    wait_until("the stack to recover", Duration::from_secs(180), || {
        stack.all_healthy() && stack.https("GET", "api", "/v1/health", None, None).0 == 200
    });
    assert_eq!(
        env.id("db").unwrap(),
        db_before,
        "restarted, not re-created: the data volume stays"
    );
    let fleets = stack.json("GET", "/v1/fleets", &admin, None, 200);
    assert!(fleets.to_string().contains("fleet-a"), "{fleets}");

    // --- down, then up: database, registry blobs and CA all still there.
    let root_before = std::fs::read_to_string(&stack.root).unwrap();
    ok("turtle down", stack.down());
    assert!(env.id("api").is_none());
    ok("turtle up again", stack.up());
    assert_eq!(env.box_ok(&["ca", "export"]), root_before);
    let fleets = stack.json("GET", "/v1/fleets", &admin, None, 200);
    assert!(fleets.to_string().contains("fleet-b"), "{fleets}");
    let seen = stack.json("GET", &format!("/v1/devices/{uuid}"), &admin, None, 200);
    assert!(seen.to_string().contains("dev-1"), "{seen}");
    docker(&["rmi", &pushed]);
    ok(
        "pull after down and up",
        docker_as(admin_cfg.path(), &["pull", &pushed]),
    );
}

/// A registry token with the api's claims (issuer, audience, pull and
/// push), signed with the key in `key` (PKCS#8 PEM), the certificates of
/// `chain` in `x5c`.
fn forge_token(key: &Path, chain: &Path, service: &str, repository: &str) -> String {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let chain: Vec<String> = pem_blocks(&std::fs::read_to_string(chain).unwrap())
        .iter()
        .map(|der| STANDARD.encode(der))
        .collect();
    let key_der = pem_blocks(&std::fs::read_to_string(key).unwrap()).remove(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let header = json!({"typ": "JWT", "alg": "ES256", "x5c": chain});
    let claims = json!({
        "iss": "turtle-api", "sub": "admin", "aud": service,
        "exp": now + 300, "nbf": now - 10, "iat": now, "jti": "forged",
        "access": [{"type": "repository", "name": repository, "actions": ["pull", "push"]}],
    });
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let rng = ring::rand::SystemRandom::new();
    let signer = ring::signature::EcdsaKeyPair::from_pkcs8(
        &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &key_der,
        &rng,
    )
    .unwrap();
    let sig = signer.sign(&rng, input.as_bytes()).unwrap();
    format!("Bearer {input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
}

/// The DER contents of each PEM block in `text`.
fn pem_blocks(text: &str) -> Vec<Vec<u8>> {
    use base64::Engine;
    text.split("-----BEGIN ")
        .skip(1)
        .map(|block| {
            let body: String = block
                .lines()
                .skip(1)
                .take_while(|l| !l.starts_with("-----END"))
                .collect();
            base64::engine::general_purpose::STANDARD
                .decode(body)
                .unwrap()
        })
        .collect()
}

/// Removes the images a test tagged or pulled, even when it fails.
#[derive(Default)]
struct ImageGuard(Vec<String>);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        for i in &self.0 {
            let _ = Command::new("docker").args(["rmi", "-f", i]).output();
        }
    }
}

struct ContainerGuard(String);

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rm", "-f", &self.0]).output();
    }
}

/// What each service runs as and may do: (service, the container's user,
/// the capabilities added back, the secrets it holds). Every one drops all
/// capabilities, cannot gain privileges and has a read-only root file system.
const CONFINEMENT: [(&str, &str, &[&str], &[&str]); 6] = [
    // Starts as root only to hand the leaf's key to uid 10002 (see below).
    ("proxy", "", &["SETUID", "SETGID"], &[]),
    (
        "api",
        "10001:10001",
        &[],
        &[
            "admin-token",
            "builder-token",
            "db-password",
            "registry-token.crt",
            "registry-token.key",
            "vpn-key.pub",
            "vpn-token",
        ],
    ),
    ("db", "postgres", &[], &["db-password"]),
    ("registry", "docker-registry", &[], &["registry-token.crt"]),
    ("builder", "0:0", &[], &["admin-token", "builder-token"]),
    ("vpn", "0:0", &["NET_ADMIN"], &["vpn-key", "vpn-token"]),
];

/// A field of `/proc/<pid>/status` (`Uid:` gives the real uid first).
fn proc_status(pid: i64, field: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Each service's container is confined as [`CONFINEMENT`] says, its main
/// process runs with the uid and the capabilities it should, and it holds
/// only its own secrets.
fn least_privilege(env: &Env) {
    for (service, user, cap_add, secrets) in CONFINEMENT {
        let c = turtle_e2e::inspect(&env.container(service)).unwrap();
        let hc = &c["HostConfig"];
        assert_eq!(hc["Privileged"], false, "{service}");
        assert_ne!(hc["NetworkMode"], "host", "{service}");
        assert_eq!(c["Config"]["User"], user, "{service}: User");
        assert_eq!(hc["ReadonlyRootfs"], true, "{service}: ReadonlyRootfs");
        assert_eq!(hc["CapDrop"], json!(["ALL"]), "{service}: CapDrop");
        let added = hc["CapAdd"].as_array().cloned().unwrap_or_default();
        assert_eq!(
            added,
            json!(cap_add).as_array().unwrap().clone(),
            "{service}: CapAdd"
        );
        assert!(
            hc["SecurityOpt"]
                .as_array()
                .is_some_and(|o| o.contains(&json!("no-new-privileges:true"))),
            "{service}: SecurityOpt {}",
            hc["SecurityOpt"]
        );
        // The process itself: HAProxy runs as uid 10002 with no capability
        // left, the vpn with NET_ADMIN (bit 12) alone, the rest with none.
        let pid = c["State"]["Pid"].as_i64().unwrap();
        let uid: u32 = proc_status(pid, "Uid:").parse().unwrap();
        match service {
            "proxy" => assert_eq!(uid, 10002, "HAProxy's uid"),
            "api" => assert_eq!(uid, 10001, "the api's uid"),
            "builder" | "vpn" => assert_eq!(uid, 0, "{service}'s uid"),
            _ => assert_ne!(uid, 0, "{service} runs as its image's user"),
        }
        let want_caps = if service == "vpn" { 1u64 << 12 } else { 0 };
        let caps = u64::from_str_radix(&proc_status(pid, "CapEff:"), 16).unwrap();
        assert_eq!(
            caps, want_caps,
            "{service}: effective capabilities {caps:#x}"
        );
        // Only the secrets it lists, and nothing else, are in the container.
        let held = docker(&[
            "exec",
            &env.container(service),
            "sh",
            "-c",
            "ls -1 /run/turtle/secrets 2>/dev/null; true",
        ]);
        let held: Vec<&str> = held.lines().collect();
        assert_eq!(held, secrets, "{service}: the secrets it holds");
    }
    // E.g. the proxy cannot read the database's password.
    let read = Command::new("docker")
        .args(["exec", &env.container("proxy")])
        .args(["cat", "/run/turtle/secrets/db-password"])
        .output()
        .unwrap();
    assert!(!read.status.success(), "the proxy read the db password");
}

/// Starvation of the proxy, as an attacker on the box would try it: 300
/// TCP connections to the HTTPS port that never start TLS, and a request
/// whose body trickles in a byte a second, while health requests must keep
/// being answered.
fn attack_the_proxy(stack: &Stack) {
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

type Tls = rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>;

/// A device registration (the api reads its body first), TLS done and head
/// sent, whose body of 1000 bytes is still to come.
fn slow_body_start(addr: std::net::SocketAddr, host: &str, root: &str) -> Tls {
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
fn slow_body(mut tls: Tls) -> String {
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
