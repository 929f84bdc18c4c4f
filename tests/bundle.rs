//! `turtle bundle` end to end (issue 14): a key made, a project and its
//! image bundled and signed, the image removed from the engine, the bundle
//! verified against the box's trusted key and applied (pushed as a
//! release), the service running again from the loaded image; a damaged
//! copy, and the genuine one on a box that trusts another key, refused with
//! nothing loaded. Delta bundles through the CLI: carried layers, refused
//! on a box without their base, applied after the full one and recorded as
//! releases. Preload: applied on the daemon's first start, not on the
//! next; a damaged preload refused with the daemon serving.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use turtle_e2e::{DEFAULT_CONFIG, Env, IMAGE, Images, has_image, wait_until};

/// Removes the test's own image tag even when the test fails.
struct TagGuard(String);

impl Drop for TagGuard {
    fn drop(&mut self) {
        let _ = Command::new("docker").args(["rmi", "-f", &self.0]).output();
    }
}

/// `turtle bundle keygen DIR/NAME`: the secret key's path and the public key.
fn keygen(env: &Env, name: &str) -> (PathBuf, String) {
    let key = env.dir.path().join(name);
    let out = env.box_ok(&["bundle", "keygen", key.to_str().unwrap()]);
    let public = out
        .split_whitespace()
        .find(|w| w.starts_with("ed25519:"))
        .expect("keygen prints the public key")
        .to_string();
    (key, public)
}

