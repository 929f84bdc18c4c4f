//! The entry point: finds the files, reads `.env`, and runs each file through
//! YAML -> merge keys -> interpolation -> key check -> `extends` -> `include`
//! ([`include::load_model`]), then merges the files and hands the result to
//! the typed parse and normalization.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use serde_norway::{Mapping, Value};

use crate::error::LoadError;
use crate::interpolate::{Env, interpolate_str, interpolate_value};
use crate::keys::{self, display_path};
use crate::model::Project;
use crate::{dotenv, include, locate, normalize};

/// File names looked for, in order, when no `-f` is given.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// Override files looked for, in order, next to the default file (compose
/// v2's list: the first one found is merged after the default file, whichever
/// default file was found).
pub const DEFAULT_OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// What `turtle` was asked to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// `-f` files, relative to `cwd` or absolute. Empty: `COMPOSE_FILE` from
    /// `env`, else the first of [`DEFAULT_FILES`] found in `cwd`, followed by
    /// the first of [`DEFAULT_OVERRIDE_FILES`] found there, if any.
    pub files: Vec<PathBuf>,
    /// `-p`.
    pub project_name: Option<String>,
    /// `--profile`; empty means `COMPOSE_PROFILES` from the environment.
    pub profiles: Vec<String>,
    /// Process environment; it overrides the project's `.env` file.
    pub env: HashMap<String, String>,
    pub cwd: PathBuf,
    /// Unknown keys become warnings instead of errors.
    pub allow_unknown_keys: bool,
}

/// A loaded project plus what the user should be told about it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub project: Project,
    pub warnings: Vec<String>,
}

/// State shared by the stages: environment, warnings, parsed files.
pub(crate) struct Ctx {
    pub cwd: PathBuf,
    pub project_dir: PathBuf,
    pub env: HashMap<String, String>,
    pub allow_unknown_keys: bool,
    pub warnings: Vec<String>,
    /// Each file read so far (after interpolation and key check, before
    /// `extends`), by absolute path.
    files: HashMap<PathBuf, Value>,
}

impl Ctx {
    pub fn new(
        cwd: PathBuf,
        project_dir: PathBuf,
        env: HashMap<String, String>,
        allow_unknown_keys: bool,
    ) -> Self {
        Self {
            cwd,
            project_dir,
            env,
            allow_unknown_keys,
            warnings: Vec::new(),
            files: HashMap::new(),
        }
    }

    /// Adds a warning once.
    pub fn warn(&mut self, w: String) {
        if !self.warnings.contains(&w) {
            self.warnings.push(w);
        }
    }

    /// A path the way messages show it: relative to the working directory
    /// when under it.
    pub fn show(&self, path: &Path) -> String {
        path.strip_prefix(&self.cwd)
            .unwrap_or(path)
            .display()
            .to_string()
    }

    /// Reads, parses, merges `<<` keys, interpolates and key-checks one file
    /// (once; later calls return the same value).
    pub fn file_value(&mut self, path: &Path) -> Result<Value, LoadError> {
        if let Some(v) = self.files.get(path) {
            return Ok(v.clone());
        }
        let shown = self.show(path);
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            file: shown.clone(),
            source,
        })?;
        let mut value: Value = serde_norway::from_str(&text).map_err(|e| {
            let loc = e.location();
            let mut message = e.to_string();
            if let Some(l) = &loc {
                // serde_norway repeats the position in its message.
                message = message.replacen(
                    &format!(" at line {} column {}", l.line(), l.column()),
                    "",
                    1,
                );
            }
            LoadError::Yaml {
                file: shown.clone(),
                line: loc.as_ref().map(|l| l.line()),
                column: loc.as_ref().map(|l| l.column()),
                message,
            }
        })?;
        if value.is_null() {
            value = Value::Mapping(Mapping::new());
        }
        if !value.is_mapping() {
            return Err(LoadError::Yaml {
                file: shown,
                line: None,
                column: None,
                message: "the top level must be a mapping (services:, networks:, ...)".into(),
            });
        }
        value.apply_merge().map_err(|e| LoadError::Yaml {
            file: shown.clone(),
            line: None,
            column: None,
            message: format!("bad merge key (<<): {e}"),
        })?;
        let mut env = Env::new(&self.env);
        if let Err((p, e)) = interpolate_value(&mut value, &mut Vec::new(), &mut env) {
            return Err(LoadError::Invalid {
                file: shown,
                line: locate::find_line(&text, &p),
                path: display_path(&p),
                message: e.message(),
            });
        }
        for var in &env.unset {
            let w = format!("{shown}: the {var} variable is not set, defaulting to a blank string");
            if !self.warnings.contains(&w) {
                self.warnings.push(w);
            }
        }
        for issue in keys::check(&mut value, &keys::TOP) {
            let line = locate::find_line(&text, &issue.path);
            let place = match line {
                Some(l) => format!("{shown}:{l}"),
                None => shown.clone(),
            };
            if self.allow_unknown_keys {
                self.warnings.push(format!(
                    "{place}: {}: {}",
                    display_path(&issue.path),
                    issue.warning_message()
                ));
            } else {
                return Err(LoadError::Invalid {
                    file: shown,
                    line,
                    path: display_path(&issue.path),
                    message: issue.error_message(),
                });
            }
        }
        self.files.insert(path.to_path_buf(), value.clone());
        Ok(value)
    }
}

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

