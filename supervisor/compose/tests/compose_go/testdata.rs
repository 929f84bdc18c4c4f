//! The files of compose-go's `loader/testdata` and `cli/testdata` its Go
//! tests load as compose files, with what each test expects (an error, or a
//! partial project in our model's terms, `${DIR}` being the file's folder).
//! Files the Go tests only reach from inline YAML (`extends/`, `include/`,
//! `remote/`) are not loaded on their own.

use std::path::PathBuf;

use serde_json::{Value, json};

use super::partial::{compare, substitute};
use super::{Load, reference_root, report, selected};

enum Want {
    /// The load fails, the message containing each text.
    Error(&'static [&'static str]),
    /// The load succeeds; the project has these fields.
    Project(Value),
}

struct Case {
    /// The Go test, and the sub-test where there is one.
    name: &'static str,
    /// Folder under compose-go/, the cwd of the load.
    dir: &'static str,
    /// `-f` files; none: found in `dir` as compose finds them.
    files: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    project_name: Option<&'static str>,
    want: Want,
}

fn cases() -> Vec<Case> {
    let loader = "loader-testdata";
    let simple = "cli-testdata/simple";
    vec![
        Case {
            name: "loader TestEmptyFile",
            dir: loader,
            files: &["empty.yaml"],
            env: &[],
            project_name: None,
            want: Want::Error(&["empty compose file"]),
        },
        Case {
            name: "loader TestLoadWithIncludeCycle",
            dir: loader,
            files: &["compose-include-cycle.yaml"],
            env: &[],
            project_name: None,
            want: Want::Error(&["include cycle", "compose-include-cycle.yaml"]),
        },
        Case {
            name: "loader TestLoadDependsOnCycle",
            dir: loader,
            files: &["compose-depends-on-cycle.yaml"],
            env: &[],
            project_name: None,
            want: Want::Error(&["cycle", "service1", "service2", "service3"]),
        },
        Case {
            name: "loader TestLoadDependsOnSelf",
            dir: loader,
            files: &["compose-depends-on-self.yaml"],
            env: &[],
            project_name: None,
            want: Want::Error(&["cycle", "service1"]),
        },
        Case {
            name: "loader TestLoadWithExtends",
            dir: loader,
            files: &["compose-test-extends.yaml"],
            env: &[],
            project_name: None,
            want: Want::Project(json!({"services": {"importer": {
                "image": "nginx",
                "container_name": "imported",
                "environment": {"SOURCE": "extends"},
                "volumes": [{"type": "bind", "source": "/opt/data", "target": "/var/lib/mysql"}],
            }}})),
        },
        Case {
            name: "loader TestLoadWithExtendsWithContextUrl",
            dir: loader,
            files: &["compose-test-extends-with-context-url.yaml"],
            env: &[],
            project_name: None,
            want: Want::Project(json!({"services": {"importer-with-https-url": {
                "build": {
                    "context": "https://github.com/docker/compose.git",
                    // compose-go fills in the default; our model leaves it unset
                    "dockerfile": {"<any-of>": ["Dockerfile", "<absent>"]},
                },
            }}})),
        },
        Case {
            name: "loader TestComposeFileWithVersion",
            dir: loader,
            files: &["compose-test-with-version.yaml"],
            env: &[("HOME", "/home/turtle"), ("QUX", "qux_from_environment")],
            project_name: None,
            want: Want::Project(json!({
                "services": {
                    "web": {
                        "build": {"context": "${DIR}/Dockerfile"},
                        "networks": {"front": {}, "default": {}},
                        "volumes_from": ["other"],
                    },
                    "other": {
                        "image": "busybox:1.31.0-uclibc",
                        "command": ["top"],
                        "volumes": [{"type": "volume", "source": "<absent>", "target": "/data"}],
                    },
                },
                "networks": {"front": {"driver": "<absent>"}},
                "volumes": {"data": {"driver": "local"}},
            })),
        },
        Case {
            name: "loader TestLoadIncludeExtendsCombined",
            dir: "loader-testdata/combined",
            files: &["compose.yaml"],
            env: &[],
            project_name: Some("test-load-combined"),
            want: Want::Project(json!({"name": "test-load-combined"})),
        },
        Case {
            name: "cli TestProjectName/by name",
            dir: simple,
            files: &["compose.yaml"],
            env: &[],
            project_name: Some("my_project"),
            want: Want::Project(json!({"name": "my_project"})),
        },
        Case {
            name: "cli TestProjectName/by name start with number",
            dir: simple,
            files: &["compose.yaml"],
            env: &[],
            project_name: Some("42my_project_num"),
            want: Want::Project(json!({"name": "42my_project_num"})),
        },
        Case {
            name: "cli TestProjectName/by name start with number (env)",
            dir: simple,
            files: &["compose.yaml"],
            env: &[("COMPOSE_PROJECT_NAME", "42my_project_env")],
            project_name: None,
            want: Want::Project(json!({"name": "42my_project_env"})),
        },
        Case {
            name: "cli TestProjectName/by compose file parent dir",
            dir: simple,
            files: &["compose.yaml"],
            env: &[],
            project_name: None,
            want: Want::Project(json!({"name": "simple"})),
        },
        Case {
            name: "cli TestProjectName/by compose file parent dir special",
            dir: "cli-testdata/UNNORMALIZED PATH",
            files: &["compose.yaml"],
            env: &[],
            project_name: None,
            want: Want::Project(json!({"name": "unnormalizedpath"})),
        },
        Case {
            name: "cli TestProjectName/by .env",
            dir: "cli-testdata/env-file",
            files: &[],
            env: &[],
            project_name: None,
            want: Want::Project(json!({"name": "my_project_from_dot_env"})),
        },
        Case {
            name: "cli TestProjectName/by name in compose.yaml with variable",
            dir: simple,
            files: &["compose-name.yaml"],
            env: &[("TEST", "expected")],
            project_name: None,
            want: Want::Project(json!({"name": "test-expected-test"})),
        },
    ]
}

#[test]
fn compose_go_testdata() {
    let root = reference_root().join("compose-go");
    let mut failures = Vec::new();
    let mut checked = 0;
    for case in cases().into_iter().filter(|c| selected(c.name)) {
        checked += 1;
        let dir = root.join(case.dir);
        let load = Load {
            cwd: dir.clone(),
            files: case.files.iter().map(PathBuf::from).collect(),
            env: case.env,
            project_name: case.project_name,
            ..Load::default()
        };
        let name = case.name;
        match (load.run(), case.want) {
            (Ok(_), Want::Error(texts)) => failures.push(format!(
                "{name}: loaded, but the Go test expects an error naming {texts:?}"
            )),
            (Err(e), Want::Error(texts)) => {
                let msg = e.to_string();
                let missing: Vec<&&str> = texts.iter().filter(|t| !msg.contains(**t)).collect();
                if !missing.is_empty() {
                    failures.push(format!(
                        "{name}: the error does not name {missing:?}: {msg}"
                    ));
                }
            }
            (Err(e), Want::Project(_)) => failures.push(format!("{name}: load failed: {e}")),
            (Ok(loaded), Want::Project(mut want)) => {
                substitute(&mut want, &[("DIR", &dir.display().to_string())]);
                let got = serde_json::to_value(&loaded.project).unwrap();
                let mut diffs = Vec::new();
                compare(&want, Some(&got), "", &mut diffs);
                if !diffs.is_empty() {
                    let lines: Vec<String> = diffs.iter().map(|d| d.to_string()).collect();
                    failures.push(format!("{name}:\n{}", lines.join("\n")));
                }
            }
        }
    }
    report("compose-go test data", checked, failures);
}
