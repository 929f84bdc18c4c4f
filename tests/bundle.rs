//! `turtle bundle` end to end (issue 14, first slice): a key made, a project
//! and its image bundled and signed, the image removed from the engine, the
//! bundle verified against the box's trusted key and applied, the service
//! running again from the loaded image; a damaged copy, and the genuine one
//! on a box that trusts another key, refused with nothing loaded.

use std::process::Command;

use turtle_e2e::{DEFAULT_CONFIG, Env, IMAGE, wait_until};

/// Removes the test's own image tag even when the test fails.
struct TagGuard(String);

impl Drop for TagGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

fn has_image(reference: &str) -> bool {
    Command::new("docker")
        .args(["image", "inspect", reference])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_signed_bundle_restores_a_removed_image_and_a_damaged_one_loads_nothing() {
    let mut env = Env::new("bundle");
    let image = format!("turtle-bundle-e2e:{}", env.project);
    let status = Command::new("docker")
        .args(["tag", IMAGE, &image])
        .status()
        .unwrap();
    assert!(status.success());
    let _tag = TagGuard(image.clone());
    env.compose(&format!(
        "services:\n  app:\n    image: {image}\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n"
    ));
    let dir = env.dir.path().to_path_buf();
    let key = dir.join("release-key");
    let public = env.box_ok(&["bundle", "keygen", key.to_str().unwrap()]);
    let public = public
        .split_whitespace()
        .find(|w| w.starts_with("ed25519:"))
        .expect("keygen prints the public key")
        .to_string();
    let bundle = dir.join("app.tbundle");
    env.ok(&[
        "bundle",
        "create",
        "--key",
        key.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
    ]);
    env.config(&format!(
        "{DEFAULT_CONFIG}bundles: {{trusted_keys: [\"{public}\"]}}\n"
    ));
    env.box_ok(&["bundle", "verify", bundle.to_str().unwrap()]);

    // A byte flipped in the middle (image data): refused, naming a check.
    let mut bytes = std::fs::read(&bundle).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let damaged = dir.join("damaged.tbundle");
    std::fs::write(&damaged, &bytes).unwrap();
    let out = env
        .command(&["bundle", "verify", damaged.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sha256") || err.contains("SHA-256"), "{err}");

    // The image leaves the engine; the damaged bundle brings nothing back.
    let out = Command::new("docker")
        .args(["rmi", &image])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env.start_daemon();
    let out = env
        .command(&["bundle", "apply", damaged.to_str().unwrap()])
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(!has_image(&image), "a damaged bundle loaded its image");

    // The genuine one restores the image and brings the project up.
    env.box_ok(&["bundle", "apply", bundle.to_str().unwrap()]);
    assert!(has_image(&image));
    wait_until(
        "app to run from the loaded image",
        std::time::Duration::from_secs(60),
        || env.running("app"),
    );

    // A box that trusts another key refuses the genuine bundle.
    let other = env.box_ok(&["bundle", "keygen", dir.join("other-key").to_str().unwrap()]);
    let other = other
        .split_whitespace()
        .find(|w| w.starts_with("ed25519:"))
        .expect("keygen prints the public key")
        .to_string();
    env.config(&format!(
        "{DEFAULT_CONFIG}bundles: {{trusted_keys: [\"{other}\"]}}\n"
    ));
    let out = env
        .command(&["bundle", "verify", bundle.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key"), "{err}");
}