/// The first of `names` that is a file in `dir`, warning when there are
/// several (compose uses the first one too).
fn first_of(dir: &Path, names: &[&str], what: &str, warnings: &mut Vec<String>) -> Option<PathBuf> {
    let found: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| p.is_file())
        .collect();
    if found.len() > 1 {
        let names: Vec<String> = found
            .iter()
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().to_string())
            .collect();
        warnings.push(format!(
            "found several {what} files: {}; using {}",
            names.join(", "),
            names[0]
        ));
    }
    found.into_iter().next()
}

/// The files to load: `-f`, else `COMPOSE_FILE`, else the default file and
/// its override file.
fn find_files(opts: &LoadOptions, warnings: &mut Vec<String>) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = opts.files.clone();
    if files.is_empty()
        && let Some(list) = opts.env.get("COMPOSE_FILE").filter(|s| !s.is_empty())
    {
        files = list.split(':').map(PathBuf::from).collect();
    }
    if files.is_empty() {
        let found = first_of(&opts.cwd, &DEFAULT_FILES, "compose", warnings).ok_or_else(|| {
            LoadError::NoComposeFile {
                dir: opts.cwd.clone(),
            }
        })?;
        files.push(found);
        files.extend(first_of(
            &opts.cwd,
            &DEFAULT_OVERRIDE_FILES,
            "override",
            warnings,
        ));
    }
    Ok(files.iter().map(|f| clean(&opts.cwd.join(f))).collect())
}

/// Reads one env file (`.env` syntax) into `into`: values may refer to
/// `outer` (which wins) and to earlier entries.
pub(crate) fn read_env_file(
    path: &Path,
    outer: &HashMap<String, String>,
    cwd: &Path,
    into: &mut HashMap<String, String>,
) -> Result<(), LoadError> {
    let shown = path.strip_prefix(cwd).unwrap_or(path).display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        file: shown.clone(),
        source,
    })?;
    let pairs = dotenv::parse(&text).map_err(|e| LoadError::EnvFile {
        file: shown.clone(),
        line: Some(e.line),
        message: e.message,
    })?;
    for (k, v) in pairs {
        let Some(v) = v else { continue };
        let mut lookup = into.clone();
        lookup.extend(outer.iter().map(|(a, b)| (a.clone(), b.clone())));
        let v = interpolate_str(&v, &mut Env::new(&lookup)).map_err(|e| LoadError::EnvFile {
            file: shown.clone(),
            line: None,
            message: format!("{k}: {}", e.message()),
        })?;
        into.insert(k, v);
    }
    Ok(())
}

/// Reads the project's `.env` (if any) under the process environment.
fn read_dotenv(
    dir: &Path,
    process: &HashMap<String, String>,
    cwd: &Path,
) -> Result<HashMap<String, String>, LoadError> {
    let path = dir.join(".env");
    let mut env = HashMap::new();
    if path.is_file() {
        read_env_file(&path, process, cwd, &mut env)?;
    }
    Ok(env)
}

/// Loads a compose project: see the crate docs for the pipeline.
pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let mut warnings = Vec::new();
    let files = find_files(opts, &mut warnings)?;
    let project_dir = files[0]
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| opts.cwd.clone());
    let mut env = read_dotenv(&project_dir, &opts.env, &opts.cwd)?;
    env.extend(opts.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut ctx = Ctx::new(opts.cwd.clone(), project_dir, env, opts.allow_unknown_keys);
    ctx.warnings = warnings;
    let (merged, _) = include::load_model(&mut ctx, &files, &mut Vec::new())?;
    let mut profiles = opts.profiles.clone();
    if profiles.is_empty()
        && let Some(p) = ctx.env.get("COMPOSE_PROFILES")
    {
        profiles = p
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
    }
    let project = normalize::project(
        &mut ctx,
        merged,
        &files,
        opts.project_name.as_deref(),
        &profiles,
    )?;
    Ok(Loaded {
        project,
        warnings: ctx.warnings,
    })
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

    fn opts_in(dir: &Path) -> LoadOptions {
        LoadOptions {
            cwd: dir.to_path_buf(),
            ..Default::default()
        }
    }

    fn names(files: &[PathBuf]) -> Vec<String> {
        files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().to_string())
            .collect()
    }

    #[test]
    fn default_file_and_its_override() {
        let d = tempfile::tempdir().unwrap();
        let touch = |n: &str| std::fs::write(d.path().join(n), "").unwrap();
        let mut w = Vec::new();
        touch("docker-compose.yml");
        let got = find_files(&opts_in(d.path()), &mut w).unwrap();
        assert_eq!(names(&got), ["docker-compose.yml"]);
        // Any override name goes with any default file, as in compose v2.
        touch("compose.override.yaml");
        let got = find_files(&opts_in(d.path()), &mut w).unwrap();
        assert_eq!(names(&got), ["docker-compose.yml", "compose.override.yaml"]);
        assert!(w.is_empty(), "{w:?}");
        touch("compose.yaml");
        touch("compose.override.yml");
        let got = find_files(&opts_in(d.path()), &mut w).unwrap();
        assert_eq!(names(&got), ["compose.yaml", "compose.override.yml"]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[1].contains("using compose.override.yml"), "{w:?}");
        // -f and COMPOSE_FILE turn the lookup (and the override) off.
        let mut o = opts_in(d.path());
        o.env.insert("COMPOSE_FILE".into(), "compose.yaml".into());
        assert_eq!(
            names(&find_files(&o, &mut Vec::new()).unwrap()),
            ["compose.yaml"]
        );
        o.files = vec!["docker-compose.yml".into()];
        assert_eq!(
            names(&find_files(&o, &mut Vec::new()).unwrap()),
            ["docker-compose.yml"]
        );
    }
}
