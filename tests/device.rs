//! Device profiles against the real engine and a fake `/proc` + `/sys` tree:
//! priorities become limits when containers are created, a hot board sheds
//! its low-priority services (CPU cap, pause, stop) and then its normal ones,
//! never the critical one, and gets them back in reverse order once cool;
//! hysteresis keeps a temperature hovering under a threshold from flapping.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use turtle_e2e::{Env, IMAGE, inspect, wait_until};

const WINDOW: Duration = Duration::from_secs(30);

/// A board with one thermal zone, 1 GB of memory and no memory pressure.
fn fake_tree(root: &Path) {
    let zone = root.join("sys/class/thermal/thermal_zone0");
    std::fs::create_dir_all(&zone).unwrap();
    std::fs::write(zone.join("type"), "cpu-thermal\n").unwrap();
    set_temp(root, 45_000);
    std::fs::create_dir_all(root.join("proc/pressure")).unwrap();
    std::fs::write(
        root.join("proc/meminfo"),
        "MemTotal:        1000000 kB\nMemFree:          500000 kB\n",
    )
    .unwrap();
    std::fs::write(
        root.join("proc/pressure/memory"),
        "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=0\n",
    )
    .unwrap();
}

fn set_temp(root: &Path, millideg: i64) {
    let zone = root.join("sys/class/thermal/thermal_zone0");
    // Replace, as the kernel's file changes in place for readers.
    std::fs::write(zone.join("temp.new"), format!("{millideg}\n")).unwrap();
    std::fs::rename(zone.join("temp.new"), zone.join("temp")).unwrap();
}

/// A test profile: the thresholds of a small ARM board, a 1 s poll and hold, no
/// swap, zram or sysctls (the tree is fake; the machine is not touched).
const PROFILE: &str = r#"
name: test-board
description: a hot little board for the tests
match: {arch: [x86_64, aarch64]}
memory: 1GiB
swap: null
zram: null
sysctls: {}
thermal:
  zones: ["*"]
  warn: 70C
  throttle: 80C
  critical: 85C
  hysteresis: 5C
pressure: null
shedding: {poll: 1s, hold: 1s, throttle_cpus: 0.1}
budgets:
  critical: {memory: 96MiB, cpu_shares: 2048}
  normal: {memory: 64MiB, cpu_shares: 1024}
  low: {memory: 32MiB, cpu_shares: 256, cpus: 0.5}
"#;

struct Board {
    env: Env,
    root: PathBuf,
}

fn board(tag: &str) -> Board {
    let env = Env::new(tag);
    let root = env.dir.path().join("root");
    fake_tree(&root);
    let profiles = env.dir.path().join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(profiles.join("test-board.yaml"), PROFILE).unwrap();
    env.config(&format!(
        "{}device: {{profile: test-board, profiles_dir: {}, root: {}, tune: false}}\n",
        turtle_e2e::DEFAULT_CONFIG.replace("device: {tune: false}\n", ""),
        profiles.display(),
        root.display()
    ));
    let service = |priority: &str| {
        format!(
            "    image: {IMAGE}\n    command: [\"sleep\", \"3600\"]\n    init: true\n    labels:\n      io.turtle.priority: {priority}\n"
        )
    };
    env.compose(&format!(
        "services:\n  crit:\n{}  norm:\n{}  low:\n{}",
        service("critical"),
        service("normal"),
        service("low")
    ));
    Board { env, root }
}

fn host_config(env: &Env, service: &str) -> Value {
    inspect(&env.container(service)).unwrap()["HostConfig"].clone()
}

fn paused(env: &Env, service: &str) -> bool {
    env.state(service).is_some_and(|s| s["Paused"] == true)
}

fn device_status(env: &Env) -> Value {
    serde_json::from_str(&env.box_ok(&["device", "--json"])).unwrap()
}

