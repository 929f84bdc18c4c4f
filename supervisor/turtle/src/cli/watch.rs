//! `turtle push --watch`: dev mode (balena's local mode). Pushes once, then
//! watches the build context of every service that has one, and the
//! compose files; a change pushes again, rebuilding only the services whose
//! context changed (a compose file change pushes all), through the same
//! health gate. Each cycle says what changed, what it rebuilt and how long
//! it took.
//!
//! Watching is polling (every [`LOOK`], a walk of each context comparing
//! sizes and modification times; `.git` is skipped): no file-system
//! notification dependency, and it behaves the same on every file system
//! (bind mounts, network shares) a developer may work on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use turtle_compose::Project;
use turtle_control::Control;
use turtle_runtime::release::Outcome;

use super::context::{self, Failure};
use super::output::Printer;
use super::push::PushArgs;

/// How often the files are looked at.
const LOOK: Duration = Duration::from_millis(500);

type Snapshot = BTreeMap<PathBuf, (u64, Option<SystemTime>)>;

/// Pushes, then again at each change, until Ctrl-C.
pub async fn run(
    control: &dyn Control,
    a: &PushArgs,
    build_id: Option<String>,
) -> Result<(), Failure> {
    let args = a.project_args();
    let mut project = context::load_project_built_by(&args, build_id.clone())?;
    cycle(control, a, &project, Vec::new(), "first push").await;
    let mut seen = snapshot(&project);
    eprintln!(
        "turtle: watching {} (Ctrl-C stops)",
        watched(&project)
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => return Ok(()),
            _ = tokio::time::sleep(LOOK) => {}
        }
        let now = snapshot(&project);
        if now == seen {
            continue;
        }
        // Let an editor or a checkout finish writing.
        let mut settled = now;
        loop {
            tokio::time::sleep(LOOK).await;
            let again = snapshot(&project);
            if again == settled {
                break;
            }
            settled = again;
        }
        let changed = changed_paths(&seen, &settled);
        let compose_changed = changed.iter().any(|p| project.files.contains(p));
        let only = if compose_changed {
            match context::load_project_built_by(&args, build_id.clone()) {
                Ok(p) => project = p,
                Err(e) => {
                    eprintln!("turtle: {}; fix it and save again", e.message);
                    seen = settled;
                    continue;
                }
            }
            Vec::new()
        } else {
            services_of(&project, &changed)
        };
        let what = format!(
            "{} changed{}",
            changed
                .iter()
                .take(3)
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            if only.is_empty() {
                String::new()
            } else {
                format!("; rebuilding {}", only.join(", "))
            }
        );
        cycle(control, a, &project, only, &what).await;
        seen = snapshot(&project);
    }
}

/// One push; its failure is told, and watching goes on.
async fn cycle(
    control: &dyn Control,
    a: &PushArgs,
    project: &Project,
    only: Vec<String>,
    what: &str,
) {
    eprintln!("turtle: {what}");
    let began = Instant::now();
    let mut opts = a.options();
    opts.only = only;
    let printer = Printer::new();
    let outcome = control
        .push(project, &opts, &|e| printer.event(e))
        .await
        .map(|r| match r.outcome {
            Outcome::Committed => format!("release {} committed", r.seq),
            other => format!(
                "release {} {other}: {}",
                r.seq,
                r.reason.unwrap_or_default()
            ),
        })
        .unwrap_or_else(|e| format!("push failed: {e}"));
    eprintln!(
        "turtle: cycle took {:.1} s: {outcome}",
        began.elapsed().as_secs_f64()
    );
}

/// The build contexts and the compose files.
fn watched(project: &Project) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = project
        .services
        .values()
        .filter_map(|s| s.build.as_ref().map(|b| b.context.clone()))
        .collect();
    out.extend(project.files.iter().cloned());
    out.sort();
    out.dedup();
    out
}

fn snapshot(project: &Project) -> Snapshot {
    let mut out = Snapshot::new();
    for root in watched(project) {
        walk(&root, &mut out);
    }
    out
}

fn walk(path: &Path, out: &mut Snapshot) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return;
    };
    if meta.is_dir() {
        if path.file_name().is_some_and(|n| n == ".git") {
            return;
        }
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for e in entries.flatten() {
            walk(&e.path(), out);
        }
    } else {
        out.insert(path.to_path_buf(), (meta.len(), meta.modified().ok()));
    }
}

fn changed_paths(before: &Snapshot, after: &Snapshot) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = after
        .iter()
        .filter(|(p, v)| before.get(*p) != Some(v))
        .map(|(p, _)| p.clone())
        .chain(before.keys().filter(|p| !after.contains_key(*p)).cloned())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The services whose build context holds one of `paths`.
fn services_of(project: &Project, paths: &[PathBuf]) -> Vec<String> {
    project
        .services
        .iter()
        .filter(|(_, s)| {
            s.build
                .as_ref()
                .is_some_and(|b| paths.iter().any(|p| p.starts_with(&b.context)))
        })
        .map(|(n, _)| n.to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_names_the_services_whose_context_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        std::fs::write(a.join("x"), "1").unwrap();
        let mut p = turtle_reconcile::test_support::project(
            "demo",
            vec![("a", Default::default()), ("b", Default::default())],
        );
        for (name, s) in p.services.iter_mut() {
            s.build = Some(turtle_compose::Build {
                context: dir.path().join(name.as_str()),
                ..Default::default()
            });
        }
        let before = snapshot(&p);
        std::fs::write(a.join("x"), "22").unwrap();
        std::fs::write(a.join("new"), "").unwrap();
        let after = snapshot(&p);
        let changed = changed_paths(&before, &after);
        assert_eq!(changed, vec![a.join("new"), a.join("x")]);
        assert_eq!(services_of(&p, &changed), vec!["a"]);
    }
}
