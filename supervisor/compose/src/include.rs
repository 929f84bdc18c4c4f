//! Top-level `include:`, the way docker compose v2 reads it, and the per-file
//! loop that runs it (`load_model`).
//!
//! Each entry is a path, or `{path: FILE|[FILE, OVERRIDE...], project_directory,
//! env_file}`. The included files are loaded as a project of their own:
//!
//! - `path`, `project_directory` and `env_file` are relative to the including
//!   project's directory;
//! - the included project's directory is `project_directory`, else the
//!   directory of its first file; its relative paths (build contexts, bind
//!   mounts, `env_file`, secret and config files) are made absolute against it
//!   before its resources are imported;
//! - its interpolation environment is the including project's (process
//!   environment and `.env`), plus, for variables that one does not set, its
//!   `env_file`s, else the `.env` of its project directory;
//! - its own `include:`s are followed the same way; a file that includes
//!   itself, directly or not, is an error naming the chain.
//!
//! Its services, networks, volumes, secrets and configs are added to the
//! including file. A name that file (or an earlier include) already defines
//! is an error naming both files, unless both definitions are identical (as in
//! compose v2: "conflicts with imported resource"). To change an included
//! service, use an `-f` override file: files are merged after their includes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_norway::{Mapping, Value};

use crate::context::{Ctx, read_env_file};
use crate::error::LoadError;
use crate::keys::key_string;
use crate::paths::{rebase, rebase_paths, resolve_path};
use crate::{extends, merge};

/// The top-level sections an include imports.
pub const RESOURCES: [&str; 5] = ["services", "networks", "volumes", "secrets", "configs"];

/// Which file defines each resource: `(section, name)` -> file.
pub(crate) type Origins = HashMap<(String, String), PathBuf>;

/// One `include:` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncludeEntry {
    /// The main file, then files merged over it.
    pub paths: Vec<String>,
    pub project_directory: Option<String>,
    pub env_files: Vec<String>,
}

fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn string_or_list(v: Option<&Value>, what: &str) -> Result<Vec<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|i| scalar(i).ok_or(format!("{what}: expected a path or a list of paths")))
            .collect(),
        Some(other) => scalar(other)
            .map(|s| vec![s])
            .ok_or(format!("{what}: expected a path or a list of paths")),
    }
}

/// Parses the `include:` section.
pub fn entries(v: &Value) -> Result<Vec<IncludeEntry>, String> {
    let items = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Sequence(items) => items,
        _ => return Err("expected a list of files or {path: ...} entries".into()),
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let entry = match item {
            Value::Mapping(m) => IncludeEntry {
                paths: string_or_list(m.get("path"), &format!("[{i}].path"))?,
                project_directory: match m.get("project_directory") {
                    None | Some(Value::Null) => None,
                    Some(d) => {
                        Some(scalar(d).ok_or(format!("[{i}].project_directory: expected a path"))?)
                    }
                },
                env_files: string_or_list(m.get("env_file"), &format!("[{i}].env_file"))?,
            },
            other => IncludeEntry {
                paths: vec![
                    scalar(other)
                        .ok_or(format!("[{i}]: expected a file or {{path: FILE, ...}}"))?,
                ],
                project_directory: None,
                env_files: Vec::new(),
            },
        };
        if entry.paths.is_empty() || entry.paths.iter().any(String::is_empty) {
            return Err(format!("[{i}]: needs path: FILE"));
        }
        out.push(entry);
    }
    Ok(out)
}

/// The resources a file defines itself.
fn own_resources(value: &Value, file: &Path) -> Origins {
    let mut out = Origins::new();
    for kind in RESOURCES {
        if let Some(Value::Mapping(m)) = value.get(kind) {
            for name in m.keys() {
                out.insert((kind.to_string(), key_string(name)), file.to_path_buf());
            }
        }
    }
    out
}

