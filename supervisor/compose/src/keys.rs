//! The keys turtle supports, and the check that refuses the others.
//!
//! The check runs on each file's YAML value before anything is typed, so an
//! unsupported key is reported against the file (and line) it is written in,
//! instead of being silently dropped or failing deep inside serde. Keys
//! starting with `x-` are extensions and always allowed.

use serde_norway::Value;

/// What may appear under a key.
pub enum Schema {
    /// A scalar, or a list/mapping whose contents are not checked (e.g.
    /// `environment`, `labels`, `command`).
    Leaf,
    /// A mapping with these keys. A sequence value is checked item by item
    /// (long-syntax `ports`, `volumes`, `secrets`).
    Keys(&'static [(&'static str, Schema)]),
    /// A mapping with arbitrary keys (names), each value checked against the
    /// inner schema. A sequence value (the short list form) is not checked.
    Dict(&'static Schema),
    /// A key compose knows but turtle refuses; the text says what to do.
    Unsupported(&'static str),
}

use Schema::{Dict, Keys, Leaf, Unsupported};

const RESOURCE_LIMITS: Schema = Keys(&[("cpus", Leaf), ("memory", Leaf), ("pids", Leaf)]);
const RESOURCE_RESERVATIONS: Schema = Keys(&[("cpus", Leaf), ("memory", Leaf)]);

const FILE_REF: Schema = Keys(&[("source", Leaf), ("target", Leaf), ("mode", Leaf)]);

/// Keys of one service.
pub const SERVICE: Schema = Keys(&[
    ("image", Leaf),
    (
        "build",
        Keys(&[
            ("context", Leaf),
            ("dockerfile", Leaf),
            ("args", Leaf),
            ("target", Leaf),
        ]),
    ),
    ("command", Leaf),
    ("entrypoint", Leaf),
    ("environment", Leaf),
    (
        "env_file",
        Keys(&[("path", Leaf), ("required", Leaf), ("format", Leaf)]),
    ),
    ("labels", Leaf),
    (
        "ports",
        Keys(&[
            ("target", Leaf),
            ("published", Leaf),
            ("host_ip", Leaf),
            ("protocol", Leaf),
            ("mode", Leaf),
        ]),
    ),
    ("expose", Leaf),
    (
        "volumes",
        Keys(&[
            ("type", Leaf),
            ("source", Leaf),
            ("target", Leaf),
            ("read_only", Leaf),
            ("tmpfs", Keys(&[("size", Leaf)])),
        ]),
    ),
    ("tmpfs", Leaf),
    (
        "networks",
        Dict(&Keys(&[
            ("aliases", Leaf),
            ("ipv4_address", Leaf),
            ("ipv6_address", Leaf),
        ])),
    ),
    ("network_mode", Leaf),
    (
        "depends_on",
        Dict(&Keys(&[
            ("condition", Leaf),
            ("restart", Leaf),
            ("required", Leaf),
        ])),
    ),
    (
        "healthcheck",
        Keys(&[
            ("test", Leaf),
            ("interval", Leaf),
            ("timeout", Leaf),
            ("retries", Leaf),
            ("start_period", Leaf),
            ("start_interval", Leaf),
            ("disable", Leaf),
        ]),
    ),
    ("restart", Leaf),
    (
        "deploy",
        Keys(&[
            (
                "resources",
                Keys(&[
                    ("limits", RESOURCE_LIMITS),
                    ("reservations", RESOURCE_RESERVATIONS),
                ]),
            ),
            ("replicas", Leaf),
            (
                "restart_policy",
                Unsupported(
                    "swarm restart policies are not supported; use the service's restart: key",
                ),
            ),
        ]),
    ),
    ("mem_limit", Leaf),
    ("mem_reservation", Leaf),
    ("memswap_limit", Leaf),
    ("cpus", Leaf),
    ("cpu_shares", Leaf),
    ("cpuset", Leaf),
    ("pids_limit", Leaf),
    ("cap_add", Leaf),
    ("cap_drop", Leaf),
    ("devices", Leaf),
    ("privileged", Leaf),
    ("user", Leaf),
    ("working_dir", Leaf),
    ("hostname", Leaf),
    ("domainname", Leaf),
    ("extra_hosts", Leaf),
    ("dns", Leaf),
    ("dns_search", Leaf),
    ("sysctls", Leaf),
    ("ulimits", Dict(&Keys(&[("soft", Leaf), ("hard", Leaf)]))),
    ("stop_signal", Leaf),
    ("stop_grace_period", Leaf),
    ("init", Leaf),
    ("read_only", Leaf),
    ("tty", Leaf),
    ("stdin_open", Leaf),
    ("shm_size", Leaf),
    ("logging", Keys(&[("driver", Leaf), ("options", Leaf)])),
    ("security_opt", Leaf),
    ("pid", Leaf),
    ("ipc", Leaf),
    ("container_name", Leaf),
    ("secrets", FILE_REF),
    ("configs", FILE_REF),
    ("platform", Leaf),
    ("profiles", Leaf),
    ("scale", Leaf),
    ("extends", Keys(&[("service", Leaf), ("file", Leaf)])),
]);

const NETWORK: Schema = Keys(&[
    ("driver", Leaf),
    ("driver_opts", Leaf),
    ("internal", Leaf),
    (
        "ipam",
        Keys(&[
            ("driver", Leaf),
            (
                "config",
                Keys(&[("subnet", Leaf), ("gateway", Leaf), ("ip_range", Leaf)]),
            ),
        ]),
    ),
    ("external", Leaf),
    ("name", Leaf),
    ("labels", Leaf),
    ("enable_ipv6", Leaf),
    ("attachable", Leaf),
]);

const VOLUME: Schema = Keys(&[
    ("driver", Leaf),
    ("driver_opts", Leaf),
    ("external", Leaf),
    ("name", Leaf),
    ("labels", Leaf),
]);

const FILE_OBJECT: Schema = Keys(&[
    ("file", Leaf),
    ("name", Leaf),
    (
        "environment",
        Unsupported("only file-backed secrets and configs are supported; use file:"),
    ),
    (
        "external",
        Unsupported("external secrets and configs need swarm; use file:"),
    ),
    (
        "content",
        Unsupported("inline content is not supported; use file:"),
    ),
]);

/// Keys of a whole compose file.
pub const TOP: Schema = Keys(&[
    ("name", Leaf),
    (
        "include",
        Keys(&[
            ("path", Leaf),
            ("project_directory", Leaf),
            ("env_file", Leaf),
        ]),
    ),
    ("version", Leaf),
    ("services", Dict(&SERVICE)),
    ("networks", Dict(&NETWORK)),
    ("volumes", Dict(&VOLUME)),
    ("secrets", Dict(&FILE_OBJECT)),
    ("configs", Dict(&FILE_OBJECT)),
]);

/// One refused key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyIssue {
    /// Key path segments; sequence items are `[N]`.
    pub path: Vec<String>,
    /// `None` for an unknown key; for a known but unsupported key, what to
    /// do instead.
    pub unsupported: Option<&'static str>,
}

