//! Small readers the normalization shares: scalars and raw YAML values as
//! strings, whole numbers, byte sizes and durations (errors name the service
//! and key), labels and driver options in mapping form, `KEY=VALUE` splitting.

use docker_compose_types as dct;
use indexmap::IndexMap;
use serde_norway::Value;

use crate::error::LoadError;
use crate::model::{ByteSize, Duration};

pub(super) fn single(v: &dct::SingleValue) -> String {
    v.to_string()
}

pub(super) fn raw_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn labels(l: &dct::Labels) -> IndexMap<String, String> {
    match l {
        dct::Labels::List(items) => items
            .iter()
            .map(|i| match i.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (i.clone(), String::new()),
            })
            .collect(),
        dct::Labels::Map(m) => m.clone(),
    }
}

pub(super) fn opts_map(m: &IndexMap<String, Option<dct::SingleValue>>) -> IndexMap<String, String> {
    m.iter()
        .map(|(k, v)| (k.clone(), v.as_ref().map(single).unwrap_or_default()))
        .collect()
}

pub(super) fn duration(
    service: &str,
    key: &str,
    v: &Option<String>,
) -> Result<Option<Duration>, LoadError> {
    v.as_deref()
        .map(|s| {
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

pub(super) fn raw_size(
    service: &str,
    key: &str,
    v: Option<&Value>,
) -> Result<Option<ByteSize>, LoadError> {
    size(service, key, v.and_then(raw_string))
}

pub(super) fn raw_int(
    service: &str,
    key: &str,
    v: Option<&Value>,
) -> Result<Option<i64>, LoadError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
        Some(Value::String(s)) => s.trim().parse().map(Some).map_err(|_| {
            LoadError::service(service, format!("{key}: {s:?} is not a whole number"))
        }),
        Some(_) => Err(LoadError::service(
            service,
            format!("{key}: expected a whole number"),
        )),
    }
}

pub(super) fn raw_list(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Sequence(items)) => items.iter().filter_map(raw_string).collect(),
        Some(v) => raw_string(v).into_iter().collect(),
        None => Vec::new(),
    }
}

pub(super) fn split_kv(s: &str) -> (String, Option<String>) {
    match s.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (s.to_string(), None),
    }
}
