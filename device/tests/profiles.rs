//! Every shipped profile loads; broken profiles are refused with the file and the
//! field path in the message.

use std::path::Path;

use turtle_device::{
    Priority, Profile, ProfileError, ZramSize, builtin_profiles, load_profiles, units::Percent,
};

const SHIPPED: [&str; 7] = [
    "intel-nuc",
    "generic-amd64",
    "qemu-x86-64",
    "raspberrypi4-64",
    "raspberrypi3",
    "balena-fin",
    "generic-aarch64",
];

/// A valid profile the bad cases below change one thing in.
const BASE: &str = r#"
name: testbox
description: a test box
match:
  arch: [aarch64, arm]
  device_tree_model: ["Test Board"]
  max_memory: 1.5GiB
memory: 1GiB
swap: {file: /var/lib/turtle/swapfile, size: 1GiB, swappiness: 60, reserve: 512MiB}
zram: {size: 50%, algorithm: lz4, priority: 100}
sysctls: {vm.vfs_cache_pressure: "200", vm.min_free_kbytes: 16384}
thermal:
  zones: [thermal_zone0]
  warn: 70C
  throttle: 80C
  critical: 85C
  hysteresis: 5C
pressure: {throttle: 40, critical: 80, hysteresis: 10, oom_hold: 60s}
shedding: {poll: 5s, hold: 10s, throttle_cpus: 0.25}
budgets:
  critical: {memory: 256MiB, cpu_shares: 2048}
  normal:   {memory: 128MiB, cpu_shares: 1024}
  low:      {memory: 64MiB,  cpu_shares: 256, cpus: 0.5}
"#;

fn err(yaml: &str) -> String {
    let e = Profile::from_yaml(yaml, "testbox.yaml").expect_err("the profile was accepted");
    e.to_string()
}

fn changed(from: &str, to: &str) -> String {
    assert!(BASE.contains(from), "{from:?} is not in the base profile");
    BASE.replacen(from, to, 1)
}

#[test]
fn every_shipped_profile_parses_and_validates() {
    let profiles = builtin_profiles().unwrap();
    let names: Vec<&str> = profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, SHIPPED);
    for p in &profiles {
        p.validate(&p.name).unwrap();
        assert!(!p.description.is_empty(), "{} has no description", p.name);
        assert!(!p.matching.arch.is_empty());
        // Critical services get at least what normal ones get, normal at least low.
        let (c, n, l) = (
            p.budget(Priority::Critical),
            p.budget(Priority::Normal),
            p.budget(Priority::Low),
        );
        assert!(c.memory_bytes >= n.memory_bytes && n.memory_bytes >= l.memory_bytes);
        assert!(c.cpu_shares >= n.cpu_shares && n.cpu_shares >= l.cpu_shares);
        // A profile printed as YAML loads back unchanged.
        let text = serde_norway::to_string(p).unwrap();
        assert_eq!(&Profile::from_yaml(&text, &p.name).unwrap(), p, "{text}");
    }
    // The files on disk are the ones compiled in.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../device-profiles");
    for name in SHIPPED {
        let from_disk = Profile::from_file(&dir.join(format!("{name}.yaml"))).unwrap();
        assert_eq!(
            &from_disk,
            profiles.iter().find(|p| p.name == name).unwrap()
        );
    }
}

#[test]
fn the_base_profile_reads_as_written() {
    let p = Profile::from_yaml(BASE, "testbox.yaml").unwrap();
    assert_eq!(p.zram.as_ref().unwrap().size, ZramSize::Share(Percent(50)));
    assert_eq!(p.thermal.as_ref().unwrap().throttle.0, 80_000);
    assert_eq!(p.swap.as_ref().unwrap().reserve.0, 512 << 20);
    let low = p.budget(Priority::Low);
    assert_eq!(low.memory_bytes, 64 << 20);
    assert_eq!(low.cpu_shares, 256);
    assert_eq!(low.nano_cpus, Some(500_000_000));
    assert_eq!(p.budget(Priority::Normal).nano_cpus, None);
    let sysctls = p.effective_sysctls();
    assert_eq!(sysctls["vm.swappiness"], "60");
    assert_eq!(sysctls["vm.min_free_kbytes"], "16384");
    assert_eq!(p.shedding.throttle_nano_cpus(), 250_000_000);
    let fixed = changed("size: 50%", "size: 16MiB");
    let p = Profile::from_yaml(&fixed, "testbox.yaml").unwrap();
    assert_eq!(p.zram.unwrap().size.bytes(1 << 30), 16 << 20);
}

#[test]
fn unknown_keys_are_refused_with_their_path() {
    let e = err(&format!("{BASE}swapiness: 60\n"));
    assert!(e.starts_with("device profile testbox.yaml: "), "{e}");
    assert!(e.contains("unknown field `swapiness`"), "{e}");

    let e = err(&changed("size: 1GiB,", "sise: 1GiB,"));
    assert!(e.contains("testbox.yaml"), "{e}");
    assert!(
        e.contains("swap") && e.contains("unknown field `sise`"),
        "{e}"
    );

    let e = err(&changed("cpus: 0.5", "cpus: 0.5, cpu: 1"));
    assert!(
        e.contains("budgets.low") && e.contains("unknown field `cpu`"),
        "{e}"
    );
}

