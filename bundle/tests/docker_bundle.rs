//! Bundles against the real engine: an image made for the test, bundled,
//! removed from the engine, loaded back from the bundle and run; a tampered
//! copy refused with the image still absent; a file changed between the
//! passes loading nothing; a larger bundle (a few MB of random layers)
//! with a sample of flipped bytes refused.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use common::{Cleanup, build, rmi, unique};

use turtle_bundle::{Check, SecretKey, Trust};
use turtle_engine::Engine;
use turtle_engine::docker::Docker;

fn project(name: &str, image: &str) -> turtle_compose::Project {
    serde_json::from_value(serde_json::json!({
        "name": name,
        "working_dir": "/srv",
        "services": {"app": {"image": image, "restart": "no"}},
    }))
    .unwrap()
}

/// The range of the part holding `image`'s last layer.
fn last_layer(path: &Path, trust: &Trust, image: &str) -> std::ops::Range<u64> {
    let v = turtle_bundle::verify_file(path, trust).unwrap();
    let m = v.manifest();
    let layer = m
        .images
        .iter()
        .find(|i| i.repo_tags.iter().any(|t| t == image))
        .unwrap()
        .layers
        .last()
        .unwrap()
        .clone();
    let mut at = v.len() - m.data_len();
    for p in &m.parts {
        if p.path == layer {
            return at..at + p.size;
        }
        at += p.size;
    }
    panic!("no part {layer}");
}

fn flip(path: &Path, at: u64, keep_mtime: bool) {
    use std::io::{Read, Seek, SeekFrom, Write};
    let mtime = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    let mut b = [0u8];
    f.seek(SeekFrom::Start(at)).unwrap();
    f.read_exact(&mut b).unwrap();
    f.seek(SeekFrom::Start(at)).unwrap();
    f.write_all(&[b[0] ^ 0x01]).unwrap();
    if keep_mtime {
        f.set_modified(mtime).unwrap();
    }
}

#[tokio::test]
async fn a_bundle_restores_a_removed_image_and_a_tampered_one_loads_nothing() {
    let engine = Docker::connect(None).unwrap();
    let mut cleanup = Cleanup::default();
    let image = format!("{}:v1", unique("bundle"));
    cleanup.images.push(image.clone());
    let marker = unique("marker");
    build(&image, &format!("RUN echo {marker} > /bundle-id"));
    let id = engine.image_id(&image).await.unwrap().unwrap();

    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(&[42; 32]);
    let trust = Trust::new(vec![key.public()]);
    let path = dir.path().join("app.bundle");
    let created =
        turtle_bundle::create(&engine, &project("bundle-test", &image), Some(&key), &path)
            .await
            .unwrap();
    assert_eq!(created.manifest.images[0].id, id);
    assert_eq!(
        created.manifest.architecture,
        turtle_bundle::manifest::host_architecture()
    );

    // A tampered copy (a byte of this image's own layer) is refused, and
    // the image is not in the engine afterwards.
    rmi(&image);
    assert_eq!(engine.image_id(&image).await.unwrap(), None);
    let tampered = dir.path().join("tampered.bundle");
    std::fs::copy(&path, &tampered).unwrap();
    let layer = last_layer(&path, &trust, &image);
    flip(
        &tampered,
        layer.start + layer.end.saturating_sub(layer.start) / 2,
        false,
    );
    let e = turtle_bundle::apply(&engine, &tampered, &trust)
        .await
        .unwrap_err();
    assert_eq!(e.check(), Some(Check::Part), "{e}");
    assert_eq!(
        engine.image_id(&image).await.unwrap(),
        None,
        "a refused bundle loaded its image"
    );

    // Changed between the passes (in place, its time put back): the load
    // is aborted mid-stream, and the engine keeps nothing.
    let racy = dir.path().join("racy.bundle");
    std::fs::copy(&path, &racy).unwrap();
    let verified = turtle_bundle::verify(&racy, &trust).await.unwrap();
    flip(&racy, layer.start + 1, true);
    let e = turtle_bundle::load(&engine, verified).await.unwrap_err();
    assert_eq!(e.check(), Some(Check::Changed), "{e}");
    assert_eq!(
        engine.image_id(&image).await.unwrap(),
        None,
        "an aborted load left the image"
    );

    // The bundle itself loads the image back, under its tag and ID, and it runs.
    let applied = turtle_bundle::apply(&engine, &path, &trust).await.unwrap();
    assert_eq!(applied.project.name.as_str(), "bundle-test");
    assert_eq!(engine.image_id(&image).await.unwrap(), Some(id));
    let container = unique("run");
    cleanup.containers.push(container.clone());
    let out = Command::new("docker")
        .args(["run", "--name", &container, &image, "cat", "/bundle-id"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), marker);
}

#[tokio::test]
async fn a_larger_bundle_refuses_a_sample_of_flipped_bytes() {
    let engine = Docker::connect(None).unwrap();
    let mut cleanup = Cleanup::default();
    let image = format!("{}:v1", unique("big"));
    cleanup.images.push(image.clone());
    // Three layers of 4 MiB of random data each.
    build(
        &image,
        "RUN head -c 4194304 /dev/urandom > /r1\nRUN head -c 4194304 /dev/urandom > /r2\nRUN head -c 4194304 /dev/urandom > /r3",
    );
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(&[43; 32]);
    let trust = Trust::new(vec![key.public()]);
    let path = dir.path().join("big.bundle");
    turtle_bundle::create(&engine, &project("bundle-big", &image), Some(&key), &path)
        .await
        .unwrap();
    let v = turtle_bundle::verify_file(&path, &trust).unwrap();
    let len = v.len();
    assert!(len > 12 << 20, "{len} bytes");
    let data_start = len - v.manifest().data_len();
    let mut parts = Vec::new();
    let mut at = data_start;
    for p in &v.manifest().parts {
        parts.push((p.path.clone(), at..at + p.size));
        at += p.size;
    }
    drop(v);

    // The header, the manifest, the seal, the first and last byte of
    // every part, and 24 offsets spread over the file.
    let mut sample: Vec<u64> = vec![0, 9, 20, 31, 32, 100, data_start - 1, data_start - 96];
    for (_, r) in &parts {
        sample.extend([r.start, r.end - 1]);
    }
    sample.extend((1..=24).map(|n| n * (len / 25)));
    let started = Instant::now();
    for &at in &sample {
        flip(&path, at, false);
        let e = turtle_bundle::verify_file(&path, &trust).unwrap_err();
        flip(&path, at, false);
        let want = if at < 32 {
            Check::Header
        } else if at < data_start {
            Check::Signature
        } else {
            Check::Part
        };
        assert_eq!(e.check(), want, "byte {at}: {e}");
        if want == Check::Part {
            let (name, _) = parts.iter().find(|(_, r)| r.contains(&at)).unwrap();
            assert!(e.to_string().contains(name.as_str()), "byte {at}: {e}");
        }
    }
    turtle_bundle::verify_file(&path, &trust).unwrap();
    eprintln!(
        "{} flips of a {len} byte bundle refused in {:?}",
        sample.len(),
        started.elapsed()
    );
}
