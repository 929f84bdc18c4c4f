//! After a commit: the images of a project's older releases are removed,
//! those of the current and the previous release kept (a rollback needs
//! them, never downloaded again).
//!
//! # Design
//!
//! - **Only what releases pinned.** The candidates are the image IDs the
//!   project's releases pinned, less `keep` (the caller's: the current and
//!   the previous release). Turtle never removes an image it did not
//!   bring for a release: not the user's, not another stack's.
//! - **Kept, and why**, rather than forced: an image a container uses
//!   (running or stopped, of any project), one another project's current,
//!   previous or in-flight release pinned, one carrying a tag that a stored
//!   project names in `image:`, and the bases Turtle builds on
//!   (`turtle-debian:*`, long to make again on an air-gapped box). Removal
//!   is by ID without force, so the engine itself refuses what is still
//!   used (a container made meanwhile, tags in several repositories, child
//!   images); such a refusal is reported as kept with the engine's reason.
//! - **Never fails the update.** The commit is done when this runs; a
//!   failure is reported ([`GcReport::failed`]) and the images wait for
//!   the next commit.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use turtle_engine::{Engine, EngineError};

use super::{Outcome, Release};
use crate::base::BASE_REPO;
use crate::store::Store;

/// What one collection did, by image ID.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    pub removed: Vec<String>,
    /// Left in place, with the reason (a container uses it, another
    /// project's release pinned it, ...).
    pub kept: Vec<(String, String)>,
    /// Could not be removed (the engine or the store failed).
    pub failed: Vec<(String, String)>,
}

impl GcReport {
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.kept.is_empty() && self.failed.is_empty()
    }
}

