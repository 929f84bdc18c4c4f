//! compose-go's `loader/full-example.yml` against the normalized project its
//! `TestFullExample` expected (`expected.compose-go.json`, compose-go's names),
//! translated field by field into Turtle's model.
//!
//! Not compared, and why:
//! - `env_file`, `label_file`: our model resolves them into `environment` and
//!   `labels`, which are compared;
//! - `deploy` but `replicas` and `resources.limits`/`reservations.memory`:
//!   the rest is swarm (mode, labels, update/rollback, placement,
//!   endpoint_mode, generic resources) or has no engine field (a CPU
//!   reservation); `restart_policy` shows in `restart`;
//! - `build.ssh`, `build.secrets`, `build.additional_contexts`,
//!   `build.platforms`: BuildKit only;
//! - `ports[].mode`: ingress is swarm's; `volumes[].consistency`: macOS only;
//! - `labels`, `name`, `external` of secrets and configs: swarm objects;
//! - `x-*` extensions: our model keeps none;
//! - `network_mode` of foo: set together with `networks`, which the compose
//!   CLI refuses; reset by our overlay (see below).

use serde_json::{Map, Value, json};

use super::partial::{compare, substitute};
use super::{Load, reference_root, report, selected};

/// The keys of a compose-go service our model has under the same name and
/// with the same meaning.
const SAME: &[&str] = &[
    "annotations",
    "cap_add",
    "cap_drop",
    "cgroup_parent",
    "command",
    "container_name",
    "depends_on",
    "device_cgroup_rules",
    "dns",
    "dns_search",
    "domainname",
    "entrypoint",
    "environment",
    "expose",
    "external_links",
    "healthcheck",
    "hostname",
    "image",
    "ipc",
    "labels",
    "links",
    "logging",
    "mac_address",
    "pid",
    "privileged",
    "read_only",
    "security_opt",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "user",
    "uts",
    "working_dir",
];

/// The build keys our model has.
const BUILD: &[&str] = &[
    "context",
    "dockerfile",
    "args",
    "target",
    "dockerfile_inline",
    "cache_from",
    "labels",
    "network",
    "shm_size",
    "extra_hosts",
    "no_cache",
    "pull",
    "tags",
    "isolation",
];

#[test]
fn compose_go_full_example() {
    if !selected("full-example") {
        return;
    }
    let dir = reference_root().join("compose-go/full-example");
    let home = "/home/turtle";
    let fixture = dir.display().to_string();
    let mut want: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("expected.compose-go.json")).unwrap(),
    )
    .unwrap();
    substitute(&mut want, &[("FIXTURE_DIR", &fixture), ("HOME", home)]);
    let expected = translate(&want);

    // TestFullExample loads with SkipConsistencyCheck: the file mounts a
    // volume and uses a network it never declares (`datavolume`,
    // `other-other-network`), depends on services it never
    // defines (`db`, `redis`), and sets both `network_mode`
    // and `networks` on foo. Turtle, like the compose CLI, always checks, so
    // a second file of ours declares them (the two services are not
    // compared) and resets `network_mode`
    // (not compared).
    let overlay = tempfile::tempdir().unwrap();
    let declared = overlay.path().join("declare-datavolume.yaml");
    std::fs::write(&declared, "volumes:\n  datavolume: {}\nnetworks:\n  other-other-network: {}\nservices:\n  db: {image: busybox}\n  redis: {image: busybox}\n  foo:\n    network_mode: !reset null\n").unwrap();
    // TestFullExample's environment (HOME is the user's home directory).
    let load = Load {
        cwd: dir.clone(),
        files: vec![dir.join("full-example.yml"), declared],
        env: &[
            ("HOME", home),
            ("BAR", "this is a secret"),
            ("QUX", "qux_from_environment"),
        ],
        ..Load::default()
    };
    let mut failures = Vec::new();
    match load.run() {
        Err(e) => failures.push(format!("full-example: load failed: {e}")),
        Ok(loaded) => {
            let got = serde_json::to_value(&loaded.project).unwrap();
            let mut diffs = Vec::new();
            compare(&expected, Some(&got), "", &mut diffs);
            if !diffs.is_empty() {
                failures.push(format!(
                    "full-example:\n{}",
                    diffs
                        .iter()
                        .map(|d| d.to_string())
                        .collect::<Vec<_>>()
                        .join("\n")
                ));
            }
        }
    }
    report("compose-go full example", 1, failures);
}

/// compose-go's expected project in our model's terms.
fn translate(want: &Value) -> Value {
    let mut services = Map::new();
    for (name, svc) in want["services"].as_object().unwrap() {
        services.insert(name.clone(), service(svc));
    }
    let mut secrets = Map::new();
    for (name, s) in want["secrets"].as_object().unwrap() {
        secrets.insert(name.clone(), file_object(s, "BAR", "this is a secret"));
    }
    let mut configs = Map::new();
    for (name, c) in want["configs"].as_object().unwrap() {
        configs.insert(name.clone(), file_object(c, "", ""));
    }
    json!({
        "name": want["name"],
        "services": services,
        "networks": want["networks"],
        "volumes": want["volumes"],
        "secrets": secrets,
        "configs": configs,
    })
}