impl KeyIssue {
    /// The message when the key is an error.
    pub fn error_message(&self) -> String {
        match self.unsupported {
            None => UNKNOWN.to_string(),
            Some(why) => {
                format!("not supported: {why} (or run with --allow-unknown-keys to ignore it)")
            }
        }
    }

    /// The message when the key is ignored (`--allow-unknown-keys`).
    pub fn warning_message(&self) -> String {
        match self.unsupported {
            None => "unknown key, ignored".to_string(),
            Some(why) => format!("not supported, ignored: {why}"),
        }
    }
}

/// A mapping key as a string (numbers and booleans as written).
pub fn key_string(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".to_string(),
        other => serde_norway::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

/// `services.web.ports[0].x`.
pub fn display_path(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if !out.is_empty() && !seg.starts_with('[') {
            out.push('.');
        }
        out.push_str(seg);
    }
    out
}

const UNKNOWN: &str = "unknown key (turtle does not support it; remove it or run with --allow-unknown-keys to ignore it)";

/// Checks `value` against `schema`, removes every refused key from it and
/// returns them (the caller decides between error and warning).
pub fn check(value: &mut Value, schema: &Schema) -> Vec<KeyIssue> {
    let mut issues = Vec::new();
    walk(value, schema, &mut Vec::new(), &mut issues);
    issues
}

