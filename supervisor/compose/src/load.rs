//! The entry point: finds the files, reads `.env`, sets up the loading
//! context (`context::Ctx`) and runs each file through YAML -> merge keys ->
//! interpolation -> key check -> `extends` -> `include`
//! (`include::load_model`), then merges the files and hands the result to
//! the typed parse and normalization. [`load`] reads the disk;
//! [`load_in_memory`] reads only the files it is given.
//!
//! This module is the top of the loading stages: it uses `include` and
//! `normalize`, and none of them uses it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::context::{Ctx, read_env_file};
use crate::error::LoadError;
use crate::model::Project;
use crate::name::ProjectName;
use crate::paths::clean;
use crate::source::Source;
use crate::{include, normalize};

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
    pub project_name: Option<ProjectName>,
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

/// The first of `names` that is a file in `dir`, warning when there are
/// several (compose uses the first one too).
fn first_of(
    source: &Source,
    dir: &Path,
    names: &[&str],
    what: &str,
    warnings: &mut Vec<String>,
) -> Option<PathBuf> {
    let found: Vec<PathBuf> = names
        .iter()
        .map(|n| dir.join(n))
        .filter(|p| source.is_file(p))
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
fn find_files(
    source: &Source,
    opts: &LoadOptions,
    warnings: &mut Vec<String>,
) -> Result<Vec<PathBuf>, LoadError> {
    let mut files = opts.files.clone();
    // COMPOSE_FILE from the environment, else from the `.env` of the
    // working directory (compose v2 reads it there before it knows a file).
    let from_dotenv = || -> Result<Option<String>, LoadError> {
        let dotenv = opts.cwd.join(".env");
        if !source.is_file(&dotenv) {
            return Ok(None);
        }
        let mut env = HashMap::new();
        read_env_file(source, &dotenv, &opts.env, &opts.cwd, &mut env)?;
        Ok(env.remove("COMPOSE_FILE"))
    };
    let listed = match opts.env.get("COMPOSE_FILE") {
        Some(list) => Some(list.clone()),
        None if files.is_empty() => from_dotenv()?,
        None => None,
    };
    if files.is_empty()
        && let Some(list) = listed.filter(|s| !s.is_empty())
    {
        files = list.split(':').map(PathBuf::from).collect();
    }
    if files.is_empty() {
        let found =
            first_of(source, &opts.cwd, &DEFAULT_FILES, "compose", warnings).ok_or_else(|| {
                LoadError::NoComposeFile {
                    dir: opts.cwd.clone(),
                }
            })?;
        files.push(found);
        files.extend(first_of(
            source,
            &opts.cwd,
            &DEFAULT_OVERRIDE_FILES,
            "override",
            warnings,
        ));
    }
    Ok(files.iter().map(|f| clean(&opts.cwd.join(f))).collect())
}

/// Reads the project's `.env` (if any) under the process environment.
fn read_dotenv(
    source: &Source,
    dir: &Path,
    process: &HashMap<String, String>,
    cwd: &Path,
) -> Result<HashMap<String, String>, LoadError> {
    let path = dir.join(".env");
    let mut env = HashMap::new();
    if source.is_file(&path) {
        read_env_file(source, &path, process, cwd, &mut env)?;
    }
    Ok(env)
}

/// Loads a compose project from the disk: see the crate docs for the
/// pipeline.
pub fn load(opts: &LoadOptions) -> Result<Loaded, LoadError> {
    load_from(Source::Disk, opts)
}

/// Loads a compose project from `files` alone, as [`load`] would if they were
/// the only files on the disk: each path is relative to `opts.cwd` or
/// absolute, and a file not among them (an `env_file`, an `include`) does not
/// exist. For compose text that arrives as text, and for the fuzzer.
pub fn load_in_memory(
    opts: &LoadOptions,
    files: impl IntoIterator<Item = (PathBuf, String)>,
) -> Result<Loaded, LoadError> {
    let files: BTreeMap<PathBuf, String> = files
        .into_iter()
        .map(|(path, text)| (clean(&opts.cwd.join(path)), text))
        .collect();
    load_from(Source::Memory(Arc::new(files)), opts)
}

fn load_from(source: Source, opts: &LoadOptions) -> Result<Loaded, LoadError> {
    let mut warnings = Vec::new();
    let files = find_files(&source, opts, &mut warnings)?;
    let project_dir = files[0]
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| opts.cwd.clone());
    let mut env = read_dotenv(&source, &project_dir, &opts.env, &opts.cwd)?;
    env.extend(opts.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    if !env.contains_key("COMPOSE_PROJECT_NAME")
        && let Some(name) = early_project_name(&source, opts, &files, &project_dir, &env)
    {
        env.insert("COMPOSE_PROJECT_NAME".into(), name.to_string());
    }
    let mut ctx = Ctx::new(
        opts.cwd.clone(),
        project_dir,
        env,
        opts.allow_unknown_keys,
        source,
    );
    ctx.warnings = warnings;
    match project(&mut ctx, opts, &files) {
        Ok(project) => Ok(Loaded {
            project,
            warnings: ctx.warnings,
        }),
        // Warnings often explain the error (a key ignored with
        // --allow-unknown-keys that a later stage missed): keep them.
        Err(error) if !ctx.warnings.is_empty() => Err(LoadError::Warned {
            warnings: ctx.warnings,
            error: Box::new(error),
        }),
        Err(error) => Err(error),
    }
}

/// The project name as compose-go sets it for interpolation
/// (`${COMPOSE_PROJECT_NAME}` in a file means the project's name): `-p`, else
/// the last `name:` of the files, else the project directory's name. The
/// files are only peeked at: their errors are reported by the load itself.
fn early_project_name(
    source: &Source,
    opts: &LoadOptions,
    files: &[PathBuf],
    project_dir: &Path,
    env: &HashMap<String, String>,
) -> Option<ProjectName> {
    if let Some(name) = &opts.project_name {
        return Some(name.clone());
    }
    let written = files
        .iter()
        .filter_map(|f| source.read(f).ok())
        .filter_map(|text| serde_norway::from_str::<serde_norway::Value>(&text).ok())
        .filter_map(|v| v.get("name").and_then(|n| n.as_str()).map(str::to_string))
        .next_back();
    let interpolated = written.and_then(|n| {
        crate::interpolate::interpolate_str(&n, &mut crate::interpolate::Env::new(env)).ok()
    });
    interpolated
        .as_deref()
        .and_then(ProjectName::normalize)
        .or_else(|| {
            project_dir
                .file_name()
                .and_then(|n| ProjectName::normalize(&n.to_string_lossy()))
        })
}

/// The files merged and normalized, within the loading context.
fn project(ctx: &mut Ctx, opts: &LoadOptions, files: &[PathBuf]) -> Result<Project, LoadError> {
    let (merged, _) = include::load_model(ctx, files, &mut Vec::new())?;
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
    normalize::project(ctx, merged, files, opts.project_name.as_ref(), &profiles)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let got = find_files(&Source::Disk, &opts_in(d.path()), &mut w).unwrap();
        assert_eq!(names(&got), ["docker-compose.yml"]);
        // Any override name goes with any default file, as in compose v2.
        touch("compose.override.yaml");
        let got = find_files(&Source::Disk, &opts_in(d.path()), &mut w).unwrap();
        assert_eq!(names(&got), ["docker-compose.yml", "compose.override.yaml"]);
        assert!(w.is_empty(), "{w:?}");
        touch("compose.yaml");
        touch("compose.override.yml");
        let got = find_files(&Source::Disk, &opts_in(d.path()), &mut w).unwrap();
        assert_eq!(names(&got), ["compose.yaml", "compose.override.yml"]);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w[1].contains("using compose.override.yml"), "{w:?}");
        // -f and COMPOSE_FILE turn the lookup (and the override) off.
        let mut o = opts_in(d.path());
        o.env.insert("COMPOSE_FILE".into(), "compose.yaml".into());
        assert_eq!(
            names(&find_files(&Source::Disk, &o, &mut Vec::new()).unwrap()),
            ["compose.yaml"]
        );
        o.files = vec!["docker-compose.yml".into()];
        assert_eq!(
            names(&find_files(&Source::Disk, &o, &mut Vec::new()).unwrap()),
            ["docker-compose.yml"]
        );
    }

    /// Every file under `dir`, by path relative to it.
    fn files_under(dir: &Path) -> Vec<(PathBuf, String)> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                let sub = path.strip_prefix(dir).unwrap().to_path_buf();
                out.extend(
                    files_under(&path)
                        .into_iter()
                        .map(|(p, t)| (sub.join(p), t)),
                );
            } else if let Ok(text) = std::fs::read_to_string(&path) {
                out.push((path.strip_prefix(dir).unwrap().to_path_buf(), text));
            }
        }
        out
    }

    #[test]
    fn in_memory_files_load_as_the_same_files_on_disk() {
        // include (sub-projects, their .env and env_file) and an override file.
        let golden = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/include");
        let on_disk = load(&opts_in(&golden)).unwrap();
        // The same files, under a directory that does not exist.
        let files = files_under(&golden);
        assert!(files.iter().any(|(p, _)| p.ends_with("cache/cache.env")));
        let in_memory = load_in_memory(&opts_in(Path::new("/nowhere/include")), files).unwrap();
        let json = |p: &Project| {
            serde_json::to_string(p)
                .unwrap()
                .replace(&golden.display().to_string(), "/nowhere/include")
        };
        assert_eq!(json(&in_memory.project), json(&on_disk.project));
        assert_eq!(in_memory.warnings, on_disk.warnings);
    }

    #[test]
    fn in_memory_loading_never_reads_the_disk() {
        let d = tempfile::tempdir().unwrap();
        let on_disk = d.path().join("real.env");
        std::fs::write(&on_disk, "SECRET=from-disk\n").unwrap();
        std::fs::write(d.path().join("compose.yaml"), "services: {}\n").unwrap();
        let compose = format!(
            "services:\n  web:\n    image: busybox\n    env_file: {}\n",
            on_disk.display()
        );
        let opts = opts_in(d.path());
        let err = load_in_memory(&opts, [("compose.yaml".into(), compose)]).unwrap_err();
        assert!(err.to_string().contains("cannot read it"), "{err}");
        // Nor is a compose file looked for there.
        let err = load_in_memory(&opts, []).unwrap_err();
        assert!(matches!(err, LoadError::NoComposeFile { .. }), "{err}");
    }
}
