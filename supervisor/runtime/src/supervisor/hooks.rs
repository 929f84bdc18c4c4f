//! Lifecycle hooks around the supervisor's own starts and stops (`down`,
//! `turtle start/stop/restart`, heals), each failure an event.

use turtle_compose::Project;
use turtle_engine::{ContainerSummary, Engine};
use turtle_reconcile::names;

use super::{Error, Supervisor};
use crate::apply::ApplyError;

impl<E: Engine> Supervisor<E> {
    /// Runs the `pre_stop` hooks of `c`'s service; failures are recorded and
    /// the caller stops the container anyway.
    pub(super) async fn pre_stop(&self, project: Option<&Project>, c: &ContainerSummary) {
        let Some((p, service_name, service)) = service_of(project, c) else {
            return;
        };
        for e in crate::hooks::pre_stop(&*self.handle.engine, service, &c.id).await {
            self.record(
                &p.name,
                Some(service_name),
                Some(&c.name),
                "hook-failed",
                &format!("{e} (stopped anyway)"),
            );
        }
    }

    /// Runs the `post_start` hooks of `c`'s service; a failure is recorded
    /// and returned (the container stays running).
    pub(super) async fn post_start(
        &self,
        project: Option<&Project>,
        c: &ContainerSummary,
    ) -> Result<(), Error> {
        let Some((p, service_name, service)) = service_of(project, c) else {
            return Ok(());
        };
        crate::hooks::post_start(&*self.handle.engine, service, &c.id)
            .await
            .map_err(|e| {
                self.record(
                    &p.name,
                    Some(service_name),
                    Some(&c.name),
                    "hook-failed",
                    &e.to_string(),
                );
                Error::Apply(ApplyError::Hook {
                    what: format!("start {}", c.name),
                    source: Box::new(e),
                })
            })
    }
}

fn service_of<'a>(
    project: Option<&'a Project>,
    c: &'a ContainerSummary,
) -> Option<(&'a Project, &'a str, &'a turtle_compose::Service)> {
    let p = project?;
    let name = c.labels.get(names::SERVICE)?;
    Some((p, name.as_str(), p.services.get(name.as_str())?))
}
