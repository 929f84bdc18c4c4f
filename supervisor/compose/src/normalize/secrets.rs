//! `secrets:` and `configs:` (they share their syntax): the top-level
//! file-backed objects, and a service's references to them, short or long
//! form, checked against the declared ones.

use indexmap::IndexMap;
use serde_norway::{Mapping, Value};

use super::values::raw_string;
use crate::context::Ctx;
use crate::error::LoadError;
use crate::model::{FileObject, FileRef};
use crate::paths::resolve_path;

/// `secrets:`/`configs:` of a service, short or long form.
pub(super) fn file_refs(
    service: &str,
    key: &str,
    v: Option<&Value>,
    declared: &IndexMap<String, FileObject>,
) -> Result<Vec<FileRef>, LoadError> {
    let Some(Value::Sequence(items)) = v else {
        return match v {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(_) => Err(LoadError::service(
                service,
                format!("{key}: expected a list"),
            )),
        };
    };
    let default_target = |s: &str| {
        if key == "secrets" {
            format!("/run/secrets/{s}")
        } else {
            format!("/{s}")
        }
    };
    let mut out = Vec::new();
    for item in items {
        let r = match item {
            Value::String(s) => FileRef {
                source: s.clone(),
                target: default_target(s),
                mode: None,
                ..Default::default()
            },
            Value::Mapping(m) => {
                let source = m.get("source").and_then(raw_string).ok_or_else(|| {
                    LoadError::service(service, format!("{key}: every entry needs source:"))
                })?;
                let target = match m.get("target").and_then(raw_string) {
                    Some(t) if t.starts_with('/') => t,
                    Some(t) if key == "secrets" => format!("/run/secrets/{t}"),
                    Some(t) => format!("/{t}"),
                    None => default_target(&source),
                };
                let mode = match m.get("mode") {
                    None | Some(Value::Null) => None,
                    Some(Value::Number(n)) => n.as_u64().map(|n| n as u32),
                    Some(Value::String(s)) => Some(
                        u32::from_str_radix(s.trim_start_matches("0o"), 8).map_err(|_| {
                            LoadError::service(
                                service,
                                format!("{key}: mode {s:?} must be octal, e.g. 0440"),
                            )
                        })?,
                    ),
                    Some(_) => None,
                };
                FileRef {
                    source,
                    target,
                    mode,
                    ..Default::default()
                }
            }
            _ => return Err(LoadError::service(service, format!("{key}: invalid entry"))),
        };
        if !declared.contains_key(&r.source) {
            return Err(LoadError::service(
                service,
                format!(
                    "uses {} {:?}, which is not declared in the top-level {key}: section",
                    key.trim_end_matches('s'),
                    r.source
                ),
            ));
        }
        out.push(r);
    }
    Ok(out)
}

pub(super) fn file_objects(
    ctx: &Ctx,
    key: &str,
    m: &Mapping,
) -> Result<IndexMap<String, FileObject>, LoadError> {
    let mut out = IndexMap::new();
    for (k, v) in m {
        let name = crate::keys::key_string(k);
        let file = v.get("file").and_then(raw_string).ok_or_else(|| {
            LoadError::project(format!(
                "{key}.{name}: only file-backed {key} are supported: set file: PATH"
            ))
        })?;
        out.insert(
            name,
            FileObject {
                file: Some(resolve_path(&ctx.project_dir, &file, &ctx.env)),
                ..Default::default()
            },
        );
    }
    out.sort_keys();
    Ok(out)
}
