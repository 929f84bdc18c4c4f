//! The reference tier: compose-go's own loader tests and test data, and
//! docker/awesome-compose's stacks, run through Turtle's loader.
//!
//! docker compose v2 reads compose files through compose-go; its per-attribute
//! loader tests are the reference for what a compose file means. The data
//! (fixtures, test data, stacks) lives outside the project, in
//! `../shared/data/compose-reference` (or `TURTLE_COMPOSE_REFERENCE`); the
//! expected values are ours: the Go tests' assertions translated into
//! Turtle's model, in `tests/compose_go/expected/<Test>.yaml` (see
//! `unit.rs` for the format) and in the tables of the modules below.
//!
//! Each test collects every failing fixture, then fails once with the list
//! (fixture, field, expected, got). Run one fixture (or every fixture whose
//! name contains a text) with
//! `COMPOSE_GO_ONLY=TestPortsRange cargo test -p turtle-compose --test compose_go`.
//!
//! - `unit`: `compose-go-unit/<Test>/compose.yaml`, compose-go's
//!   `loader/tests/*_test.go`; the fixtures with no meaning on a single
//!   engine are in its one `NOT_APPLICABLE` table.
//! - `full_example`: `compose-go/full-example`, compared field by field with
//!   the normalized project compose-go expected.
//! - `testdata`: the files of `loader/testdata` and `cli/testdata` the Go
//!   tests load, with what those tests expect.
//! - `awesome`: every awesome-compose stack loads in strict mode.

#[path = "compose_go/awesome.rs"]
mod awesome;
#[path = "compose_go/full_example.rs"]
mod full_example;
#[path = "compose_go/partial.rs"]
mod partial;
#[path = "compose_go/testdata.rs"]
mod testdata;
#[path = "compose_go/unit.rs"]
mod unit;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use turtle_compose::{LoadError, LoadOptions, Loaded, ProjectName, load};

/// The reference data: `TURTLE_COMPOSE_REFERENCE`, else
/// `<workspace>/../shared/data/compose-reference`. Missing, the test fails
/// (CI has it): a tier that silently checks nothing is worse than none.
pub fn reference_root() -> PathBuf {
    let root = match std::env::var_os("TURTLE_COMPOSE_REFERENCE") {
        Some(dir) => PathBuf::from(dir),
        None => {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/compose-reference")
        }
    };
    assert!(
        root.join("compose-go-unit").is_dir(),
        "compose reference data not found at {}: set TURTLE_COMPOSE_REFERENCE to the \
         compose-reference directory (its README.md says what it holds)",
        root.display()
    );
    root.canonicalize().unwrap_or(root)
}

/// `COMPOSE_GO_ONLY`: run only the fixtures whose name contains it.
pub fn selected(name: &str) -> bool {
    match std::env::var("COMPOSE_GO_ONLY") {
        Ok(only) if !only.is_empty() => name.contains(&only),
        _ => true,
    }
}

/// One way to load a reference file, as its Go test loads it.
#[derive(Default)]
pub struct Load<'a> {
    pub cwd: PathBuf,
    pub files: Vec<PathBuf>,
    pub env: &'a [(&'a str, &'a str)],
    pub project_name: Option<&'a str>,
    pub profiles: Vec<String>,
    pub allow_unknown_keys: bool,
}

impl Load<'_> {
    pub fn run(&self) -> Result<Loaded, LoadError> {
        let env: HashMap<String, String> = self
            .env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        load(&LoadOptions {
            files: self.files.clone(),
            project_name: self
                .project_name
                .map(|n| n.parse::<ProjectName>().expect("a valid project name")),
            profiles: self.profiles.clone(),
            env,
            cwd: self.cwd.clone(),
            allow_unknown_keys: self.allow_unknown_keys,
        })
    }
}

/// Fails with every collected failure, one paragraph each.
pub fn report(what: &str, checked: usize, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{what}: {} of {checked} failed\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
