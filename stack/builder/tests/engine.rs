//! The builder against the machine's real Docker engine and a real registry.
//!
//! Needs: a running dockerd on the default socket (Docker 20.10 here, classic
//! builder), the local image `turtle-debian:bookworm` (nothing can be pulled),
//! and Distribution's registry at /usr/bin/docker-registry (Debian's
//! `docker-registry` package). Each test starts its own registry on a free
//! 127.0.0.1 port with a temp storage directory and no auth (the engine treats
//! 127.0.0.0/8 as insecure, so plain HTTP works), and its own builder server on
//! 127.0.0.1:0. Image names are `tt-builder-<pid>-<nanos>-...`; a [`Cleanup`]
//! guard removes the local images, and the registry's guard kills it by PID,
//! even when a test fails. Waits poll with deadlines; there are no fixed sleeps.

use std::io::Write;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use turtle_builder::{
    Builder, ByteSize, Engine, Line, Registry, Server, Slots, SpoolStats, Spooler, Tokens,
};

const BUILDER_TOKEN: &str = "test-builder-token-0123456789abcdef";
const ADMIN_TOKEN: &str = "test-admin-token-fedcba9876543210";
const BASE: &str = "turtle-debian:bookworm";
const SOCKET: &str = "/var/run/docker.sock";

