//! The update's disk check and the collection of old releases' images,
//! against the real engine: layers the engine has cost nothing (and the
//! chain IDs are the engine's own), a reserve above the free space is
//! refused with the numbers, a small file system fills up as measured, and
//! only the images of older releases that nothing uses are removed.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{Cleanup, docker, test_image, unique};
use turtle_engine::Engine;
use turtle_runtime::release::disk::{
    self, DiskError, Need, Reserve, ReserveFrom, WantedImage, chain_ids,
};
use turtle_runtime::release::gc::remove_unused;
use turtle_runtime::release::{Origin, Outcome, PinnedImage, Release};
use turtle_runtime::store::Store;
use turtle_units::ByteSize;

/// `FROM` the test image with a label of its own: a new image ID, no new
/// layer. Returns the ID.
fn derived(tag: &str) -> String {
    let mut child = Command::new("docker")
        .args(["build", "-q", "-t", tag, "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let dockerfile = format!("FROM {}\nLABEL io.turtle.test={tag}\n", test_image());
    child
        .stdin
        .take()
        .unwrap()
        .write_all(dockerfile.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "docker build {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn docker_cli(args: &[&str]) {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn layers_the_engine_has_cost_nothing_and_others_their_size() {
    let engine = docker();
    let image = engine.inspect_image(test_image()).await.unwrap().unwrap();
    assert!(!image.layers.is_empty());
    let own: Vec<(String, u64)> = image.layers.iter().map(|l| (l.clone(), 1 << 20)).collect();

    // list_images sees the test image with its layers.
    let all = engine.list_images().await.unwrap();
    let listed = all.iter().find(|i| i.id == image.id).expect("listed");
    assert_eq!(listed.layers, image.layers);

    let need = disk::need_for_layers(&engine, &own).await.unwrap();
    assert_eq!(need, Need::default());
    let need = disk::need_for_images(
        &engine,
        &[WantedImage {
            name: "test".into(),
            layers: own.clone(),
        }],
    )
    .await
    .unwrap();
    assert_eq!(need, Need::default());

    // A layer no image has costs its size; on top of the test image, only
    // that layer.
    let fake = format!("sha256:{}", "f".repeat(64));
    let need = disk::need_for_layers(&engine, &[(fake.clone(), 12345)])
        .await
        .unwrap();
    assert_eq!(need.bytes, 12345);
    let mut stacked = own.clone();
    stacked.push((fake.clone(), 12345));
    let need = disk::need_for_images(
        &engine,
        &[WantedImage {
            name: "web".into(),
            layers: stacked,
        }],
    )
    .await
    .unwrap();
    assert_eq!(need.bytes, 12345);
    assert_eq!(
        need.detail,
        vec![(format!("image web: 1 of {} layers", own.len() + 1), 12345)]
    );
    // The test image's top layer under another base is stored again.
    let top = own.last().unwrap().clone();
    let need = disk::need_for_images(
        &engine,
        &[WantedImage {
            name: "moved".into(),
            layers: vec![(fake, 10), top],
        }],
    )
    .await
    .unwrap();
    assert_eq!(need.bytes, 10 + (1 << 20));

    // The chain IDs are the names the engine stores the layers under
    // (its layer database), when this process can read the data root.
    let root = engine.data_root().await.unwrap();
    let layerdbs: Vec<PathBuf> = std::fs::read_dir(root.join("image"))
        .map(|d| {
            d.flatten()
                .map(|e| e.path().join("layerdb/sha256"))
                .collect()
        })
        .unwrap_or_default();
    if layerdbs.is_empty() {
        eprintln!(
            "{} is not readable here: chain IDs not compared with the engine's",
            root.display()
        );
    } else {
        for chain in chain_ids(image.layers.iter().map(String::as_str)) {
            let hex = chain.strip_prefix("sha256:").unwrap();
            assert!(
                layerdbs.iter().any(|d| d.join(hex).is_dir()),
                "chain {chain} is not in the engine's layer database {layerdbs:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_reserve_above_the_free_space_is_refused_with_the_numbers() {
    let engine = docker();
    let root = engine.data_root().await.unwrap();
    let free = disk::free_space(&root).unwrap();
    let reserve = Reserve {
        bytes: free + (1 << 30),
        from: ReserveFrom::Config,
    };
    let mut need = Need::default();
    need.add("image web: 1 of 2 layers", 5 << 20);
    let err = disk::check(&engine, &need, &reserve).await.unwrap_err();
    let DiskError::NotEnough(short) = &err else {
        panic!("{err}")
    };
    assert_eq!(short.path, root);
    assert_eq!(short.reserve, reserve);
    assert!(short.short() > 1 << 30, "{err}");
    let msg = err.to_string();
    for part in [
        "writes 5 MiB (image web: 1 of 2 layers 5 MiB)".to_string(),
        format!("{} must stay free", ByteSize(reserve.bytes)),
        "releases.reserve in the config file".to_string(),
        format!("{} has {} free", root.display(), ByteSize(short.free)),
        format!("{} short", ByteSize(short.short())),
    ] {
        assert!(msg.contains(&part), "{part:?} not in: {msg}");
    }

    // Nothing needed and nothing reserved passes, on the same directory.
    let none = Reserve {
        bytes: 0,
        from: ReserveFrom::Config,
    };
    let space = disk::check(&engine, &Need::default(), &none).await.unwrap();
    assert_eq!(space.path, root);
}

/// A small tmpfs, unmounted on drop.
struct Mounted(tempfile::TempDir);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

#[test]
fn a_small_file_system_fills_up_as_measured() {
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=8m", "tmpfs"])
        .arg(dir.path())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("cannot mount a tmpfs here (not root?): the small file system is not tested");
        return;
    }
    let mount = Mounted(dir);
    let path: &Path = mount.0.path();
    assert_eq!(disk::free_space(path).unwrap(), 8 << 20);
    let reserve = Reserve {
        bytes: 2 << 20,
        from: ReserveFrom::Default,
    };
    let mut need = Need::default();
    need.add("layers", 5 << 20);
    let space = disk::check_path(path, &need, &reserve).unwrap();
    assert_eq!(space.left(), 3 << 20);

    // 4 MiB written: 5 MiB more and 2 MiB reserved no longer fit.
    std::fs::write(path.join("filler"), vec![1u8; 4 << 20]).unwrap();
    let err = disk::check_path(path, &need, &reserve).unwrap_err();
    let DiskError::NotEnough(short) = &err else {
        panic!("{err}")
    };
    assert_eq!((short.free, short.short()), (4 << 20, 3 << 20));
    assert!(
        err.to_string().contains("has 4 MiB free: 3 MiB short"),
        "{err}"
    );
}

fn release(store: &Store, project: &str, service_images: &[(&str, &str)]) -> Release {
    let mut r = Release {
        id: {
            static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
            format!(
                "{:012x}",
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            )
        },
        project: project.into(),
        seq: 0,
        version: String::new(),
        notes: String::new(),
        created_ms: 0,
        origin: Origin::Push,
        compose: turtle_reconcile::test_support::project(project, vec![]),
        images: service_images
            .iter()
            .map(|(s, id)| {
                (
                    s.to_string(),
                    PinnedImage {
                        reference: format!("{s}:pinned"),
                        id: id.to_string(),
                        repo_digest: None,
                    },
                )
            })
            .collect(),
        outcome: Outcome::Pending,
        reason: None,
        finished_ms: None,
    };
    store.add_release(&mut r).unwrap();
    store
        .finish_release(&r.id, Outcome::Committed, None)
        .unwrap();
    r
}

#[tokio::test]
async fn old_releases_images_go_unless_something_uses_them() {
    let engine = docker();
    let mut cleanup = Cleanup::default();
    let base = unique("gc");
    let tag = |n: &str| format!("{base}-{n}:1");
    for n in ["old", "stopped", "prev", "cur", "two-a", "two-b"] {
        cleanup.images.push(tag(n));
    }
    let old = derived(&tag("old"));
    let stopped = derived(&tag("stopped"));
    let prev = derived(&tag("prev"));
    let cur = derived(&tag("cur"));
    // Tagged in two repositories: the engine refuses to remove it by ID.
    let two = derived(&tag("two-a"));
    docker_cli(&["tag", &tag("two-a"), &tag("two-b")]);
    // A stopped container of no project uses `stopped`.
    let container = format!("{base}-c");
    cleanup.containers.push(container.clone());
    docker_cli(&["create", "--name", &container, &tag("stopped")]);

    let state = tempfile::tempdir().unwrap();
    let store = Store::open(state.path()).unwrap();
    let project = base.clone();
    release(&store, &project, &[("web", &old), ("db", &two)]);
    release(&store, &project, &[("web", &stopped)]);
    release(&store, &project, &[("web", &prev)]);
    release(&store, &project, &[("web", &cur)]);
    let keep: BTreeSet<String> = [prev.clone(), cur.clone()].into();

    let report = remove_unused(&engine, &store, &project, &keep).await;
    assert_eq!(report.removed, vec![old.clone()], "{report}");
    assert!(report.failed.is_empty(), "{report}");
    let kept: std::collections::BTreeMap<_, _> = report.kept.iter().cloned().collect();
    assert_eq!(kept.len(), 2, "{report}");
    assert_eq!(kept[&stopped], format!("used by container {container}"));
    assert!(
        kept[&two].contains("referenced in multiple repositories"),
        "{report}"
    );

    assert!(engine.inspect_image(&old).await.unwrap().is_none());
    for id in [&stopped, &prev, &cur, &two] {
        assert!(engine.inspect_image(id).await.unwrap().is_some(), "{id}");
    }
    // The base the images were built on is untouched.
    assert!(engine.image_id(test_image()).await.unwrap().is_some());
}