#[test]
fn priorities_become_limits_and_a_hot_board_sheds_and_recovers_in_order() {
    let Board { mut env, root } = board("thermal");
    env.start_daemon();
    env.ok(&["up"]);

    // Budgets of the profile, per priority label.
    let mib = 1024 * 1024;
    assert_eq!(host_config(&env, "crit")["Memory"], 96 * mib);
    assert_eq!(host_config(&env, "crit")["CpuShares"], 2048);
    assert_eq!(host_config(&env, "norm")["Memory"], 64 * mib);
    assert_eq!(host_config(&env, "low")["Memory"], 32 * mib);
    assert_eq!(host_config(&env, "low")["NanoCpus"], 500_000_000);
    let crit_id = env.id("crit").unwrap();

    // Throttle: the low service is capped, then paused.
    set_temp(&root, 82_000);
    wait_until("low capped", WINDOW, || {
        host_config(&env, "low")["NanoCpus"].as_i64().unwrap() < 500_000_000
    });
    wait_until("low paused", WINDOW, || paused(&env, "low"));
    assert!(env.running("norm") && !paused(&env, "norm"));

    // Critical: low, then normal, are stopped; crit is never touched.
    set_temp(&root, 86_000);
    wait_until("low and norm stopped", WINDOW, || {
        !env.running("low") && !env.running("norm")
    });

    // Hysteresis: 84 °C is under critical (85) but not under 85 - 5, so
    // nothing comes back while the daemon sees it.
    set_temp(&root, 84_000);
    wait_until("the daemon reading 84 °C", WINDOW, || {
        device_status(&env)["thermal"]["hottest"] == 84_000
    });
    let seen = device_status(&env);
    assert_eq!(seen["thermal"]["level"], "critical", "{seen:#}");
    assert!(!env.running("norm"), "norm came back at 84 °C");

    // Below critical - hysteresis but still at throttle: the stopped come
    // back, low paused again as the throttle stage wants it.
    set_temp(&root, 78_000);
    wait_until("norm and low started, low paused", WINDOW, || {
        env.running("norm") && paused(&env, "low")
    });

    // Cool: everything comes back, in reverse order.
    set_temp(&root, 50_000);
    wait_until(
        "norm and low running, low unpaused and uncapped",
        WINDOW,
        || {
            env.running("norm")
                && env.running("low")
                && !paused(&env, "low")
                && host_config(&env, "low")["NanoCpus"] == 500_000_000
        },
    );
    assert!(env.running("crit"));
    assert_eq!(env.id("crit").unwrap(), crit_id, "crit was recreated");

    // Every decision is an event with its reason, in order.
    let events = env.ok(&["events", "-n", "200"]);
    let order = [
        "shed-cap",
        "shed-pause",
        "shed-stop",
        "restore-start",
        "restore-unpause",
        "restore-uncap",
    ];
    let mut at = 0;
    for kind in order {
        let pos = events[at..]
            .find(kind)
            .unwrap_or_else(|| panic!("no {kind} after the previous step in:\n{events}"));
        at += pos;
    }
    assert!(
        events.contains("°C"),
        "reasons name the temperature:\n{events}"
    );
    let crit_events: Vec<&str> = events.lines().filter(|l| l.contains("-crit-")).collect();
    assert!(
        !crit_events.iter().any(|l| l.contains("shed")),
        "crit was shed: {crit_events:?}"
    );

    // Hot again, then the daemon is stopped: it gives back what it shed,
    // since nothing else would unpause or uncap low.
    set_temp(&root, 82_000);
    wait_until("low paused again", WINDOW, || paused(&env, "low"));
    env.stop_daemon();
    assert!(!paused(&env, "low"), "low left paused by a stopped daemon");
    assert_eq!(host_config(&env, "low")["NanoCpus"], 500_000_000);
}

#[test]
fn the_device_command_shows_the_detected_profile_and_why() {
    let env = Env::new("detect");
    let root = env.dir.path().join("root");
    fake_tree(&root);
    let dmi = root.join("sys/class/dmi/id");
    std::fs::create_dir_all(&dmi).unwrap();
    std::fs::write(dmi.join("product_name"), "NUC8i5BEH\n").unwrap();
    env.config(&format!(
        "{}device: {{root: {}, tune: false}}\n",
        turtle_e2e::DEFAULT_CONFIG.replace("device: {tune: false}\n", ""),
        root.display()
    ));
    let report = device_status(&env);
    if std::env::consts::ARCH == "x86_64" {
        assert_eq!(report["profile"], "intel-nuc", "{report:#}");
        assert!(
            report["reason"].as_str().unwrap().contains("NUC8i5BEH"),
            "{report:#}"
        );
    }
    assert_eq!(report["thermal"]["hottest"], 45_000, "{report:#}");
    assert!(report.get("shedding").is_none(), "no daemon, no shedding");
    let text = env.box_ok(&["device"]);
    assert!(
        text.contains("45.0 °C") && text.contains("only a running daemon sheds"),
        "{text}"
    );
    let reset = env.box_ok(&["device", "reset"]);
    assert!(reset.contains("nothing to undo"), "{reset}");
}

