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