/// `removed 2 images of older releases (sha256:0123456789ab, ...); kept
/// sha256:...: used by container x; could not remove ...`.
impl fmt::Display for GcReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.removed.is_empty() {
            let ids: Vec<&str> = self.removed.iter().map(|i| short(i)).collect();
            parts.push(format!(
                "removed {} image{} of older releases ({})",
                ids.len(),
                if ids.len() == 1 { "" } else { "s" },
                ids.join(", ")
            ));
        }
        for (id, why) in &self.kept {
            parts.push(format!("kept {}: {why}", short(id)));
        }
        for (id, why) in &self.failed {
            parts.push(format!("could not remove {}: {why}", short(id)));
        }
        if parts.is_empty() {
            f.write_str("no image of an older release to remove")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

fn short(id: &str) -> &str {
    let end = id.find(':').map_or(0, |i| i + 1) + 12;
    id.get(..end).unwrap_or(id)
}

/// Removes the images that releases of `project` pinned and that neither
/// `keep` (the current and previous release's image IDs) nor anything
/// else still uses (see the module's design). Never forces.
pub async fn remove_unused<E: Engine>(
    engine: &E,
    store: &Store,
    project: &str,
    keep: &BTreeSet<String>,
) -> GcReport {
    let mut report = GcReport::default();
    let releases = match store.releases(project) {
        Ok(r) => r,
        Err(e) => {
            report.failed.push(("the releases".into(), e.to_string()));
            return report;
        }
    };
    let candidates: BTreeSet<String> = releases
        .iter()
        .flat_map(Release::image_ids)
        .filter(|id| !keep.contains(id))
        .collect();
    if candidates.is_empty() {
        return report;
    }
    let pinned_elsewhere = match pinned_by_others(store, project) {
        Ok(p) => p,
        Err(e) => {
            report.failed.push(("the releases".into(), e));
            return report;
        }
    };
    let named = match named_references(store) {
        Ok(n) => n,
        Err(e) => {
            report.failed.push(("the projects".into(), e));
            return report;
        }
    };
    let used: BTreeMap<String, String> = match engine.list_containers(&[]).await {
        Ok(list) => list.into_iter().map(|c| (c.image_id, c.name)).collect(),
        Err(e) => {
            report
                .failed
                .push(("the container list".into(), e.to_string()));
            return report;
        }
    };

    for id in candidates {
        if let Some(container) = used.get(&id) {
            report
                .kept
                .push((id, format!("used by container {container}")));
            continue;
        }
        if let Some(other) = pinned_elsewhere.get(&id) {
            report
                .kept
                .push((id, format!("a release of project {other} runs it")));
            continue;
        }
        let info = match engine.inspect_image(&id).await {
            Ok(Some(info)) => info,
            // Gone already (removed by hand, or by an earlier collection).
            Ok(None) => continue,
            Err(e) => {
                report.failed.push((id, e.to_string()));
                continue;
            }
        };
        if let Some(tag) = info.repo_tags.iter().find(|t| {
            named.contains(normalize(t).as_str()) || t.starts_with(&format!("{BASE_REPO}:"))
        }) {
            report.kept.push((
                id,
                format!("tagged {tag}, which a project or a build names"),
            ));
            continue;
        }
        match engine.remove_image(&id).await {
            Ok(()) => report.removed.push(id),
            Err(EngineError::NotFound { .. }) => {}
            Err(EngineError::Conflict { message, .. }) => report.kept.push((id, message)),
            Err(e) => report.failed.push((id, e.to_string())),
        }
    }
    report
}

/// Image IDs another project still needs: those of its releases in flight
/// and of its two newest committed ones (its current and its previous),
/// with the project's name.
fn pinned_by_others(store: &Store, project: &str) -> Result<BTreeMap<String, String>, String> {
    let projects: Vec<String> = store
        .with(|c| {
            let mut st = c.prepare("SELECT DISTINCT project FROM releases WHERE project != ?1")?;
            st.query_map([project], |r| r.get(0))?.collect()
        })
        .map_err(|e| e.to_string())?;
    let mut out = BTreeMap::new();
    for other in projects {
        let releases = store.releases(&other).map_err(|e| e.to_string())?;
        let pending = releases.iter().filter(|r| r.outcome == Outcome::Pending);
        let committed = releases
            .iter()
            .filter(|r| r.outcome == Outcome::Committed)
            .take(2);
        for r in pending.chain(committed) {
            for id in r.image_ids() {
                out.entry(id).or_insert_with(|| other.clone());
            }
        }
    }
    Ok(out)
}

/// The `image:` references of every stored project, as the engine writes
/// tags (`busybox` is `busybox:latest`).
fn named_references(store: &Store) -> Result<BTreeSet<String>, String> {
    Ok(store
        .projects()
        .map_err(|e| e.to_string())?
        .iter()
        .flat_map(|p| p.services.values().filter_map(|s| s.image.as_deref()))
        .map(normalize)
        .collect())
}

/// A reference as the engine lists it among an image's tags: without
/// Docker Hub's default registry and namespace, with `:latest` when it
/// names no tag.
fn normalize(reference: &str) -> String {
    let r = reference
        .strip_prefix("docker.io/library/")
        .or_else(|| reference.strip_prefix("index.docker.io/library/"))
        .or_else(|| reference.strip_prefix("docker.io/"))
        .or_else(|| reference.strip_prefix("index.docker.io/"))
        .unwrap_or(reference);
    let last = r.rsplit('/').next().unwrap_or(r);
    if r.contains('@') || last.contains(':') {
        r.to_string()
    } else {
        format!("{r}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::release::{Origin, PinnedImage};
    use turtle_engine::fake::FakeEngine;
    use turtle_reconcile::test_support::{project, service};

    fn release(store: &Store, project_name: &str, images: &[(&str, &str)], outcome: Outcome) {
        let mut r = Release {
            id: format!("{:012x}", rand_id()),
            project: project_name.into(),
            seq: 0,
            version: String::new(),
            notes: String::new(),
            created_ms: 0,
            origin: Origin::Push,
            compose: project(project_name, vec![]),
            images: images
                .iter()
                .map(|(svc, id)| {
                    (
                        svc.to_string(),
                        PinnedImage {
                            reference: format!("{svc}:x"),
                            id: id.to_string(),
                            repo_digest: None,
                        },
                    )
                })
                .collect(),
            outcome: Outcome::Pending,
            reason: None,
            finished_ms: None,
        };
        store.add_release(&mut r).unwrap();
        store.finish_release(&r.id, outcome, None).unwrap();
    }

    fn rand_id() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(1);
        N.fetch_add(1, Ordering::Relaxed)
    }

    fn id(e: &FakeEngine, reference: &str) -> String {
        futures_util::FutureExt::now_or_never(e.image_id(reference))
            .unwrap()
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn older_releases_go_the_current_and_previous_stay() {
        let e = FakeEngine::new();
        let store = Store::in_memory().unwrap();
        for r in ["app:1", "app:2", "app:3", "app:4"] {
            e.add_image(r);
        }
        let ids: Vec<String> = ["app:1", "app:2", "app:3", "app:4"]
            .iter()
            .map(|r| id(&e, r))
            .collect();
        release(&store, "demo", &[("web", &ids[0])], Outcome::Committed);
        release(&store, "demo", &[("web", &ids[1])], Outcome::RolledBack);
        release(&store, "demo", &[("web", &ids[2])], Outcome::Committed);
        release(&store, "demo", &[("web", &ids[3])], Outcome::Committed);
        let keep: BTreeSet<String> = [ids[2].clone(), ids[3].clone()].into();

        let report = remove_unused(&e, &store, "demo", &keep).await;
        assert_eq!(
            report.removed.iter().collect::<BTreeSet<_>>(),
            [&ids[0], &ids[1]].into()
        );
        assert!(
            report.kept.is_empty() && report.failed.is_empty(),
            "{report}"
        );
        assert!(e.image_id("app:1").await.unwrap().is_none());
        assert!(e.image_id("app:3").await.unwrap().is_some());
        assert!(e.image_id("app:4").await.unwrap().is_some());
        assert!(
            report.to_string().starts_with("removed 2 images"),
            "{report}"
        );

        // Again: nothing left to do, and the engine is not asked to remove.
        e.clear_calls();
        let report = remove_unused(&e, &store, "demo", &keep).await;
        assert!(report.is_empty(), "{report}");
        assert!(!e.calls().iter().any(|c| c.starts_with("remove_image")));
    }

    #[tokio::test]
    async fn what_others_use_is_kept_and_said_why() {
        let e = FakeEngine::new();
        let store = Store::in_memory().unwrap();
        for r in [
            "old:1",
            "shared:1",
            "named:1",
            "turtle-debian:bookworm",
            "cur:1",
        ] {
            e.add_image(r);
        }
        let (old, shared, named, base, cur) = (
            id(&e, "old:1"),
            id(&e, "shared:1"),
            id(&e, "named:1"),
            id(&e, "turtle-debian:bookworm"),
            id(&e, "cur:1"),
        );
        release(
            &store,
            "demo",
            &[("a", &old), ("b", &shared), ("c", &named), ("d", &base)],
            Outcome::Committed,
        );
        release(&store, "demo", &[("a", &cur)], Outcome::Committed);
        // Another project's in-flight release pinned `shared`.
        release(&store, "other", &[("x", &shared)], Outcome::Pending);
        // A stored project names `named:1`.
        store
            .save_project(&project("third", vec![("s", service("named:1"))]))
            .unwrap();
        // A container of no release runs `old`.
        let spec = turtle_engine::ContainerSpec {
            name: "someone".into(),
            body: bollard_stubs::models::ContainerCreateBody {
                image: Some("old:1".into()),
                ..Default::default()
            },
            extra_networks: Vec::new(),
        };
        e.create_container(&spec).await.unwrap();

        let keep: BTreeSet<String> = [cur.clone()].into();
        let report = remove_unused(&e, &store, "demo", &keep).await;
        assert!(report.removed.is_empty(), "{report}");
        let kept: BTreeMap<_, _> = report.kept.iter().cloned().collect();
        assert_eq!(kept[&old], "used by container someone");
        assert_eq!(kept[&shared], "a release of project other runs it");
        assert!(kept[&named].contains("tagged named:1"), "{report}");
        assert!(kept[&base].contains("tagged turtle-debian:bookworm"));
        assert!(!e.calls().iter().any(|c| c.starts_with("remove_image")));
    }

    #[test]
    fn references_read_as_the_engine_tags() {
        for (r, want) in [
            ("busybox", "busybox:latest"),
            ("docker.io/library/busybox:1.36", "busybox:1.36"),
            ("registry.local:5000/app", "registry.local:5000/app:latest"),
            ("registry.local:5000/app:2", "registry.local:5000/app:2"),
            ("app@sha256:00", "app@sha256:00"),
        ] {
            assert_eq!(normalize(r), want);
        }
    }
}
