//! Update locks and hand-over files: a directory per service, on the host
//! at `STATE_DIR/run/<project>/<service>`, mounted read-write into every
//! container of the service at [`MOUNT`].
//!
//! - A service holds off updates by creating [`LOCK_FILE`] there (balena's
//!   update-lock file, under Turtle's own path). An update downloads, then
//!   waits at the kill step while the file exists, and says so; `--force`
//!   goes past it.
//! - A hand-over service tells Turtle its new container has taken over by
//!   creating [`HANDOVER_FILE`] there; the old one is then stopped.
//!
//! The directory is made by Turtle (0755), before the container is created,
//! so a service running as any user can read it; writing needs the
//! permission its image gives that user (root can, as in balena).

use std::path::{Path, PathBuf};

use turtle_compose::{Mount, MountKind, Project};

/// Where the directory is mounted in the containers.
pub const MOUNT: &str = "/run/turtle";
/// A service's update lock, in its directory.
pub const LOCK_FILE: &str = "updates.lock";
/// A hand-over service's "I have taken over", in its directory.
pub const HANDOVER_FILE: &str = "handover-complete";

/// The host directory of a service.
pub fn service_dir(run_dir: &Path, project: &str, service: &str) -> PathBuf {
    run_dir.join(project).join(service)
}

/// The project with every service's directory mounted (a service that
/// mounts something at [`MOUNT`] itself keeps its own).
pub fn decorate(project: &Project, run_dir: &Path) -> Project {
    let mut out = project.clone();
    for (name, service) in out.services.iter_mut() {
        if service.volumes.iter().any(|m| m.target == MOUNT) {
            continue;
        }
        let dir = service_dir(run_dir, project.name.as_str(), name.as_str());
        service.volumes.push(Mount {
            kind: MountKind::Bind,
            source: Some(dir.display().to_string()),
            target: MOUNT.to_string(),
            ..Default::default()
        });
    }
    out
}

/// Makes the directories of every service of `project`.
pub fn prepare(project: &Project, run_dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    for name in project.services.keys() {
        let dir = service_dir(run_dir, project.name.as_str(), name.as_str());
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&dir)?;
    }
    Ok(())
}

/// The services of `services` whose lock file exists now.
pub fn held<'a>(
    run_dir: &Path,
    project: &str,
    services: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    services
        .into_iter()
        .filter(|s| service_dir(run_dir, project, s).join(LOCK_FILE).exists())
        .map(str::to_string)
        .collect()
}

/// Removes a hand-over file left by an earlier hand-over.
pub fn clear_handover(run_dir: &Path, project: &str, service: &str) {
    let _ = std::fs::remove_file(service_dir(run_dir, project, service).join(HANDOVER_FILE));
}

/// Whether the service's new container has written its hand-over file.
pub fn handed_over(run_dir: &Path, project: &str, service: &str) -> bool {
    service_dir(run_dir, project, service)
        .join(HANDOVER_FILE)
        .exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_service_gets_its_own_directory_and_a_lock_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let p = turtle_reconcile::test_support::project(
            "demo",
            vec![("web", Default::default()), ("db", Default::default())],
        );
        let d = decorate(&p, dir.path());
        for (name, s) in &d.services {
            let m = s.volumes.iter().find(|m| m.target == MOUNT).unwrap();
            assert_eq!(
                m.source.as_deref(),
                Some(
                    dir.path()
                        .join("demo")
                        .join(name.as_str())
                        .to_str()
                        .unwrap()
                )
            );
            assert!(!m.read_only);
        }
        prepare(&p, dir.path()).unwrap();
        assert!(held(dir.path(), "demo", ["web", "db"]).is_empty());
        std::fs::write(service_dir(dir.path(), "demo", "db").join(LOCK_FILE), "").unwrap();
        assert_eq!(held(dir.path(), "demo", ["web", "db"]), vec!["db"]);
    }
}
