//! `secrets:` and `configs:` (they share their syntax): the top-level
//! objects (`file:`, `environment:`, or for configs `content:`), and a
//! service's references to them, short or long form, checked against the
//! declared ones.

use indexmap::IndexMap;
use serde_norway::{Mapping, Value};

use super::values::{file_mode, scalar, string};
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
        return Ok(Vec::new());
    };
    let in_dir = |t: &str| {
        if t.starts_with('/') {
            t.to_string()
        } else if key == "secrets" {
            format!("/run/secrets/{t}")
        } else {
            format!("/{t}")
        }
    };
    let mut out = Vec::new();
    for item in items {
        let r = match item {
            Value::Mapping(m) => {
                let source = string(m, "source").ok_or_else(|| {
                    LoadError::service(service, format!("{key}: every entry needs source:"))
                })?;
                FileRef {
                    target: in_dir(&string(m, "target").unwrap_or_else(|| source.clone())),
                    mode: file_mode(service, &format!("{key}.{source}.mode"), m.get("mode"))?,
                    uid: string(m, "uid"),
                    gid: string(m, "gid"),
                    source,
                }
            }
            other => {
                let source = scalar(other).unwrap_or_default();
                FileRef {
                    target: in_dir(&source),
                    source,
                    ..Default::default()
                }
            }
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

/// The top-level `secrets:`/`configs:`: each needs exactly one of `file:`,
/// `environment:` (read now, from the load's environment) and, for configs,
/// `content:`.
///
/// External objects (swarm's) are kept, marked, with a warning: a container
/// that uses one is refused at `up`, as docker compose v2 refuses it.
pub(super) fn file_objects(
    ctx: &mut Ctx,
    key: &str,
    m: &Mapping,
) -> Result<IndexMap<String, FileObject>, LoadError> {
    let mut out = IndexMap::new();
    for (k, v) in m {
        let name = crate::keys::key_string(k);
        let empty = Mapping::new();
        let v = v.as_mapping().unwrap_or(&empty);
        if super::values::external(v).0 {
            ctx.warn(format!(
                "{key}.{name}: `external` objects belong to swarm: a service that uses it is refused at up"
            ));
            out.insert(
                name,
                FileObject {
                    external: true,
                    ..Default::default()
                },
            );
            continue;
        }
        let err = |m: String| LoadError::project(format!("{key}.{name}: {m}"));
        let file = string(v, "file");
        let environment = string(v, "environment");
        let content = string(v, "content");
        if key == "secrets" && content.is_some() {
            return Err(err(
                "content: is for configs; a secret comes from file: or environment:".into(),
            ));
        }
        let object = match (file, environment, content) {
            (Some(file), None, None) => FileObject {
                file: Some(resolve_path(&ctx.project_dir, &file, &ctx.env)),
                ..Default::default()
            },
            (None, Some(var), None) => {
                let value = ctx.env.get(&var).cloned().ok_or_else(|| {
                    err(format!(
                        "environment: the variable {var} is not set (set it, or put it in .env)"
                    ))
                })?;
                FileObject {
                    content: Some(value),
                    environment: Some(var),
                    ..Default::default()
                }
            }
            (None, None, Some(text)) => FileObject {
                content: Some(text),
                ..Default::default()
            },
            (None, None, None) => {
                return Err(err(format!(
                    "set one of file: PATH or environment: VARIABLE{}",
                    if key == "configs" {
                        " or content: TEXT"
                    } else {
                        ""
                    }
                )));
            }
            _ => {
                return Err(err(
                    "set only one of file:, environment: and content:".into()
                ));
            }
        };
        out.insert(name, object);
    }
    out.sort_keys();
    Ok(out)
}
