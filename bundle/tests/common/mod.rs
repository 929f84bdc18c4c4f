//! Helpers of the real-engine tests: the busybox test image, images built
//! for a test under unique names, and their removal even when a test fails.

#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

pub const BASE: &str = "turtle-test-busybox:latest";

pub fn base_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../images/test-busybox/build.sh");
        let out = Command::new("sh").arg(&script).arg(BASE).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    });
    BASE
}

pub fn unique(tag: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "tt-{}-{}-{tag}",
        std::process::id(),
        nanos % 1_000_000_000_000
    )
}

/// Removes the test's images and containers, even when it panics.
#[derive(Default)]
pub struct Cleanup {
    pub images: Vec<String>,
    pub containers: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        // Images last made first: a child before the image it builds FROM.
        let images: Vec<String> = self.images.iter().rev().cloned().collect();
        for (args, names) in [
            (&["rm", "-f"][..], &self.containers),
            (&["rmi", "-f"][..], &images),
        ] {
            if !names.is_empty() {
                let _ = Command::new("docker")
                    .args(args)
                    .args(names)
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}

/// Builds `name` from the test image plus `steps` (Dockerfile lines): an
/// image with layers of its own, which `docker rmi` really removes.
pub fn build(name: &str, steps: &str) {
    build_from(base_image(), name, steps);
}

/// Builds `name` FROM `from` plus `steps`.
pub fn build_from(from: &str, name: &str, steps: &str) {
    let dockerfile = format!("FROM {from}\n{steps}\n");
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", name, "-"])
        .env("DOCKER_BUILDKIT", "0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker build {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn rmi(name: &str) {
    let out = Command::new("docker")
        .args(["rmi", "-f", name])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
