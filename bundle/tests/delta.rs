//! Delta bundles through the recording fake engine (which loads as the
//! engine does: a layer file is read only when the layer's chain is
//! missing): only the changed layers travel, a box that has the rest loads
//! the delta, and a box that lacks a layer refuses it before loading
//! anything. No Docker; `docker_delta.rs` does the same on the engine.

use turtle_bundle::manifest::chain_ids;
use turtle_bundle::{BaseSet, BundleError, SecretKey, Trust};
use turtle_engine::Engine;
use turtle_engine::fake::FakeEngine;

fn project(app: &str) -> turtle_compose::Project {
    serde_json::from_value(serde_json::json!({
        "name": "demo",
        "working_dir": "/srv/demo",
        "services": {
            "app": {"image": app, "restart": "no"},
            "db": {"image": "demo-db:1", "restart": "no"},
        },
    }))
    .unwrap()
}

const BASE: &[&[u8]] = &[b"base layer 0", b"base layer 1"];

/// The maker's engine: app v1 and db on a shared base, then app v2.
fn maker() -> FakeEngine {
    let e = FakeEngine::new();
    e.add_image_with_layers("demo-app:1", &[BASE[0], BASE[1], b"app v1"]);
    e.add_image_with_layers("demo-db:1", &[BASE[0], BASE[1], b"db v1"]);
    e.add_image_with_layers("demo-app:2", &[BASE[0], BASE[1], b"app v2"]);
    e
}

fn sha(b: &[u8]) -> String {
    use sha2::Digest;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(b)))
}

#[tokio::test]
async fn a_delta_carries_only_the_new_layer_and_loads_onto_a_box_that_has_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(&[9; 32]);
    let trust = Trust::new(vec![key.public()]);
    let source = maker();
    let full = dir.path().join("v1.bundle");
    let v1 = turtle_bundle::create(&source, &project("demo-app:1"), Some(&key), &full)
        .await
        .unwrap();
    let since = BaseSet::from_manifest(&v1.manifest, "v1.bundle").unwrap();
    let delta_path = dir.path().join("v2.delta");
    let delta = turtle_bundle::create_delta(
        &source,
        &project("demo-app:2"),
        Some(&key),
        &since,
        &delta_path,
    )
    .await
    .unwrap();
    let m = &delta.manifest;
    let d = m.delta.as_ref().expect("a delta manifest");
    assert_eq!(d.since, "v1.bundle");
    // Every layer file but app v2's is left out; app v2's is carried.
    let left: Vec<&str> = d.omitted.iter().map(|o| o.diff_id.as_str()).collect();
    for l in [BASE[0], BASE[1], b"db v1"] {
        assert!(left.contains(&sha(l).as_str()), "{left:?}");
    }
    let carried: Vec<&str> = m.parts.iter().map(|p| p.sha256.as_str()).collect();
    assert!(carried.contains(&sha(b"app v2").trim_start_matches("sha256:")));
    assert!(!carried.contains(&sha(BASE[0]).trim_start_matches("sha256:")));
    assert!(delta.left_out_bytes > 0);
    // The required layers name their chains and the images needing them.
    let base_chain = chain_ids(&[sha(BASE[0]), sha(BASE[1])]);
    let r = d
        .requires
        .iter()
        .find(|r| r.chain_id == base_chain[1])
        .expect("the base's top layer is required");
    assert_eq!(r.images, ["demo-app:2", "demo-db:1"]);

    // A box that applied v1 takes the delta.
    let target = FakeEngine::new();
    turtle_bundle::apply(&target, &full, &trust).await.unwrap();
    let applied = turtle_bundle::apply(&target, &delta_path, &trust)
        .await
        .unwrap();
    assert_eq!(
        applied.project.services["app"].image.as_deref(),
        Some("demo-app:2")
    );
    assert_eq!(
        target.image_id("demo-app:2").await.unwrap(),
        source.image_id("demo-app:2").await.unwrap()
    );
    let info = target.inspect_image("demo-app:2").await.unwrap().unwrap();
    assert_eq!(info.layers.last(), Some(&sha(b"app v2")));
}

#[tokio::test]
async fn a_delta_onto_a_box_without_its_base_is_refused_before_anything_is_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(&[9; 32]);
    let trust = Trust::new(vec![key.public()]);
    let source = maker();
    let mut since = BaseSet::new("release 0123456789ab");
    let v1 = source.inspect_image("demo-app:1").await.unwrap().unwrap();
    since.add_image("demo-app:1", &v1.layers);
    let db = source.inspect_image("demo-db:1").await.unwrap().unwrap();
    since.add_image("demo-db:1", &db.layers);
    let path = dir.path().join("v2.delta");
    turtle_bundle::create_delta(&source, &project("demo-app:2"), Some(&key), &since, &path)
        .await
        .unwrap();

    // This box has the base's bottom layer only (another image on it).
    let target = FakeEngine::new();
    target.add_image_with_layers("other:1", &[BASE[0], b"other"]);
    target.clear_calls();
    let e = turtle_bundle::apply(&target, &path, &trust)
        .await
        .unwrap_err();
    let BundleError::MissingLayers { since, missing } = &e else {
        panic!("{e}");
    };
    assert_eq!(since, "release 0123456789ab");
    // Its first missing layer is the base's second; the bottom one is there.
    assert_eq!(missing[0].diff_id, sha(BASE[1]));
    let text = e.to_string();
    assert!(text.contains(&sha(BASE[1])), "{text}");
    assert!(text.contains("demo-app:2"), "{text}");
    assert!(text.contains("before anything was loaded"), "{text}");
    assert!(
        !target.calls().iter().any(|c| c.starts_with("load_images")),
        "{:?}",
        target.calls()
    );
    assert_eq!(target.image_id("demo-app:2").await.unwrap(), None);
    assert_eq!(target.image_id("demo-db:1").await.unwrap(), None);
}

#[tokio::test]
async fn a_delta_against_everything_it_carries_still_tags_its_images() {
    let dir = tempfile::tempdir().unwrap();
    let source = maker();
    let full = dir.path().join("v1.bundle");
    let v1 = turtle_bundle::create(&source, &project("demo-app:1"), None, &full)
        .await
        .unwrap();
    let since = BaseSet::from_manifest(&v1.manifest, "v1.bundle").unwrap();
    let again = dir.path().join("v1-again.delta");
    let d = turtle_bundle::create_delta(&source, &project("demo-app:1"), None, &since, &again)
        .await
        .unwrap();
    // Configs and the index only.
    assert!(
        d.manifest
            .parts
            .iter()
            .all(|p| !p.path.ends_with("layer.tar"))
    );
    let target = FakeEngine::new();
    turtle_bundle::apply(&target, &full, &Trust::default())
        .await
        .unwrap();
    turtle_bundle::apply(&target, &again, &Trust::default())
        .await
        .unwrap();
    assert!(target.image_id("demo-app:1").await.unwrap().is_some());
}

#[tokio::test]
async fn nothing_in_common_makes_a_full_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let source = maker();
    let mut since = BaseSet::new("elsewhere");
    since.add_image("unrelated", &[sha(b"unrelated")]);
    let path = dir.path().join("full.bundle");
    let c = turtle_bundle::create_delta(&source, &project("demo-app:2"), None, &since, &path)
        .await
        .unwrap();
    assert!(c.manifest.delta.is_none());
    assert_eq!(c.left_out_bytes, 0);
}