/// Loads `files` as one model: each file is read, its `extends` and
/// `include`s resolved, then the files are merged in order. `stack` holds the
/// files whose includes are being followed (for cycles).
pub(crate) fn load_model(
    ctx: &mut Ctx,
    files: &[PathBuf],
    stack: &mut Vec<PathBuf>,
) -> Result<(Value, Origins), LoadError> {
    let mut merged: Option<Value> = None;
    let mut origins = Origins::new();
    for file in files {
        let mut value = ctx.file_value(file)?;
        extends::resolve_file(ctx, file, &mut value)?;
        let mut own = own_resources(&value, file);
        if let Some(inc) = value.as_mapping_mut().and_then(|m| m.remove("include")) {
            stack.push(file.clone());
            let r = apply(ctx, file, &inc, &mut value, &mut own, stack);
            stack.pop();
            r?;
        }
        for (k, f) in own {
            origins.entry(k).or_insert(f);
        }
        merged = Some(match merged {
            None => value,
            Some(base) => merge::merge_files(base, value),
        });
    }
    Ok((merged.unwrap_or(Value::Mapping(Mapping::new())), origins))
}

/// Imports every `include:` entry of `file` into `value`.
fn apply(
    ctx: &mut Ctx,
    file: &Path,
    inc: &Value,
    value: &mut Value,
    origins: &mut Origins,
    stack: &mut Vec<PathBuf>,
) -> Result<(), LoadError> {
    let invalid = |ctx: &Ctx, message: String| LoadError::Invalid {
        file: ctx.show(file),
        line: None,
        path: "include".into(),
        message,
    };
    let list = entries(inc).map_err(|m| invalid(ctx, m))?;
    for entry in list {
        if let Some(remote) = entry
            .paths
            .iter()
            .find(|p| p.contains("://") || p.starts_with("git@") || p.starts_with("oci:"))
        {
            return Err(invalid(
                ctx,
                format!("{remote}: only local files can be included (no git or oci sources)"),
            ));
        }
        let base = ctx.project_dir.clone();
        let paths: Vec<PathBuf> = entry
            .paths
            .iter()
            .map(|p| resolve_path(&base, p, &ctx.env))
            .collect();
        let main = paths[0].clone();
        if let Some(i) = stack.iter().position(|f| *f == main) {
            let chain: Vec<String> = stack[i..]
                .iter()
                .chain(std::iter::once(&main))
                .map(|f| ctx.show(f))
                .collect();
            return Err(invalid(
                ctx,
                format!(
                    "include cycle: {}: remove one of these includes",
                    chain.join(" -> ")
                ),
            ));
        }
        let project_dir = match &entry.project_directory {
            Some(d) => resolve_path(&base, d, &ctx.env),
            None => main.parent().map(Path::to_path_buf).unwrap_or(base.clone()),
        };
        let env_paths: Vec<PathBuf> = if entry.env_files.is_empty() {
            Some(project_dir.join(".env"))
                .filter(|p| ctx.source.is_file(p))
                .into_iter()
                .collect()
        } else {
            entry
                .env_files
                .iter()
                .map(|f| resolve_path(&base, f, &ctx.env))
                .collect()
        };
        let mut from_files = HashMap::new();
        for p in &env_paths {
            read_env_file(&ctx.source, p, &ctx.env, &ctx.cwd, &mut from_files)?;
        }
        let mut env = ctx.env.clone();
        for (k, v) in from_files {
            env.entry(k).or_insert(v);
        }
        let mut sub = Ctx::new(
            ctx.cwd.clone(),
            project_dir.clone(),
            env,
            ctx.allow_unknown_keys,
            ctx.source.clone(),
        );
        let loaded = load_model(&mut sub, &paths, stack);
        for w in std::mem::take(&mut sub.warnings) {
            ctx.warn(w);
        }
        let (mut imported, sub_origins) = loaded?;
        rebase_model(&mut imported, &project_dir);
        import(ctx, file, &main, imported, &sub_origins, value, origins)?;
    }
    Ok(())
}

