//! Compose paths, resolved the way compose resolves them: lexically (the disk
//! is never asked), `~` from `HOME`, relative paths against a directory.
//!
//! Shared by the loading stages (`load`, `include`, `extends`, `normalize`);
//! it depends on none of them.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

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
