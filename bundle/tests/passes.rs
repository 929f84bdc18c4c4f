//! Create and apply through the recording fake engine, and the second
//! pass: a file changed after verification loads nothing. No Docker.

use std::io::{Read, Seek, SeekFrom, Write};

use turtle_bundle::{Check, SecretKey, Trust};
use turtle_engine::Engine;
use turtle_engine::fake::FakeEngine;

fn project() -> turtle_compose::Project {
    serde_json::from_str(
        r#"{"name":"demo","working_dir":"/srv/demo","services":{
            "web":{"image":"demo-web:1","restart":"no","build":{"context":"/srv/demo/web"},"pull_policy":"build"},
            "db":{"image":"demo-db:1","restart":"no"}}}"#,
    )
    .unwrap()
}

async fn made(dir: &std::path::Path, key: &SecretKey) -> (std::path::PathBuf, FakeEngine) {
    let source = FakeEngine::new();
    source.add_image("demo-web:1");
    source.add_image("demo-db:1");
    let out = dir.join("demo.bundle");
    let created = turtle_bundle::create(&source, &project(), Some(key), &out)
        .await
        .unwrap();
    assert_eq!(created.manifest.images.len(), 2);
    let web = &created.manifest.project.services["web"];
    assert!(web.build.is_none(), "the build context does not travel");
    assert_eq!(web.pull_policy, Some(turtle_compose::PullPolicy::Missing));
    (out, source)
}

#[tokio::test]
async fn a_bundle_made_on_one_engine_loads_on_another() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(&[7; 32]);
    let (path, source) = made(dir.path(), &key).await;
    let target = FakeEngine::new();
    let applied = turtle_bundle::apply(&target, &path, &Trust::new(vec![key.public()]))
        .await
        .unwrap();
    assert_eq!(applied.project.name.as_str(), "demo");
    for image in ["demo-web:1", "demo-db:1"] {
        assert_eq!(
            target.image_id(image).await.unwrap(),
            source.image_id(image).await.unwrap(),
            "{image}"
        );
    }
}

#[tokio::test]
async fn a_tampered_bundle_reaches_no_engine() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(&[7; 32]);
    let (path, _) = made(dir.path(), &key).await;
    let len = std::fs::metadata(&path).unwrap().len();
    let mut f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.seek(SeekFrom::Start(len - 300)).unwrap();
    f.write_all(b"X").unwrap();
    drop(f);
    let target = FakeEngine::new();
    let e = turtle_bundle::apply(&target, &path, &Trust::new(vec![key.public()]))
        .await
        .unwrap_err();
    assert_eq!(e.check(), Some(Check::Part), "{e}");
    assert!(
        !target.calls().iter().any(|c| c.starts_with("load")),
        "{:?}",
        target.calls()
    );
}

/// Flips one byte in place and puts the modification time back, so only
/// the second pass's hashes can tell.
fn flip_keeping_mtime(path: &std::path::Path, at: u64) {
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
    f.write_all(&[b[0] ^ 1]).unwrap();
    f.set_modified(mtime).unwrap();
}

#[tokio::test]
async fn a_file_changed_between_the_passes_loads_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = SecretKey::from_seed(&[7; 32]);
    let trust = Trust::new(vec![key.public()]);
    let (path, _) = made(dir.path(), &key).await;

    // Changed in place, its time put back: the second pass's hash catches it.
    let verified = turtle_bundle::verify(&path, &trust).await.unwrap();
    let len = verified.len();
    flip_keeping_mtime(&path, len - 400);
    let mut sink = Vec::new();
    let e = verified.write_archive(&mut sink).unwrap_err();
    assert_eq!(e.check(), Check::Changed, "{e}");
    assert!(e.to_string().contains("now has sha256"), "{e}");
    // The archive's index comes last, and was never written.
    let text = String::from_utf8_lossy(&sink);
    assert!(
        !text.contains("RepoTags"),
        "the index left before the check"
    );
    let target = FakeEngine::new();
    let e = turtle_bundle::load(&target, verified).await.unwrap_err();
    assert_eq!(e.check(), Some(Check::Changed), "{e}");
    assert_eq!(target.image_id("demo-web:1").await.unwrap(), None);

    // Changed with its time: refused before anything is read.
    flip_keeping_mtime(&path, len - 400);
    let verified = turtle_bundle::verify(&path, &trust).await.unwrap();
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .unwrap()
        .write_all(b"more")
        .unwrap();
    let mut sink = Vec::new();
    let e = verified.write_archive(&mut sink).unwrap_err();
    assert_eq!(e.check(), Check::Changed, "{e}");
    assert!(sink.is_empty());
}
