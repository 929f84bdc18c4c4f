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

#[path = "stack/attacks.rs"]
mod attacks;
#[path = "stack/confinement.rs"]
mod confinement;
#[path = "stack/fixture.rs"]
mod fixture;
#[path = "stack/tokens.rs"]
mod tokens;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use turtle_e2e::{debian_image, docker, test_image, wait_until};

use attacks::*;
use confinement::*;
use fixture::*;
use tokens::*;

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
    // `up --wait` returns once every service's own check passed (probed,
    // issue 13); the engine's status follows at its next interval.
    wait_until(
        "the engine to report every service healthy",
        Duration::from_secs(60),
        || stack.all_healthy(),
    );
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
