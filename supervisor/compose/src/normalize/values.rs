//! Small readers the normalization shares. They read the merged YAML value,
//! whose shape the key check ([`crate::keys`]) has already made right (a
//! boolean is a boolean, a list of strings holds strings), so they do not
//! fail on shape; the readers of sizes, durations and numbers that are
//! parsed here name the service and key in their errors.

use indexmap::IndexMap;
use serde_norway::{Mapping, Value};

use crate::error::LoadError;
use crate::model::{ByteSize, Duration};

/// The value of `key`, unless missing or null.
pub(super) fn get<'a>(m: &'a Mapping, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

/// The mapping under `key`, if it is one.
pub(super) fn sub<'a>(m: &'a Mapping, key: &str) -> Option<&'a Mapping> {
    get(m, key).and_then(Value::as_mapping)
}

/// A scalar as a string (numbers and booleans as written).
pub(super) fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn string(m: &Mapping, key: &str) -> Option<String> {
    get(m, key).and_then(scalar)
}

pub(super) fn boolean(m: &Mapping, key: &str) -> bool {
    opt_bool(m, key).unwrap_or(false)
}

pub(super) fn opt_bool(m: &Mapping, key: &str) -> Option<bool> {
    get(m, key).and_then(Value::as_bool)
}

pub(super) fn int(m: &Mapping, key: &str) -> Option<i64> {
    get(m, key).and_then(Value::as_i64)
}

/// A string or a list of strings, as a list (an empty string: no item).
pub(super) fn strings(m: &Mapping, key: &str) -> Vec<String> {
    match get(m, key) {
        Some(Value::Sequence(items)) => items.iter().filter_map(scalar).collect(),
        Some(v) => scalar(v).filter(|s| !s.is_empty()).into_iter().collect(),
        None => Vec::new(),
    }
}

/// A mapping of names to values, or a list of `KEY=VALUE` (`KEY` alone: no
/// value), in file order.
pub(super) fn key_values(m: &Mapping, key: &str) -> Vec<(String, Option<String>)> {
    match get(m, key) {
        Some(Value::Mapping(map)) => map
            .iter()
            .map(|(k, v)| (crate::keys::key_string(k), scalar(v)))
            .collect(),
        Some(Value::Sequence(items)) => items
            .iter()
            .filter_map(scalar)
            .map(|s| split_kv(&s))
            .collect(),
        _ => Vec::new(),
    }
}

/// [`key_values`] with a missing value read as empty (labels, options).
pub(super) fn string_map(m: &Mapping, key: &str) -> IndexMap<String, String> {
    key_values(m, key)
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect()
}

pub(super) fn split_kv(s: &str) -> (String, Option<String>) {
    match s.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (s.to_string(), None),
    }
}

pub(super) fn duration(
    service: &str,
    key: &str,
    v: Option<String>,
) -> Result<Option<Duration>, LoadError> {
    v.map(|s| {
        s.parse()
            .map_err(|e| LoadError::service(service, format!("{key}: {e}")))
    })
    .transpose()
}

pub(super) fn size(
    service: &str,
    key: &str,
    v: Option<String>,
) -> Result<Option<ByteSize>, LoadError> {
    v.map(|s| {
        s.parse()
            .map_err(|e| LoadError::service(service, format!("{key}: {e}")))
    })
    .transpose()
}

/// `external: true`, or the legacy `external: {name: x}`: whether, and the
/// name it gives.
pub(super) fn external(m: &Mapping) -> (bool, Option<String>) {
    match get(m, "external") {
        Some(Value::Bool(b)) => (*b, None),
        Some(Value::Mapping(e)) => (true, string(e, "name")),
        _ => (false, None),
    }
}

/// The engine name of a top-level network or volume: `name:`, else the key
/// for an external one (or its `external.name`), else `<project>_<key>`.
pub(super) fn engine_name(project: &str, key: &str, m: &Mapping) -> (String, bool) {
    let (is_external, ext_name) = external(m);
    let name = match (is_external, string(m, "name")) {
        (_, Some(given)) => given,
        (true, None) => ext_name.unwrap_or_else(|| key.to_string()),
        (false, None) => format!("{project}_{key}"),
    };
    (name, is_external)
}

/// A file mode: a number (YAML `0o440` or `288`), or a string of octal
/// digits (`"0440"`, `"440"`).
pub(super) fn file_mode(
    service: &str,
    key: &str,
    v: Option<&Value>,
) -> Result<Option<u32>, LoadError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| LoadError::service(service, format!("{key}: {n} is not a file mode"))),
        Some(v) => {
            let s = scalar(v).unwrap_or_default();
            u32::from_str_radix(s.trim_start_matches("0o"), 8)
                .map(Some)
                .map_err(|_| {
                    LoadError::service(
                        service,
                        format!(
                            "{key}: {s:?} is not a file mode: write octal digits, e.g. \"0440\""
                        ),
                    )
                })
        }
    }
}
