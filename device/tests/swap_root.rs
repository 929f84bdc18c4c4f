//! The real swap file and zram device, as root: set up with the right priorities,
//! left alone by a second apply, removed by reset; a swap file Turtle did not create
//! and a disk without room are refused. Skipped with a message when not root (or,
//! for zram, without `/sys/class/zram-control`).
//!
//! Sizes stay small (16 MiB). Every test cleans up in `Drop`, even when it fails:
//! Turtle's own reset first, then anything under the test's directory still in
//! `/proc/swaps` and the zram device the test added.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use tempfile::TempDir;
use turtle_device::{Change, Paths, Profile, State, SystemError, apply, read_swaps, reset, status};

/// One root test at a time: they read /proc/swaps and count zram devices.
static SERIAL: Mutex<()> = Mutex::new(());

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

fn skip(what: &str) -> bool {
    if !is_root() {
        eprintln!("skipped: {what} needs root (swapon, zram); run the tests as root");
        return true;
    }
    false
}

fn no_zram() -> bool {
    if !Path::new("/sys/class/zram-control").exists() {
        eprintln!("skipped: /sys/class/zram-control is missing (no zram in this kernel)");
        return true;
    }
    false
}

fn zram_devices() -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir("/sys/block")
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("zram"))
        .collect();
    v.sort();
    v
}

