//! Detection against fake `/proc` and `/sys` trees, one per shipped profile.

use std::path::Path;

use tempfile::TempDir;
use turtle_device::{DetectError, builtin_profiles, detect};

/// A fake root: a device-tree model (NUL-terminated, as the kernel gives it), a DMI
/// product name and MemTotal, each only when given.
fn tree(model: Option<&str>, product: Option<&str>, mem_kib: u64) -> TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let write = |rel: &str, bytes: &[u8]| {
        let p = tmp.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    };
    if let Some(m) = model {
        write("proc/device-tree/model", format!("{m}\0").as_bytes());
    }
    if let Some(p) = product {
        write("sys/class/dmi/id/product_name", format!("{p}\n").as_bytes());
    }
    write(
        "proc/meminfo",
        format!("MemTotal:       {mem_kib} kB\nMemFree:        1000 kB\n").as_bytes(),
    );
    tmp
}

const GIB_KIB: u64 = 1 << 20;

/// (device-tree model, DMI product name, MemTotal in KiB, arch, expected profile)
type Case = (
    Option<&'static str>,
    Option<&'static str>,
    u64,
    &'static str,
    &'static str,
);

fn detected(root: &Path, arch: &str) -> (String, String) {
    let profiles = builtin_profiles().unwrap();
    let d = detect(root, arch, &profiles, None).unwrap();
    (d.profile.name, d.reason)
}

#[test]
fn each_shipped_profile_is_detected() {
    let cases: &[Case] = &[
        (None, Some("NUC8i5BEH"), 16 * GIB_KIB, "x86_64", "intel-nuc"),
        (
            None,
            Some("NUC11PAHi5"),
            32 * GIB_KIB,
            "x86_64",
            "intel-nuc",
        ),
        (None, None, 4 * GIB_KIB, "x86_64", "generic-amd64"),
        (
            None,
            Some("PowerEdge R640"),
            64 * GIB_KIB,
            "x86_64",
            "generic-amd64",
        ),
        (
            None,
            Some("Standard PC (Q35 + ICH9, 2009)"),
            2 * GIB_KIB,
            "x86_64",
            "qemu-x86-64",
        ),
        (
            None,
            Some("Standard PC (i440FX + PIIX, 1996)"),
            2 * GIB_KIB,
            "x86_64",
            "qemu-x86-64",
        ),
        (
            None,
            Some("QEMU Virtual Machine"),
            2 * GIB_KIB,
            "x86_64",
            "qemu-x86-64",
        ),
        (
            Some("Raspberry Pi 4 Model B Rev 1.4"),
            None,
            4 * GIB_KIB,
            "aarch64",
            "raspberrypi4-64",
        ),
        (
            Some("Raspberry Pi 400 Rev 1.0"),
            None,
            4 * GIB_KIB,
            "aarch64",
            "raspberrypi4-64",
        ),
        (
            Some("Raspberry Pi Compute Module 4 Rev 1.0"),
            None,
            2 * GIB_KIB,
            "aarch64",
            "raspberrypi4-64",
        ),
        (
            Some("Raspberry Pi 3 Model B Rev 1.2"),
            None,
            945_364,
            "aarch64",
            "raspberrypi3",
        ),
        (
            Some("Raspberry Pi 3 Model B Plus Rev 1.3"),
            None,
            945_364,
            "arm",
            "raspberrypi3",
        ),
        (
            Some("Raspberry Pi Compute Module 3 Rev 1.0"),
            None,
            945_364,
            "arm",
            "balena-fin",
        ),
        (
            Some("Raspberry Pi Compute Module 3 Plus Rev 1.0"),
            None,
            945_364,
            "aarch64",
            "balena-fin",
        ),
        (
            Some("Pine64 RockPro64 v2.1"),
            None,
            4 * GIB_KIB,
            "aarch64",
            "generic-aarch64",
        ),
        (None, None, 2 * GIB_KIB, "aarch64", "generic-aarch64"),
    ];
    for (model, product, mem, arch, want) in cases {
        let root = tree(*model, *product, *mem);
        let (name, reason) = detected(root.path(), arch);
        assert_eq!(&name, want, "{model:?} / {product:?} on {arch}: {reason}");
    }
}

