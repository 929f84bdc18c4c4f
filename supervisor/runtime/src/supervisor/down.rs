//! `down`: forget a project, then remove what it has on the engine.

use serde::{Deserialize, Serialize};
use turtle_compose::ProjectName;
use turtle_engine::Engine;
use turtle_reconcile::names;

use super::{Error, Supervisor};

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DownReport {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

impl<E: Engine> Supervisor<E> {
    /// Stops and removes everything of a project; volumes only when asked.
    pub async fn down(&self, name: &ProjectName, volumes: bool) -> Result<DownReport, Error> {
        let lock = self.lock_for(name);
        let _guard = lock.lock().await;
        let project = self.handle.store.project(name)?;
        // Forget it first, so the keep-alive loop does not bring it back.
        self.handle.store.remove_project(name)?;
        let filter = names::project_filter(name);
        let containers = self.handle.engine.list_containers(&filter).await?;
        // Carry on past a failure, so one stuck object does not leave the
        // rest behind; report every failure at the end.
        let mut failures = Vec::new();
        let project_ref = project.as_ref();
        let removals = containers.iter().map(|c| async move {
            // The volumes it mounts, for `--volumes`: an anonymous volume
            // carried over a recreate is mounted by name, so the engine no
            // longer removes it with the container.
            let mounted = match self.handle.engine.inspect_container(&c.id).await {
                Ok(d) => d.volumes,
                Err(_) => Vec::new(),
            };
            self.pre_stop(project_ref, c).await;
            // No timeout: the engine uses the container's own stop timeout.
            match self.handle.engine.stop_container(&c.id, None).await {
                Err(e) if !e.is_not_found() => return Err(e),
                _ => {}
            }
            // Anonymous volumes go with the container only on `down --volumes`.
            match self.handle.engine.remove_container(&c.id, volumes).await {
                Err(e) if !e.is_not_found() => Err(e),
                _ => Ok((c.name.clone(), mounted)),
            }
        });
        let mut report = DownReport::default();
        let mut mounted = Vec::new();
        for r in futures_util::future::join_all(removals).await {
            match r {
                Ok((name, vols)) => {
                    report.containers.push(name);
                    mounted.extend(vols);
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        if volumes {
            // Anonymous ones only: named volumes are handled by label below,
            // and a volume of another project or an external one is not ours.
            for v in mounted.iter().filter(|v| is_anonymous(&v.name)) {
                match self.handle.engine.remove_volume(&v.name).await {
                    Ok(()) => report.volumes.push(v.name.clone()),
                    Err(e) if e.is_not_found() => {}
                    Err(e) => failures.push(e.to_string()),
                }
            }
        }
        // Objects the project declares external are never removed, even when
        // an earlier version of the project created them.
        let external = |kind: &str, engine_name: &str| {
            project.as_ref().is_some_and(|p| match kind {
                "network" => p
                    .networks
                    .values()
                    .any(|n| n.external && n.name == engine_name),
                _ => p
                    .volumes
                    .values()
                    .any(|v| v.external && v.name == engine_name),
            })
        };
        for n in self.handle.engine.list_networks(&filter).await? {
            if external("network", &n.name) {
                continue;
            }
            match self.handle.engine.remove_network(&n.name).await {
                Ok(()) => report.networks.push(n.name),
                Err(e) => failures.push(e.to_string()),
            }
        }
        if volumes {
            for v in self.handle.engine.list_volumes(&filter).await? {
                if external("volume", &v.name) {
                    continue;
                }
                match self.handle.engine.remove_volume(&v.name).await {
                    Ok(()) => report.volumes.push(v.name),
                    Err(e) => failures.push(e.to_string()),
                }
            }
        }
        // Last, so that a hosts file or certs.d that cannot be written never
        // leaves the containers of a forgotten project running.
        if let Some(et) = &self.engine_trust {
            if let Err(e) = et.remove(name) {
                failures.push(e.to_string());
            }
            self.engine_setup.lock().unwrap().remove(name.as_str());
        }
        if !failures.is_empty() {
            let message = format!("down left some objects behind: {}", failures.join("; "));
            self.record(name, None, None, "down-failed", &message);
            return Err(Error::Incomplete(message));
        }
        self.record(
            name,
            None,
            None,
            "removed",
            &format!(
                "removed {} container(s), {} network(s), {} volume(s)",
                report.containers.len(),
                report.networks.len(),
                report.volumes.len()
            ),
        );
        Ok(report)
    }
}

/// An anonymous volume's name: 64 hex digits, as the engine makes them.
fn is_anonymous(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit())
}