/// The test config, trusting `public`, with a short settle window.
fn trusting(public: &str) -> String {
    format!("{DEFAULT_CONFIG}bundles: {{trusted_keys: [\"{public}\"]}}\nreleases: {{settle: 2s}}\n")
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The diff IDs of an image's layers.
fn layers(image: &str) -> Vec<String> {
    let out = turtle_e2e::docker(&["image", "inspect", "-f", "{{json .RootFS.Layers}}", image]);
    serde_json::from_str(&out).unwrap()
}

/// `turtle releases --format json` of the env's project.
fn releases(env: &Env) -> Vec<Value> {
    serde_json::from_str(&env.ok(&["releases", "--format", "json"])).expect("releases json")
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
    let (key, public) = keygen(&env, "release-key");
    let bundle = dir.join("app.tbundle");
    env.ok(&[
        "bundle",
        "create",
        "--key",
        key.to_str().unwrap(),
        "-o",
        bundle.to_str().unwrap(),
    ]);
    env.config(&trusting(&public));
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

    // Recorded as a release that came from the bundle.
    let r = releases(&env);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["outcome"], "committed");
    assert_eq!(
        r[0]["origin"]["bundle"]["file"],
        path(&std::fs::canonicalize(&bundle).unwrap())
    );

    // A box that trusts another key refuses the genuine bundle.
    let (_, other) = keygen(&env, "other-key");
    env.config(&trusting(&other));
    let out = env
        .command(&["bundle", "verify", bundle.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("key"), "{err}");
}

#[test]
fn a_delta_bundle_applies_after_the_full_one_and_is_refused_without_its_base() {
    let mut env = Env::new("delta");
    let mut images = Images::default();
    let repo = format!("turtle-delta-e2e-{}", env.project);
    let (base, v1, v2) = (
        format!("{repo}-base:1"),
        format!("{repo}-app:1"),
        format!("{repo}-app:2"),
    );
    // A base with 1 MiB of its own; the app changes one small layer.
    images.build(
        IMAGE,
        &base,
        "RUN head -c 1048576 /dev/urandom > /base-blob",
    );
    images.build(&base, &v1, "RUN echo v1 > /version");
    images.build(&base, &v2, "RUN echo v2 > /version");
    let compose = |image: &str| {
        format!(
            "services:\n  app:\n    image: {image}\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n"
        )
    };
    let (key, public) = keygen(&env, "release-key");
    let dir = env.dir.path().to_path_buf();
    let full = dir.join("v1.tbundle");
    let delta = dir.join("v2.tbundle");
    env.compose(&compose(&v1));
    env.ok(&["bundle", "create", "--key", path(&key), "-o", path(&full)]);
    env.compose(&compose(&v2));
    env.ok(&[
        "bundle",
        "create",
        "--key",
        path(&key),
        "--since",
        path(&full),
        "-o",
        path(&delta),
    ]);
    env.config(&trusting(&public));
    let full_size = std::fs::metadata(&full).unwrap().len();
    let delta_size = std::fs::metadata(&delta).unwrap().len();
    assert!(
        delta_size * 20 < full_size,
        "delta {delta_size} bytes, full {full_size} bytes"
    );
    // Its manifest: a delta, carrying v2's own layer alone.
    let manifest: Value =
        serde_json::from_str(&env.box_ok(&["bundle", "manifest", path(&delta)])).unwrap();
    let v2_layers = layers(&v2);
    let carried: Vec<String> = manifest["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("sha256:{}", p["sha256"].as_str().unwrap()))
        .filter(|d| v2_layers.contains(d))
        .collect();
    assert_eq!(carried, [v2_layers.last().unwrap().clone()]);
    assert_eq!(manifest["delta"]["since"], "v1.tbundle");
    assert!(!manifest["delta"]["requires"].as_array().unwrap().is_empty());

    // A box without the base: refused, naming its layer; nothing loaded.
    let base_layer = layers(&base).last().unwrap().clone();
    for image in [&v2, &v1, &base] {
        turtle_e2e::docker(&["rmi", image]);
    }
    env.start_daemon();
    let out = env
        .command(&["bundle", "apply", path(&delta)])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains(&base_layer), "{err}");
    assert!(err.contains("before anything was loaded"), "{err}");
    assert!(!has_image(&v2), "a refused delta loaded its image");
    assert!(env.id("app").is_none(), "a refused delta started something");

    // The full bundle, then the delta: each a release, v2 running.
    env.box_ok(&["bundle", "apply", path(&full)]);
    wait_until("app to run v1", Duration::from_secs(60), || {
        env.running("app")
    });
    env.box_ok(&["bundle", "apply", path(&delta)]);
    let running = turtle_e2e::docker(&["exec", &env.container("app"), "cat", "/version"]);
    assert_eq!(running, "v2");
    let r = releases(&env);
    assert_eq!(r.len(), 2, "{r:?}");
    for (release, file) in r.iter().zip([&delta, &full]) {
        assert_eq!(release["outcome"], "committed", "{release}");
        assert_eq!(
            release["origin"]["bundle"]["file"],
            path(&std::fs::canonicalize(file).unwrap()),
            "{release}"
        );
    }

    // A delta against a release of this box carries nothing it runs.
    let v1_release = r[1]["id"].as_str().unwrap().to_string();
    let again = dir.join("again.tbundle");
    env.ok(&[
        "bundle",
        "create",
        "--key",
        path(&key),
        "--since",
        &v1_release[..8],
        "-o",
        path(&again),
    ]);
    let manifest: Value =
        serde_json::from_str(&env.box_ok(&["bundle", "manifest", path(&again)])).unwrap();
    assert!(
        manifest["delta"]["since"]
            .as_str()
            .unwrap()
            .contains(&v1_release),
        "{}",
        manifest["delta"]
    );
}

/// A signed bundle of `env`'s project (image `image`, a layer of its own)
/// in the preload directory, the image removed, and a config trusting the
/// key: what an install image ships.
fn preloaded(env: &Env, images: &mut Images, image: &str) -> PathBuf {
    images.build(IMAGE, image, &format!("RUN echo {image} > /preloaded"));
    env.compose(&format!(
        "services:\n  app:\n    image: {image}\n    command: [\"sleep\", \"3600\"]\n    stop_signal: SIGKILL\n"
    ));
    let (key, public) = keygen(env, "install-key");
    let dir = env.state_dir().join("preload");
    std::fs::create_dir_all(&dir).unwrap();
    let bundle = dir.join("10-app.tbundle");
    env.ok(&[
        "bundle",
        "create",
        "--key",
        path(&key),
        "--release-version",
        "install-1",
        "-o",
        path(&bundle),
    ]);
    turtle_e2e::docker(&["rmi", image]);
    env.config(&trusting(&public));
    bundle
}

#[test]
fn a_preloaded_bundle_runs_on_the_first_start_and_not_again() {
    let mut env = Env::new("preload");
    let mut images = Images::default();
    let image = format!("turtle-preload-e2e:{}", env.project);
    let bundle = preloaded(&env, &mut images, &image);

    env.start_daemon();
    wait_until("the preloaded app to run", Duration::from_secs(120), || {
        env.running("app")
    });
    wait_until("the preload marker", Duration::from_secs(60), || {
        env.state_dir().join("preload.json").exists()
    });
    let r = releases(&env);
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!(r[0]["version"], "install-1");
    assert_eq!(r[0]["outcome"], "committed");
    assert_eq!(
        r[0]["origin"]["bundle"]["file"],
        path(&std::fs::canonicalize(&bundle).unwrap())
    );

    // The project taken down (the store has no project again) and the
    // daemon restarted: the marker says preload ran, nothing is applied.
    env.ok(&["down"]);
    env.stop_daemon();
    env.start_daemon();
    wait_until(
        "the daemon to see the marker",
        Duration::from_secs(30),
        || env.daemon_log().contains("preload already ran"),
    );
    assert!(env.id("app").is_none(), "preload ran again");
    assert_eq!(releases(&env).len(), 1);
}

#[test]
fn a_damaged_preload_is_refused_and_the_daemon_serves() {
    let mut env = Env::new("preloadbad");
    let mut images = Images::default();
    let image = format!("turtle-preload-bad-e2e:{}", env.project);
    let bundle = preloaded(&env, &mut images, &image);
    let mut bytes = std::fs::read(&bundle).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&bundle, &bytes).unwrap();

    env.start_daemon();
    wait_until("the preload marker", Duration::from_secs(60), || {
        env.state_dir().join("preload.json").exists()
    });
    let log = env.daemon_log();
    assert!(log.contains("REFUSED"), "{log}");
    assert!(log.contains("part check failed"), "{log}");
    let marker: Value = serde_json::from_str(
        &std::fs::read_to_string(env.state_dir().join("preload.json")).unwrap(),
    )
    .unwrap();
    assert!(
        marker["bundles"][0]["result"]
            .as_str()
            .unwrap()
            .starts_with("refused"),
        "{marker}"
    );
    assert!(!has_image(&image), "a refused preload loaded its image");
    assert!(env.id("app").is_none());
    // The daemon serves all along.
    assert!(env.api_get("/v1/ping").contains("version"));
}