#[test]
fn bad_values_name_the_file_and_the_field() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "warn: 70C",
            "warn: 81C",
            "thermal.warn: warn 81 °C must be below throttle 80 °C",
        ),
        (
            "critical: 85C",
            "critical: 80C",
            "thermal.throttle: throttle 80 °C must be below critical 80 °C",
        ),
        (
            "hysteresis: 5C",
            "hysteresis: 8C",
            "thermal.hysteresis: 8 °C must be between 0 and the smallest gap",
        ),
        (
            "warn: 70C",
            "warn: 70",
            "thermal.warn: 0.1 °C is out of range 20..150 °C",
        ),
        ("size: 50%", "size: 150%", "zram.size: 150% is out of range"),
        ("size: 50%", "size: 0%", "zram.size: 0% is out of range"),
        ("size: 1GiB,", "size: 0,", "swap.size: must be above 0"),
        (
            "algorithm: lz4",
            "algorithm: gzip",
            "zram.algorithm: unknown algorithm \"gzip\"",
        ),
        (
            "memory: 64MiB",
            "memory: 4MiB",
            "budgets.low.memory: 4 MiB is below the engine's minimum",
        ),
        (
            "arch: [aarch64, arm]",
            "arch: [amd64]",
            "match.arch[0]: unknown architecture \"amd64\"",
        ),
        (
            "file: /var/lib/turtle/swapfile",
            "file: swapfile",
            "swap.file: swapfile is not an absolute path",
        ),
        ("swappiness: 60,", "swappiness: 60,", ""), // placeholder, replaced below
        ("priority: 100", "priority: 100", ""),
        (
            "cpu_shares: 256",
            "cpu_shares: 1",
            "budgets.low.cpu_shares: 1 is out of range",
        ),
        (
            "hold: 10s",
            "hold: 1s",
            "shedding.hold: 1s is shorter than shedding.poll 5s",
        ),
        (
            "critical: 80,",
            "critical: 30,",
            "pressure.critical: 30 must be above pressure.throttle 40",
        ),
    ];
    for (from, to, want) in cases {
        if want.is_empty() {
            continue;
        }
        let e = err(&changed(from, to));
        assert!(
            e.starts_with("device profile testbox.yaml: "),
            "{from} -> {to}: {e}"
        );
        assert!(e.contains(want), "{from} -> {to}: {e}\nwanted: {want}");
    }

    // Two places for vm.swappiness.
    let e = err(&changed(
        "vm.vfs_cache_pressure: \"200\"",
        "vm.vfs_cache_pressure: \"200\", vm.swappiness: 10",
    ));
    assert!(
        e.contains("swap.swappiness: sysctls also sets vm.swappiness"),
        "{e}"
    );

    // The swap file above zram.
    let e = err(&changed(
        "reserve: 512MiB}",
        "reserve: 512MiB, priority: 200}",
    ));
    assert!(
        e.contains("zram.priority: 100 is not above swap.priority 200"),
        "{e}"
    );
}

#[test]
fn unparseable_values_name_the_field() {
    let e = err(&changed("memory: 64MiB", "memory: lots"));
    assert!(e.contains("budgets.low.memory"), "{e}");
    assert!(e.contains("invalid size \"lots\""), "{e}");

    let e = err(&changed("throttle: 80C", "throttle: hot"));
    assert!(
        e.contains("thermal.throttle") && e.contains("invalid temperature"),
        "{e}"
    );

    let e = err(&changed("size: 50%", "size: 50"));
    assert!(e.contains("zram.size") && e.contains("50%"), "{e}");
}

#[test]
fn a_directory_adds_and_overrides_profiles_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("testbox.yaml"), BASE).unwrap();
    let nuc = BASE
        .replacen("name: testbox", "name: intel-nuc", 1)
        .replacen("a test box", "my own NUC", 1);
    std::fs::write(dir.path().join("intel-nuc.yaml"), nuc).unwrap();
    std::fs::write(dir.path().join("README.md"), "not a profile").unwrap();

    let profiles = load_profiles(Some(dir.path())).unwrap();
    assert_eq!(profiles.len(), SHIPPED.len() + 1);
    assert_eq!(profiles[0].name, "intel-nuc");
    assert_eq!(profiles[0].description, "my own NUC");
    assert_eq!(profiles.last().unwrap().name, "testbox");

    // A missing directory adds nothing.
    let none = load_profiles(Some(&dir.path().join("missing"))).unwrap();
    assert_eq!(none.len(), SHIPPED.len());

    // The name must be the file's.
    std::fs::write(dir.path().join("other.yaml"), BASE).unwrap();
    let e = load_profiles(Some(dir.path())).unwrap_err();
    assert!(matches!(e, ProfileError::NameMismatch { .. }), "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("other.yaml") && msg.contains("name the file testbox.yaml"),
        "{msg}"
    );

    // A broken file names itself.
    std::fs::remove_file(dir.path().join("other.yaml")).unwrap();
    std::fs::write(
        dir.path().join("testbox.yaml"),
        changed("warn: 70C", "warn: 90C"),
    )
    .unwrap();
    let msg = load_profiles(Some(dir.path())).unwrap_err().to_string();
    assert!(msg.contains("testbox.yaml: thermal.warn"), "{msg}");
}
