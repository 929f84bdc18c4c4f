//! Preload: the bundles an install image ships in the preload directory
//! (`releases.preload_dir`, default STATE_DIR/preload) applied on the
//! daemon's first start, as balena's preload, but signed.
//!
//! First start: the store has no project, and no marker
//! (STATE_DIR/preload.json) says preload ran. The bundles (every regular
//! file of the directory not starting with `.`, in name order, so a full
//! bundle and then its deltas) are each verified against
//! `bundles.trusted_keys` (none configured: each is refused, a preloaded
//! bundle must be signed by a key the box trusts), loaded, and pushed as a
//! release with origin `bundle`, as `turtle bundle apply` does. A refused
//! bundle is logged as an error and an event, and nothing of it is
//! applied; the daemon serves all along (preload runs beside the API).
//! Once every bundle had its turn the marker is written with what became
//! of each, so a restart does not apply them again; a daemon stopped
//! before that tries again at its next start (a load and a push of the
//! same release are idempotent).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use turtle_engine::docker::Docker;
use turtle_runtime::config::Config;
use turtle_runtime::release::Outcome;
use turtle_runtime::supervisor::Supervisor;

/// The marker's name in the state directory.
pub const MARKER: &str = "preload.json";

/// What became of one bundle, kept in the marker.
#[derive(Debug)]
struct Done {
    file: PathBuf,
    /// `committed`, or why it was not.
    result: String,
    release: Option<String>,
}

/// The preload directory of this config and state directory.
pub fn dir(config: &Config, state_dir: &Path) -> PathBuf {
    config
        .releases
        .preload_dir
        .clone()
        .unwrap_or_else(|| state_dir.join("preload"))
}

/// Applies the preload directory's bundles when this is the daemon's first
/// start (see the module docs); does nothing otherwise.
pub async fn run(sup: Arc<Supervisor<Docker>>, config: Config, state_dir: PathBuf) {
    let dir = dir(&config, &state_dir);
    let marker = state_dir.join(MARKER);
    let bundles = match bundles_in(&dir) {
        Ok(b) if b.is_empty() => return,
        Ok(b) => b,
        Err(e) => {
            tracing::error!(dir = %dir.display(), "preload: cannot read the preload directory: {e}; nothing preloaded");
            return;
        }
    };
    if marker.exists() {
        tracing::info!(
            marker = %marker.display(),
            "preload already ran: the preload directory's {} bundle(s) are not applied again",
            bundles.len()
        );
        return;
    }
    match sup.store().projects() {
        Ok(p) if !p.is_empty() => {
            tracing::info!(
                dir = %dir.display(),
                "preload: not the first start (the store has projects); the preload directory is left alone"
            );
            return;
        }
        Ok(_) => {}
        Err(e) => {
            tracing::error!("preload: cannot read the store: {e}; nothing preloaded");
            return;
        }
    }
    tracing::info!(dir = %dir.display(), bundles = bundles.len(), "preload: first start, applying the preload directory");
    let trust = match super::bundle::trust_from(&config, &[]) {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("preload: {}; nothing preloaded", e.message);
            return;
        }
    };
    let mut done = Vec::new();
    for file in bundles {
        let (result, release) = match apply_one(&sup, &file, &trust).await {
            Ok((project, release)) => {
                let line = format!(
                    "preloaded {}: release {} (version {}) {}",
                    file.display(),
                    release.id,
                    release.version,
                    release.outcome
                );
                if release.outcome == Outcome::Committed {
                    tracing::info!("{line}");
                    sup.record(&project, None, None, "preload", &line);
                } else {
                    let why = release.reason.as_deref().unwrap_or("no reason recorded");
                    tracing::error!("{line}: {why}");
                    sup.record(&project, None, None, "preload", &format!("{line}: {why}"));
                }
                (release.outcome.to_string(), Some(release.id))
            }
            Err(Failure {
                project,
                loaded: false,
                error,
            }) => {
                let line = format!(
                    "preload: bundle {} REFUSED, nothing of it applied: {error} (apply a good one by hand: turtle bundle apply FILE)",
                    file.display()
                );
                tracing::error!("{line}");
                sup.record(&project, None, None, "preload-refused", &line);
                (format!("refused: {error}"), None)
            }
            Err(Failure { project, error, .. }) => {
                let line = format!(
                    "preload: bundle {} FAILED after its images were loaded: {error} (try again: turtle bundle apply FILE)",
                    file.display()
                );
                tracing::error!("{line}");
                sup.record(&project, None, None, "preload-failed", &line);
                (format!("failed: {error}"), None)
            }
        };
        done.push(Done {
            file,
            result,
            release,
        });
    }
    let m = serde_json::json!({
        "ran_ms": turtle_runtime::store::now_millis(),
        "dir": dir,
        "bundles": done.iter().map(|d| serde_json::json!({
            "file": d.file,
            "result": d.result,
            "release": d.release,
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&m).expect("the marker serializes");
    if let Err(e) = write_atomically(&marker, text.as_bytes()) {
        tracing::error!(marker = %marker.display(), "preload: cannot record that preload ran ({e}): it runs again at the next start");
    }
}

/// Why a bundle was not applied.
struct Failure {
    /// The project it names, once verified.
    project: String,
    /// Whether its images were loaded (a failed push) or nothing was (a
    /// refusal: verification, architecture, a delta's missing layers).
    loaded: bool,
    error: String,
}

/// Verifies, loads and pushes one bundle.
async fn apply_one(
    sup: &Supervisor<Docker>,
    file: &Path,
    trust: &turtle_bundle::Trust,
) -> Result<(String, turtle_runtime::release::Release), Failure> {
    let refused = |project: &str, error: String| Failure {
        project: project.to_string(),
        loaded: false,
        error,
    };
    if trust.is_empty() {
        return Err(refused(
            "",
            "no bundles.trusted_keys in turtle.yaml: a preloaded bundle must be signed by a key this box trusts".into(),
        ));
    }
    let verified = turtle_bundle::verify(file, trust)
        .await
        .map_err(|e| refused("", e.to_string()))?;
    let project = verified.manifest().project.name.to_string();
    let applied = turtle_bundle::load(sup.engine(), verified)
        .await
        .map_err(|e| refused(&project, e.to_string()))?;
    let file = std::fs::canonicalize(file).unwrap_or(file.to_path_buf());
    let opts = super::bundle::push_options(&applied.manifest, &file);
    let release = sup
        .push(
            &applied.project,
            &opts,
            &|e| tracing::info!(project = %applied.project.name, "preload: {e:?}"),
        )
        .await
        .map_err(|e| Failure {
            project: project.clone(),
            loaded: true,
            error: e.to_string(),
        })?;
    Ok((project, release))
}

/// The directory's bundles: regular files not starting with `.`, by name.
/// A directory that does not exist holds none.
fn bundles_in(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for e in entries {
        let e = e?;
        let hidden = e.file_name().to_string_lossy().starts_with('.');
        if !hidden && std::fs::metadata(e.path())?.is_file() {
            out.push(e.path());
        }
    }
    out.sort();
    Ok(out)
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, data)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundles_are_the_visible_regular_files_by_name() {
        let d = tempfile::tempdir().unwrap();
        for f in ["b.tbundle", "a.tbundle", ".hidden"] {
            std::fs::write(d.path().join(f), b"x").unwrap();
        }
        std::fs::create_dir(d.path().join("sub")).unwrap();
        let names: Vec<String> = bundles_in(d.path())
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.tbundle", "b.tbundle"]);
        assert!(bundles_in(&d.path().join("missing")).unwrap().is_empty());
    }
}
