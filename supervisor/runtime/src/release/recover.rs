//! Finishing updates a killed daemon left in its journal.
//!
//! At the daemon's start, before the keep-alive runs, every journal entry is
//! carried to an end from the phase it records:
//!
//! - `download`: nothing was switched; whatever a kill-then-download or
//!   delete-then-download strategy had stopped comes back with the previous
//!   release, and the release is marked failed;
//! - `switch` and `settle`: the release is switched again (the plan does
//!   only what is missing) and gets a whole settle window again: committed,
//!   or rolled back;
//! - `roll-back`: the previous release is switched again.
//!
//! Each step is idempotent (plans are computed from what the engine has),
//! so a kill during recovery is recovered the same way.

use turtle_engine::Engine;

use super::{Outcome, Phase, Release};
use crate::apply::Event;
use crate::error::Error;
use crate::supervisor::Supervisor;

impl<E: Engine> Supervisor<E> {
    /// Finishes every update in the journal; answers the releases as they
    /// ended.
    pub async fn recover(
        &self,
        sink: &(dyn Fn(Event) + Send + Sync),
    ) -> Result<Vec<Release>, Error> {
        let mut out = Vec::new();
        for journal in self.store().journals()? {
            let update = self.lock_for(&format!("release:{}", journal.project));
            let _update = update.lock().await;
            let Some(release) = self.store().release(&journal.release)? else {
                // The release row never made it: nothing to finish.
                self.store().close_journal(
                    &journal.project,
                    &journal.release,
                    Outcome::Failed,
                    None,
                )?;
                continue;
            };
            let previous = match &journal.previous {
                Some(id) => self.store().release(id)?,
                None => None,
            };
            self.record(
                &journal.project,
                None,
                None,
                "release-recovering",
                &format!(
                    "release {} ({}) was cut short in its {:?} phase: finishing it",
                    release.seq, release.id, journal.phase
                ),
            );
            let ended = match journal.phase {
                Phase::Download => {
                    let why =
                        "the supervisor stopped during the download; the previous release runs";
                    // A strategy's stop the killed daemon sent may still be
                    // on its way through the engine: finished first, it
                    // cannot land after the previous release started.
                    self.finish_stops(&journal.project).await;
                    if let Some(p) = &previous {
                        self.switch(p, sink).await?;
                    }
                    self.store().close_journal(
                        &journal.project,
                        &release.id,
                        Outcome::Failed,
                        Some(why),
                    )?;
                    self.record(&journal.project, None, None, "release-failed", why);
                    self.store()
                        .release(&release.id)?
                        .unwrap_or(release.clone())
                }
                Phase::Switch | Phase::Settle => {
                    self.deliver(&release, previous.as_ref(), journal.clone(), sink)
                        .await?
                }
                Phase::RollBack => {
                    let why = journal
                        .reason
                        .clone()
                        .unwrap_or_else(|| "rolled back".into());
                    self.roll_back(&release, previous.as_ref(), journal.clone(), why, sink)
                        .await?
                }
            };
            out.push(ended);
        }
        Ok(out)
    }
}

impl<E: Engine> Supervisor<E> {
    /// Stops the containers of the project's held services (those a
    /// kill-then-download strategy stops are held before the stop is
    /// sent): a stop already under way completes before this returns, and
    /// one never sent is done now, as the strategy wanted. Errors are
    /// logged: the switch that follows decides what runs.
    async fn finish_stops(&self, project: &str) {
        let held = match self.store().held(project) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(project, "recovery: cannot read the held services: {e}");
                return;
            }
        };
        let engine = &*self.handle().engine;
        for service in held {
            let filter = turtle_reconcile::names::service_filter(project, &service);
            let Ok(containers) = engine.list_containers(&filter).await else {
                continue;
            };
            for c in containers
                .iter()
                .filter(|c| c.state == turtle_engine::State::Running)
            {
                if let Err(e) = engine.stop_container(&c.id, None).await {
                    tracing::warn!(project, service, "recovery: stopping {}: {e}", c.name);
                }
            }
        }
    }
}