/// A directory on a real filesystem (swapon refuses files on tmpfs and overlay):
/// cargo's per-target scratch directory, under the target directory.
struct Scratch {
    dir: TempDir,
    state_file: PathBuf,
    /// zram devices this test added, for the fallback clean-up.
    zram: Vec<u32>,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("turtle-device-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap();
        let state_file = dir.path().join("state/device.json");
        Scratch {
            dir,
            state_file,
            zram: Vec::new(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn profile(&self, swap: &str, zram: &str) -> Profile {
        let yaml = format!(
            r#"
name: testbox
match: {{arch: [x86_64, aarch64]}}
swap: {swap}
zram: {zram}
budgets:
  critical: {{memory: 256MiB}}
  normal: {{memory: 128MiB}}
  low: {{memory: 64MiB}}
"#
        );
        Profile::from_yaml(&yaml, "testbox.yaml").unwrap()
    }

    fn state(&self) -> State {
        serde_json::from_str(&std::fs::read_to_string(&self.state_file).unwrap()).unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if self.state_file.exists()
            && let Ok(text) = std::fs::read_to_string(&self.state_file)
            && let Ok(state) = serde_json::from_str::<State>(&text)
            && let Some(z) = state.zram
        {
            self.zram.push(z.device);
        }
        if let Err(e) = reset(&Paths::system(), &self.state_file) {
            eprintln!("clean-up: reset failed: {e}");
        }
        // Whatever is still on: swap files under our directory, our zram devices.
        let swaps = read_swaps(&Paths::system()).unwrap_or_default();
        for e in swaps.iter().filter(|e| e.path.starts_with(self.dir.path())) {
            let _ = Command::new("swapoff").arg(&e.path).status();
        }
        for n in &self.zram {
            let dev = format!("/dev/zram{n}");
            if swaps.iter().any(|e| e.path == Path::new(&dev)) {
                let _ = Command::new("swapoff").arg(&dev).status();
            }
            let block = format!("/sys/block/zram{n}");
            if Path::new(&block).exists() {
                let _ = std::fs::write(format!("{block}/reset"), "1");
                let _ = std::fs::write("/sys/class/zram-control/hot_remove", n.to_string());
            }
        }
    }
}

#[test]
fn swap_file_and_zram_set_up_kept_and_reset() {
    if skip("the swap file and zram test") || no_zram() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut s = Scratch::new();
    let file = s.path("data/swapfile");
    let profile = s.profile(
        &format!("{{file: {}, size: 16MiB, reserve: 0}}", file.display()),
        "{size: 16MiB, algorithm: lz4, priority: 100}",
    );
    let paths = Paths::system();
    let zram_before = zram_devices();

    let report = apply(&paths, &profile, &s.state_file).unwrap();
    let device = report.zram_device.expect("a zram device");
    s.zram.push(device);
    assert_eq!(report.swap_file.as_deref(), Some(file.as_path()));
    assert_eq!(
        report.changes,
        [
            Change::SwapFileCreated {
                path: file.clone(),
                size: 16 << 20
            },
            Change::ZramCreated {
                device,
                disksize: 16 << 20,
                algorithm: "lz4".into(),
                priority: 100
            },
        ]
    );

    // Both in /proc/swaps, zram above the file.
    let dev = PathBuf::from(format!("/dev/zram{device}"));
    let swaps = read_swaps(&paths).unwrap();
    let f = swaps
        .iter()
        .find(|e| e.path == file)
        .expect("the swap file is on");
    let z = swaps
        .iter()
        .find(|e| e.path == dev)
        .expect("the zram device is on");
    assert_eq!(f.kind, "file");
    assert_eq!(z.kind, "partition");
    assert_eq!(z.priority, 100);
    assert!(
        f.priority < z.priority,
        "file {} zram {}",
        f.priority,
        z.priority
    );
    assert!(f.size_bytes > 15 << 20 && f.size_bytes <= 16 << 20);
    assert!(z.size_bytes > 15 << 20 && z.size_bytes <= 16 << 20);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let block = format!("/sys/block/zram{device}");
    assert_eq!(
        std::fs::read_to_string(format!("{block}/disksize"))
            .unwrap()
            .trim(),
        (16u64 << 20).to_string()
    );
    assert!(
        std::fs::read_to_string(format!("{block}/comp_algorithm"))
            .unwrap()
            .contains("[lz4]")
    );

    // The state file records exactly that.
    let state = s.state();
    assert_eq!(state.swap_file.as_ref().unwrap().path, file);
    assert_eq!(state.zram.as_ref().unwrap().device, device);

    // The status marks them as ours.
    let st = status(&paths, &s.state_file);
    assert!(st.problems.is_empty(), "{:?}", st.problems);
    assert!(st.swaps.iter().find(|e| e.path == file).unwrap().ours);
    assert!(st.swaps.iter().find(|e| e.path == dev).unwrap().ours);
    let zs = st.zram.as_ref().unwrap();
    assert!(zs.active && !zs.stale);
    assert_eq!(zs.algorithm.as_deref(), Some("lz4"));
    assert_eq!(zs.disksize, Some(16 << 20));
    assert!(zs.orig_data_size.is_some());
    assert!(st.swap_file.as_ref().unwrap().active);

    // A second apply changes nothing: same device, no new entries.
    let again = apply(&paths, &profile, &s.state_file).unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(again.zram_device, Some(device));
    assert_eq!(read_swaps(&paths).unwrap(), swaps);
    let mut expected = zram_before.clone();
    expected.push(format!("zram{device}"));
    expected.sort();
    assert_eq!(zram_devices(), expected);

    // Reset removes both and the state file.
    let undone = reset(&paths, &s.state_file).unwrap();
    assert_eq!(
        undone.changes,
        [
            Change::SwapFileRemoved { path: file.clone() },
            Change::ZramRemoved { device },
        ]
    );
    let swaps = read_swaps(&paths).unwrap();
    assert!(
        !swaps.iter().any(|e| e.path == file || e.path == dev),
        "{swaps:?}"
    );
    assert!(!file.exists());
    assert!(!Path::new(&block).exists(), "{block} is still there");
    assert_eq!(zram_devices(), zram_before);
    assert!(!s.state_file.exists());
    // And again: nothing to do.
    assert!(reset(&paths, &s.state_file).unwrap().changes.is_empty());
}

#[test]
fn a_swap_file_turned_off_is_turned_on_again() {
    if skip("the swap file test") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new();
    let file = s.path("swapfile");
    let profile = s.profile(
        &format!(
            "{{file: {}, size: 16MiB, reserve: 0, priority: 5}}",
            file.display()
        ),
        "null",
    );
    let paths = Paths::system();
    apply(&paths, &profile, &s.state_file).unwrap();
    let entry = read_swaps(&paths)
        .unwrap()
        .into_iter()
        .find(|e| e.path == file)
        .unwrap();
    assert_eq!(entry.priority, 5);
    // As after a reboot: the file is there, off.
    assert!(
        Command::new("swapoff")
            .arg(&file)
            .status()
            .unwrap()
            .success()
    );
    let report = apply(&paths, &profile, &s.state_file).unwrap();
    assert_eq!(
        report.changes,
        [Change::SwapFileActivated { path: file.clone() }]
    );
    assert!(read_swaps(&paths).unwrap().iter().any(|e| e.path == file));

    // A profile without swap removes Turtle's file.
    let none = s.profile("null", "null");
    let report = apply(&paths, &none, &s.state_file).unwrap();
    assert_eq!(
        report.changes,
        [Change::SwapFileRemoved { path: file.clone() }]
    );
    assert!(!file.exists());
}

#[test]
fn a_swap_file_turtle_did_not_create_is_left_alone() {
    if skip("the foreign swap file test") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new();
    let paths = Paths::system();

    // A plain file at the path.
    let file = s.path("swapfile");
    std::fs::write(&file, "the operator's file").unwrap();
    let profile = s.profile(
        &format!("{{file: {}, size: 16MiB}}", file.display()),
        "null",
    );
    let err = apply(&paths, &profile, &s.state_file).unwrap_err();
    assert!(
        matches!(
            err.failures()[..],
            [SystemError::NotOurSwapFile { active: false, .. }]
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{} already exists and Turtle did not create it; Turtle leaves it alone: \
             remove it yourself, or set swap.file to another path",
            file.display()
        )
    );
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "the operator's file"
    );
    assert_eq!(s.state().swap_file, None);

    // An active swap file that is not Turtle's.
    let theirs = s.path("their-swapfile");
    std::fs::write(&theirs, vec![0u8; 16 << 20]).unwrap();
    std::fs::set_permissions(&theirs, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    assert!(
        Command::new("mkswap")
            .arg(&theirs)
            .output()
            .unwrap()
            .status
            .success()
    );
    assert!(
        Command::new("swapon")
            .arg(&theirs)
            .status()
            .unwrap()
            .success()
    );
    let profile = s.profile(
        &format!("{{file: {}, size: 16MiB}}", theirs.display()),
        "null",
    );
    let err = apply(&paths, &profile, &s.state_file).unwrap_err();
    assert!(
        matches!(
            err.failures()[..],
            [SystemError::NotOurSwapFile { active: true, .. }]
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("already exists as active swap"),
        "{err}"
    );
    // Reset does not touch it either.
    reset(&paths, &s.state_file).unwrap();
    let entry = read_swaps(&paths)
        .unwrap()
        .into_iter()
        .find(|e| e.path == theirs);
    assert!(entry.is_some(), "their swap file was turned off");
    assert!(!entry.unwrap().ours);
    // (Scratch's Drop turns it off: it lies under the test's directory.)
}

#[test]
fn a_swap_file_that_would_leave_too_little_space_is_refused() {
    if skip("the free space test") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new();
    let file = s.path("data/swapfile");
    let profile = s.profile(
        &format!("{{file: {}, size: 16MiB, reserve: 1PiB}}", file.display()),
        "null",
    );
    let err = apply(&Paths::system(), &profile, &s.state_file).unwrap_err();
    let [SystemError::NoSpace { dir, free, .. }] = err.failures()[..] else {
        panic!("{err:?}");
    };
    assert_eq!(dir, &s.path("data"));
    assert_eq!(
        err.to_string(),
        format!(
            "not enough space on {} for a 16 MiB swap file: {free} free, 1 PiB must stay free; \
             lower swap.size or free space",
            dir.display()
        )
    );
    assert!(!file.exists());
    assert_eq!(s.state().swap_file, None);
}

#[test]
fn a_zram_algorithm_the_kernel_lacks_is_refused_without_a_leftover_device() {
    if skip("the zram algorithm test") || no_zram() {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let s = Scratch::new();
    let available = std::fs::read_to_string("/sys/block/zram0/comp_algorithm").unwrap_or_default();
    let Some(missing) = turtle_device::ZRAM_ALGORITHMS.iter().find(|a| {
        !available
            .split_whitespace()
            .any(|w| w.trim_matches(['[', ']']) == **a)
    }) else {
        eprintln!("skipped: this kernel's zram offers every algorithm Turtle knows");
        return;
    };
    let before = zram_devices();
    let profile = s.profile("null", &format!("{{size: 16MiB, algorithm: {missing}}}"));
    let err = apply(&Paths::system(), &profile, &s.state_file).unwrap_err();
    assert!(
        matches!(err.failures()[..], [SystemError::ZramAlgorithm { .. }]),
        "{err:?}"
    );
    assert!(
        err.to_string().starts_with(&format!(
            "the kernel's zram does not offer {missing} (it offers "
        )),
        "{err}"
    );
    assert_eq!(zram_devices(), before);
    assert_eq!(s.state().zram, None);
}
