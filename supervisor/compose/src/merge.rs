//! Merging compose values the way the compose spec says (13-merge.md), used
//! for several `-f` files and for `extends`.
//!
//! - mappings merge recursively, scalars override;
//! - `command`, `entrypoint` and `healthcheck.test` override;
//! - mapping-or-list keys (`environment`, `labels`, `sysctls`, `extra_hosts`,
//!   `build.args`, `depends_on`, `networks`) are brought to mapping form and
//!   merged by key;
//! - `volumes` and `devices` merge by container path, `secrets` and `configs`
//!   by target;
//! - `ports`, `expose`, `dns`, `dns_search`, `tmpfs`, `cap_add`, ... append,
//!   without duplicates;
//! - any other sequence appends.

use serde_norway::{Mapping, Value};

use crate::yaml::{Directive, directive};

/// Merges two whole compose files; `over` wins.
pub fn merge_files(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Mapping(mut base), Value::Mapping(over)) => {
            for (k, ov) in over {
                let Some(ov) = directed(&mut base, &k, ov) else {
                    continue;
                };
                let merged = match (k.as_str(), base.remove(&k)) {
                    (Some("services"), Some(Value::Mapping(mut bs))) => match ov {
                        Value::Mapping(os) => {
                            for (name, osvc) in os {
                                let m = match bs.remove(&name) {
                                    Some(bsvc) => merge_service(bsvc, osvc),
                                    None => osvc,
                                };
                                bs.insert(name, m);
                            }
                            Value::Mapping(bs)
                        }
                        other => other,
                    },
                    (_, Some(bv)) => merge_generic(bv, ov),
                    (_, None) => ov,
                };
                base.insert(k, merged);
            }
            Value::Mapping(base)
        }
        (_, over) => over,
    }
}

/// Applies a `!reset` or `!override` on `over` (the value for `key`):
/// `!reset` removes the key (`None`: nothing to merge); `!override` replaces
/// the base value with the untagged one (`None` too). Anything else is
/// returned to be merged.
fn directed(base: &mut Mapping, key: &Value, over: Value) -> Option<Value> {
    match directive(&over) {
        Some(Directive::Reset) => {
            base.remove(key);
            None
        }
        Some(Directive::Override) => {
            let Value::Tagged(t) = over else {
                unreachable!("a directive is a tagged value")
            };
            base.insert(key.clone(), t.value);
            None
        }
        None => Some(over),
    }
}

/// Mappings merge key by key; anything else is replaced by `over`.
pub fn merge_generic(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            for (k, ov) in o {
                let Some(ov) = directed(&mut b, &k, ov) else {
                    continue;
                };
                let m = match b.remove(&k) {
                    Some(bv) => merge_generic(bv, ov),
                    None => ov,
                };
                b.insert(k, m);
            }
            Value::Mapping(b)
        }
        (_, over) => over,
    }
}

/// How a `KEY=VALUE` list item splits.
#[derive(Clone, Copy)]
enum ListForm {
    /// `KEY=VALUE` (`KEY` alone: no value).
    Equals,
    /// `host:ip` or `host=ip`.
    Hosts,
    /// Names only (`depends_on`, `networks`).
    Names,
}

fn to_mapping(v: Value, form: ListForm) -> Value {
    match v {
        Value::Sequence(items) => {
            let mut m = Mapping::new();
            for item in items {
                let s = match item {
                    Value::String(s) => s,
                    other => {
                        // Not a list of strings: leave it for the typed parse
                        // to report.
                        m.insert(other, Value::Null);
                        continue;
                    }
                };
                let split = match form {
                    ListForm::Equals => s.split_once('='),
                    ListForm::Hosts => s.split_once('=').or_else(|| s.split_once(':')),
                    ListForm::Names => None,
                };
                match split {
                    Some((k, v)) => m.insert(k.into(), v.into()),
                    None => m.insert(s.into(), Value::Null),
                };
            }
            Value::Mapping(m)
        }
        other => other,
    }
}

/// Merges two mapping-or-list values by key. With `null_keeps_base`, an
/// `over` entry without a value (list form) keeps the base entry's settings.
fn merge_by_key(base: Value, over: Value, form: ListForm, null_keeps_base: bool) -> Value {
    merge_by_key_with(base, over, form, null_keeps_base, merge_generic)
}