/// Undoes the daemon's tuning even when the test fails.
struct ResetOnDrop(std::process::Command);

impl Drop for ResetOnDrop {
    fn drop(&mut self) {
        let _ = self.0.output();
    }
}

#[test]
fn the_daemon_tunes_the_box_at_start_and_reset_undoes_it() {
    let root_user = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
    });
    if !root_user || !Path::new("/sys/class/zram-control").exists() {
        eprintln!("skipping: swap and zram need root and a kernel with zram");
        return;
    }
    let mut env = Env::new("tune");
    // swapon refuses files on tmpfs and overlay: the swap file goes under
    // the target directory, on the real disk.
    let swap_dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(&env.project);
    std::fs::create_dir_all(&swap_dir).unwrap();
    let swapfile = swap_dir.join("swapfile");
    let profiles = env.dir.path().join("profiles");
    std::fs::create_dir_all(&profiles).unwrap();
    std::fs::write(
        profiles.join("tiny-board.yaml"),
        format!(
            "name: tiny-board\nmatch: {{arch: [x86_64, aarch64]}}\n\
             swap: {{file: {}, size: 16MiB, reserve: 64MiB}}\n\
             zram: {{size: 16MiB, algorithm: lzo, priority: 100}}\n\
             budgets:\n  critical: {{memory: 96MiB, cpu_shares: 2048}}\n  \
             normal: {{memory: 64MiB, cpu_shares: 1024}}\n  low: {{memory: 32MiB, cpu_shares: 256}}\n",
            swapfile.display()
        ),
    )
    .unwrap();
    env.config(&format!(
        "{}device: {{profile: tiny-board, profiles_dir: {}}}\n",
        turtle_e2e::DEFAULT_CONFIG.replace("device: {tune: false}\n", ""),
        profiles.display()
    ));
    let _reset = ResetOnDrop(env.command(&["device", "reset"]));
    let ours = |report: &Value| -> Vec<(String, i64)> {
        report["system"]["swaps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["ours"] == true)
            .map(|s| {
                (
                    s["path"].as_str().unwrap().to_string(),
                    s["priority"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    env.start_daemon();
    let mut swaps = Vec::new();
    wait_until(
        "the daemon's swap file and zram in /proc/swaps",
        WINDOW,
        || {
            swaps = ours(&device_status(&env));
            swaps.len() == 2
        },
    );
    let file = swaps
        .iter()
        .find(|(p, _)| Path::new(p) == swapfile)
        .cloned();
    let zram = swaps
        .iter()
        .find(|(p, _)| p.starts_with("/dev/zram"))
        .cloned();
    let (Some((_, file_prio)), Some((zram_dev, zram_prio))) = (file, zram) else {
        panic!("expected the swap file and a zram device: {swaps:?}");
    };
    assert_eq!(zram_prio, 100);
    assert!(
        zram_prio > file_prio,
        "zram must come before the file: {swaps:?}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&swapfile).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // A second start changes nothing: the same device, no new entries.
    env.kill_daemon();
    env.start_daemon();
    let again = ours(&device_status(&env));
    assert_eq!(again.len(), 2, "{again:?}");
    assert!(
        again.iter().any(|(p, _)| *p == zram_dev),
        "{again:?} lost {zram_dev}"
    );
    env.kill_daemon();

    let out = env.box_ok(&["device", "reset"]);
    assert!(out.contains(&zram_dev) || out.contains("zram"), "{out}");
    let swaps_now = std::fs::read_to_string("/proc/swaps").unwrap();
    assert!(
        !swaps_now.contains(&swapfile.display().to_string()) && !swaps_now.contains(&zram_dev),
        "{swaps_now}"
    );
    assert!(!swapfile.exists(), "the swap file must be deleted");
    let _ = std::fs::remove_dir_all(&swap_dir);
}
