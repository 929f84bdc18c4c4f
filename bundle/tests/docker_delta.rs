//! Delta bundles against the real engine: a base with a layer of its own,
//! an app built on it in two versions. The delta of v2 against v1's bundle
//! carries v2's new layer alone, and the engine loads it on a box that has
//! v1 (its `docker load` skips the files of layers it has: what the delta
//! design rests on); the image runs. On a box without the base's layer the
//! delta is refused naming that layer, and nothing reaches the engine.

mod common;

use std::process::Command;

use turtle_bundle::manifest::chain_ids;
use turtle_bundle::{BaseSet, BundleError, CreateOptions, SecretKey, Trust};
use turtle_engine::Engine;
use turtle_engine::docker::Docker;

use common::{Cleanup, build, build_from, rmi, unique};

fn project(image: &str) -> turtle_compose::Project {
    serde_json::from_value(serde_json::json!({
        "name": "delta-test",
        "working_dir": "/srv",
        "services": {"app": {"image": image, "restart": "no"}},
    }))
    .unwrap()
}

/// A base with 2 MiB of its own, and app v1 and v2 on it.
struct Images {
    base: String,
    v1: String,
    v2: String,
}

fn images(cleanup: &mut Cleanup, tag: &str) -> Images {
    let repo = unique(tag);
    let i = Images {
        base: format!("{repo}-base:1"),
        v1: format!("{repo}-app:1"),
        v2: format!("{repo}-app:2"),
    };
    cleanup.images.push(i.base.clone());
    build(&i.base, "RUN head -c 2097152 /dev/urandom > /base-blob");
    for (image, version) in [(&i.v1, "v1"), (&i.v2, "v2")] {
        cleanup.images.push(image.clone());
        build_from(
            &i.base,
            image,
            &format!("RUN echo {version}-{repo} > /version"),
        );
    }
    i
}

fn run(cleanup: &mut Cleanup, image: &str, cmd: &[&str]) -> String {
    let name = unique("run");
    cleanup.containers.push(name.clone());
    let out = Command::new("docker")
        .args(["run", "--name", &name, image])
        .args(cmd)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn a_delta_carries_only_the_changed_layer_and_the_engine_loads_it() {
    let engine = Docker::connect(None).unwrap();
    let mut cleanup = Cleanup::default();
    let i = images(&mut cleanup, "delta");
    let v2_id = engine.image_id(&i.v2).await.unwrap().unwrap();
    let v2 = engine.inspect_image(&i.v2).await.unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(&[51; 32]);
    let trust = Trust::new(vec![key.public()]);

    // v1's full bundle, carrying the base for builds, then v2's delta.
    let full = dir.path().join("v1.bundle");
    let opts = CreateOptions {
        key: Some(&key),
        bases: vec![i.base.clone()],
        ..Default::default()
    };
    let v1 = turtle_bundle::create_with(&engine, &project(&i.v1), &opts, &full)
        .await
        .unwrap();
    assert_eq!(v1.manifest.bases, std::slice::from_ref(&i.base));
    assert!(
        v1.manifest
            .images
            .iter()
            .any(|m| m.repo_tags.contains(&i.base))
    );
    let since = BaseSet::from_manifest(&v1.manifest, "v1.bundle").unwrap();
    let path = dir.path().join("v2.delta");
    let delta = turtle_bundle::create_delta(&engine, &project(&i.v2), Some(&key), &since, &path)
        .await
        .unwrap();
    eprintln!(
        "full {} bytes, delta {} bytes ({} left out)",
        v1.size, delta.size, delta.left_out_bytes
    );
    assert!(
        delta.size * 20 < v1.size,
        "the delta ({} bytes) is not much smaller than the full bundle ({} bytes)",
        delta.size,
        v1.size
    );
    // Its only layer file is v2's own top layer.
    let m = &delta.manifest;
    let carried: Vec<String> = m
        .parts
        .iter()
        .map(|p| format!("sha256:{}", p.sha256))
        .filter(|d| v2.layers.contains(d))
        .collect();
    assert_eq!(carried, [v2.layers.last().unwrap().clone()]);
    let d = m.delta.as_ref().unwrap();
    let chains = chain_ids(&v2.layers);
    assert!(
        d.requires
            .iter()
            .any(|r| r.chain_id == chains[chains.len() - 2]),
        "the base's top layer is required: {:?}",
        d.requires
    );

    // The box has v1 (and the base); v2 is not there until the delta.
    rmi(&i.v2);
    assert_eq!(engine.image_id(&i.v2).await.unwrap(), None);
    let applied = turtle_bundle::apply(&engine, &path, &trust).await.unwrap();
    assert_eq!(
        applied.project.services["app"].image.as_deref(),
        Some(i.v2.as_str())
    );
    assert_eq!(engine.image_id(&i.v2).await.unwrap(), Some(v2_id));
    let version = run(&mut cleanup, &i.v2, &["cat", "/version"]);
    assert!(version.starts_with("v2-"), "{version}");
    let blob = run(&mut cleanup, &i.v2, &["wc", "-c", "/base-blob"]);
    assert!(blob.starts_with("2097152"), "{blob}");
}

#[tokio::test]
async fn a_delta_onto_an_engine_without_its_base_layer_loads_nothing() {
    let engine = Docker::connect(None).unwrap();
    let mut cleanup = Cleanup::default();
    let i = images(&mut cleanup, "nobase");
    let base = engine.inspect_image(&i.base).await.unwrap().unwrap();
    let v2 = engine.inspect_image(&i.v2).await.unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(&[52; 32]);
    let trust = Trust::new(vec![key.public()]);
    // Against the images of a release, as `--since RELEASE` does.
    let since = BaseSet::from_images(&engine, std::slice::from_ref(&i.v1), "release v1")
        .await
        .unwrap();
    let path = dir.path().join("v2.delta");
    turtle_bundle::create_delta(&engine, &project(&i.v2), Some(&key), &since, &path)
        .await
        .unwrap();

    // The box lost the base and both apps: the base's own layer is gone.
    for image in [&i.v2, &i.v1, &i.base] {
        rmi(image);
    }
    let base_layer = base.layers.last().unwrap().clone();
    let holds = |images: &[turtle_engine::ImageInfo], layer: &str| {
        images
            .iter()
            .filter(|m| m.layers.iter().any(|l| l == layer))
            .map(|m| m.id.clone())
            .collect::<Vec<_>>()
    };
    let before = engine.list_images().await.unwrap();
    assert_eq!(holds(&before, &base_layer), Vec::<String>::new());

    let e = turtle_bundle::apply(&engine, &path, &trust)
        .await
        .unwrap_err();
    let BundleError::MissingLayers { missing, .. } = &e else {
        panic!("{e}");
    };
    // The lowest missing layer is the base's own, needed by v2.
    assert_eq!(missing[0].diff_id, base_layer, "{e}");
    let text = e.to_string();
    assert!(text.contains(&base_layer) && text.contains(&i.v2), "{text}");
    // Nothing reached the engine: no v2, nothing holding its layers.
    assert_eq!(engine.image_id(&i.v2).await.unwrap(), None);
    let after = engine.list_images().await.unwrap();
    assert_eq!(
        holds(&after, v2.layers.last().unwrap()),
        Vec::<String>::new()
    );
    assert_eq!(holds(&after, &base_layer), Vec::<String>::new());
}
