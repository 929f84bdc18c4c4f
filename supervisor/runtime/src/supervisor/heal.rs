//! Healing: restarting unhealthy containers (the engine never does), with
//! backoff, and the `restart: true` dependents after them; crash loops.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use turtle_compose::{Project, RestartPolicy, Service};
use turtle_engine::{ContainerSummary, Engine, Health, State};
use turtle_reconcile::names;

use super::Supervisor;

impl<E: Engine> Supervisor<E> {
    /// Heals a container in the background, unless a heal of it is under way.
    pub(super) fn spawn_heal(self: &Arc<Self>, project: Project, c: ContainerSummary) {
        if !self.healing.lock().unwrap().insert(c.id.clone()) {
            return;
        }
        let this = Arc::clone(self);
        tokio::spawn(async move {
            this.heal(&project, &c).await;
            this.healing.lock().unwrap().remove(&c.id);
        });
    }

    /// Whether a service's containers crashed at least `crash_loop_deaths`
    /// times within the window. Crashes are the `crashed` events in the store,
    /// so the verdict survives a restart of the supervisor.
    pub(super) fn in_crash_loop(&self, project: &str, service: &str) -> bool {
        let since = crate::store::now_millis() - self.config.crash_loop_window.as_millis() as i64;
        self.handle
            .store
            .count_events(project, service, "crashed", since)
            .is_ok_and(|n| n >= self.config.crash_loop_deaths as i64)
    }

    /// Restarts an unhealthy container when its service allows it, with a
    /// backoff: 0 s for the first restart in the window, then 1 s, 2 s, ... 60 s.
    pub(super) async fn heal(&self, project: &Project, c: &ContainerSummary) {
        let Some(service_name) = c.labels.get(names::SERVICE) else {
            return;
        };
        let Some(service) = project.services.get(service_name.as_str()) else {
            return;
        };
        if !autoheal(service) {
            return;
        }
        let delay = {
            let mut heals = self.heals.lock().unwrap();
            let q = heals.entry(c.id.clone()).or_default();
            let now = Instant::now();
            while q
                .front()
                .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(600))
            {
                q.pop_front();
            }
            let n = q.len() as u32;
            q.push_back(now);
            if n == 0 {
                Duration::ZERO
            } else {
                Duration::from_secs((1u64 << (n - 1).min(6)).min(60))
            }
        };
        tokio::time::sleep(delay).await;
        // Still unhealthy? A restart by someone else may have fixed it.
        match self.handle.engine.inspect_container(&c.id).await {
            Ok(d) if d.health == Some(Health::Unhealthy) && d.state == State::Running => {}
            _ => return,
        }
        self.pre_stop(Some(project), c).await;
        // No timeout: the engine uses the container's own stop timeout.
        match self.handle.engine.restart_container(&c.id, None).await {
            Ok(()) => {
                // A failing hook is recorded; the container runs anyway.
                let _ = self.post_start(Some(project), c).await;
                let _ = self.handle.store.bump_restarts(&project.name, service_name);
                self.record(
                    &project.name,
                    Some(service_name),
                    Some(&c.name),
                    "unhealthy-restart",
                    &format!("restarted {} because its healthcheck failed", c.name),
                );
                self.restart_dependents(project, service_name).await;
            }
            Err(e) => self.record(
                &project.name,
                Some(service_name),
                Some(&c.name),
                "restart-failed",
                &format!("could not restart unhealthy {}: {e}", c.name),
            ),
        }
    }

    /// Restarts the services that declared `depends_on: {X: {restart: true}}`,
    /// and those sharing X's network stack (`network_mode: service:X`), whose
    /// namespace died with X.
    pub(super) async fn restart_dependents(&self, project: &Project, restarted: &str) {
        for (name, s) in &project.services {
            let follows = turtle_reconcile::plan::dependencies(s)
                .iter()
                .any(|(dep, _, restart)| dep == restarted && *restart);
            if !follows {
                continue;
            }
            let mut filter = names::project_filter(&project.name);
            filter.push(format!("{}={name}", names::SERVICE));
            let Ok(containers) = self.handle.engine.list_containers(&filter).await else {
                continue;
            };
            for c in containers.iter().filter(|c| c.state == State::Running) {
                self.pre_stop(Some(project), c).await;
                if self
                    .handle
                    .engine
                    .restart_container(&c.id, None)
                    .await
                    .is_ok()
                {
                    let _ = self.post_start(Some(project), c).await;
                    self.record(
                        &project.name,
                        Some(name),
                        Some(&c.name),
                        "dependency-restart",
                        &format!("restarted {} because {restarted} restarted", c.name),
                    );
                }
            }
        }
    }
}

/// Whether the supervisor restarts this service's containers when unhealthy.
///
/// The healthcheck may come from the compose file or from the image (the
/// container only turns unhealthy when it has one); one disabled in the compose
/// file turns healing off too.
pub fn autoheal(service: &Service) -> bool {
    service.healthcheck.as_ref().is_none_or(|h| h.is_active())
        && service.restart != RestartPolicy::No
        && service.labels.get(names::AUTOHEAL).map(String::as_str) != Some("false")
}
