//! compose-go's per-attribute loader tests (`loader/tests/*_test.go`): each
//! fixture `compose-go-unit/<Test>/compose.yaml` is loaded with the
//! environment its Go test sets, and the project is compared with
//! `expected/<Test>.yaml`, the Go test's assertions in Turtle's model terms:
//!
//! ```yaml
//! # what the Go test asserts, and what is not compared and why
//! project:        # a partial Project, compared as partial.rs says
//!   services: {foo: {init: true}}
//! warnings: [key] # texts some warning must contain
//! error: [key]    # the load must fail, its message containing each text
//! overlay: |      # a second -f file (ours), for what the Go test skips
//!   secrets: {s: {file: ./s}}
//! profiles: [debug]
//! allow_unknown_keys: true   # load as with --allow-unknown-keys
//! ```
//!
//! `${FIXTURE_DIR}` in an expected string is the fixture's directory.
//! Every fixture is either expected or in `NOT_APPLICABLE`, never both;
//! a new fixture with neither fails the test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::partial::{compare, substitute};
use super::{Load, reference_root, report, selected};

/// Fixtures with no meaning on a single Docker engine. The reason starts with
/// the key in backquotes: the loader must either load the file and warn about
/// that key, or refuse it with an error naming it (the README says which).
pub const NOT_APPLICABLE: &[(&str, &str)] = &[
    (
        "TestCredentialSpec",
        "`credential_spec`: Windows gMSA credentials, Windows engines only",
    ),
    (
        "TestDevelopWatch",
        "`develop`: compose watch, a development loop, not a deployment",
    ),
    (
        "TestModels",
        "`models`: Docker Model Runner, not part of the engine",
    ),
    (
        "TestProvider",
        "`provider`: a service run by a compose plugin, not a container",
    ),
    (
        "TestDeployPlacement",
        "`placement`: swarm scheduling across nodes",
    ),
    (
        "TestDeployUpdateRollbackConfig",
        "`update_config`: swarm rolling updates",
    ),
    (
        "TestUseAPISocket",
        "`use_api_socket`: Docker Desktop hands the engine and the CLI's credentials to the service",
    ),
    (
        "TestTopLevelConfigs",
        "`external`: external and named configs are swarm objects",
    ),
    (
        "TestTopLevelSecrets",
        "`external`: external and named secrets are swarm objects",
    ),
    (
        "TestTemplateDriver",
        "`template_driver`: swarm secrets and configs",
    ),
    ("TestSecretDriver", "`driver`: swarm secret drivers"),
    (
        "TestBuildCacheTo",
        "`cache_to`: BuildKit only; the engine's /build (API 1.41 classic builder) has no cache export",
    ),
    (
        "TestBuildSSH",
        "`ssh`: BuildKit only (SSH agent forwarding into the build)",
    ),
    (
        "TestBuildSecrets",
        "`secrets`: BuildKit only (build secrets)",
    ),
    ("TestBuildPrivileged", "`privileged`: BuildKit entitlement"),
    ("TestBuildEntitlements", "`entitlements`: BuildKit only"),
    (
        "TestBuildAttestations",
        "`provenance`: BuildKit attestations",
    ),
    ("TestBuildNoCacheFilter", "`no_cache_filter`: BuildKit only"),
];

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct Expectation {
    project: Option<Value>,
    warnings: Vec<String>,
    error: Vec<String>,
    overlay: Option<String>,
    profiles: Vec<String>,
    allow_unknown_keys: bool,
}

#[derive(Deserialize)]
struct IndexEntry {
    env: std::collections::BTreeMap<String, String>,
}

fn expected_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compose_go/expected")
}

