//! What the supervisor injects besides the project's own definition, kept
//! up at every `up` and repair: TLS leaves (and their reload into running
//! containers), secrets, and the box's engine set up for the stack's registry.

use turtle_compose::Project;
use turtle_engine::{Engine, State};
use turtle_reconcile::names;

use super::{Error, Supervisor};

impl<E: Engine> Supervisor<E> {
    /// Issues or renews the TLS leaves of `project`'s services; the services
    /// whose leaf changed are marked for a reload ([`Self::reload_tls`]).
    pub(super) fn ensure_leaves(&self, project: &Project) -> Result<(), Error> {
        let Some(t) = &self.handle.trust else {
            return Ok(());
        };
        let changes = t.ensure_leaves(project, std::time::SystemTime::now())?;
        for c in &changes {
            self.tls_pending
                .lock()
                .unwrap()
                .insert((project.name.to_string(), c.service.clone()));
            let names = c.leaf.names.join(", ");
            self.record(
                &project.name,
                Some(&c.service),
                None,
                "certificate",
                &format!(
                    "issued a certificate for {names} (serial {}), valid until {}",
                    c.leaf.serial,
                    turtle_certs::rfc3339(c.leaf.not_after)
                ),
            );
        }
        Ok(())
    }

    /// Makes the secrets the project's services list (see [`crate::secrets`]).
    pub(super) fn ensure_secrets(&self, project: &Project) -> Result<(), Error> {
        let Some(s) = &self.handle.secrets else {
            return Ok(());
        };
        let made = s.ensure(project)?;
        if !made.is_empty() {
            self.record(
                &project.name,
                None,
                None,
                "secret",
                &format!(
                    "made {} (read one with `turtle secret NAME -p {}`)",
                    made.join(", "),
                    project.name
                ),
            );
        }
        Ok(())
    }

    /// Sets the box's engine up to trust and resolve the project's registry
    /// (see [`crate::engine_trust`]).
    pub(super) fn ensure_engine_trust(&self, project: &Project) -> Result<(), Error> {
        let (Some(et), Some(t)) = (&self.engine_trust, &self.handle.trust) else {
            return Ok(());
        };
        let before = self
            .engine_setup
            .lock()
            .unwrap()
            .get(project.name.as_str())
            .cloned();
        let setup = et.apply(
            project,
            t.domain(),
            t.authority().root_pem(),
            crate::engine_trust::gateway_address,
        )?;
        if before.as_ref() != Some(&setup) && !setup.registries.is_empty() {
            self.record(
                &project.name,
                None,
                None,
                "engine-trust",
                &format!(
                    "the engine trusts Turtle's CA for {} and resolves {} at {}",
                    setup.registries.join(", "),
                    setup.names.join(", "),
                    setup.address.map(|a| a.to_string()).unwrap_or_default()
                ),
            );
        }
        self.engine_setup
            .lock()
            .unwrap()
            .insert(project.name.to_string(), setup);
        Ok(())
    }

    /// Makes the running containers of services with a new leaf pick it up:
    /// the signal of `io.turtle.tls.reload`, else a restart. Services `apply`
    /// just (re)started already read it. A service stays marked until its
    /// reload succeeded (or it has no running container, which reads the
    /// leaf when it starts), so a failed apply or engine call is retried at
    /// the next repair.
    pub(super) async fn reload_tls(&self, project: &Project, applied: &[String]) {
        let services: Vec<String> = self
            .tls_pending
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| *p == project.name)
            .map(|(_, s)| s.clone())
            .collect();
        if services.is_empty() {
            return;
        }
        let filter = names::project_filter(&project.name);
        let Ok(containers) = self.handle.engine.list_containers(&filter).await else {
            return;
        };
        let done = |service: &String| {
            self.tls_pending
                .lock()
                .unwrap()
                .remove(&(project.name.to_string(), service.clone()));
        };
        for service in &services {
            let of_service: Vec<_> = containers
                .iter()
                .filter(|c| c.labels.get(names::SERVICE) == Some(service))
                .collect();
            if applied.contains(service)
                || of_service
                    .iter()
                    .all(|c| c.state != State::Running && c.state != State::Paused)
            {
                done(service);
                continue;
            }
            // Paused (by shedding): reloaded once it runs again.
            if of_service.iter().any(|c| c.state == State::Paused) {
                continue;
            }
            let mut all_ok = true;
            let signal = project
                .services
                .get(service.as_str())
                .and_then(|s| s.labels.get(crate::trust::TLS_RELOAD_LABEL));
            for c in of_service.iter().filter(|c| c.state == State::Running) {
                let result = match signal {
                    Some(sig) => self.handle.engine.kill_container(&c.id, sig).await,
                    None => {
                        self.pre_stop(Some(project), c).await;
                        let r = self.handle.engine.restart_container(&c.id, None).await;
                        if r.is_ok() {
                            // A failing hook is recorded; the container runs anyway.
                            let _ = self.post_start(Some(project), c).await;
                        }
                        r
                    }
                };
                let how = signal.map_or("restarted".to_string(), |s| format!("sent {s}"));
                match result {
                    Ok(()) => self.record(
                        &project.name,
                        Some(service),
                        Some(&c.name),
                        "certificate-reload",
                        &format!("{how} so it serves its new certificate"),
                    ),
                    Err(e) => {
                        all_ok = false;
                        self.record(
                            &project.name,
                            Some(service),
                            Some(&c.name),
                            "certificate-reload-failed",
                            &format!(
                                "cannot reload its certificate (retried at the next repair): {e}"
                            ),
                        )
                    }
                }
            }
            if all_ok {
                done(service);
            }
        }
    }
}
