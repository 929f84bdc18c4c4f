//! The hand-over strategy against the real engine (`handover::replace`),
//! with its port forwarder (`forward`).
//!
//! - Under load: two HTTP clients poll the service through its published
//!   port (loopback, a new connection per request, one request at a time
//!   each: `GET /` at most 20 a second, and `GET /cgi-bin/v`, which takes
//!   200 ms, so that one is nearly always in flight) while the service is
//!   handed over to a new image that serves at once but is ready only 2 s
//!   later: no request fails, and each client's answers go from the old
//!   version to the new one and never back (nothing reached the new
//!   container before it was ready, nothing was cut in the old one). Without
//!   the steering of the forwarder the answers alternate; without its drain
//!   a slow request is cut (both checked by mutation when this was written).
//!   The same change made by `docker compose up -d` (`docker-compose` v1
//!   where there is no v2, as here) is measured with the same clients and
//!   printed beside it (no bound on compose's number).
//! - The old container stops when the new one writes its hand-over file
//!   (not before), and after the timeout when it is never healthy but the
//!   label asks for a timeout; a new container that turns unhealthy, or
//!   exits at once, fails the hand-over naming the service, and the old one
//!   still serves.
//!
//! The forwarder's image is made by the plan as in production
//! (`forward::make_image`: the running executable and its libraries), so
//! here the executable is this test binary, which runs the forwarder when
//! started with its routes in the environment ([`forwarder_entry_point`]).
//! Each test removes its containers, network and images even when it
//! fails; the tests run one at a time (few containers at once).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use turtle_compose::{LoadOptions, Project, load_in_memory};
use turtle_engine::docker::Docker;
use turtle_engine::{Engine, ExecSpec, State};
use turtle_reconcile::plan::{Options as PlanOptions, plan};
use turtle_runtime::apply::{self, Event, Options};
use turtle_runtime::handover::{self, Forwarder};
use turtle_runtime::release::locks;

use common::{Cleanup, docker, test_image, unique};

/// Not a test: the forwarder of the other tests. Their forwarder image
/// holds this binary, started as `/turtle forwarder_entry_point --exact`
/// with `TURTLE_FORWARD` set; without it, this returns at once.
#[test]
fn forwarder_entry_point() {
    if std::env::var_os(turtle_runtime::forward::ENV_ROUTES).is_none() {
        return;
    }
    match turtle_runtime::forward::serve_from_env_blocking() {
        Ok(()) => std::process::exit(0),
        Err(e) => {
            eprintln!("forwarder: {e}");
            std::process::exit(1);
        }
    }
}

/// One engine test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn forwarder(image: &str) -> Forwarder {
    Forwarder {
        image: image.to_string(),
        entrypoint: vec![
            turtle_runtime::forward::IMAGE_EXE.into(),
            "forwarder_entry_point".into(),
            "--exact".into(),
            "--nocapture".into(),
            "--test-threads=1".into(),
        ],
    }
}