#[test]
fn reasons_say_what_matched() {
    let root = tree(Some("Raspberry Pi 3 Model B Rev 1.2"), None, 945_364);
    let profiles = builtin_profiles().unwrap();
    let d = detect(root.path(), "aarch64", &profiles, None).unwrap();
    assert_eq!(
        d.reason,
        "device-tree model \"Raspberry Pi 3 Model B Rev 1.2\" matches raspberrypi3"
    );
    assert_eq!(
        d.facts.device_tree_model.as_deref(),
        Some("Raspberry Pi 3 Model B Rev 1.2")
    );
    assert_eq!(d.facts.dmi_product_name, None);
    assert_eq!(d.facts.mem_total, Some(945_364 * 1024));
    assert_eq!(d.facts.arch, "aarch64");

    let root = tree(None, Some("NUC8i5BEH"), 16 * GIB_KIB);
    let (_, reason) = detected(root.path(), "x86_64");
    assert_eq!(reason, "DMI product name \"NUC8i5BEH\" matches intel-nuc");

    let root = tree(None, None, 4 * GIB_KIB);
    let (_, reason) = detected(root.path(), "x86_64");
    assert_eq!(
        reason,
        "no device-tree model or DMI product name: generic-amd64 is the generic profile for x86_64"
    );
}

#[test]
fn memory_and_arch_bounds_apply() {
    // A "Raspberry Pi 3" with 4 GiB is not the 1 GB profile.
    let root = tree(Some("Raspberry Pi 3 Model B Rev 1.2"), None, 4 * GIB_KIB);
    assert_eq!(detected(root.path(), "aarch64").0, "generic-aarch64");
    // The 64-bit Pi 4 profile does not take a 32-bit OS, and there is no generic arm one.
    let root = tree(Some("Raspberry Pi 4 Model B Rev 1.4"), None, 4 * GIB_KIB);
    let profiles = builtin_profiles().unwrap();
    let err = detect(root.path(), "arm", &profiles, None).unwrap_err();
    assert!(matches!(err, DetectError::NoProfile { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("arch arm") && msg.contains("\"Raspberry Pi 4 Model B Rev 1.4\""),
        "{msg}"
    );
    assert!(msg.contains("name a profile explicitly"), "{msg}");
}

#[test]
fn the_override_wins_and_a_bad_one_lists_the_names() {
    let root = tree(None, Some("NUC8i5BEH"), 16 * GIB_KIB);
    let profiles = builtin_profiles().unwrap();
    let d = detect(root.path(), "x86_64", &profiles, Some("raspberrypi3")).unwrap();
    assert_eq!(d.profile.name, "raspberrypi3");
    assert_eq!(d.reason, "profile raspberrypi3 chosen by override");
    assert_eq!(d.facts.dmi_product_name.as_deref(), Some("NUC8i5BEH"));

    let err = detect(root.path(), "x86_64", &profiles, Some("raspberrypi5")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no device profile named \"raspberrypi5\": choose one of intel-nuc, generic-amd64, \
         qemu-x86-64, raspberrypi4-64, raspberrypi3, balena-fin, generic-aarch64"
    );
}

#[test]
fn an_empty_root_is_this_machine() {
    // No device tree, no DMI, no meminfo: the generic profile of the architecture.
    let tmp = tempfile::tempdir().unwrap();
    let profiles = builtin_profiles().unwrap();
    let d = detect(tmp.path(), "x86_64", &profiles, None).unwrap();
    assert_eq!(d.profile.name, "generic-amd64");
    assert_eq!(d.facts.mem_total, None);
}
