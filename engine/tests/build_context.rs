//! The build context on its way to the real engine: streamed, never whole in
//! memory, and a file that cannot be read ends the build naming it.
//!
//! Needs a running dockerd on the default socket; the images are `FROM
//! scratch`, so nothing is pulled. This binary holds only these tests, so the
//! process's peak resident memory (`VmHWM`) is theirs. Images are named
//! `tt-ctx-<pid>-<nanos>-...` and removed by a guard even when a test fails.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use turtle_engine::docker::Docker;
use turtle_engine::{BuildSpec, Engine, EngineError, Progress};

/// The large context: well above what a small board should hold in memory
/// for a build, small enough for the test machine's disk and time.
const BIG: u64 = 160 << 20;

/// A name no other test (or test run) uses.
fn unique(what: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "tt-ctx-{}-{}-{what}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// Removes the test's images on drop.
struct RemoveImages(Vec<String>);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .arg("rmi")
            .arg("-f")
            .args(&self.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// The process's peak resident set size so far, in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/self/status");
    kib * 1024
}

/// Writes `len` bytes of a non-zero pattern (real blocks, no holes) to `path`.
fn write_file(path: &Path, len: u64) {
    let chunk: Vec<u8> = (0..1 << 20).map(|i| (i % 251 + 1) as u8).collect();
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        f.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    f.into_inner().unwrap().sync_all().unwrap();
}

fn spec(tag: &str, context: &Path, files: Vec<(String, std::path::PathBuf)>) -> BuildSpec {
    BuildSpec {
        tag: tag.to_string(),
        context: context.to_path_buf(),
        dockerfile: "Dockerfile".to_string(),
        args: HashMap::new(),
        target: None,
        labels: HashMap::new(),
        files,
        ..Default::default()
    }
}

async fn build(d: &Docker, spec: &BuildSpec) -> Vec<turtle_engine::Result<Progress>> {
    tokio::time::timeout(
        Duration::from_secs(600),
        d.build_image(spec).collect::<Vec<_>>(),
    )
    .await
    .expect("the build ends")
}

#[tokio::test]
async fn a_context_larger_than_memory_allows_is_streamed_to_the_engine() {
    let d = Docker::connect(None).expect("docker socket");
    let tag = format!("{}:latest", unique("big"));
    let _cleanup = RemoveImages(vec![tag.clone()]);
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(
        ctx.path().join("Dockerfile"),
        "FROM scratch\nCOPY big /big\n",
    )
    .unwrap();
    write_file(&ctx.path().join("big"), BIG);

    let before = peak_rss();
    let progress = build(&d, &spec(&tag, ctx.path(), Vec::new())).await;
    let after = peak_rss();
    println!(
        "context {} MiB: peak RSS {} MiB before the build, {} MiB after",
        BIG >> 20,
        before >> 20,
        after >> 20
    );
    for p in &progress {
        assert!(p.is_ok(), "{progress:?}");
    }
    // The whole file arrived: the image holds it.
    let image = d.client().inspect_image(&tag).await.unwrap();
    let size = image.size.unwrap_or_default() as u64;
    assert!(size >= BIG, "the image is {size} bytes, the file {BIG}");
    // Streamed, not held: the process never came near the context's size.
    assert!(
        after < BIG / 2,
        "peak RSS {after} bytes while building a {BIG} byte context"
    );
}

#[tokio::test]
async fn a_file_that_cannot_be_read_mid_way_ends_the_build_naming_it() {
    let d = Docker::connect(None).expect("docker socket");
    let mut cleanup = RemoveImages(Vec::new());
    let ctx = tempfile::tempdir().unwrap();
    std::fs::write(ctx.path().join("Dockerfile"), "FROM scratch\nCOPY . /ctx\n").unwrap();
    // Several MiB first, so the request to the engine is well under way when
    // the tar reaches the bad entry.
    write_file(&ctx.path().join("a-first"), 8 << 20);

    // A socket in the context cannot be archived (sorted after a-first).
    let socket = ctx.path().join("z.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let tag = format!("{}:latest", unique("sock"));
    cleanup.0.push(tag.clone());
    let progress = build(&d, &spec(&tag, ctx.path(), Vec::new())).await;
    match progress.last() {
        Some(Err(EngineError::Build { image, message })) => {
            assert_eq!(image, &tag);
            assert!(
                message.contains(&socket.display().to_string())
                    && message.contains("is a socket")
                    && message.contains(".dockerignore"),
                "{message}"
            );
        }
        other => panic!("expected a build error, got {other:?}"),
    }
    assert!(
        d.image_id(&tag).await.unwrap().is_none(),
        "nothing was built"
    );
    std::fs::remove_file(&socket).unwrap();

    // A file added from outside whose read fails after its header went out:
    // a directory opens, claims a size, and fails to read (EISDIR), as root too.
    let outside = tempfile::tempdir().unwrap();
    let tag = format!("{}:latest", unique("eisdir"));
    cleanup.0.push(tag.clone());
    let progress = build(
        &d,
        &spec(
            &tag,
            ctx.path(),
            vec![("bin/added".to_string(), outside.path().to_path_buf())],
        ),
    )
    .await;
    match progress.last() {
        Some(Err(EngineError::Build { image, message })) => {
            assert_eq!(image, &tag);
            assert!(
                message.contains(&outside.path().display().to_string()),
                "{message}"
            );
        }
        other => panic!("expected a build error, got {other:?}"),
    }
    assert!(
        d.image_id(&tag).await.unwrap().is_none(),
        "nothing was built"
    );
}