/// A name no other test (or test run) uses.
fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "tt-builder-{}-{}-{what}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// Distribution's registry on a free loopback port; killed on drop.
struct TestRegistry {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl TestRegistry {
    async fn start() -> TestRegistry {
        let bin = Path::new("/usr/bin/docker-registry");
        assert!(
            bin.exists(),
            "{} is missing: install Debian's docker-registry package (apt-get install docker-registry)",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        // A free port: bind, read it, release it for the registry.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new(bin)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log")).unwrap())
            .spawn()
            .unwrap();
        let mut reg = TestRegistry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok((StatusCode::OK, _, _)) = http_get(&format!("http://{addr}/v2/"), &[]).await {
                break;
            }
            if let Ok(Some(status)) = reg.child.try_wait() {
                let log = std::fs::read_to_string(reg._dir.path().join("registry.log"))
                    .unwrap_or_default();
                panic!("the registry exited ({status}):\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "the registry on {addr} did not answer"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        reg
    }

    fn host(&self) -> String {
        self.addr.to_string()
    }

    /// The registry's digest of `<path>:<tag>` (schema 2 manifest), or the status.
    async fn manifest_digest(&self, path: &str, tag: &str) -> Result<String, StatusCode> {
        let url = format!("http://{}/v2/{path}/manifests/{tag}", self.addr);
        let (status, headers, _) = http_get(
            &url,
            &[(
                "accept",
                "application/vnd.docker.distribution.manifest.v2+json",
            )],
        )
        .await
        .unwrap();
        if status != StatusCode::OK {
            return Err(status);
        }
        Ok(headers
            .get("docker-content-digest")
            .expect("Docker-Content-Digest header")
            .to_str()
            .unwrap()
            .to_string())
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes local images on drop (by reference; `docker rmi` of our names only).
#[derive(Default)]
struct Cleanup {
    images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.images.is_empty() {
            return;
        }
        let _ = Command::new("docker")
            .arg("rmi")
            .arg("-f")
            .args(&self.images)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The builder server in this process on 127.0.0.1:0, spooling to its own
/// directory; stopped on drop.
struct TestBuilder {
    addr: SocketAddr,
    stats: SpoolStats,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _spool_dir: tempfile::TempDir,
}

impl TestBuilder {
    async fn start(registry: &str, keep_local: bool, max_context: ByteSize) -> TestBuilder {
        TestBuilder::start_on(SOCKET, registry, keep_local, max_context).await
    }

    async fn start_on(
        socket: &str,
        registry: &str,
        keep_local: bool,
        max_context: ByteSize,
    ) -> TestBuilder {
        let slots = Slots::new(1, 4, Duration::from_secs(600));
        TestBuilder::start_with(socket, registry, keep_local, max_context, slots).await
    }

    async fn start_with(
        socket: &str,
        registry: &str,
        keep_local: bool,
        max_context: ByteSize,
        slots: Slots,
    ) -> TestBuilder {
        let tokens = Tokens::new(BUILDER_TOKEN, Some(ADMIN_TOKEN)).unwrap();
        let builder = Builder::new(
            Engine::connect(socket).unwrap(),
            Registry::parse(registry).unwrap(),
            "builder".to_string(),
            tokens.builder_token().to_string(),
            slots,
            keep_local,
        );
        let spool_dir = tempfile::tempdir().unwrap();
        let spooler = Spooler::new(spool_dir.path().to_path_buf(), max_context);
        let stats = spooler.stats();
        let server = Server {
            tokens,
            builder,
            spooler,
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(turtle_builder::serve(listener, server, async move {
            let _ = stopped.await;
        }));
        TestBuilder {
            addr,
            stats,
            stop: Some(stop),
            _spool_dir: spool_dir,
        }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.addr)
    }
}

impl Drop for TestBuilder {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

type Headers = hyper::HeaderMap;

async fn http_get(
    url: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<(StatusCode, Headers, Bytes)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client.request(req.body(Full::new(Bytes::new()))?).await?;
    let (parts, body) = resp.into_parts();
    Ok((
        parts.status,
        parts.headers,
        body.collect().await?.to_bytes(),
    ))
}

/// POSTs a build and reads the whole response.
async fn post_build(
    url: &str,
    token: Option<&str>,
    context: Vec<u8>,
) -> (StatusCode, Headers, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = Request::post(url).header("content-type", "application/x-tar");
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(context))).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

/// The NDJSON lines of a build response; asserts exactly the last is final.
fn read_lines(body: &[u8]) -> Vec<Line> {
    assert_eq!(
        body.last(),
        Some(&b'\n'),
        "the response ends with a newline"
    );
    let lines: Vec<Line> = body
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            Line::decode(l).unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(l)))
        })
        .collect();
    let (last, rest) = lines.split_last().expect("at least one line");
    assert!(last.is_final(), "the last line is final: {last:?}");
    assert!(
        rest.iter().all(|l| !l.is_final()),
        "only the last line is final: {lines:?}"
    );
    lines
}

fn logs(lines: &[Line]) -> String {
    lines
        .iter()
        .filter_map(|l| match l {
            Line::Log { log } => Some(log.as_str()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A tar holding `files` (path, contents).
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        b.append_data(&mut h, path, *data).unwrap();
    }
    b.into_inner().unwrap()
}

/// `gzip -c` of `data`.
fn gzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-c")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run gzip");
    let mut stdin = child.stdin.take().unwrap();
    let data = data.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&data));
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(out.status.success());
    out.stdout
}

fn engine() -> bollard::Docker {
    bollard::Docker::connect_with_unix(SOCKET, 120, bollard::API_DEFAULT_VERSION).unwrap()
}

#[tokio::test]
async fn a_context_is_built_pushed_and_reported_by_the_registrys_digest() {
    let registry = TestRegistry::start().await;
    let builder = TestBuilder::start(&registry.host(), true, ByteSize(1 << 20)).await;
    let name = unique("app");
    let path = format!("{name}/web");
    let full = format!("{}/{path}:v1", registry.host());
    let mut cleanup = Cleanup::default();
    cleanup.images.push(full.clone());

    let (status, _, body) = http_get(&builder.url("/v1/health"), &[]).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body:?}");

    let marker = unique("marker");
    let dockerfile =
        format!("FROM {BASE}\nRUN echo \"run-output-$((6*7))-{marker}\" && echo ok > /built\n");
    let context = tar_of(&[("Dockerfile", dockerfile.as_bytes())]);
    let (status, headers, body) = post_build(
        &builder.url(&format!("/v1/builds?tag={path}:v1")),
        Some(BUILDER_TOKEN),
        context,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers.get("content-type").unwrap(), "application/x-ndjson");
    let lines = read_lines(&body);
    let log = logs(&lines);
    // The RUN's own output (evaluated by the shell, so not the Dockerfile's text).
    assert!(log.contains(&format!("run-output-42-{marker}")), "{log}");
    assert!(log.contains(&format!("pushing {full}")), "{log}");
    let Some(Line::Done { digest, images }) = lines.last() else {
        panic!("the build failed: {:?}", lines.last());
    };
    assert!(
        digest.starts_with("sha256:") && digest.len() == 71,
        "{digest}"
    );
    assert_eq!(
        images,
        &vec![format!("{}/{path}@{digest}", registry.host())]
    );