/// [`merge_by_key`], each entry present on both sides merged with `entry`.
fn merge_by_key_with(
    base: Value,
    over: Value,
    form: ListForm,
    null_keeps_base: bool,
    entry: fn(Value, Value) -> Value,
) -> Value {
    match (to_mapping(base, form), to_mapping(over, form)) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            for (k, ov) in o {
                let m = match b.remove(&k) {
                    Some(bv) if null_keeps_base && ov.is_null() => bv,
                    Some(bv) => entry(bv, ov),
                    None => ov,
                };
                b.insert(k, m);
            }
            Value::Mapping(b)
        }
        (_, over) => over,
    }
}

fn as_list(v: Value) -> Vec<Value> {
    match v {
        Value::Sequence(s) => s,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

fn append_unique(base: Value, over: Value) -> Value {
    let mut out = as_list(base);
    for item in as_list(over) {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    Value::Sequence(out)
}

fn append(base: Value, over: Value) -> Value {
    let mut out = as_list(base);
    out.extend(as_list(over));
    Value::Sequence(out)
}

/// Container path of a `volumes`/`devices` entry.
fn mount_target(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let parts: Vec<&str> = s.split(':').collect();
            Some(parts.get(1).unwrap_or(&parts[0]).to_string())
        }
        Value::Mapping(m) => m.get("target").and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

/// Target (or source) of a `secrets`/`configs` entry.
fn file_ref_target(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Mapping(m) => m
            .get("target")
            .or_else(|| m.get("source"))
            .and_then(Value::as_str)
            .map(str::to_string),
        _ => None,
    }
}

fn merge_unique_by(base: Value, over: Value, key: fn(&Value) -> Option<String>) -> Value {
    let mut out = as_list(base);
    for item in as_list(over) {
        let k = key(&item);
        match out.iter().position(|b| k.is_some() && key(b) == k) {
            Some(i) => out[i] = item,
            None => out.push(item),
        }
    }
    Value::Sequence(out)
}

fn build_mapping(v: Value) -> Value {
    match v {
        Value::String(s) => {
            let mut m = Mapping::new();
            m.insert("context".into(), s.into());
            Value::Mapping(m)
        }
        other => other,
    }
}

/// One network of a service: its aliases and link-local addresses add up
/// (compose-go merges them as sets); the rest merges key by key.
fn merge_attachment(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Mapping(mut b), Value::Mapping(o)) => {
            for (k, ov) in o {
                let m = match (k.as_str(), b.remove(&k)) {
                    (Some("aliases" | "link_local_ips"), Some(bv)) => append_unique(bv, ov),
                    (_, Some(bv)) => merge_generic(bv, ov),
                    (_, None) => ov,
                };
                b.insert(k, m);
            }
            Value::Mapping(b)
        }
        (_, over) => over,
    }
}

