//! Sysctls against a fake `/proc/sys` under a temporary root: set, remembered once,
//! restored on reset unless someone changed them since.

use std::path::{Path, PathBuf};

use tempfile::TempDir;
use turtle_device::{Change, Paths, Profile, State, SystemError, apply, reset, status};

struct Root {
    dir: TempDir,
}

impl Root {
    fn new() -> Root {
        let r = Root {
            dir: tempfile::tempdir().unwrap(),
        };
        r.write("proc/sys/vm/swappiness", "60\n");
        r.write("proc/sys/vm/vfs_cache_pressure", "100\n");
        r.write("proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456\n");
        r.write("proc/meminfo", "MemTotal:        1000000 kB\n");
        r.write("proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n");
        r
    }

    fn write(&self, rel: &str, text: &str) {
        let p = self.dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(rel))
            .unwrap()
            .trim()
            .to_string()
    }

    fn paths(&self) -> Paths {
        Paths::new(self.dir.path())
    }

    fn state_file(&self) -> PathBuf {
        self.dir.path().join("var/lib/turtle/device.json")
    }
}

fn profile(sysctls: &str) -> Profile {
    let yaml = format!(
        r#"
name: testbox
match: {{arch: [x86_64]}}
swap: null
zram: null
sysctls: {sysctls}
budgets:
  critical: {{memory: 256MiB}}
  normal: {{memory: 128MiB}}
  low: {{memory: 64MiB}}
"#
    );
    Profile::from_yaml(&yaml, "testbox.yaml").unwrap()
}