/// Makes the relative paths of a loaded model absolute against `dir`.
fn rebase_model(value: &mut Value, dir: &Path) {
    if let Some(Value::Mapping(services)) = value.get_mut("services") {
        for svc in services.values_mut() {
            if let Value::Mapping(m) = svc {
                rebase_paths(m, dir);
            }
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(Value::Mapping(objects)) = value.get_mut(kind) {
            for obj in objects.values_mut() {
                if let Some(f) = obj.get_mut("file") {
                    rebase(f, dir);
                }
            }
        }
    }
}

/// Adds the resources of an included model to `value`.
fn import(
    ctx: &Ctx,
    file: &Path,
    main: &Path,
    mut imported: Value,
    imported_origins: &Origins,
    value: &mut Value,
    origins: &mut Origins,
) -> Result<(), LoadError> {
    let Value::Mapping(target) = value else {
        return Ok(());
    };
    for kind in RESOURCES {
        let from = match imported.get_mut(kind).map(std::mem::take) {
            Some(Value::Mapping(m)) => m,
            _ => continue,
        };
        let to = match target.get_mut(kind) {
            Some(Value::Mapping(m)) => m,
            None | Some(Value::Null) => {
                target.insert(kind.into(), Value::Mapping(Mapping::new()));
                target
                    .get_mut(kind)
                    .and_then(Value::as_mapping_mut)
                    .expect("just inserted")
            }
            Some(_) => {
                return Err(LoadError::project(format!(
                    "{}: top-level {kind}: must be a mapping of names to definitions",
                    ctx.show(file)
                )));
            }
        };
        for (name, def) in from {
            let key = (kind.to_string(), key_string(&name));
            let source = imported_origins
                .get(&key)
                .cloned()
                .unwrap_or_else(|| main.to_path_buf());
            match to.get(&name) {
                Some(existing) if *existing == def => {}
                Some(_) => {
                    let other = origins.get(&key).map(PathBuf::as_path).unwrap_or(file);
                    return Err(LoadError::project(format!(
                        "{}: imported compose file {} defines conflicting {} {:?}, already defined in {}: define it in one file only (identical definitions are allowed; to change an included service, use an -f override file)",
                        ctx.show(file),
                        ctx.show(&source),
                        kind.trim_end_matches('s'),
                        key.1,
                        ctx.show(other),
                    )));
                }
                None => {
                    to.insert(name, def);
                    origins.insert(key, source);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(s: &str) -> Value {
        serde_norway::from_str(s).unwrap()
    }

    #[test]
    fn short_and_long_entries() {
        let got = entries(&y(
            "- db/compose.yaml\n- path: [a.yaml, a.override.yaml]\n  project_directory: ..\n  env_file: a.env\n- {path: b.yaml, env_file: [x.env, y.env]}\n",
        ))
        .unwrap();
        assert_eq!(
            got,
            vec![
                IncludeEntry {
                    paths: vec!["db/compose.yaml".into()],
                    project_directory: None,
                    env_files: vec![],
                },
                IncludeEntry {
                    paths: vec!["a.yaml".into(), "a.override.yaml".into()],
                    project_directory: Some("..".into()),
                    env_files: vec!["a.env".into()],
                },
                IncludeEntry {
                    paths: vec!["b.yaml".into()],
                    project_directory: None,
                    env_files: vec!["x.env".into(), "y.env".into()],
                },
            ]
        );
        assert!(entries(&Value::Null).unwrap().is_empty());
    }

    #[test]
    fn bad_entries() {
        assert!(entries(&y("a.yaml")).unwrap_err().contains("list"));
        assert!(
            entries(&y("[{project_directory: x}]"))
                .unwrap_err()
                .contains("[0]: needs path")
        );
        assert!(
            entries(&y("[ok.yaml, {path: {a: 1}}]"))
                .unwrap_err()
                .contains("[1].path")
        );
        assert!(entries(&y("[[a]]")).unwrap_err().contains("[0]"));
    }

    #[test]
    fn rebases_included_paths() {
        let mut v = y(
            "services:\n  s:\n    build: ./app\n    env_file: [a.env, {path: b.env, required: false}]\n    volumes: ['./data:/d', 'named:/n', '/abs:/a']\nsecrets:\n  k: {file: ./k.txt}\nconfigs:\n  c: {file: /etc/c}\n",
        );
        rebase_model(&mut v, Path::new("/inc"));
        assert_eq!(
            v,
            y(
                "services:\n  s:\n    build: /inc/app\n    env_file: [/inc/a.env, {path: /inc/b.env, required: false}]\n    volumes: ['/inc/data:/d', 'named:/n', '/abs:/a']\nsecrets:\n  k: {file: /inc/k.txt}\nconfigs:\n  c: {file: /etc/c}\n"
            )
        );
    }
}
