//! Shared by the golden tests and the docker-compose comparison: the cases
//! under `tests/golden/` and how to load them.
//!
//! A case is a directory with compose file(s), optional `.env`/env files, and
//! an optional `case.yaml`:
//!
//! ```yaml
//! files: [compose.yaml, override.yaml]   # default: look for compose.yaml etc.
//! profiles: [debug]
//! project: name                          # -p
//! env: {KEY: value}                      # the "process" environment
//! allow_unknown_keys: false
//! ```
//!
//! A `skip-compose` file (its text says why) keeps a case out of the
//! docker-compose comparison.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use turtle_compose::{LoadError, LoadOptions, Loaded, load};

/// The fixed HOME every case runs with.
pub const HOME: &str = "/home/turtle";

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaseSpec {
    pub files: Vec<PathBuf>,
    pub profiles: Vec<String>,
    pub project: Option<turtle_compose::ProjectName>,
    pub env: HashMap<String, String>,
    pub allow_unknown_keys: bool,
}

pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub spec: CaseSpec,
}

impl Case {
    pub fn env(&self) -> HashMap<String, String> {
        let mut env: HashMap<String, String> = [("HOME".to_string(), HOME.to_string())].into();
        env.extend(self.spec.env.clone());
        env
    }

    pub fn options(&self) -> LoadOptions {
        LoadOptions {
            files: self.spec.files.clone(),
            project_name: self.spec.project.clone(),
            profiles: self.spec.profiles.clone(),
            env: self.env(),
            cwd: self.dir.clone(),
            allow_unknown_keys: self.spec.allow_unknown_keys,
        }
    }

    pub fn load(&self) -> Result<Loaded, LoadError> {
        load(&self.options())
    }

    /// Replaces the machine-specific case directory with `$DIR`.
    pub fn placeholders(&self, text: &str) -> String {
        text.replace(&self.dir.display().to_string(), "$DIR")
    }
}

pub fn golden_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// The cases directly under `root` (sorted), skipping `fails`.
pub fn cases(root: &Path) -> Vec<Case> {
    let mut out = Vec::new();
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|e| panic!("reading {}: {e}", root.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir() && p.file_name().unwrap() != "fails")
        .collect();
    dirs.sort();
    for dir in dirs {
        let spec_path = dir.join("case.yaml");
        let spec = if spec_path.exists() {
            let text = std::fs::read_to_string(&spec_path).unwrap();
            serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", spec_path.display()))
        } else {
            CaseSpec::default()
        };
        out.push(Case {
            name: dir.file_name().unwrap().to_string_lossy().to_string(),
            dir,
            spec,
        });
    }
    out
}