fn walk(value: &mut Value, schema: &Schema, path: &mut Vec<String>, issues: &mut Vec<KeyIssue>) {
    match (schema, value) {
        (Keys(keys), Value::Mapping(map)) => {
            let mut refused = Vec::new();
            for (k, v) in map.iter_mut() {
                let name = key_string(k);
                if name.starts_with("x-") {
                    continue;
                }
                path.push(name.clone());
                match keys.iter().find(|(n, _)| *n == name) {
                    Some((_, Unsupported(why))) => {
                        issues.push(KeyIssue {
                            path: path.clone(),
                            unsupported: Some(why),
                        });
                        refused.push(k.clone());
                    }
                    Some((_, inner)) => walk(v, inner, path, issues),
                    None => {
                        issues.push(KeyIssue {
                            path: path.clone(),
                            unsupported: None,
                        });
                        refused.push(k.clone());
                    }
                }
                path.pop();
            }
            for k in refused {
                map.remove(&k);
            }
        }
        (Keys(_), Value::Sequence(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                path.push(format!("[{i}]"));
                walk(item, schema, path, issues);
                path.pop();
            }
        }
        (Dict(inner), Value::Mapping(map)) => {
            for (k, v) in map.iter_mut() {
                path.push(key_string(k));
                walk(v, inner, path, issues);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issues(yaml: &str) -> (Vec<String>, Value) {
        let mut v: Value = serde_norway::from_str(yaml).unwrap();
        let found = check(&mut v, &TOP)
            .into_iter()
            .map(|i| display_path(&i.path))
            .collect();
        (found, v)
    }

    #[test]
    fn accepts_supported_and_extensions() {
        let (found, _) = issues(
            "x-common: {anything: 1}\ninclude: [a.yaml, {path: [b.yaml, c.yaml], project_directory: b, env_file: b.env}]\nservices:\n  web:\n    image: a\n    x-note: 1\n    ports: ['80', {target: 1, published: 2}]\n    deploy: {resources: {limits: {cpus: '1', pids: 3}}}\n    networks: [a]\n    depends_on: {db: {condition: service_healthy}}\nnetworks:\n  a: {ipam: {config: [{subnet: 10.0.0.0/24, ip_range: 10.0.0.0/25}]}}\n",
        );
        assert!(found.is_empty(), "{found:?}");
    }

    #[test]
    fn refuses_unknown_and_unsupported_and_removes_them() {
        let (found, v) = issues(
            "include: [{path: a.yaml, envfile: x}]\nservices:\n  web:\n    image: a\n    links: [b]\n    ports: [{target: 1, bogus: 2}]\n    deploy: {restart_policy: {condition: any}}\nsecrets:\n  s: {environment: X}\nfoo: 1\n",
        );
        assert_eq!(
            found,
            vec![
                "include[0].envfile",
                "services.web.links",
                "services.web.ports[0].bogus",
                "services.web.deploy.restart_policy",
                "secrets.s.environment",
                "foo"
            ]
        );
        assert!(v["services"]["web"].get("links").is_none());
        assert!(v["services"]["web"]["ports"][0].get("bogus").is_none());
        assert!(v.get("foo").is_none());
    }

    #[test]
    fn paths_display() {
        assert_eq!(
            display_path(&["a".into(), "[0]".into(), "b".into()]),
            "a[0].b"
        );
    }
}