/// Merges two service definitions; `over` wins.
pub fn merge_service(base: Value, over: Value) -> Value {
    let (mut b, o) = match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => (b, o),
        (_, over) => return over,
    };
    for (k, ov) in o {
        let Some(ov) = directed(&mut b, &k, ov) else {
            continue;
        };
        let Some(bv) = b.remove(&k) else {
            b.insert(k, ov);
            continue;
        };
        let name = k.as_str().unwrap_or_default();
        let merged = match name {
            "command" | "entrypoint" | "extends" => ov,
            "environment" | "labels" | "sysctls" => merge_by_key(bv, ov, ListForm::Equals, false),
            "extra_hosts" => merge_by_key(bv, ov, ListForm::Hosts, false),
            "depends_on" => merge_by_key(bv, ov, ListForm::Names, true),
            "networks" => merge_by_key_with(bv, ov, ListForm::Names, true, merge_attachment),
            "volumes" | "devices" => merge_unique_by(bv, ov, mount_target),
            "secrets" | "configs" => merge_unique_by(bv, ov, file_ref_target),
            "ports" | "expose" | "external_links" | "dns" | "dns_search" | "dns_opt" | "tmpfs"
            | "cap_add" | "cap_drop" | "security_opt" | "profiles" | "env_file" | "links"
            | "group_add" => append_unique(bv, ov),
            "build" => match (build_mapping(bv), build_mapping(ov)) {
                (Value::Mapping(mut bb), Value::Mapping(ob)) => {
                    for (bk, bov) in ob {
                        let m = match (bk.as_str(), bb.remove(&bk)) {
                            (Some("args"), Some(bbv)) => {
                                merge_by_key(bbv, bov, ListForm::Equals, false)
                            }
                            (_, Some(bbv)) => merge_generic(bbv, bov),
                            (_, None) => bov,
                        };
                        bb.insert(bk, m);
                    }
                    Value::Mapping(bb)
                }
                (_, ob) => ob,
            },
            "logging" => {
                let driver = |v: &Value| v.get("driver").cloned();
                if driver(&ov).is_some() && driver(&bv).is_some() && driver(&ov) != driver(&bv) {
                    ov
                } else {
                    merge_generic(bv, ov)
                }
            }
            _ => match (bv, ov) {
                (bv @ Value::Sequence(_), ov @ Value::Sequence(_)) => append(bv, ov),
                (bv, ov) => merge_generic(bv, ov),
            },
        };
        b.insert(k, merged);
    }
    Value::Mapping(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    fn svc(base: &str, over: &str) -> Value {
        merge_service(y(base), y(over))
    }

    #[test]
    fn scalars_override_and_commands_replace() {
        let m = svc(
            "image: a\ncommand: [x, y]\nhealthcheck: {test: [CMD, a], retries: 3}",
            "image: b\ncommand: [z]\nhealthcheck: {test: [CMD, b]}",
        );
        assert_eq!(
            m,
            y("image: b\ncommand: [z]\nhealthcheck: {test: [CMD, b], retries: 3}")
        );
    }

    #[test]
    fn mappings_merge_by_key_across_forms() {
        let m = svc(
            "environment: [A=1, B=2]\nlabels: {x: '1'}",
            "environment: {B: '3', C: '4'}\nlabels: [y=2]",
        );
        assert_eq!(m["environment"], y("{A: '1', B: '3', C: '4'}"));
        assert_eq!(m["labels"], y("{x: '1', y: '2'}"));
        let m = svc(
            "extra_hosts: ['a:1.1.1.1']",
            "extra_hosts: ['a=2.2.2.2', 'b:3.3.3.3']",
        );
        assert_eq!(m["extra_hosts"], y("{a: 2.2.2.2, b: 3.3.3.3}"));
    }

    #[test]
    fn networks_and_depends_on_keep_base_settings() {
        let m = svc(
            "networks: {front: {aliases: [w]}}\ndepends_on: [db]",
            "networks: [front, back]\ndepends_on: {cache: {condition: service_healthy}}",
        );
        assert_eq!(m["networks"], y("{front: {aliases: [w]}, back: null}"));
        assert_eq!(
            m["depends_on"],
            y("{db: null, cache: {condition: service_healthy}}")
        );
    }

    #[test]
    fn unique_resources_merge_by_target() {
        let m = svc(
            "volumes: ['data:/var/lib', './a:/etc/a:ro']\nsecrets: [s1, {source: s2, target: /x}]",
            "volumes: ['other:/var/lib', {type: bind, source: ./b, target: /b}]\nsecrets: [{source: s3, target: /x}]",
        );
        assert_eq!(
            m["volumes"],
            y("['other:/var/lib', './a:/etc/a:ro', {type: bind, source: ./b, target: /b}]")
        );
        assert_eq!(m["secrets"], y("[s1, {source: s3, target: /x}]"));
    }

    #[test]
    fn sequences_append_unique() {
        let m = svc(
            "ports: ['80:80']\ndns: 8.8.8.8\ncap_add: [NET_ADMIN]",
            "ports: ['80:80', '443:443']\ndns: [1.1.1.1]\ncap_add: [NET_ADMIN, SYS_TIME]",
        );
        assert_eq!(m["ports"], y("['80:80', '443:443']"));
        assert_eq!(m["dns"], y("[8.8.8.8, 1.1.1.1]"));
        assert_eq!(m["cap_add"], y("[NET_ADMIN, SYS_TIME]"));
    }

    #[test]
    fn build_string_and_args() {
        let m = svc(
            "build: {context: ./app, args: {A: '0', B: '2'}}",
            "build: {dockerfile: Dockerfile.dev, args: [A=1]}",
        );
        assert_eq!(
            m["build"],
            y("{context: ./app, args: {A: '1', B: '2'}, dockerfile: Dockerfile.dev}")
        );
    }

    #[test]
    fn build_string_becomes_context() {
        let m = svc("build: ./app", "build: {target: dev}");
        assert_eq!(m["build"], y("{context: ./app, target: dev}"));
    }

    #[test]
    fn files_merge_services_and_top_level() {
        let m = merge_files(
            y("services: {a: {image: x, ports: ['1:1']}}\nnetworks: {n: {driver: bridge}}"),
            y(
                "services: {a: {ports: ['2:2']}, b: {image: y}}\nnetworks: {n: {internal: true}}\nname: p",
            ),
        );
        assert_eq!(
            m,
            y(
                "services: {a: {image: x, ports: ['1:1', '2:2']}, b: {image: y}}\nnetworks: {n: {driver: bridge, internal: true}}\nname: p"
            )
        );
    }
}
