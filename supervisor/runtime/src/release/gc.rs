//! Image collection after a commit (being written on branch `disk`).

use std::collections::BTreeSet;

use turtle_engine::Engine;

use crate::store::Store;

#[derive(Debug, Default)]
pub struct GcReport {
    pub removed: Vec<String>,
    pub kept_in_use: Vec<String>,
    pub failed: Vec<(String, String)>,
}

/// Removes images that releases of `project` pinned and that neither
/// `keep` nor any container uses.
pub async fn remove_unused<E: Engine>(
    engine: &E,
    store: &Store,
    project: &str,
    keep: &BTreeSet<String>,
) -> GcReport {
    let _ = (engine, store, project, keep);
    GcReport::default()
}