fn service(svc: &Value) -> Value {
    let mut out = Map::new();
    for key in SAME {
        if let Some(v) = svc.get(*key).filter(|v| !v.is_null()) {
            out.insert(key.to_string(), v.clone());
        }
    }
    if let Some(build) = svc.get("build").and_then(Value::as_object) {
        let kept: Map<String, Value> = build
            .iter()
            .filter(|(k, _)| BUILD.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        out.insert("build".into(), Value::Object(kept));
    }
    // docker compose v2 lets deploy.restart_policy set the engine's policy.
    if let Some(r) = svc.get("restart") {
        out.insert("restart".into(), json!({"<any-of>": [r, "on-failure:3"]}));
    }
    if let Some(deploy) = svc.get("deploy") {
        out.insert("replicas".into(), deploy["replicas"].clone());
        let res = &deploy["resources"];
        let cpus = res["limits"]["cpus"].as_f64().map(|c| c.to_string());
        let size = |v: &Value| {
            v.as_str()
                .and_then(|s| s.parse::<u64>().ok())
                .map(|b| turtle_compose::ByteSize(b).compact())
        };
        out.insert(
            "resources".into(),
            json!({
                "cpus": cpus,
                "memory_limit": size(&res["limits"]["memory"]),
                "memory_reservation": size(&res["reservations"]["memory"]),
            }),
        );
    }
    if let Some(devices) = svc.get("devices").and_then(Value::as_array) {
        let list: Vec<String> = devices
            .iter()
            .map(|d| {
                format!(
                    "{}:{}:{}",
                    s(&d["source"]),
                    s(&d["target"]),
                    s(&d["permissions"])
                )
            })
            .collect();
        out.insert("devices".into(), json!(list));
    }
    if let Some(hosts) = svc.get("extra_hosts").and_then(Value::as_array) {
        let list: Vec<String> = hosts.iter().map(|h| s(h).replacen('=', ":", 1)).collect();
        out.insert("extra_hosts".into(), json!(list));
    }
    if let Some(ulimits) = svc.get("ulimits").and_then(Value::as_object) {
        let map: Map<String, Value> = ulimits
            .iter()
            .map(|(k, v)| match v.as_i64() {
                Some(n) => (k.clone(), json!({"soft": n, "hard": n})),
                None => (k.clone(), v.clone()),
            })
            .collect();
        out.insert("ulimits".into(), Value::Object(map));
    }
    for (key, dir) in [("secrets", "/run/secrets/"), ("configs", "/")] {
        if let Some(refs) = svc.get(key).and_then(Value::as_array) {
            let list: Vec<Value> = refs.iter().map(|r| file_ref(r, dir)).collect();
            out.insert(key.into(), json!(list));
        }
    }
    if let Some(ports) = svc.get("ports").and_then(Value::as_array) {
        let list: Vec<Value> = ports
            .iter()
            .map(|p| {
                json!({
                    "target": p["target"],
                    "published": p.get("published").cloned().unwrap_or(json!("<absent>")),
                    "host_ip": p.get("host_ip").cloned().unwrap_or(json!("<absent>")),
                    "protocol": p["protocol"],
                })
            })
            .collect();
        out.insert("ports".into(), json!(list));
    }
    if let Some(networks) = svc.get("networks").and_then(Value::as_object) {
        let map: Map<String, Value> = networks
            .iter()
            .map(|(k, v)| (k.clone(), if v.is_null() { json!({}) } else { v.clone() }))
            .collect();
        out.insert("networks".into(), Value::Object(map));
    }
    if let Some(volumes) = svc.get("volumes").and_then(Value::as_array) {
        let list: Vec<Value> = volumes.iter().map(mount).collect();
        out.insert("volumes".into(), json!(list));
    }
    Value::Object(out)
}

fn mount(v: &Value) -> Value {
    let mut m = json!({
        "type": v["type"],
        "source": v.get("source").cloned().unwrap_or(json!("<absent>")),
        "target": v["target"],
        "read_only": v.get("read_only").cloned().unwrap_or(json!(false)),
    });
    if let Some(size) = v["tmpfs"]["size"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
    {
        m["tmpfs_size"] = json!(turtle_compose::ByteSize(size).compact());
    }
    m
}

/// A service's secret or config: targets absolute, modes as numbers.
fn file_ref(r: &Value, dir: &str) -> Value {
    let source = s(&r["source"]);
    let target = match r.get("target").and_then(Value::as_str) {
        Some(t) if t.starts_with('/') => t.to_string(),
        Some(t) => format!("{dir}{t}"),
        None => format!("{dir}{source}"),
    };
    let mut out = json!({"source": source, "target": target});
    for key in ["uid", "gid"] {
        if let Some(v) = r.get(key) {
            out[key] = v.clone();
        }
    }
    if let Some(mode) = r.get("mode").and_then(Value::as_str) {
        out["mode"] = json!(u32::from_str_radix(mode, 8).expect("an octal mode"));
    }
    out
}

/// A top-level secret or config: the file, or the environment variable and
/// the content read from it.
fn file_object(o: &Value, var: &str, value: &str) -> Value {
    let mut out = json!({});
    if let Some(file) = o.get("file") {
        out["file"] = file.clone();
    }
    if let Some(env) = o.get("environment") {
        out["environment"] = env.clone();
        if env.as_str() == Some(var) {
            out["content"] = json!(value);
        }
    }
    out
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}