fn state(path: &Path) -> State {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn set_remembered_once_and_restored() {
    let root = Root::new();
    let p = profile(
        r#"{vm.swappiness: "10", vm.vfs_cache_pressure: 200, net.ipv4.tcp_rmem: "4096 131072 6291456"}"#,
    );
    let report = apply(&root.paths(), &p, &root.state_file()).unwrap();
    assert_eq!(
        report.changes,
        [
            // tcp_rmem already has those numbers (tabs, not spaces): not written.
            Change::SysctlSet {
                key: "vm.swappiness".into(),
                from: "60".into(),
                to: "10".into()
            },
            Change::SysctlSet {
                key: "vm.vfs_cache_pressure".into(),
                from: "100".into(),
                to: "200".into()
            },
        ]
    );
    assert_eq!(root.read("proc/sys/vm/swappiness"), "10");
    assert_eq!(root.read("proc/sys/vm/vfs_cache_pressure"), "200");
    let s = state(&root.state_file());
    assert_eq!(s.profile.as_deref(), Some("testbox"));
    assert_eq!(s.sysctls["vm.swappiness"].previous, "60");
    assert_eq!(s.sysctls["vm.swappiness"].set, "10");

    // Idempotent, and the value before Turtle is remembered once, not overwritten.
    let again = apply(&root.paths(), &p, &root.state_file()).unwrap();
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    assert_eq!(
        state(&root.state_file()).sysctls["vm.swappiness"].previous,
        "60"
    );

    let st = status(&root.paths(), &root.state_file());
    assert!(st.problems.is_empty(), "{:?}", st.problems);
    assert_eq!(st.sysctls.len(), 3);
    assert!(st.sysctls.iter().all(|s| s.in_effect), "{:?}", st.sysctls);

    // A sysctl the profile no longer lists goes back to its value before Turtle.
    let fewer = profile(r#"{vm.swappiness: "10", net.ipv4.tcp_rmem: "4096 131072 6291456"}"#);
    let report = apply(&root.paths(), &fewer, &root.state_file()).unwrap();
    assert_eq!(
        report.changes,
        [Change::SysctlRestored {
            key: "vm.vfs_cache_pressure".into(),
            to: "100".into()
        }]
    );
    assert_eq!(root.read("proc/sys/vm/vfs_cache_pressure"), "100");

    // Reset restores the rest and removes the state file.
    let report = reset(&root.paths(), &root.state_file()).unwrap();
    assert_eq!(
        report.changes,
        [Change::SysctlRestored {
            key: "vm.swappiness".into(),
            to: "60".into()
        }]
    );
    assert_eq!(root.read("proc/sys/vm/swappiness"), "60");
    assert_eq!(
        root.read("proc/sys/net/ipv4/tcp_rmem"),
        "4096\t131072\t6291456"
    );
    assert!(!root.state_file().exists());
    // And again: nothing left to do.
    assert!(
        reset(&root.paths(), &root.state_file())
            .unwrap()
            .changes
            .is_empty()
    );
}

#[test]
fn a_value_changed_by_someone_else_is_left_alone() {
    let root = Root::new();
    let p = profile(r#"{vm.swappiness: 10}"#);
    apply(&root.paths(), &p, &root.state_file()).unwrap();
    root.write("proc/sys/vm/swappiness", "30\n");
    let st = status(&root.paths(), &root.state_file());
    assert!(!st.sysctls[0].in_effect);
    assert_eq!(st.sysctls[0].current.as_deref(), Some("30"));

    let report = reset(&root.paths(), &root.state_file()).unwrap();
    assert_eq!(
        report.changes,
        [Change::SysctlLeft {
            key: "vm.swappiness".into(),
            current: "30".into(),
            set: "10".into()
        }]
    );
    assert_eq!(root.read("proc/sys/vm/swappiness"), "30");
}

#[test]
fn a_missing_sysctl_is_named_and_the_others_are_still_set() {
    let root = Root::new();
    let p = profile(r#"{vm.no_such_knob: 1, vm.swappiness: 10}"#);
    let err = apply(&root.paths(), &p, &root.state_file()).unwrap_err();
    let SystemError::Incomplete { failures, changes } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(failures.len(), 1);
    assert!(matches!(&failures[0], SystemError::NoSysctl { key, .. } if key == "vm.no_such_knob"));
    assert_eq!(
        err.to_string(),
        format!(
            "this kernel has no sysctl vm.no_such_knob ({}/proc/sys/vm/no_such_knob is missing): \
             remove it from the profile's sysctls",
            root.dir.path().display()
        )
    );
    assert_eq!(changes.len(), 1);
    assert_eq!(root.read("proc/sys/vm/swappiness"), "10");
    // What was set is recorded, so reset still restores it.
    reset(&root.paths(), &root.state_file()).unwrap();
    assert_eq!(root.read("proc/sys/vm/swappiness"), "60");
}

#[test]
fn swappiness_from_the_swap_section_and_slash_keys() {
    let root = Root::new();
    root.write("proc/sys/net/ipv4/conf/eth0.100/rp_filter", "1\n");
    let yaml = r#"
name: testbox
match: {arch: [x86_64]}
swap: {file: /var/lib/turtle/swapfile, size: 1MiB, swappiness: 100}
sysctls: {net/ipv4/conf/eth0.100/rp_filter: 2}
budgets:
  critical: {memory: 256MiB}
  normal: {memory: 128MiB}
  low: {memory: 64MiB}
"#;
    let written = Profile::from_yaml(yaml, "testbox.yaml").unwrap();
    // Only the sysctls (a swap file under this root would be real: the root tests
    // cover it): the swap section's swappiness is one of them.
    let mut p = written.clone();
    p.swap = None;
    p.sysctls = written.effective_sysctls();
    assert_eq!(p.sysctls["vm.swappiness"], "100");
    apply(&root.paths(), &p, &root.state_file()).unwrap();
    assert_eq!(root.read("proc/sys/vm/swappiness"), "100");
    assert_eq!(root.read("proc/sys/net/ipv4/conf/eth0.100/rp_filter"), "2");
    reset(&root.paths(), &root.state_file()).unwrap();
    assert_eq!(root.read("proc/sys/vm/swappiness"), "60");
    assert_eq!(root.read("proc/sys/net/ipv4/conf/eth0.100/rp_filter"), "1");
}
