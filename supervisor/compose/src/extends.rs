//! `extends:`: a service starts from another one (same file, or `file:`
//! relative to the extending file's directory), recursively; the extending
//! service wins, with the usual merge rules. Relative paths of a service taken
//! from another file are made absolute against that file's directory first.

use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use crate::context::Ctx;
use crate::error::LoadError;
use crate::merge::merge_service;
use crate::paths::{clean, rebase_paths};

/// Resolves every `extends` in one file's services.
pub(crate) fn resolve_file(ctx: &mut Ctx, file: &Path, value: &mut Value) -> Result<(), LoadError> {
    let names: Vec<String> = match value.get("services").and_then(Value::as_mapping) {
        Some(m) => m
            .keys()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect(),
        None => return Ok(()),
    };
    for name in names {
        let has_extends = value["services"][name.as_str()].get("extends").is_some();
        if has_extends {
            let resolved = resolve_service(ctx, file, &name, &mut Vec::new())?;
            value["services"][name.as_str()] = resolved;
        }
    }
    Ok(())
}

fn resolve_service(
    ctx: &mut Ctx,
    file: &Path,
    name: &str,
    stack: &mut Vec<(PathBuf, String)>,
) -> Result<Value, LoadError> {
    let key = (file.to_path_buf(), name.to_string());
    if stack.contains(&key) {
        let chain: Vec<String> = stack
            .iter()
            .chain(std::iter::once(&key))
            .map(|(f, s)| format!("{s} ({})", ctx.show(f)))
            .collect();
        return Err(LoadError::service(
            &stack[0].1,
            format!("extends cycle: {}: break the loop", chain.join(" -> ")),
        ));
    }
    let doc = ctx.file_value(file)?;
    let Some(svc) = doc.get("services").and_then(|s| s.get(name)).cloned() else {
        let who = stack
            .last()
            .map(|(_, s)| s.clone())
            .unwrap_or_else(|| name.to_string());
        return Err(LoadError::service(
            &who,
            format!("extends: no service {name:?} in {}", ctx.show(file)),
        ));
    };
    let mut svc = match svc {
        Value::Null => Value::Mapping(Mapping::new()),
        other => other,
    };
    let Some(ext) = svc.as_mapping_mut().and_then(|m| m.remove("extends")) else {
        return Ok(svc);
    };
    let (base_name, base_file) = match &ext {
        Value::String(s) => (s.clone(), None),
        Value::Mapping(m) => (
            m.get("service")
                .and_then(Value::as_str)
                .ok_or_else(|| LoadError::service(name, "extends needs service: NAME"))?
                .to_string(),
            m.get("file").and_then(Value::as_str).map(str::to_string),
        ),
        _ => {
            return Err(LoadError::service(
                name,
                "extends must be a service name or {service: NAME, file: FILE}",
            ));
        }
    };
    let dir = file.parent().unwrap_or(Path::new("/"));
    let base_path = match base_file {
        Some(f) => clean(&dir.join(f)),
        None => file.to_path_buf(),
    };
    stack.push(key);
    let mut base = resolve_service(ctx, &base_path, &base_name, stack)?;
    stack.pop();
    if base_path != file
        && let (Some(m), Some(d)) = (base.as_mapping_mut(), base_path.parent())
    {
        rebase_paths(m, d);
    }
    Ok(merge_service(base, svc))
}
