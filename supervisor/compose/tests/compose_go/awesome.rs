//! docker/awesome-compose: every stack's compose file loads in strict mode
//! (no `--allow-unknown-keys`) with no error, the way `docker compose config`
//! reads it, with the stack's folder as the working directory.

use std::path::{Path, PathBuf};

use super::{Load, reference_root, report, selected};

/// Stacks that cannot load on a single engine, with the reason. A listed
/// stack must still fail; one that loads is reported so the entry goes.
pub const CANNOT_LOAD: &[(&str, &str)] = &[];

fn compose_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            compose_files(&path, out);
        } else if matches!(
            name.as_str(),
            "compose.yaml" | "compose.yml" | "docker-compose.yaml" | "docker-compose.yml"
        ) {
            out.push(path);
        }
    }
}

#[test]
fn awesome_compose_stacks_load() {
    let root = reference_root().join("awesome-compose");
    let mut files = Vec::new();
    compose_files(&root, &mut files);
    assert!(
        files.len() >= 30,
        "expected the awesome-compose stacks under {}",
        root.display()
    );
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in &files {
        let stack = file.strip_prefix(&root).unwrap().display().to_string();
        if !selected(&stack) {
            continue;
        }
        checked += 1;
        let dir = file.parent().unwrap();
        let load = Load {
            cwd: dir.to_path_buf(),
            files: vec![file.clone()],
            env: &[("HOME", "/home/turtle")],
            ..Load::default()
        };
        let cannot = CANNOT_LOAD
            .iter()
            .find(|(s, _)| stack.starts_with(&format!("{s}/")));
        match (load.run(), cannot) {
            (Ok(_), None) | (Err(_), Some(_)) => {}
            (Err(e), None) => failures.push(format!("{stack}: {e}")),
            (Ok(_), Some((s, _))) => {
                failures.push(format!("{stack}: loads now; remove {s} from CANNOT_LOAD"))
            }
        }
    }
    report("awesome-compose stacks", checked, failures);
}