/// Builds `tag` from the test image with `index.html` saying `version`,
/// and `/cgi-bin/v` saying it after 200 ms (a request long enough to be in
/// flight when a container stops). Files are copied in (no `RUN`: the build
/// needs no container).
fn web_image(tag: &str, version: &str) {
    use std::os::unix::fs::PermissionsExt;
    let ctx = tempfile::tempdir().unwrap();
    let www = ctx.path().join("www");
    std::fs::create_dir_all(www.join("cgi-bin")).unwrap();
    std::fs::write(www.join("index.html"), format!("{version}\n")).unwrap();
    let cgi = www.join("cgi-bin/v");
    std::fs::write(
        &cgi,
        "#!/bin/sh\nsleep 0.2\necho Content-Type: text/plain\necho\ncat /var/www/index.html\n",
    )
    .unwrap();
    std::fs::set_permissions(&cgi, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        format!("FROM {}\nCOPY www/ /var/www/\n", test_image()),
    )
    .unwrap();
    let out = Command::new("docker")
        .args(["build", "-q", "-t", tag])
        .arg(ctx.path())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .expect("docker build");
    assert!(
        out.status.success(),
        "docker build {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The compose file of these tests: one web service, published on
/// loopback, with `extra` (labels, healthcheck) under it. It serves at once
/// and is ready (`/tmp/ready`, which [`HEALTHY`] checks) 2 s later, as an
/// application that warms up.
fn compose_text(extra: &str) -> String {
    format!(
        r#"services:
  web:
    image: ${{WEB_IMAGE}}
    command: ["sh", "-c", "httpd -p 80 -h /var/www && sleep 2 && touch /tmp/ready && exec sleep 86400"]
    init: true
    ports: ["127.0.0.1:${{WEB_PORT}}:80"]
{extra}"#
    )
}

const HEALTHY: &str = r#"    healthcheck:
      test: ["CMD-SHELL", "test -f /tmp/ready && wget -q -O /dev/null http://127.0.0.1/"]
      interval: 1s
      timeout: 2s
      retries: 3
"#;

fn load(dir: &Path, project: &str, text: &str, image: &str, port: u16) -> Project {
    let opts = LoadOptions {
        project_name: Some(project.parse().unwrap()),
        env: [
            ("WEB_IMAGE".to_string(), image.to_string()),
            ("WEB_PORT".to_string(), port.to_string()),
        ]
        .into(),
        cwd: dir.to_path_buf(),
        ..Default::default()
    };
    load_in_memory(&opts, [(PathBuf::from("compose.yaml"), text.to_string())])
        .expect("the test's compose file loads")
        .project
}

/// The project as the supervisor deploys it (the parts hand-over needs).
fn deployed(p: &Project, run_dir: &Path, fwd: &Forwarder) -> Project {
    let p = locks::decorate(p, run_dir);
    locks::prepare(&p, run_dir).unwrap();
    handover::decorate(&p, fwd, Some(run_dir))
}

fn options() -> Options {
    Options {
        dependency_timeout: Duration::from_secs(60),
        ..Default::default()
    }
}

/// Prints what an update says.
fn sink() -> impl Fn(Event) + Send + Sync {
    |e| {
        if let Event::Release { line } | Event::Progress { line, .. } = &e {
            eprintln!("  {line}");
        }
    }
}

async fn up(engine: &Docker, p: &Project) {
    let observed = turtle_reconcile::observe::observe(engine, p).await.unwrap();
    let plan = plan(p, &observed, &PlanOptions::default()).unwrap();
    apply::apply(engine, p, &plan, &options(), &sink())
        .await
        .expect("up");
}

/// The steps a plan still has for `services` (after a hand-over: none).
async fn left_to_do(engine: &Docker, p: &Project, services: &[&str]) -> Vec<String> {
    use turtle_reconcile::plan::Action;
    let observed = turtle_reconcile::observe::observe(engine, p).await.unwrap();
    plan(p, &observed, &PlanOptions::default())
        .unwrap()
        .steps
        .iter()
        .filter(|s| match &s.action {
            Action::RemoveContainer { service, .. }
            | Action::CreateContainer { service, .. }
            | Action::RecreateContainer { service, .. }
            | Action::StartContainer { service, .. }
            | Action::RestartContainer { service, .. }
            | Action::BuildImage { service, .. } => services.contains(&service.as_str()),
            _ => false,
        })
        .map(|s| s.action.to_string())
        .collect()
}

/// One GET of `/` through the published port.
async fn get(port: u16) -> Result<String, String> {
    get_path(port, "/").await
}

/// One GET through the published port, on a new connection: the body, or
/// why it failed.
async fn get_path(port: u16, path: &str) -> Result<String, String> {
    let once = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: web\r\n\r\n").as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)
            .await
            .map_err(|e| format!("read: {e}"))?;
        let answer = String::from_utf8_lossy(&answer).to_string();
        // A CGI's own headers end in a bare "\n\n".
        let (head, body) = [
            answer.find("\r\n\r\n").map(|i| (i, 4)),
            answer.find("\n\n").map(|i| (i, 2)),
        ]
        .into_iter()
        .flatten()
        .min()
        .map(|(i, n)| (&answer[..i], &answer[i + n..]))
        .ok_or_else(|| format!("no HTTP answer: {answer:?}"))?;
        if !head.starts_with("HTTP/1.0 200") && !head.starts_with("HTTP/1.1 200") {
            return Err(format!("status: {}", head.lines().next().unwrap_or("")));
        }
        Ok(body.trim().to_string())
    };
    // The client's own bound on one request; a request past it failed.
    tokio::time::timeout(Duration::from_secs(10), once)
        .await
        .unwrap_or_else(|_| Err("no answer within 10 s".into()))
}

/// Polls until `port` answers `want`.
async fn until_serves(port: u16, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if get(port).await.as_deref() == Ok(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "port {port} never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a polling client saw.
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    failed: Vec<String>,
    /// The versions answered, in order, repeats folded.
    versions: Vec<String>,
}

/// What both clients saw during one update.
#[derive(Debug)]
struct Seen {
    /// `GET /`, at most 20 a second.
    fast: Tally,
    /// `GET /cgi-bin/v`, 200 ms each: one is nearly always in flight.
    slow: Tally,
}

impl Seen {
    fn requests(&self) -> usize {
        self.fast.ok + self.fast.failed.len() + self.slow.ok + self.slow.failed.len()
    }

    fn failed(&self) -> Vec<&String> {
        self.fast.failed.iter().chain(&self.slow.failed).collect()
    }

    /// The line bench/handover.py reads.
    fn line(&self, who: &str) -> String {
        format!(
            "{who}: {} requests, {} failed, versions {:?} (GET /) {:?} (GET /cgi-bin/v); first failures: {:?}",
            self.requests(),
            self.failed().len(),
            self.fast.versions,
            self.slow.versions,
            self.failed().into_iter().take(3).collect::<Vec<_>>()
        )
    }
}

/// A client that GETs `path` from `port` one request at a time, starting
/// one every 50 ms at most, until `stop`.
fn poll(
    port: u16,
    path: &'static str,
    tally: Arc<std::sync::Mutex<Tally>>,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while !stop.load(Ordering::SeqCst) {
            tick.tick().await;
            let answer = get_path(port, path).await;
            let mut tally = tally.lock().unwrap();
            match answer {
                Ok(v) => {
                    tally.ok += 1;
                    if tally.versions.last() != Some(&v) {
                        tally.versions.push(v);
                    }
                }
                Err(e) => tally.failed.push(e),
            }
        }
    })
}

