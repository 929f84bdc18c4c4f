//! A service's environment: `env_file:` entries (read relative to the project
//! directory, later files over earlier ones), then `environment:` over them;
//! a bare `KEY` takes its value from the project environment.

use indexmap::IndexMap;
use serde_norway::Value;

use serde_norway::Mapping;

use super::values::{get, key_values as pairs, scalar as raw_string};
use crate::context::Ctx;
use crate::dotenv;
use crate::error::LoadError;
use crate::paths::resolve_path;

/// Format of an `env_file` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EnvFileFormat {
    /// Compose's `.env` syntax ([`dotenv::parse`]).
    Default,
    /// `format: raw`: `KEY=VALUE` lines taken as written ([`dotenv::parse_raw`]).
    Raw,
}

/// One `env_file` entry: a path string, or `{path, required, format}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileEntry {
    pub path: String,
    /// `false`: a missing file is skipped (with a warning).
    pub required: bool,
    pub format: EnvFileFormat,
}

fn bool_value(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

/// Parses `env_file:`: a string, or a list mixing strings and long entries.
pub fn env_file_entries(v: &Value) -> Result<Vec<EnvFileEntry>, String> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(items) => items.iter().collect(),
        other => vec![other],
    };
    let mut out = Vec::new();
    for item in items {
        let entry = match item {
            Value::Mapping(m) => {
                let path = m
                    .get("path")
                    .and_then(raw_string)
                    .ok_or("env_file: every long entry needs path: FILE".to_string())?;
                let required = match m.get("required") {
                    None | Some(Value::Null) => true,
                    Some(r) => bool_value(r)
                        .ok_or(format!("env_file {path}: required must be true or false"))?,
                };
                let format = match m.get("format").map(raw_string) {
                    None | Some(None) => EnvFileFormat::Default,
                    Some(Some(f)) if f == "raw" => EnvFileFormat::Raw,
                    Some(Some(f)) => {
                        return Err(format!(
                            "env_file {path}: format {f:?} is not supported: leave it out for the .env syntax, or use raw"
                        ));
                    }
                };
                EnvFileEntry {
                    path,
                    required,
                    format,
                }
            }
            other => EnvFileEntry {
                path: raw_string(other).ok_or("env_file: expected a path or a list of paths")?,
                required: true,
                format: EnvFileFormat::Default,
            },
        };
        out.push(entry);
    }
    Ok(out)
}

/// A service's environment: its `env_file:` entries first, then
/// `environment:` over them.
pub(super) fn environment(
    ctx: &mut Ctx,
    service: &str,
    svc: &Mapping,
) -> Result<IndexMap<String, String>, LoadError> {
    let mut out = IndexMap::new();
    if let Some(f) = get(svc, "env_file") {
        out = env_files(ctx, service, f)?;
    }
    key_values(ctx, pairs(svc, "environment").into_iter(), &mut out);
    Ok(out)
}

/// `label_file:`: labels from files in `.env` syntax (values are not looked
/// up in the environment); `labels:` win over them.
pub(super) fn label_files(
    ctx: &mut Ctx,
    service: &str,
    svc: &Mapping,
) -> Result<IndexMap<String, String>, LoadError> {
    let mut out = IndexMap::new();
    for file in super::values::strings(svc, "label_file") {
        let path = resolve_path(&ctx.project_dir, &file, &ctx.env);
        let shown = ctx.show(&path);
        let text = ctx.source.read(&path).map_err(|e| {
            LoadError::service(service, format!("label_file {shown}: cannot read it: {e}"))
        })?;
        let found = dotenv::parse(&text).map_err(|e| LoadError::EnvFile {
            file: shown.clone(),
            line: Some(e.line),
            message: e.message,
        })?;
        for (k, v) in found {
            out.insert(k, v.unwrap_or_default());
        }
    }
    Ok(out)
}

fn env_files(
    ctx: &mut Ctx,
    service: &str,
    v: &Value,
) -> Result<IndexMap<String, String>, LoadError> {
    let entries = env_file_entries(v).map_err(|e| LoadError::service(service, e))?;
    let mut out = IndexMap::new();
    for f in entries {
        let path = resolve_path(&ctx.project_dir, &f.path, &ctx.env);
        let shown = ctx.show(&path);
        let text = match ctx.source.read(&path) {
            Ok(t) => t,
            Err(e) if !f.required && e.kind() == std::io::ErrorKind::NotFound => {
                ctx.warnings.push(format!(
                    "service {service:?}: env_file {shown} does not exist, skipped (required: false)"
                ));
                continue;
            }
            Err(e) => {
                return Err(LoadError::service(
                    service,
                    format!("env_file {shown}: cannot read it: {e}"),
                ));
            }
        };
        let pairs = match f.format {
            EnvFileFormat::Default => dotenv::parse(&text),
            EnvFileFormat::Raw => dotenv::parse_raw(&text),
        }
        .map_err(|e| LoadError::EnvFile {
            file: shown.clone(),
            line: Some(e.line),
            message: e.message,
        })?;
        for (k, v) in pairs {
            match v.or_else(|| ctx.env.get(&k).cloned()) {
                Some(v) => out.insert(k, v),
                None => out.shift_remove(&k),
            };
        }
    }
    Ok(out)
}

/// Adds `KEY=VALUE` entries to `out`; a bare `KEY` takes its value from the
/// project environment, and is removed when that does not set it.
pub(super) fn key_values(
    ctx: &Ctx,
    list: impl Iterator<Item = (String, Option<String>)>,
    out: &mut IndexMap<String, String>,
) {
    for (k, v) in list {
        match v.or_else(|| ctx.env.get(&k).cloned()) {
            Some(v) => out.insert(k, v),
            None => out.shift_remove(&k),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_file_short_and_long_entries() {
        let y = |s: &str| -> Value { serde_norway::from_str(s).unwrap() };
        let e = |path: &str, required: bool, format: EnvFileFormat| EnvFileEntry {
            path: path.into(),
            required,
            format,
        };
        assert_eq!(
            env_file_entries(&y("a.env")).unwrap(),
            vec![e("a.env", true, EnvFileFormat::Default)]
        );
        assert_eq!(
            env_file_entries(&y(
                "[a.env, {path: b.env, required: false}, {path: c.env, required: 'true', format: raw}]"
            ))
            .unwrap(),
            vec![
                e("a.env", true, EnvFileFormat::Default),
                e("b.env", false, EnvFileFormat::Default),
                e("c.env", true, EnvFileFormat::Raw),
            ]
        );
        assert!(
            env_file_entries(&y("[{required: false}]"))
                .unwrap_err()
                .contains("path")
        );
        assert!(
            env_file_entries(&y("[{path: a, required: maybe}]"))
                .unwrap_err()
                .contains("true or false")
        );
        assert!(
            env_file_entries(&y("[{path: a, format: json}]"))
                .unwrap_err()
                .contains("\"json\" is not supported")
        );
    }
}
