//! Compares the loader with the real compose tool: for every golden case
//! without a `skip-compose` file, `docker compose config` (v2) or
//! `docker-compose config` (v1) must agree with us, field by field, on what we
//! support: images, environment, labels, command, ports, volumes, depends_on,
//! healthcheck, restart and networks. The comparison is semantic (v1 prints
//! `command` as a string, ports and volumes in short syntax, environment as a
//! map with nulls, and does not apply profiles).
//!
//! Skipped, with a notice, when neither tool is installed.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use common::{Case, cases, golden_root};
use serde_norway::Value;
use turtle_compose::normalize::parse_port;
use turtle_compose::{Condition, Duration, MountKind, NetworkMode, RestartPolicy, Service};

/// The compose command line to use, if any: `docker compose` or `docker-compose`.
fn compose_tool() -> Option<Vec<String>> {
    let works = |prog: &str, args: &[&str]| {
        Command::new(prog)
            .args(args)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if works("docker", &["compose", "version"]) {
        return Some(vec!["docker".into(), "compose".into()]);
    }
    if works("docker-compose", &["version"]) {
        return Some(vec!["docker-compose".into()]);
    }
    None
}

fn run_config(tool: &[String], case: &Case, project: &str) -> Result<Value, String> {
    let mut cmd = Command::new(&tool[0]);
    cmd.args(&tool[1..]).arg("-p").arg(project);
    // No `files` in the case: no -f either, so the tool finds compose.yaml
    // and its override file itself, as the loader does.
    for f in &case.spec.files {
        cmd.arg("-f").arg(f);
    }
    for p in &case.spec.profiles {
        cmd.arg("--profile").arg(p);
    }
    cmd.arg("config").current_dir(&case.dir).env_clear();
    if let Some(path) = std::env::var_os("PATH") {
        cmd.env("PATH", path);
    }
    cmd.envs(case.env());
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!(
            "compose config failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_norway::from_slice(&out.stdout).map_err(|e| format!("compose output: {e}"))
}

fn s(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|l| l.iter().filter_map(s).collect())
        .unwrap_or_default()
}

/// Compares one service; returns the differences.
fn compare_service(name: &str, ours: &Service, theirs: &Value, diffs: &mut Vec<String>) {
    let mut diff = |what: &str, o: String, t: String| {
        if o != t {
            diffs.push(format!("{name}.{what}: ours {o}, compose {t}"));
        }
    };

    if let Some(img) = theirs.get("image").and_then(s) {
        diff(
            "image",
            format!("{:?}", ours.image),
            format!("{:?}", Some(img)),
        );
    }

    // environment: compose's non-null values must match ours; our keys must
    // be in compose's.
    let env = theirs.get("environment").cloned().unwrap_or(Value::Null);
    let theirs_env: BTreeMap<String, Option<String>> = match &env {
        Value::Mapping(m) => m.iter().map(|(k, v)| (s(k).unwrap(), s(v))).collect(),
        Value::Sequence(l) => l
            .iter()
            .filter_map(s)
            .map(|e| match e.split_once('=') {
                Some((k, v)) => (k.to_string(), Some(v.to_string())),
                None => (e, None),
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    for (k, v) in &theirs_env {
        if let Some(v) = v {
            diff(
                &format!("environment.{k}"),
                format!("{:?}", ours.environment.get(k)),
                format!("{:?}", Some(v)),
            );
        }
    }
    for k in ours.environment.keys() {
        if !theirs_env.contains_key(k) && theirs.get("env_file").is_none() {
            diff(&format!("environment.{k}"), "set".into(), "absent".into());
        }
    }

    let labels: BTreeMap<String, String> = match theirs.get("labels") {
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| (s(k).unwrap(), s(v).unwrap_or_default()))
            .collect(),
        Some(Value::Sequence(l)) => l
            .iter()
            .filter_map(s)
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((&e, ""));
                (k.to_string(), v.to_string())
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    let ours_labels: BTreeMap<String, String> = ours.labels.clone().into_iter().collect();
    diff("labels", format!("{ours_labels:?}"), format!("{labels:?}"));

    for (key, ours_cmd) in [("command", &ours.command), ("entrypoint", &ours.entrypoint)] {
        let t = match theirs.get(key) {
            Some(Value::String(c)) => Some(turtle_compose::shell::split(c).unwrap()),
            Some(v @ Value::Sequence(_)) => Some(str_list(v)),
            _ => None,
        };
        diff(key, format!("{ours_cmd:?}"), format!("{t:?}"));
    }

    // ports as (target, published, protocol).
    let mut theirs_ports = BTreeSet::new();
    for p in theirs
        .get("ports")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        match p {
            Value::Mapping(_) => {
                theirs_ports.insert((
                    p.get("target").and_then(s).unwrap_or_default(),
                    p.get("published").and_then(s),
                    p.get("protocol")
                        .and_then(s)
                        .unwrap_or_else(|| "tcp".into()),
                ));
            }
            other => {
                for port in parse_port(&s(other).unwrap()).unwrap() {
                    theirs_ports.insert((port.target.to_string(), port.published, port.protocol));
                }
            }
        }
    }
    let ours_ports: BTreeSet<_> = ours
        .ports
        .iter()
        .map(|p| {
            (
                p.target.to_string(),
                p.published.clone(),
                p.protocol.clone(),
            )
        })
        .collect();
    diff(
        "ports",
        format!("{ours_ports:?}"),
        format!("{theirs_ports:?}"),
    );

    // volumes as (target, source).
    let mut theirs_vols = BTreeSet::new();
    for v in theirs
        .get("volumes")
        .and_then(Value::as_sequence)
        .into_iter()
        .flatten()
    {
        match v {
            Value::Mapping(_) => {
                theirs_vols.insert((
                    v.get("target").and_then(s).unwrap_or_default(),
                    v.get("source").and_then(s),
                ));
            }
            other => {
                let spec = s(other).unwrap();
                let parts: Vec<&str> = spec.split(':').collect();
                match parts.as_slice() {
                    [t] => theirs_vols.insert((t.to_string(), None)),
                    [src, t, ..] => theirs_vols.insert((t.to_string(), Some(src.to_string()))),
                    [] => false,
                };
            }
        }
    }
    let ours_vols: BTreeSet<_> = ours
        .volumes
        .iter()
        .map(|m| {
            let src = if m.kind == MountKind::Tmpfs {
                None
            } else {
                m.source.clone()
            };
            (m.target.clone(), src)
        })
        .collect();
    diff(
        "volumes",
        format!("{ours_vols:?}"),
        format!("{theirs_vols:?}"),
    );

    let theirs_deps: BTreeMap<String, String> = match theirs.get("depends_on") {
        Some(Value::Mapping(m)) => m
            .iter()
            .map(|(k, v)| {
                let c = v
                    .get("condition")
                    .and_then(s)
                    .unwrap_or_else(|| "service_started".into());
                (s(k).unwrap(), c)
            })
            .collect(),
        Some(v @ Value::Sequence(_)) => str_list(v)
            .into_iter()
            .map(|d| (d, "service_started".to_string()))
            .collect(),
        _ => BTreeMap::new(),
    };
    let ours_deps: BTreeMap<String, String> = ours
        .depends_on
        .iter()
        .map(|(k, d)| {
            let c = match d.condition {
                Condition::ServiceStarted => "service_started",
                Condition::ServiceHealthy => "service_healthy",
                Condition::ServiceCompletedSuccessfully => "service_completed_successfully",
            };
            (k.clone(), c.to_string())
        })
        .collect();
    diff(
        "depends_on",
        format!("{ours_deps:?}"),
        format!("{theirs_deps:?}"),
    );

    let theirs_hc = theirs.get("healthcheck").map(|h| {
        let mut test = match h.get("test") {
            Some(Value::String(t)) => vec!["CMD-SHELL".to_string(), t.clone()],
            Some(v @ Value::Sequence(_)) => str_list(v),
            _ => Vec::new(),
        };
        if h.get("disable") == Some(&Value::Bool(true)) {
            test = vec!["NONE".into()];
        }
        let interval: Option<Duration> = h.get("interval").and_then(s).map(|d| d.parse().unwrap());
        let retries = h.get("retries").and_then(s);
        (test, interval, retries)
    });
    let ours_hc = ours
        .healthcheck
        .as_ref()
        .map(|h| (h.test.clone(), h.interval, h.retries.map(|r| r.to_string())));
    diff(
        "healthcheck",
        format!("{ours_hc:?}"),
        format!("{theirs_hc:?}"),
    );

    let restart: RestartPolicy = theirs
        .get("restart")
        .and_then(s)
        .map(|r| r.parse().unwrap())
        .unwrap_or_default();
    diff("restart", ours.restart.to_string(), restart.to_string());

    let theirs_mode = theirs.get("network_mode").and_then(s);
    diff(
        "network_mode",
        format!(
            "{:?}",
            ours.network_mode.as_ref().map(NetworkMode::to_string)
        ),
        format!("{theirs_mode:?}"),
    );
    let theirs_nets: BTreeSet<String> = match theirs.get("networks") {
        Some(Value::Mapping(m)) => m.keys().filter_map(s).collect(),
        Some(v @ Value::Sequence(_)) => str_list(v).into_iter().collect(),
        _ if theirs_mode.is_none() => ["default".to_string()].into(),
        _ => BTreeSet::new(),
    };
    let ours_nets: BTreeSet<String> = ours.networks.keys().cloned().collect();
    diff(
        "networks",
        format!("{ours_nets:?}"),
        format!("{theirs_nets:?}"),
    );
}

#[test]
fn agrees_with_docker_compose_config() {
    let Some(tool) = compose_tool() else {
        eprintln!(
            "NOTICE: skipping the compose comparison: neither `docker compose` nor `docker-compose` is installed"
        );
        return;
    };
    let mut diffs = Vec::new();
    let mut compared = 0;
    for case in cases(&golden_root()) {
        if case.dir.join("skip-compose").exists() {
            continue;
        }
        let loaded = case
            .load()
            .unwrap_or_else(|e| panic!("{}: load failed: {e}", case.name));
        let theirs = match run_config(&tool, &case, &loaded.project.name) {
            Ok(v) => v,
            Err(e) => {
                diffs.push(format!("{}: {e}", case.name));
                continue;
            }
        };
        compared += 1;
        let services = theirs.get("services").cloned().unwrap_or(Value::Null);
        for (name, ours) in &loaded.project.services {
            match services.get(name.as_str()) {
                Some(t) => {
                    let mut d = Vec::new();
                    compare_service(name, ours, t, &mut d);
                    diffs.extend(d.into_iter().map(|d| format!("{}: {d}", case.name)));
                }
                None => diffs.push(format!(
                    "{}: service {name} missing in compose's output",
                    case.name
                )),
            }
        }
    }
    eprintln!("compared {compared} golden cases with {}", tool.join(" "));
    assert!(compared >= 3, "expected at least 3 cases compose can read");
    assert!(diffs.is_empty(), "differences:\n{}", diffs.join("\n"));
}