/// Runs `update` while two clients poll `port` (see [`Seen`]), from once
/// each has had 5 answers until `want` has answered each 5 times after the
/// update.
async fn measure<F: std::future::Future<Output = ()>>(port: u16, want: &str, update: F) -> Seen {
    let stop = Arc::new(AtomicBool::new(false));
    let tallies = [
        Arc::new(std::sync::Mutex::new(Tally::default())),
        Arc::new(std::sync::Mutex::new(Tally::default())),
    ];
    let clients = [
        poll(port, "/", Arc::clone(&tallies[0]), Arc::clone(&stop)),
        poll(
            port,
            "/cgi-bin/v",
            Arc::clone(&tallies[1]),
            Arc::clone(&stop),
        ),
    ];
    // Until every client has `n` answers, `want` the last when given.
    let until = |n: [usize; 2], want: Option<&str>| {
        let tallies = tallies.clone();
        let want = want.map(str::to_string);
        async move {
            let deadline = Instant::now() + Duration::from_secs(60);
            loop {
                let done = tallies.iter().zip(n).all(|(t, n)| {
                    let t = t.lock().unwrap();
                    t.ok >= n && (want.is_none() || t.versions.last() == want.as_ref())
                });
                if done {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "the clients did not get {n:?} answers ({want:?})"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    until([5, 5], None).await;
    update.await;
    until([0, 0], Some(want)).await;
    let now = [tallies[0].lock().unwrap().ok, tallies[1].lock().unwrap().ok];
    until([now[0] + 5, now[1] + 5], None).await;
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.await.unwrap();
    }
    let [fast, slow] = tallies.map(|t| std::mem::take(&mut *t.lock().unwrap()));
    Seen { fast, slow }
}

/// The compose tool: `docker compose` when present, else `docker-compose`
/// (v1, what these machines have).
fn compose_tool() -> Vec<String> {
    let works = |prog: &str, args: &[&str]| {
        Command::new(prog)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("docker", &["compose", "version"]) {
        return vec!["docker".into(), "compose".into()];
    }
    assert!(
        works("docker-compose", &["version"]),
        "neither docker compose nor docker-compose runs: scripts/setup installs docker-compose"
    );
    vec!["docker-compose".into()]
}

fn compose(tool: &[String], dir: &Path, project: &str, image: &str, port: u16, args: &[&str]) {
    let out = Command::new(&tool[0])
        .args(&tool[1..])
        .args(["-f", "compose.yaml", "-p", project])
        .args(args)
        .current_dir(dir)
        .env("WEB_IMAGE", image)
        .env("WEB_PORT", port.to_string())
        .output()
        .expect("compose runs");
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        tool.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_under_load_fails_no_request_and_compose_is_measured_beside_it() {
    let _serial = SERIAL.lock().await;
    let engine = docker();
    let name = unique("handover");
    let cname = name.replace('-', "");
    let (v1, v2, fwd_image) = (
        format!("{name}-v1:latest"),
        format!("{name}-v2:latest"),
        format!("{name}-forward:latest"),
    );
    let _cleanup = Cleanup {
        containers: vec![
            format!("{name}-web-1"),
            format!("{name}-web-1-next"),
            format!("{name}-web-ports-1"),
            format!("{cname}_web_1"),
            format!("{cname}-web-1"),
        ],
        networks: vec![format!("{name}_default"), format!("{cname}_default")],
        volumes: vec![],
        images: vec![v1.clone(), v2.clone(), fwd_image.clone()],
    };
    web_image(&v1, "v1");
    web_image(&v2, "v2");
    let dir = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let text = compose_text(&format!(
        "    labels:\n      io.turtle.update-strategy: hand-over\n{HEALTHY}"
    ));
    std::fs::write(dir.path().join("compose.yaml"), &text).unwrap();
    let fwd = forwarder(&fwd_image);

    // Turtle.
    let port = free_port();
    let old = deployed(
        &load(dir.path(), &name, &text, &v1, port),
        run_dir.path(),
        &fwd,
    );
    up(&engine, &old).await;
    until_serves(port, "v1").await;
    let new = deployed(
        &load(dir.path(), &name, &text, &v2, port),
        run_dir.path(),
        &fwd,
    );
    let settings = handover::settings(&new, "web", None).unwrap();
    let mut replaced = vec![];
    let turtle = measure(port, "v2", async {
        replaced = handover::replace(&engine, &new, "web", &settings, &options(), &sink())
            .await
            .expect("hand-over");
    })
    .await;
    assert_eq!(replaced, vec![format!("{name}-web-1")]);
    let web = engine
        .inspect_container(&format!("{name}-web-1"))
        .await
        .unwrap();
    assert_eq!(web.state, State::Running);
    assert!(
        web.addresses
            .iter()
            .all(|a| a.parse::<std::net::IpAddr>().is_ok())
            && !web.addresses.is_empty(),
        "{:?}",
        web.addresses
    );
    assert_eq!(Some(web.image_id), engine.image_id(&v2).await.unwrap());
    assert!(
        engine
            .inspect_container(&format!("{name}-web-1-next"))
            .await
            .is_err_and(|e| e.is_not_found())
    );
    assert_eq!(
        left_to_do(&engine, &new, &["web", "web-ports"]).await,
        Vec::<String>::new(),
        "the plan after a hand-over has nothing to do for the service"
    );

    // Compose, the same change.
    let tool = compose_tool();
    let cport = free_port();
    compose(&tool, dir.path(), &cname, &v1, cport, &["up", "-d"]);
    until_serves(cport, "v1").await;
    let compose_seen = measure(cport, "v2", async {
        compose(&tool, dir.path(), &cname, &v2, cport, &["up", "-d"]);
    })
    .await;
    compose(&tool, dir.path(), &cname, &v2, cport, &["down", "-t", "0"]);

    eprintln!("{}", turtle.line("hand-over (turtle)"));
    eprintln!(
        "{}",
        compose_seen.line(&format!("{} up -d", tool.join(" ")))
    );
    assert!(
        turtle.failed().is_empty(),
        "failed requests: {:?}",
        turtle.failed()
    );
    for t in [&turtle.fast, &turtle.slow] {
        assert_eq!(
            t.versions,
            vec!["v1", "v2"],
            "old, then new, never back: the new one got nothing before it was ready"
        );
    }
}

/// Runs `sh -c script` in a container.
async fn sh(engine: &Docker, container: &str, script: &str) {
    let out = engine
        .exec(
            container,
            &ExecSpec {
                command: vec!["sh".into(), "-c".into(), script.into()],
                ..Default::default()
            },
        )
        .await
        .expect("exec");
    assert_eq!(out.exit_code, 0, "{script}: {}", out.output_tail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_old_container_stops_on_the_file_or_the_timeout_and_stays_when_the_new_one_fails() {
    let _serial = SERIAL.lock().await;
    let engine = docker();
    let name = unique("handfile");
    let (v1, v2, fwd_image) = (
        format!("{name}-v1:latest"),
        format!("{name}-v2:latest"),
        format!("{name}-forward:latest"),
    );
    let _cleanup = Cleanup {
        containers: vec![
            format!("{name}-web-1"),
            format!("{name}-web-1-next"),
            format!("{name}-web-ports-1"),
        ],
        networks: vec![format!("{name}_default")],
        volumes: vec![],
        images: vec![v1.clone(), v2.clone(), fwd_image.clone()],
    };
    web_image(&v1, "v1");
    web_image(&v2, "v2");
    let dir = tempfile::tempdir().unwrap();
    let run_dir = tempfile::tempdir().unwrap();
    let fwd = forwarder(&fwd_image);
    let port = free_port();
    let web = format!("{name}-web-1");
    let next = format!("{name}-web-1-next");
    let project = |image: &str, extra: &str| {
        let text = compose_text(&format!(
            "    labels:\n      io.turtle.update-strategy: hand-over\n{extra}"
        ));
        deployed(
            &load(dir.path(), &name, &text, image, port),
            run_dir.path(),
            &fwd,
        )
    };
    let service_dir = locks::service_dir(run_dir.path(), &name, "web");

    // The file: the new container is healthy, and the old one stays until
    // the new one writes its hand-over file.
    let file = format!("      io.turtle.handover-file: \"true\"\n{HEALTHY}");
    up(&engine, &project(&v1, &file)).await;
    until_serves(port, "v1").await;
    let old_id = engine.inspect_container(&web).await.unwrap().id;
    let p = project(&v2, &file);
    let settings = handover::settings(&p, "web", Some(service_dir.clone())).unwrap();
    let done = AtomicBool::new(false);
    let replace = async {
        let r = handover::replace(&engine, &p, "web", &settings, &options(), &sink()).await;
        done.store(true, Ordering::SeqCst);
        r
    };
    let check = async {
        // Wait for the new container to be healthy.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(d) = engine.inspect_container(&next).await
                && d.health == Some(turtle_engine::Health::Healthy)
            {
                break;
            }
            assert!(Instant::now() < deadline, "{next} never became healthy");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !done.load(Ordering::SeqCst),
            "replace returned before the file"
        );
        let old = engine.inspect_container(&old_id).await.unwrap();
        assert_eq!(
            old.state,
            State::Running,
            "healthy is not enough: the label asks for the file"
        );
        assert_eq!(
            get(port).await.as_deref(),
            Ok("v1"),
            "the new one gets nothing yet"
        );
        sh(&engine, &next, "touch /run/turtle/handover-complete").await;
    };
    let (r, ()) = tokio::join!(replace, check);
    assert_eq!(r.expect("hand-over on the file"), vec![web.clone()]);
    assert!(
        engine
            .inspect_container(&old_id)
            .await
            .is_err_and(|e| e.is_not_found())
    );
    until_serves(port, "v2").await;

    // The timeout: the new container is never healthy (nor unhealthy for
    // 100 s), and the label asks to take over after 2 s anyway.
    let never = "    healthcheck:\n      test: [\"CMD\", \"false\"]\n      interval: 1s\n      retries: 100\n";
    let timeout = format!("      io.turtle.handover-timeout: 2s\n{never}");
    let old_id = engine.inspect_container(&web).await.unwrap().id;
    let p = project(&v1, &timeout);
    let settings = handover::settings(&p, "web", Some(service_dir.clone())).unwrap();
    let r = handover::replace(&engine, &p, "web", &settings, &options(), &sink()).await;
    assert_eq!(r.expect("hand-over at the timeout"), vec![web.clone()]);
    assert!(
        engine
            .inspect_container(&old_id)
            .await
            .is_err_and(|e| e.is_not_found())
    );
    until_serves(port, "v1").await;

    // Never healthy, no timeout label: an error naming the service; the
    // old container still serves, the new one is gone.
    let unhealthy = "    healthcheck:\n      test: [\"CMD\", \"false\"]\n      interval: 1s\n      retries: 2\n";
    let old_id = engine.inspect_container(&web).await.unwrap().id;
    for (what, p) in [
        ("unhealthy", project(&v2, unhealthy)),
        ("exits at once", {
            let mut p = project(&v2, HEALTHY);
            p.services.get_mut("web").unwrap().command = Some(vec!["false".into()]);
            p
        }),
    ] {
        let settings = handover::settings(&p, "web", Some(service_dir.clone())).unwrap();
        let e = handover::replace(&engine, &p, "web", &settings, &options(), &sink())
            .await
            .expect_err(what)
            .to_string();
        eprintln!("{what}: {e}");
        assert!(e.contains("service web"), "{what}: {e}");
        let old = engine.inspect_container(&old_id).await.unwrap();
        assert_eq!(old.state, State::Running, "{what}: the old one stays");
        assert_eq!(old.name, web);
        assert!(
            engine
                .inspect_container(&next)
                .await
                .is_err_and(|e| e.is_not_found()),
            "{what}: the new one is removed"
        );
        assert_eq!(get(port).await.as_deref(), Ok("v1"), "{what}: still served");
        assert!(
            !service_dir
                .join(turtle_runtime::forward::BACKENDS_FILE)
                .exists(),
            "{what}: the forwarder uses every backend again"
        );
    }
}
