//! Compose loading, whole: YAML, merge keys, interpolation, the key check,
//! `extends`, `include`, `.env` and `env_file`, `-f` merges, the typed parse
//! and normalization (`turtle_compose::load_in_memory`, the same load as
//! `turtle up` over files in memory). The input is one text holding every
//! file (`turtle_fuzz::compose_input`).
//!
//! Beyond "no panic": a project that loads is what the CLI sends the daemon,
//! so it must read back from its JSON as itself, and the planner must take
//! it (an error is fine, a panic is not).
#![no_main]

use std::path::PathBuf;

use libfuzzer_sys::fuzz_target;
use turtle_compose::{LoadOptions, Project, load_in_memory};
use turtle_fuzz::compose_input::{ComposeInput, PROJECT_DIR};
use turtle_reconcile::observe::Observed;
use turtle_reconcile::plan::{self, Mode};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let input = ComposeInput::parse(text);
    let mut env = input.env;
    env.entry("HOME".into())
        .or_insert_with(|| "/fuzz/home".into());
    let opts = LoadOptions {
        files: input.load,
        project_name: None,
        profiles: input.profiles,
        env,
        cwd: PathBuf::from(PROJECT_DIR),
        allow_unknown_keys: input.allow_unknown_keys,
    };
    let Ok(loaded) = load_in_memory(&opts, input.files) else {
        return;
    };
    let project = loaded.project;
    let json = serde_json::to_vec(&project).expect("a loaded project serializes");
    let back: Project = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "a loaded project does not read back from its JSON: {e}\n{}",
            String::from_utf8_lossy(&json)
        )
    });
    assert!(back == project, "a loaded project reads back changed");
    let options = plan::Options {
        mode: Mode::Up,
        held: Default::default(),
    };
    let _ = plan::plan(&project, &Observed::default(), &options);
});