    // The registry serves that manifest under the tag, by that digest.
    assert_eq!(
        registry.manifest_digest(&path, "v1").await,
        Ok(digest.clone())
    );
    // The engine agrees, and kept the local tag (--keep-local defaults to true).
    let image = engine().inspect_image(&full).await.unwrap();
    let repo_digests = image.repo_digests.unwrap_or_default();
    assert!(
        repo_digests.contains(&format!("{}/{path}@{digest}", registry.host())),
        "{repo_digests:?}"
    );
}

#[tokio::test]
async fn a_gzip_context_with_two_tags_and_its_own_dockerfile_is_pushed_and_untagged_locally() {
    let registry = TestRegistry::start().await;
    let builder = TestBuilder::start(&registry.host(), false, ByteSize(1 << 20)).await;
    let name = unique("multi");
    let (a, b) = (format!("{name}/a"), format!("{name}/b"));
    let refs = [
        format!("{}/{a}:1.0", registry.host()),
        format!("{}/{b}:latest", registry.host()),
    ];
    let mut cleanup = Cleanup::default();
    cleanup.images.extend(refs.iter().cloned());

    let marker = unique("file");
    let context = gzip(&tar_of(&[
        (
            "build/Dockerfile.custom",
            b"FROM scratch\nCOPY hello.txt /hello.txt\n".as_slice(),
        ),
        ("hello.txt", marker.as_bytes()),
    ]));
    assert_eq!(&context[..2], &[0x1f, 0x8b], "the context is gzip'd");
    let (status, _, body) = post_build(
        &builder.url(&format!(
            "/v1/builds?tag={a}:1.0&tag={b}&dockerfile=build/Dockerfile.custom"
        )),
        // The admin token is accepted too.
        Some(ADMIN_TOKEN),
        context,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let lines = read_lines(&body);
    let Some(Line::Done { digest, images }) = lines.last() else {
        panic!("the build failed: {lines:?}");
    };
    assert_eq!(
        images,
        &vec![
            format!("{}/{a}@{digest}", registry.host()),
            format!("{}/{b}@{digest}", registry.host()),
        ]
    );
    assert_eq!(
        registry.manifest_digest(&a, "1.0").await,
        Ok(digest.clone())
    );
    assert_eq!(
        registry.manifest_digest(&b, "latest").await,
        Ok(digest.clone())
    );

    // --keep-local false: the local tags are gone, and the image with them.
    let log = logs(&lines);
    let docker = engine();
    for r in &refs {
        assert!(log.contains(&format!("removed the local tag {r}")), "{log}");
        match docker.inspect_image(r).await {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            other => panic!("{r} is still there: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_failing_run_or_a_bad_dockerfile_ends_with_the_engines_error_and_pushes_nothing() {
    let registry = TestRegistry::start().await;
    let builder = TestBuilder::start(&registry.host(), true, ByteSize(1 << 20)).await;
    let name = unique("fail");
    let mut cleanup = Cleanup::default();
    cleanup
        .images
        .push(format!("{}/{name}/app:latest", registry.host()));

    // The failing step is the only one after FROM: nothing is committed.
    let marker = unique("before-exit");
    let dockerfile = format!("FROM {BASE}\nRUN echo {marker} && exit 3\n");
    let (status, _, body) = post_build(
        &builder.url(&format!("/v1/builds?tag={name}/app")),
        Some(BUILDER_TOKEN),
        tar_of(&[("Dockerfile", dockerfile.as_bytes())]),
    )
    .await;
    // The status was sent before the build ran: the outcome is the last line.
    assert_eq!(status, StatusCode::OK);
    let lines = read_lines(&body);
    assert!(logs(&lines).contains(&marker), "{lines:?}");
    let Some(Line::Error { error }) = lines.last() else {
        panic!("expected an error line: {lines:?}");
    };
    assert!(
        error.starts_with("build failed: ") && error.contains("returned a non-zero code: 3"),
        "{error}"
    );
    assert_eq!(
        registry
            .manifest_digest(&format!("{name}/app"), "latest")
            .await,
        Err(StatusCode::NOT_FOUND)
    );

    let (status, _, body) = post_build(
        &builder.url(&format!("/v1/builds?tag={name}/app")),
        Some(BUILDER_TOKEN),
        tar_of(&[("Dockerfile", b"FROMM scratch\n".as_slice())]),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let lines = read_lines(&body);
    let Some(Line::Error { error }) = lines.last() else {
        panic!("expected an error line: {lines:?}");
    };
    assert!(
        error.to_lowercase().contains("unknown instruction"),
        "{error}"
    );
}

#[tokio::test]
async fn requests_without_a_valid_token_are_401() {
    let builder = TestBuilder::start("127.0.0.1:5999", true, ByteSize(1 << 20)).await;
    let url = builder.url("/v1/builds?tag=fleet/app");
    let context = tar_of(&[("Dockerfile", b"FROM scratch\n".as_slice())]);
    for token in [
        None,
        Some("wrong"),
        Some(&BUILDER_TOKEN[..BUILDER_TOKEN.len() - 1]),
    ] {
        let (status, headers, body) = post_build(&url, token, context.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(
            headers
                .get("www-authenticate")
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("Bearer realm=\"turtle-builder\""),
            "{headers:?}"
        );
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(
            v["error"].as_str().unwrap().contains("builder-token"),
            "{v}"
        );
    }
}

#[tokio::test]
async fn bad_tags_are_400_and_a_tag_with_a_host_names_it() {
    let builder = TestBuilder::start("127.0.0.1:5999", true, ByteSize(1 << 20)).await;
    let context = tar_of(&[("Dockerfile", b"FROM scratch\n".as_slice())]);
    for (query, want) in [
        (
            "tag=docker.io/library/debian:12",
            "names a registry host (docker.io)",
        ),
        (
            "tag=127.0.0.1:5999/fleet/app",
            "names a registry host (127.0.0.1:5999)",
        ),
        ("tag=Fleet/App", "path component \"Fleet\""),
        ("", "no tag="),
    ] {
        let (status, _, body) = post_build(
            &builder.url(&format!("/v1/builds?{query}")),
            Some(BUILDER_TOKEN),
            context.clone(),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let e = v["error"].as_str().unwrap();
        assert!(e.contains(want), "{query}: {e}");
    }
}

#[tokio::test]
async fn a_context_over_the_limit_is_413_declared_or_chunked() {
    let builder = TestBuilder::start("127.0.0.1:5999", true, ByteSize(1024)).await;
    let url = builder.url("/v1/builds?tag=fleet/app");

    // With a Content-Length over the limit.
    let (status, _, body) = post_build(&url, Some(BUILDER_TOKEN), vec![0u8; 1025]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let e = v["error"].as_str().unwrap();
    assert!(e.contains("1 KiB") && e.contains("--max-context"), "{e}");

    // Chunked, without a length: counted as it arrives.
    let chunks: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = (0..3)
        .map(|_| Ok(Frame::data(Bytes::from(vec![0u8; 512]))))
        .collect();
    let body = StreamBody::new(futures_util::stream::iter(chunks));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let req = Request::post(&url)
        .header("authorization", format!("Bearer {BUILDER_TOKEN}"))
        .body(body)
        .unwrap();
    let resp = client.request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // An empty body is a 400 naming what to send.
    let (status, _, body) = post_build(&url, Some(BUILDER_TOKEN), Vec::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("application/x-tar"));
}

#[tokio::test]
async fn health_is_503_naming_the_socket_when_the_engine_does_not_answer() {
    // A socket file nobody listens on.
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let builder = TestBuilder::start_on(
        socket.to_str().unwrap(),
        "127.0.0.1:5999",
        true,
        ByteSize(1024),
    )
    .await;
    let (status, _, body) = http_get(&builder.url("/v1/health"), &[]).await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["status"], "unhealthy");
    let e = v["engine"].as_str().unwrap();
    assert!(e.contains(socket.to_str().unwrap()), "{e}");
}

/// Polls `cond` until it holds, failing after a deadline.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A build request whose body the test sends piece by piece.
struct Upload {
    tx: Option<tokio::sync::mpsc::Sender<Bytes>>,
    response: tokio::task::JoinHandle<(StatusCode, Headers, Bytes)>,
}

impl Upload {
    fn start(url: &str) -> Upload {
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
        let frames = Box::pin(futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv()
                .await
                .map(|b| (Ok::<_, std::convert::Infallible>(Frame::data(b)), rx))
        }));
        let req = Request::post(url)
            .header("content-type", "application/x-tar")
            .header("authorization", format!("Bearer {BUILDER_TOKEN}"))
            .body(StreamBody::new(frames))
            .unwrap();
        let response = tokio::spawn(async move {
            let client = Client::builder(TokioExecutor::new()).build_http();
            let resp = client.request(req).await.unwrap();
            let (parts, body) = resp.into_parts();
            (
                parts.status,
                parts.headers,
                body.collect().await.unwrap().to_bytes(),
            )
        });
        Upload {
            tx: Some(tx),
            response,
        }
    }

    async fn send(&self, data: &[u8]) {
        let tx = self.tx.as_ref().expect("the body is still open");
        tx.send(Bytes::copy_from_slice(data)).await.unwrap();
    }

    /// Ends the body and reads the whole response.
    async fn finish(mut self) -> (StatusCode, Headers, Bytes) {
        self.tx.take();
        tokio::time::timeout(Duration::from_secs(300), self.response)
            .await
            .expect("the response ends")
            .unwrap()
    }
}

#[tokio::test]
async fn parallel_uploads_with_one_slot_are_spooled_one_at_a_time() {
    let registry = TestRegistry::start().await;
    // One build at a time, up to four waiting.
    let builder = TestBuilder::start(&registry.host(), false, ByteSize(4 << 20)).await;
    let name = unique("par");
    let mut cleanup = Cleanup::default();
    let mut uploads = Vec::new();
    for i in 0..3u8 {
        let path = format!("{name}/app{i}");
        cleanup
            .images
            .push(format!("{}/{path}:v1", registry.host()));
        let data = vec![i + 1; 512 << 10];
        let tar = tar_of(&[
            ("Dockerfile", b"FROM scratch\nCOPY data /data\n".as_slice()),
            ("data", &data),
        ]);
        let (first, rest) = tar.split_at(tar.len() / 2);
        let upload = Upload::start(&builder.url(&format!("/v1/builds?tag={path}:v1")));
        upload.send(first).await;
        uploads.push((path, upload, rest.to_vec()));
    }
    // One took the slot and is being spooled, its body half sent; the others
    // wait with their halves unread.
    wait_until("a context being spooled", || builder.stats.live() >= 1).await;
    for (_, upload, rest) in &uploads {
        upload.send(rest).await;
    }
    for (path, upload, _) in uploads {
        let (status, _, body) = upload.finish().await;
        assert_eq!(status, StatusCode::OK, "{path}: {body:?}");
        let lines = read_lines(&body);
        let Some(Line::Done { digest, .. }) = lines.last() else {
            panic!("{path} failed: {lines:?}");
        };
        assert_eq!(
            registry.manifest_digest(&path, "v1").await,
            Ok(digest.clone())
        );
    }
    assert_eq!(
        builder.stats.peak(),
        1,
        "contexts on disk at once, with one build slot"
    );
    assert_eq!(builder.stats.live(), 0, "every spool file is gone");
}

#[tokio::test]
async fn a_request_that_waits_too_long_for_a_slot_is_503_and_the_running_one_builds() {
    let registry = TestRegistry::start().await;
    let slots = Slots::new(1, 1, Duration::from_secs(2));
    let builder =
        TestBuilder::start_with(SOCKET, &registry.host(), false, ByteSize(4 << 20), slots).await;
    let name = unique("busy");
    let mut cleanup = Cleanup::default();
    cleanup
        .images
        .push(format!("{}/{name}/held:v1", registry.host()));

    // The first request holds the only slot while its upload is half sent.
    let tar = tar_of(&[
        ("Dockerfile", b"FROM scratch\nCOPY data /data\n".as_slice()),
        ("data", &[7u8; 64 << 10]),
    ]);
    let (first, rest) = tar.split_at(tar.len() / 2);
    let held = Upload::start(&builder.url(&format!("/v1/builds?tag={name}/held:v1")));
    held.send(first).await;
    wait_until("the first context being spooled", || {
        builder.stats.live() == 1
    })
    .await;

    // The second waits for the slot, then is refused with a reason and a retry time.
    let (status, headers, body) = post_build(
        &builder.url(&format!("/v1/builds?tag={name}/late:v1")),
        Some(BUILDER_TOKEN),
        tar_of(&[("Dockerfile", b"FROM scratch\n".as_slice())]),
    )
    .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body:?}");
    assert_eq!(headers.get("retry-after").unwrap(), "60");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("--queue-timeout") && e.contains("--max-builds"),
        "{e}"
    );
    assert_eq!(
        builder.stats.peak(),
        1,
        "the refused upload was never spooled"
    );

    // A client that waits for `100 Continue` is never asked for its body:
    // the first thing it reads is the refusal.
    let mut conn = tokio::net::TcpStream::connect(builder.addr).await.unwrap();
    conn.write_all(
        format!(
            "POST /v1/builds?tag={name}/patient:v1 HTTP/1.1\r\nHost: builder\r\n\
             Authorization: Bearer {BUILDER_TOKEN}\r\nContent-Type: application/x-tar\r\n\
             Content-Length: 1048576\r\nExpect: 100-continue\r\n\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(60), conn.read(&mut byte))
            .await
            .expect("an answer")
            .unwrap();
        assert_eq!(n, 1, "closed early: {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");

    // The first one goes on and builds.
    held.send(rest).await;
    let (status, _, body) = held.finish().await;
    assert_eq!(status, StatusCode::OK);
    let lines = read_lines(&body);
    assert!(matches!(lines.last(), Some(Line::Done { .. })), "{lines:?}");
}

#[tokio::test]
async fn a_gzip_bomb_is_413_naming_the_limit_and_is_never_unpacked_past_it() {
    let limit = ByteSize(1 << 20);
    let builder = TestBuilder::start("127.0.0.1:5999", true, limit).await;
    // Were it built (the bug this guards against), its local tag goes.
    let _cleanup = Cleanup {
        images: vec!["127.0.0.1:5999/fleet/bomb:latest".to_string()],
    };
    // A tar of a Dockerfile and 64 MiB of zeros, gzip'd: tens of KiB on the wire.
    let zeros: u64 = 64 << 20;
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::best(),
    ));
    for (path, size) in [("Dockerfile", 29u64), ("zeros", zeros)] {
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_cksum();
        let data: Box<dyn std::io::Read> = if path == "Dockerfile" {
            Box::new(&b"FROM scratch\nCOPY zeros /z\n\n\n"[..])
        } else {
            Box::new(std::io::Read::take(std::io::repeat(0), size))
        };
        tar.append_data(&mut h, path, data).unwrap();
    }
    let bomb = tar.into_inner().unwrap().finish().unwrap();
    assert!(bomb.len() < (1 << 20) / 4, "{} bytes", bomb.len());

    let (status, _, body) = post_build(
        &builder.url("/v1/builds?tag=fleet/bomb"),
        Some(BUILDER_TOKEN),
        bomb,
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body:?}");
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let e = v["error"].as_str().unwrap();
    assert!(
        e.contains("1 MiB") && e.contains("uncompressed") && e.contains("--max-context"),
        "{e}"
    );
    assert!(
        builder.stats.peak_bytes() <= limit.0,
        "{} bytes were written to the spool",
        builder.stats.peak_bytes()
    );
    assert_eq!(builder.stats.live(), 0);
}
