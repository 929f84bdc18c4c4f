//! Golden-file tests: every case under `tests/golden/<case>/` loads to the
//! project in its `expected.yaml` (paths under the case shown as `$DIR`), and
//! every case under `tests/golden/fails/<case>/` fails with an error
//! containing the text of its `expected-error.txt`.
//!
//! Regenerate the expected files with `UPDATE_GOLDEN=1 cargo test -p
//! turtle-compose --test golden` (then review the diff).

mod common;

use common::{cases, golden_root};

fn update() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v != "0")
}

#[test]
fn golden_projects() {
    let mut failures = Vec::new();
    let all = cases(&golden_root());
    assert!(all.len() >= 6, "expected the golden cases to be there");
    for case in all {
        let loaded = match case.load() {
            Ok(l) => l,
            Err(e) => {
                failures.push(format!("{}: load failed: {e}", case.name));
                continue;
            }
        };
        let mut got = case.placeholders(&serde_norway::to_string(&loaded.project).unwrap());
        if !loaded.warnings.is_empty() {
            got.push_str("# warnings:\n");
            for w in &loaded.warnings {
                got.push_str(&format!("# {}\n", case.placeholders(w)));
            }
        }
        let path = case.dir.join("expected.yaml");
        if update() {
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&path).unwrap_or_default();
        if want != got {
            failures.push(format!(
                "{}: project differs from expected.yaml (UPDATE_GOLDEN=1 to regenerate)\n--- got ---\n{got}",
                case.name
            ));
        }
        // Loading is deterministic, hashes included.
        let again = case.load().unwrap();
        for (name, svc) in &loaded.project.services {
            assert_eq!(
                turtle_compose::service_hash(svc),
                turtle_compose::service_hash(&again.project.services[name]),
                "{}: hash of {name} is not stable",
                case.name
            );
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn golden_failures() {
    let mut failures = Vec::new();
    let all = cases(&golden_root().join("fails"));
    assert!(all.len() >= 8, "expected the failing cases to be there");
    for case in all {
        let want = std::fs::read_to_string(case.dir.join("expected-error.txt"))
            .unwrap_or_else(|_| panic!("{}: missing expected-error.txt", case.name));
        let want = want.trim_end_matches('\n');
        match case.load() {
            Ok(_) => failures.push(format!("{}: loaded, expected an error", case.name)),
            Err(e) => {
                let got = case.placeholders(&e.to_string());
                if !got.contains(want) {
                    failures.push(format!(
                        "{}: error {got:?} does not contain {want:?}",
                        case.name
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
