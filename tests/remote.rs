//! Remote push end to end (issue 14): one daemon is the target box, with
//! its own state directory and CA and its remote listener on 127.0.0.1; the
//! CLI pushes to it over TLS as another machine would (its own state
//! directory and config). Both share this machine's engine, so the image
//! a push must bring is removed from the engine between making the bundle
//! and sending it (`push --to --bundle`).
//!
//! Shown: no TCP listener without `remote.listen`; refused with nothing
//! loaded (no image, no project, no release, an empty spool): a wrong
//! token, a bundle signed by a key the box does not trust, a tampered
//! bundle, a stream cut short, a box the client's CA does not vouch for;
//! the local API not served on the listener; a signed bundle accepted,
//! its image loaded and its project running as a committed release; and
//! `push --to` streaming a bundle made from the local engine.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use turtle_e2e::{Env, IMAGE, docker, free_port, wait_until};

/// The target box's config: no mDNS, no tuning, no shedding.
const BOX_CONFIG: &str =
    "domain: turtle-test.local\nmdns: {enabled: false}\ndevice: {tune: false, shed: false}\n";

/// Removes the test's own image even when the test fails.
struct ImageGuard(String);

impl Drop for ImageGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// The image ID of `reference`, `None` when the engine lacks it.
fn image_id(reference: &str) -> Option<String> {
    let out = Command::new("docker")
        .args(["image", "inspect", "-f", "{{.Id}}", reference])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A tiny image of this test's own: the busybox test image with a label
/// naming the project (so its ID is unique, and the harness removes it).
fn build_image(env: &Env) -> (String, ImageGuard) {
    let tag = format!("turtle-remote-e2e:{}", env.project);
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", &tag, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    write!(
        child.stdin.take().unwrap(),
        "FROM {IMAGE}\nLABEL com.docker.compose.project={p} io.turtle.test.remote={p}\n",
        p = env.project
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (tag.clone(), ImageGuard(tag))
}

/// The TCP ports process `pid` listens on (its sockets in LISTEN state).
fn listening_ports(pid: u32) -> Vec<u16> {
    let mut inodes = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        if let Ok(link) = std::fs::read_link(fd.path()) {
            let link = link.to_string_lossy().into_owned();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|s| s.strip_suffix(']'))
            {
                inodes.push(inode.to_string());
            }
        }
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // local_address st ... inode
            if f.len() > 9 && f[3] == "0A" && inodes.iter().any(|i| i == f[9]) {
                let port = f[1].rsplit(':').next().unwrap();
                ports.push(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

/// The pushing side: the turtle binary with a state directory and config
/// of its own (nothing of the box's), in the test's directory.
struct Pusher {
    dir: PathBuf,
}

impl Pusher {
    fn new(env: &Env) -> Self {
        let dir = env.dir.path().join("laptop");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("turtle.yaml"), BOX_CONFIG).unwrap();
        Self { dir }
    }

    fn run(&self, cwd: &Path, args: &[&str]) -> Output {
        Command::new(turtle_e2e::turtle_bin())
            .args(args)
            .current_dir(cwd)
            .env("TURTLE_STATE_DIR", self.dir.join("state"))
            .env("TURTLE_CONFIG", self.dir.join("turtle.yaml"))
            .env_remove("TURTLE_SOCKET")
            .env_remove("TURTLE_REMOTE_TOKEN")
            .env_remove("TURTLE_REMOTE_CA")
            .env_remove("TURTLE_BUNDLE_KEY")
            .env_remove("COMPOSE_PROJECT_NAME")
            .stdin(Stdio::null())
            .output()
            .expect("run turtle")
    }

    /// A key pair in the pusher's directory; returns its secret key path
    /// and the public key.
    fn keygen(&self, name: &str) -> (PathBuf, String) {
        let path = self.dir.join(name);
        let out = self.run(&self.dir, &["bundle", "keygen", path.to_str().unwrap()]);
        assert!(out.status.success(), "{}", text(&out));
        let public = String::from_utf8_lossy(&out.stdout).trim().to_string();
        assert!(public.starts_with("ed25519:"), "{public}");
        (path, public)
    }
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Asserts a run failed with exit code `code` and its stderr holds `what`.
fn refused(out: &Output, code: i32, what: &[&str]) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
    let err = String::from_utf8_lossy(&out.stderr);
    for w in what {
        assert!(err.contains(w), "missing {w:?} in:\n{}", text(out));
    }
}

/// The target box: a daemon whose config turns remote push on.
struct Target {
    port: u16,
    url: String,
    root: PathBuf,
    token: String,
}

fn start_box(env: &mut Env, trusted: &[&str]) -> Target {
    let port = free_port();
    let keys: Vec<String> = trusted.iter().map(|k| format!("\"{k}\"")).collect();
    env.config(&format!(
        "{BOX_CONFIG}remote: {{listen: \"127.0.0.1:{port}\"}}\nbundles: {{trusted_keys: [{}]}}\n",
        keys.join(", ")
    ));
    env.start_daemon();
    // The daemon binds its listener before it serves the API: once the API
    // answers, the listener is there or never will be.
    env.api_get("/v1/ping");
    let pid = env.daemon_pid().unwrap();
    assert!(
        listening_ports(pid).contains(&port),
        "the daemon does not listen on {port}: {}",
        env.daemon_log()
    );
    let root = env.dir.path().join("box-root.pem");
    std::fs::write(&root, env.box_ok(&["ca", "export"])).unwrap();
    let token = env.box_ok(&["remote", "token"]).trim().to_string();
    assert_eq!(token.len(), 64, "{token}");
    Target {
        port,
        url: format!("https://127.0.0.1:{port}"),
        root,
        token,
    }
}

/// No image of a refused push in the engine, nothing else either.
fn assert_nothing_loaded(env: &Env, image: &str) {
    assert_eq!(image_id(image), None, "a refused push loaded {image}");
    assert_nothing_applied(env);
}

/// What the box holds of the project: none of it, after a refusal.
fn assert_nothing_applied(env: &Env) {
    let projects = env.api_get("/v1/projects");
    assert!(
        !projects.contains(&env.project),
        "a refused push applied the project: {projects}"
    );
    let releases = env.api_get(&format!("/v1/projects/{}/releases", env.project));
    assert!(
        !releases.contains("\"id\""),
        "a refused push recorded a release: {releases}"
    );
    let spool = env.state_dir().join("remote/incoming");
    wait_until(
        "the refused bundle's spool to be removed",
        Duration::from_secs(10),
        || std::fs::read_dir(&spool).unwrap().count() == 0,
    );
}

/// One raw HTTP/1.1 request over TLS to the box's listener (no client in
/// between): `body_sent` of the body's bytes are written, then the
/// connection is closed for writing. Returns the status and the body.
fn raw(b: &Target, head: &str, body: &[u8], body_sent: usize) -> (u16, String) {
    let root = std::fs::read_to_string(&b.root).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", b.port).parse().unwrap();
    let mut tls = turtle_e2e::tls::connect(addr, "127.0.0.1", &root).unwrap();
    tls.sock
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    tls.write_all(head.as_bytes()).unwrap();
    tls.write_all(&body[..body_sent]).unwrap();
    tls.flush().unwrap();
    if body_sent < body.len() {
        // The box may have answered and closed already (a refusal before
        // the body): then there is nothing left to close.
        tls.conn.send_close_notify();
        let _ = tls.flush();
        let _ = tls.sock.shutdown(std::net::Shutdown::Write);
    }
    let mut out = Vec::new();
    let _ = tls.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out).into_owned();
    let status = out
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {out:?}"));
    (status, out.split_once("\r\n\r\n").unwrap().1.to_string())
}

#[test]
fn a_remote_push_brings_its_image_and_every_refusal_loads_nothing() {
    let mut env = Env::new("remote");
    let (image, _guard) = build_image(&env);
    env.compose(&format!(
        "services:\n  app:\n    image: {image}\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n"
    ));
    let pusher = Pusher::new(&env);
    let (key, public) = pusher.keygen("release-key");
    let (other_key, _) = pusher.keygen("other-key");
    let project_dir = env.dir.path().to_path_buf();

    // Without remote.listen, the daemon holds no TCP listener at all.
    env.config(BOX_CONFIG);
    env.start_daemon();
    env.api_get("/v1/ping");
    let pid = env.daemon_pid().unwrap();
    assert_eq!(
        listening_ports(pid),
        Vec::<u16>::new(),
        "a daemon without remote.listen listens on TCP"
    );
    assert!(!env.daemon_log().contains("remote push listening"));
    env.stop_daemon();

    let b = start_box(&mut env, &[&public]);

    // The pushing side makes its bundles while it has the image, then the
    // image leaves the engine: only a push can bring it back.
    let bundle = |key: &Path, name: &str| {
        let out_path = pusher.dir.join(name);
        let out = pusher.run(
            &project_dir,
            &[
                "bundle",
                "create",
                "-p",
                &env.project,
                "--key",
                key.to_str().unwrap(),
                "-o",
                out_path.to_str().unwrap(),
            ],
        );
        assert!(out.status.success(), "{}", text(&out));
        out_path
    };
    let good = bundle(&key, "good.tbundle");
    let untrusted = bundle(&other_key, "untrusted.tbundle");
    let mut bytes = std::fs::read(&good).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let tampered = pusher.dir.join("tampered.tbundle");
    std::fs::write(&tampered, &bytes).unwrap();
    let id = image_id(&image).expect("the built image");
    Command::new("docker")
        .args(["rmi", &image])
        .output()
        .unwrap();
    assert_eq!(image_id(&image), None);

    let push_file = |file: &Path, token: &str, root: &Path| {
        pusher.run(
            &project_dir,
            &[
                "push",
                "--to",
                &b.url,
                "--token",
                token,
                "--ca",
                root.to_str().unwrap(),
                "--bundle",
                file.to_str().unwrap(),
                // The gate's window: short, the test is not about it.
                "--settle",
                "2s",
            ],
        )
    };

    // A wrong token: 401 before anything is sent.
    let out = push_file(&good, "0123456789abcdef", &b.root);
    refused(&out, 1, &["401", "no valid token"]);
    assert_nothing_loaded(&env, &image);

    // A bundle signed by a key the box does not trust.
    let out = push_file(&untrusted, &b.token, &b.root);
    refused(
        &out,
        1,
        &["422", "trusted key check failed", "nothing was loaded"],
    );
    assert_nothing_loaded(&env, &image);

    // A byte flipped in the image data on the way.
    let out = push_file(&tampered, &b.token, &b.root);
    refused(&out, 1, &["422", "part check failed", "nothing was loaded"]);
    assert_nothing_loaded(&env, &image);

    // A client that trusts another CA refuses the box's certificate.
    let stranger = Env::new("remote-other-ca");
    let other_root = stranger.dir.path().join("other-root.pem");
    std::fs::write(&other_root, stranger.box_ok(&["ca", "export"])).unwrap();
    let out = push_file(&good, &b.token, &other_root);
    refused(&out, 1, &["TLS", "UnknownIssuer"]);
    assert_nothing_loaded(&env, &image);

    // Raw requests: the token before anything, the local API absent, a
    // stream cut short.
    let good_bytes = std::fs::read(&good).unwrap();
    let post = |token: &str, len: usize| {
        format!(
            "POST /v1/bundles HTTP/1.1\r\nHost: box\r\nAuthorization: Bearer {token}\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
        )
    };
    let (status, answer) = raw(&b, &post("wrong", good_bytes.len()), &good_bytes, 0);
    assert_eq!(status, 401, "{answer}");
    let (status, answer) = raw(
        &b,
        &format!(
            "GET /v1/projects HTTP/1.1\r\nHost: box\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            b.token
        ),
        b"",
        0,
    );
    assert_eq!(status, 404, "the local API is served remotely: {answer}");
    let (status, answer) = raw(
        &b,
        &post(&b.token, good_bytes.len()),
        &good_bytes,
        good_bytes.len() / 2,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(answer.contains("ended after"), "{answer}");
    assert_nothing_loaded(&env, &image);

    // The genuine bundle: loaded, and applied as a release.
    let out = push_file(&good, &b.token, &b.root);
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signed by trusted key"), "{err}");
    assert!(err.contains("is committed"), "{err}");
    assert_eq!(image_id(&image).as_deref(), Some(id.as_str()));
    wait_until(
        "app to run from the pushed image",
        Duration::from_secs(60),
        || env.running("app"),
    );
    let releases: serde_json::Value =
        serde_json::from_str(&env.api_get(&format!("/v1/projects/{}/releases", env.project)))
            .unwrap();
    assert_eq!(releases[0]["outcome"], "committed", "{releases}");
    assert!(
        releases[0]["origin"]["bundle"]["file"]
            .as_str()
            .is_some_and(|f| f.contains("remote push from 127.0.0.1")),
        "{releases}"
    );
}

#[test]
fn push_to_streams_a_bundle_made_from_the_local_engine() {
    let mut env = Env::new("remote-stream");
    let (image, _guard) = build_image(&env);
    env.compose(&format!(
        "services:\n  app:\n    image: {image}\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n"
    ));
    let pusher = Pusher::new(&env);
    let (key, public) = pusher.keygen("release-key");
    let (other_key, _) = pusher.keygen("other-key");
    let project_dir = env.dir.path().to_path_buf();
    let b = start_box(&mut env, &[&public]);
    let push = |extra: &[&str]| {
        let mut args = vec![
            "push",
            "-p",
            &env.project,
            "--to",
            &b.url,
            "--ca",
            b.root.to_str().unwrap(),
            "--settle",
            "2s",
        ];
        args.extend_from_slice(extra);
        let mut cmd = Command::new(turtle_e2e::turtle_bin());
        cmd.args(&args)
            .current_dir(&project_dir)
            .env("TURTLE_STATE_DIR", pusher.dir.join("state"))
            .env("TURTLE_CONFIG", pusher.dir.join("turtle.yaml"))
            .env("TURTLE_REMOTE_TOKEN", &b.token)
            .env_remove("TURTLE_SOCKET")
            .env_remove("TURTLE_BUNDLE_KEY")
            .stdin(Stdio::null());
        cmd.output().unwrap()
    };

    // What the box would refuse is refused before a bundle is made.
    refused(&push(&[]), 2, &["accepts only bundles signed by", "--key"]);
    refused(
        &push(&["--key", other_key.to_str().unwrap()]),
        1,
        &["does not trust key"],
    );
    assert_nothing_applied(&env);

    let out = push(&[
        "--key",
        key.to_str().unwrap(),
        "--release-version",
        "1.0",
        "--notes",
        "streamed",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("has no release of"), "{err}");
    assert!(err.contains("is committed"), "{err}");
    wait_until("app to run", Duration::from_secs(60), || env.running("app"));

    // The box answers its current release over the listener (what a delta
    // bundle starts from), and the next push is a delta against it.
    let (status, answer) = raw(
        &b,
        &format!(
            "GET /v1/projects/{}/release HTTP/1.1\r\nHost: box\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            env.project, b.token
        ),
        b"",
        0,
    );
    assert_eq!(status, 200, "{answer}");
    let current: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(current["release"]["version"], "1.0", "{answer}");
    assert_eq!(current["release"]["notes"], "streamed", "{answer}");
    // The layers of the image it runs, as the box's engine has them.
    let id = image_id(&image).unwrap();
    let layers = docker(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", &id]);
    assert_eq!(current["layers"][&id].to_string(), layers, "{answer}");
    let out = push(&["--key", key.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    eprintln!("{err}");
    // A delta against the box's release: every layer it has left out.
    assert!(err.contains("a delta against release"), "{err}");
    assert!(err.contains("(version 1.0)"), "{err}");
    assert!(err.contains("is committed"), "{err}");
}