#[test]
fn compose_go_unit_fixtures() {
    let root = reference_root().join("compose-go-unit");
    let index: std::collections::BTreeMap<String, IndexEntry> =
        serde_json::from_str(&std::fs::read_to_string(root.join("index.json")).unwrap())
            .expect("index.json");
    let fixtures: BTreeSet<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let expected: BTreeSet<String> = std::fs::read_dir(expected_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.file_name()
                .to_string_lossy()
                .strip_suffix(".yaml")
                .map(str::to_string)
        })
        .collect();

    let mut failures = Vec::new();
    // The bookkeeping: every fixture is accounted for exactly once.
    for name in &fixtures {
        let na = NOT_APPLICABLE.iter().any(|(n, _)| n == name);
        match (expected.contains(name), na) {
            (false, false) => failures.push(format!(
                "{name}: a fixture with no expected/{name}.yaml and not in NOT_APPLICABLE: \
                 translate its Go test's assertions, or say why it does not apply"
            )),
            (true, true) => failures.push(format!(
                "{name}: both expected and NOT_APPLICABLE; keep one"
            )),
            _ => {}
        }
    }
    let not_applicable_names: Vec<String> =
        NOT_APPLICABLE.iter().map(|(n, _)| n.to_string()).collect();
    for name in expected.iter().chain(&not_applicable_names) {
        if !fixtures.contains(name) {
            failures.push(format!(
                "{name}: expected or NOT_APPLICABLE, but no such fixture"
            ));
        }
    }

    let mut checked = 0;
    for name in fixtures.iter().filter(|n| selected(n)) {
        let dir = root.join(name);
        let env: Vec<(String, String)> = index
            .get(name)
            .map(|e| e.env.clone().into_iter().collect())
            .unwrap_or_default();
        let env_refs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        if let Some((_, reason)) = NOT_APPLICABLE.iter().find(|(n, _)| n == name) {
            checked += 1;
            if let Some(f) = not_applicable(name, &dir, &env_refs, reason) {
                failures.push(f);
            }
        } else if expected.contains(name) {
            checked += 1;
            if let Some(f) = check(name, &dir, &env_refs) {
                failures.push(f);
            }
        }
    }
    report("compose-go unit fixtures", checked, failures);
}

/// A fixture that does not apply: a warning naming the key, or an error
/// naming it (never a typing error from deep inside the parser).
fn not_applicable(name: &str, dir: &Path, env: &[(&str, &str)], reason: &str) -> Option<String> {
    let key = reason
        .split('`')
        .nth(1)
        .expect("the reason starts with the key in backquotes");
    let load = Load {
        cwd: dir.to_path_buf(),
        files: vec![PathBuf::from("compose.yaml")],
        env,
        ..Load::default()
    };
    match load.run() {
        Ok(loaded) if loaded.warnings.iter().any(|w| w.contains(key)) => None,
        Ok(loaded) => Some(format!(
            "{name} (not applicable: {reason}): loaded with no warning naming `{key}`; warnings: {:?}",
            loaded.warnings
        )),
        Err(e) if e.to_string().contains(key) => None,
        Err(e) => Some(format!(
            "{name} (not applicable: {reason}): refused with an error that does not name `{key}`: {e}"
        )),
    }
}

fn check(name: &str, dir: &Path, env: &[(&str, &str)]) -> Option<String> {
    let path = expected_dir().join(format!("{name}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let want: Expectation = match serde_norway::from_str(&text) {
        Ok(w) => w,
        Err(e) => return Some(format!("{name}: {} does not parse: {e}", path.display())),
    };
    let overlay_dir = tempfile::tempdir().unwrap();
    let mut files = vec![dir.join("compose.yaml")];
    if let Some(overlay) = &want.overlay {
        let file = overlay_dir.path().join("overlay.yaml");
        std::fs::write(&file, overlay).unwrap();
        files.push(file);
    }
    let load = Load {
        cwd: dir.to_path_buf(),
        files,
        env,
        profiles: want.profiles.clone(),
        allow_unknown_keys: want.allow_unknown_keys,
        ..Load::default()
    };
    let result = load.run();
    if !want.error.is_empty() {
        return match result {
            Ok(_) => Some(format!(
                "{name}: loaded, but the Go test expects an error naming {:?}",
                want.error
            )),
            Err(e) => {
                let msg = e.to_string();
                let missing: Vec<&String> = want
                    .error
                    .iter()
                    .filter(|t| !msg.contains(t.as_str()))
                    .collect();
                (!missing.is_empty())
                    .then(|| format!("{name}: the error does not name {missing:?}: {msg}"))
            }
        };
    }
    let loaded = match result {
        Ok(l) => l,
        Err(e) => return Some(format!("{name}: load failed: {e}")),
    };
    let mut problems = Vec::new();
    for w in &want.warnings {
        if !loaded.warnings.iter().any(|got| got.contains(w.as_str())) {
            problems.push(format!(
                "  no warning naming {w:?}; warnings: {:?}",
                loaded.warnings
            ));
        }
    }
    if let Some(mut project) = want.project {
        let fixture_dir = dir.display().to_string();
        substitute(&mut project, &[("FIXTURE_DIR", &fixture_dir)]);
        let got = serde_json::to_value(&loaded.project).unwrap();
        let mut diffs = Vec::new();
        compare(&project, Some(&got), "", &mut diffs);
        problems.extend(diffs.iter().map(|d| d.to_string()));
    }
    (!problems.is_empty()).then(|| format!("{name}:\n{}", problems.join("\n")))
}
