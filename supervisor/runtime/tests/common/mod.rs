//! What the engine test binaries share: the test image, unique names, and
//! the guard that removes what a test created, even when it panics. Each
//! test binary uses part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use turtle_engine::docker::Docker;

pub const IMAGE: &str = "turtle-test-busybox:latest";

/// Builds the test image once per test binary.
pub fn test_image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let script =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../images/test-busybox/build.sh");
        let out = Command::new("sh")
            .arg(&script)
            .arg(IMAGE)
            .output()
            .expect("run images/test-busybox/build.sh");
        assert!(
            out.status.success(),
            "building {IMAGE} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    });
    IMAGE
}

/// A name no other test (or test run) uses.
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

/// Removes everything a test created, even when the test panics.
#[derive(Default)]
pub struct Cleanup {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
    pub images: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let run = |args: &[&str], names: &[String]| {
            if names.is_empty() {
                return;
            }
            let _ = Command::new("docker")
                .args(args)
                .args(names)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status();
        };
        run(&["rm", "-f", "-v"], &self.containers);
        run(&["network", "rm"], &self.networks);
        run(&["volume", "rm", "-f"], &self.volumes);
        run(&["rmi", "-f"], &self.images);
    }
}

pub fn docker() -> Docker {
    Docker::connect(None).expect("docker socket")
}
