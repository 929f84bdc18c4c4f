//! Compose paths, resolved the way compose resolves them: lexically (the disk
//! is never asked), `~` from `HOME`, relative paths against a directory; and
//! the relative paths of a service taken from another file (`extends`,
//! `include`) made absolute against that file's directory ([`rebase_paths`]).
//!
//! Shared by the loading stages (`load`, `include`, `extends`, `normalize`);
//! it depends on none of them.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use serde_norway::{Mapping, Value};

/// Lexically cleans a path (`a/./b/../c` -> `a/c`), without touching the disk.
pub(crate) fn clean(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// `~` expanded with HOME, then joined to `dir` when relative, then cleaned.
pub(crate) fn resolve_path(dir: &Path, p: &str, env: &HashMap<String, String>) -> PathBuf {
    let expanded = match (p.strip_prefix('~'), env.get("HOME")) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            PathBuf::from(format!("{home}{rest}"))
        }
        _ => PathBuf::from(p),
    };
    clean(&dir.join(expanded))
}

/// Is `p` a path relative to its file (not absolute, not `~`, not a URL)?
fn relative(p: &str) -> bool {
    !(p.starts_with('/') || p.starts_with('~') || p.contains("://") || p.starts_with("git@"))
}

/// Makes a relative path string absolute against `dir`.
pub(crate) fn rebase(v: &mut Value, dir: &Path) {
    if let Value::String(s) = v
        && relative(s)
    {
        *s = clean(&dir.join(&*s)).display().to_string();
    }
}

/// Makes the relative paths of a service (build context, env_file, bind
/// mount sources) absolute against `dir`.
pub(crate) fn rebase_paths(svc: &mut Mapping, dir: &Path) {
    if let Some(b) = svc.get_mut("build") {
        match b {
            Value::String(_) => rebase(b, dir),
            Value::Mapping(m) => {
                if let Some(c) = m.get_mut("context") {
                    rebase(c, dir);
                }
            }
            _ => {}
        }
    }
    let env_file = |v: &mut Value| match v {
        Value::Mapping(m) => {
            if let Some(p) = m.get_mut("path") {
                rebase(p, dir);
            }
        }
        other => rebase(other, dir),
    };
    match svc.get_mut("env_file") {
        Some(Value::Sequence(items)) => items.iter_mut().for_each(env_file),
        Some(v) => env_file(v),
        None => {}
    }
    if let Some(Value::Sequence(items)) = svc.get_mut("volumes") {
        for item in items {
            match item {
                Value::String(s) => {
                    if let Some((src, rest)) = s.split_once(':')
                        && src.starts_with('.')
                    {
                        *s = format!("{}:{rest}", clean(&dir.join(src)).display());
                    }
                }
                Value::Mapping(m) if m.get("type").and_then(Value::as_str) == Some("bind") => {
                    if let Some(src) = m.get_mut("source") {
                        rebase(src, dir);
                    }
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_and_resolves_paths() {
        let env: HashMap<String, String> = [("HOME".to_string(), "/home/u".to_string())].into();
        let d = Path::new("/p/q");
        assert_eq!(resolve_path(d, "./a/../b", &env), PathBuf::from("/p/q/b"));
        assert_eq!(resolve_path(d, "../x", &env), PathBuf::from("/p/x"));
        assert_eq!(resolve_path(d, "/abs/./y", &env), PathBuf::from("/abs/y"));
        assert_eq!(
            resolve_path(d, "~/data", &env),
            PathBuf::from("/home/u/data")
        );
        assert_eq!(resolve_path(d, "~", &env), PathBuf::from("/home/u"));
    }
}
