//! What the loading stages share: [`Ctx`] (environment, warnings, and each
//! compose file read once, through YAML -> merge keys -> interpolation -> key
//! check), and the reading of `.env`-syntax files ([`read_env_file`]).
//!
//! `load` creates the context; `include` (a context per included project),
//! `extends` and `normalize` use it. It depends on none of them.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_norway::Value;

use crate::dotenv;
use crate::error::LoadError;
use crate::interpolate::{Env, interpolate_str, interpolate_value};
use crate::keys::{self, display_path};
use crate::locate;
use crate::source::Source;

/// State shared by the stages: environment, warnings, parsed files.
pub(crate) struct Ctx {
    pub cwd: PathBuf,
    pub project_dir: PathBuf,
    pub env: HashMap<String, String>,
    pub allow_unknown_keys: bool,
    pub warnings: Vec<String>,
    /// Where files are read from (the disk, or files in memory).
    pub source: Source,
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
        source: Source,
    ) -> Self {
        Self {
            cwd,
            project_dir,
            env,
            allow_unknown_keys,
            warnings: Vec::new(),
            source,
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
        let text = self.source.read(path).map_err(|source| LoadError::Read {
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
            return Err(LoadError::Yaml {
                file: shown,
                line: None,
                column: None,
                message: "empty compose file (write at least `services:`)".into(),
            });
        }
        if !value.is_mapping() {
            return Err(LoadError::Yaml {
                file: shown,
                line: None,
                column: None,
                message: "the top level must be a mapping (services:, networks:, ...)".into(),
            });
        }
        crate::yaml::resolve_merge_keys(&mut value).map_err(|message| LoadError::Yaml {
            file: shown.clone(),
            line: None,
            column: None,
            message,
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
            self.warn(format!(
                "{shown}: the {var} variable is not set, defaulting to a blank string"
            ));
        }
        let mut errors = Vec::new();
        for issue in keys::check(&mut value, &keys::TOP) {
            let found = locate::find_nearest_line(&text, &issue.path);
            let line = found.map(|(l, _)| l);
            let mut message = issue.message(self.allow_unknown_keys);
            if let Some((_, false)) = found {
                message
                    .push_str(" (merged in from an anchor or merge key; the line is its parent's)");
            }
            if issue.is_error(self.allow_unknown_keys) {
                errors.push(LoadError::Invalid {
                    file: shown.clone(),
                    line,
                    path: display_path(&issue.path),
                    message,
                });
            } else {
                let place = match line {
                    Some(l) => format!("{shown}:{l}"),
                    None => shown.clone(),
                };
                self.warn(format!("{place}: {}: {message}", display_path(&issue.path)));
            }
        }
        errors.sort_by_key(|e| match e {
            LoadError::Invalid { line, .. } => line.unwrap_or(usize::MAX),
            _ => usize::MAX,
        });
        match errors.len() {
            0 => {}
            1 => return Err(errors.remove(0)),
            _ => return Err(LoadError::Several(errors)),
        }
        self.files.insert(path.to_path_buf(), value.clone());
        Ok(value)
    }
}

/// Reads one env file (`.env` syntax) into `into`: values may refer to
/// `outer` (which wins) and to earlier entries.
pub(crate) fn read_env_file(
    source: &Source,
    path: &Path,
    outer: &HashMap<String, String>,
    cwd: &Path,
    into: &mut HashMap<String, String>,
) -> Result<(), LoadError> {
    let shown = path.strip_prefix(cwd).unwrap_or(path).display().to_string();
    let text = source.read(path).map_err(|source| LoadError::Read {
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
