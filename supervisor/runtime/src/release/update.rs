//! `push` and `rollback`: the update driver (see the module docs of
//! [`crate::release`] for the phases).
//!
//! Two locks: the project's *update* lock is held for a whole update (one
//! update of a project at a time), the project's lock (the one `up`,
//! `down` and repairs take) only while containers are switched, so the
//! keep-alive still repairs the running release during a long download,
//! a wait for an update lock, or the settle window.

use std::time::Duration;

use tokio::time::Instant;
use turtle_compose::{Project, ProjectName};
use turtle_engine::Engine;
use turtle_reconcile::plan::{Action, Mode, Plan};

use super::{
    DEFAULT_SETTLE, Journal, Origin, Outcome, Phase, PushOptions, Release, SETTLE_LABEL, Strategy,
    gate, locks,
};
use crate::apply::{self, Event};
use crate::error::Error;
use crate::store::now_millis;
use crate::supervisor::Supervisor;

type Sink<'a> = &'a (dyn Fn(Event) + Send + Sync);

/// How long an update waits for services' update locks before it gives
/// up (the release fails, the old one keeps running).
pub const LOCK_WAIT: Duration = Duration::from_secs(3600);
/// How often a held update lock is looked at again.
const LOCK_LOOK: Duration = Duration::from_millis(250);

/// How an update that did not commit ended.
enum Miss {
    /// Before anything was switched: the previous release still runs.
    Failed(String),
    /// After the switch: roll back.
    Unhealthy(String),
}

impl<E: Engine> Supervisor<E> {
    /// Builds and pins `project`'s images, records the release and applies
    /// it through the health gate; a release that fails the gate is rolled
    /// back (the answer's outcome says so).
    pub async fn push(
        &self,
        project: &Project,
        opts: &PushOptions,
        sink: Sink<'_>,
    ) -> Result<Release, Error> {
        let update = self.lock_for(&format!("release:{}", project.name));
        let _update = update.lock().await;
        self.refuse_in_flight(&project.name)?;
        let previous = self.current_or_adopted(&project.name).await?;
        let settle = self.settle_window(project, opts.settle);
        let mut release = Release {
            id: new_id(&project.name),
            project: project.name.to_string(),
            seq: 0,
            version: opts.version.clone().unwrap_or_default(),
            notes: opts.notes.clone().unwrap_or_default(),
            created_ms: now_millis(),
            origin: opts.origin.clone().unwrap_or(Origin::Push),
            compose: project.clone(),
            images: Default::default(),
            outcome: Outcome::Pending,
            reason: None,
            finished_ms: None,
        };
        self.store().add_release(&mut release)?;
        let mut journal = Journal::begin(
            &release,
            previous.as_ref(),
            Phase::Download,
            settle,
            opts.force,
        );
        self.store().write_journal(&journal)?;
        self.say(
            &release,
            sink,
            &format!(
                "release {} ({}, version {}): download",
                release.seq, release.id, release.version
            ),
        );
        let stopped = match self.download(project, previous.as_ref(), opts, sink).await {
            Ok(stopped) => stopped,
            Err((e, stopped)) => {
                return self
                    .fail_before_switch(&release, previous.as_ref(), stopped, &e, sink)
                    .await;
            }
        };
        match super::pin::pin(&*self.handle().engine, project).await {
            Ok(images) => release.images = images,
            Err(e) => {
                return self
                    .fail_before_switch(&release, previous.as_ref(), stopped, &e.to_string(), sink)
                    .await;
            }
        }
        self.store().update_release(&release)?;
        journal.phase = Phase::Switch;
        journal.since_ms = now_millis();
        self.store().write_journal(&journal)?;
        self.deliver(&release, previous.as_ref(), journal, sink)
            .await
    }

    /// Returns to release `to` (an ID or unique prefix; default the
    /// committed one before the current), as a new release carrying its
    /// project and images, through the same switch and gate as a push.
    pub async fn rollback(
        &self,
        project: &ProjectName,
        to: Option<&str>,
        opts: &PushOptions,
        sink: Sink<'_>,
    ) -> Result<Release, Error> {
        let update = self.lock_for(&format!("release:{project}"));
        let _update = update.lock().await;
        self.refuse_in_flight(project)?;
        let all = self.store().releases(project.as_str())?;
        let current = all.iter().find(|r| r.outcome == Outcome::Committed);
        let target = match to {
            Some(prefix) => {
                let found: Vec<&Release> =
                    all.iter().filter(|r| r.id.starts_with(prefix)).collect();
                match found.as_slice() {
                    [one] => (*one).clone(),
                    [] => {
                        return Err(Error::Incomplete(format!(
                            "project {project} has no release {prefix} (see turtle releases)"
                        )));
                    }
                    _ => {
                        return Err(Error::Incomplete(format!(
                            "{prefix} names {} releases of {project}: give more of the ID",
                            found.len()
                        )));
                    }
                }
            }
            None => all
                .iter()
                .filter(|r| r.outcome == Outcome::Committed)
                .nth(1)
                .cloned()
                .ok_or_else(|| {
                    Error::Incomplete(format!(
                        "project {project} has no committed release before the current one to roll back to"
                    ))
                })?,
        };
        if target.images.is_empty() {
            return Err(Error::Incomplete(format!(
                "release {} never got its images (it failed at the download): pick another",
                target.id
            )));
        }
        for pin in target.images.values() {
            if self.handle().engine.inspect_image(&pin.id).await?.is_none() {
                return Err(Error::Incomplete(format!(
                    "release {}: image {} ({}) is no longer on the engine; push that version again",
                    target.id, pin.reference, pin.id
                )));
            }
        }
        let settle = self.settle_window(&target.compose, opts.settle);
        let mut release = Release {
            id: new_id(project),
            seq: 0,
            version: target.version.clone(),
            notes: format!("rollback to release {} ({})", target.seq, target.id),
            created_ms: now_millis(),
            origin: Origin::Rollback {
                to: target.id.clone(),
            },
            outcome: Outcome::Pending,
            reason: None,
            finished_ms: None,
            ..target.clone()
        };
        self.store().add_release(&mut release)?;
        let journal = Journal::begin(&release, current, Phase::Switch, settle, opts.force);
        self.store().write_journal(&journal)?;
        self.say(
            &release,
            sink,
            &format!(
                "release {} ({}): back to release {} (version {})",
                release.seq, release.id, target.seq, target.version
            ),
        );
        self.deliver(&release, current, journal, sink).await
    }

    /// The project's releases, newest first.
    pub fn releases(&self, project: &ProjectName) -> Result<Vec<Release>, Error> {
        Ok(self.store().releases(project.as_str())?)
    }

    /// Waits for update locks, switches, gates; commits, or rolls back.
    /// Push, rollback and recovery all end here.
    pub(crate) async fn deliver(
        &self,
        release: &Release,
        previous: Option<&Release>,
        mut journal: Journal,
        sink: Sink<'_>,
    ) -> Result<Release, Error> {
        let settle = Duration::from_millis(journal.settle_ms);
        let verdict = match self.wait_for_locks(release, journal.force, sink).await {
            Err(why) => Err(Miss::Failed(why)),
            Ok(()) => {
                self.say(release, sink, "switch");
                match self.switch(release, sink).await {
                    Err(e) => Err(Miss::Unhealthy(format!("the switch failed: {e}"))),
                    Ok(_) => {
                        journal.phase = Phase::Settle;
                        journal.since_ms = now_millis();
                        self.store().write_journal(&journal)?;
                        self.say(
                            release,
                            sink,
                            &format!(
                                "settle: every service healthy for {} s",
                                settle.as_secs_f32()
                            ),
                        );
                        let project = self.deployed(&release.deployable())?;
                        gate::settle(
                            &*self.handle().engine,
                            &project,
                            settle,
                            &self.config().apply,
                            &|b| sink(Event::ready(0, b)),
                        )
                        .await
                        .map_err(Miss::Unhealthy)
                    }
                }
            }
        };
        match verdict {
            Ok(()) => {
                self.store().close_journal(
                    &release.project,
                    &release.id,
                    Outcome::Committed,
                    None,
                )?;
                self.say(release, sink, "committed");
                self.record(
                    &release.project,
                    None,
                    None,
                    "release-committed",
                    &format!("release {} ({}) committed", release.seq, release.id),
                );
                self.collect_images(release, previous).await;
                self.list_unused_volumes(release, sink).await;
            }
            Err(Miss::Failed(why)) => {
                self.store().close_journal(
                    &release.project,
                    &release.id,
                    Outcome::Failed,
                    Some(&why),
                )?;
                self.say(release, sink, &format!("failed: {why}"));
                self.record(&release.project, None, None, "release-failed", &why);
            }
            Err(Miss::Unhealthy(why)) => {
                return self.roll_back(release, previous, journal, why, sink).await;
            }
        }
        self.stored_release(&release.id)
    }

    /// Puts the previous release back after `release` failed its gate.
    pub(crate) async fn roll_back(
        &self,
        release: &Release,
        previous: Option<&Release>,
        mut journal: Journal,
        why: String,
        sink: Sink<'_>,
    ) -> Result<Release, Error> {
        let Some(previous) = previous else {
            let why = format!("{why}; there is no earlier release to return to, so it stays");
            self.store().close_journal(
                &release.project,
                &release.id,
                Outcome::Failed,
                Some(&why),
            )?;
            self.say(release, sink, &format!("failed: {why}"));
            self.record(&release.project, None, None, "release-failed", &why);
            return self.stored_release(&release.id);
        };
        journal.phase = Phase::RollBack;
        journal.since_ms = now_millis();
        journal.reason = Some(why.clone());
        self.store().write_journal(&journal)?;
        self.say(
            release,
            sink,
            &format!(
                "{why}: rolling back to release {} ({})",
                previous.seq, previous.id
            ),
        );
        let began = Instant::now();
        let mut reason = why;
        let back = match self.switch(previous, sink).await {
            Err(e) => Err(e.to_string()),
            Ok(_) => {
                let project = self.deployed(&previous.deployable())?;
                crate::ready::wait_ready(
                    &*self.handle().engine,
                    &project,
                    Duration::from_millis(journal.settle_ms).max(Duration::from_secs(10)),
                    &self.config().apply,
                    &|b| sink(Event::ready(0, b)),
                )
                .await
                .map_err(|e| e.to_string())
            }
        };
        match back {
            Ok(()) => self.say(
                release,
                sink,
                &format!(
                    "release {} serves again after {} ms",
                    previous.seq,
                    began.elapsed().as_millis()
                ),
            ),
            Err(e) => {
                reason = format!("{reason}; the previous release is not healthy either: {e}");
            }
        }
        self.store().close_journal(
            &release.project,
            &release.id,
            Outcome::RolledBack,
            Some(&reason),
        )?;
        self.record(
            &release.project,
            None,
            None,
            "release-rolled-back",
            &format!(
                "release {} ({}) rolled back to {}: {reason}",
                release.seq, release.id, previous.seq
            ),
        );
        self.stored_release(&release.id)
    }

    /// Replaces the running containers by `release`'s: hand-over services
    /// beside their old containers, then the rest as `up` does.
    pub(crate) async fn switch(
        &self,
        release: &Release,
        sink: Sink<'_>,
    ) -> Result<apply::Report, Error> {
        let lock = self.lock_for(&release.project);
        let _guard = lock.lock().await;
        let written = release.deployable();
        let project = self.deployed(&written)?;
        for (name, service) in &project.services {
            if strategy(service)? != Strategy::HandOver {
                continue;
            }
            let run_dir = self.handle().run_dir.clone();
            let dir = run_dir
                .as_ref()
                .map(|d| locks::service_dir(d, &release.project, name));
            if let (Some(run_dir), Some(d)) = (&run_dir, &dir) {
                std::fs::create_dir_all(d)
                    .map_err(|e| Error::Incomplete(format!("cannot make {}: {e}", d.display())))?;
                // A file left by the last hand-over must not end this one.
                locks::clear_handover(run_dir, &release.project, name);
            }
            let settings =
                crate::handover::settings(&project, name, dir).map_err(Error::Incomplete)?;
            crate::handover::replace(
                &*self.handle().engine,
                &project,
                name,
                &settings,
                &self.config().apply,
                sink,
            )
            .await?;
        }
        self.converge(&written, &project, sink).await
    }

    /// Builds and pulls what `project` needs, after stopping (or deleting)
    /// the services whose strategy says so. Answers the services it
    /// stopped; on failure, with them.
    async fn download(
        &self,
        project: &Project,
        previous: Option<&Release>,
        opts: &PushOptions,
        sink: Sink<'_>,
    ) -> Result<Vec<String>, (String, Vec<String>)> {
        let engine = &*self.handle().engine;
        let deployed = self
            .deployed(project)
            .map_err(|e| (e.to_string(), vec![]))?;
        let images = self
            .image_steps(&deployed, opts)
            .await
            .map_err(|e| (e.to_string(), vec![]))?;
        self.check_disk(&project.name, &images, sink)
            .await
            .map_err(|e| (e, vec![]))?;
        let mut stopped = Vec::new();
        for (name, service) in &deployed.services {
            let strategy = strategy(service).map_err(|e| (e.to_string(), vec![]))?;
            if !matches!(
                strategy,
                Strategy::KillThenDownload | Strategy::DeleteThenDownload
            ) || !changes(project, previous, name)
            {
                continue;
            }
            // Held, so no repair starts or recreates them meanwhile.
            self.store()
                .set_held(&project.name, name, true)
                .map_err(|e| (e.to_string(), stopped.clone()))?;
            stopped.push(name.to_string());
            let filter = turtle_reconcile::names::service_filter(&project.name, name);
            let containers = engine
                .list_containers(&filter)
                .await
                .map_err(|e| (e.to_string(), stopped.clone()))?;
            for c in containers {
                self.say_project(
                    &project.name,
                    sink,
                    &format!("{strategy}: stopping {}", c.name),
                );
                let r = match strategy {
                    Strategy::DeleteThenDownload => engine.remove_container(&c.id, false).await,
                    _ => engine.stop_container(&c.id, None).await,
                };
                r.map_err(|e| (e.to_string(), stopped.clone()))?;
            }
            if strategy == Strategy::DeleteThenDownload
                && let Some(pin) = previous.and_then(|p| p.images.get(name.as_str()))
            {
                match engine.remove_image(&pin.id).await {
                    Ok(()) => self.say_project(
                        &project.name,
                        sink,
                        &format!("{strategy}: removed image {} of {name}", pin.reference),
                    ),
                    // Another service or release still uses it: kept.
                    Err(e) => tracing::info!("{strategy}: image {} kept: {e}", pin.id),
                }
            }
        }
        if !images.steps.is_empty() {
            apply::apply(engine, &deployed, &images, &self.config().apply, sink)
                .await
                .map_err(|e| (Error::from(e).to_string(), stopped.clone()))?;
        }
        Ok(stopped)
    }

    /// The builds (of every service with a build section, or of `only`),
    /// the pulls `pull_policy` asks for, and the images missing.
    async fn image_steps(&self, deployed: &Project, opts: &PushOptions) -> Result<Plan, Error> {
        let mut refresh = self.refresh_plan(deployed, true).await?;
        if !opts.only.is_empty() {
            refresh.steps.retain(|s| match &s.action {
                Action::BuildImage { service, .. } => opts.only.contains(service),
                _ => true,
            });
        }
        let plan = self.plan_deployed(deployed, Mode::Up).await?;
        let mut steps = refresh.steps;
        for s in plan.steps {
            let wanted = matches!(
                s.action,
                Action::PullImage { .. } | Action::BuildImage { .. }
            ) && !steps.iter().any(|t| t.action == s.action);
            if wanted {
                steps.push(s);
            }
        }
        // Images do not wait for each other.
        for s in &mut steps {
            s.after.clear();
        }
        Ok(Plan {
            project: deployed.name.to_string(),
            steps,
        })
    }

    /// Refuses the update, before anything is stopped, when the engine's
    /// disk cannot take it and keep the reserve. What a pull or a build
    /// writes is known only afterwards: those are named, and the reserve
    /// covers them. A data directory Turtle cannot see (a remote engine)
    /// is a warning.
    async fn check_disk(&self, project: &str, images: &Plan, sink: Sink<'_>) -> Result<(), String> {
        let mut need = super::disk::Need::default();
        for s in &images.steps {
            match &s.action {
                Action::PullImage { image } => need.add_unknown(format!("{image} (pulled)")),
                Action::BuildImage { image, .. } => need.add_unknown(format!("{image} (built)")),
                _ => {}
            }
        }
        let reserve =
            super::disk::reserve(&self.config().releases, self.handle().device.as_deref());
        match super::disk::check(&*self.handle().engine, &need, &reserve).await {
            Ok(_) => Ok(()),
            Err(e @ super::disk::DiskError::NotEnough(_)) => {
                Err(format!("{e}; nothing was stopped"))
            }
            Err(e) => {
                self.say_project(project, sink, &format!("warning: no disk check: {e}"));
                Ok(())
            }
        }
    }

    /// A release that failed before its switch: whatever its strategy
    /// stopped comes back, and the history says why.
    async fn fail_before_switch(
        &self,
        release: &Release,
        previous: Option<&Release>,
        stopped: Vec<String>,
        why: &str,
        sink: Sink<'_>,
    ) -> Result<Release, Error> {
        let mut why = why.to_string();
        if !stopped.is_empty() {
            match previous {
                Some(p) => {
                    if let Err(e) = self.switch(p, sink).await {
                        why = format!(
                            "{why}; bringing back {} failed too: {e}",
                            stopped.join(", ")
                        );
                    }
                }
                None => {
                    for s in &stopped {
                        self.store().set_held(&release.project, s, false)?;
                    }
                }
            }
        }
        self.store()
            .close_journal(&release.project, &release.id, Outcome::Failed, Some(&why))?;
        self.say(release, sink, &format!("failed: {why}"));
        self.record(&release.project, None, None, "release-failed", &why);
        self.stored_release(&release.id)
    }

    /// Waits while a service that the release replaces or removes holds
    /// its update lock (not with `force`).
    async fn wait_for_locks(
        &self,
        release: &Release,
        force: bool,
        sink: Sink<'_>,
    ) -> Result<(), String> {
        let Some(run_dir) = self.handle().run_dir.clone() else {
            return Ok(());
        };
        let project = self
            .deployed(&release.deployable())
            .map_err(|e| e.to_string())?;
        let plan = self
            .plan_deployed(&project, Mode::Up)
            .await
            .map_err(|e| e.to_string())?;
        let mut touched: Vec<&str> = plan
            .steps
            .iter()
            .filter_map(|s| match &s.action {
                Action::RecreateContainer { service, .. }
                | Action::RemoveContainer { service, .. }
                | Action::RestartContainer { service, .. } => Some(service.as_str()),
                _ => None,
            })
            .collect();
        touched.sort_unstable();
        touched.dedup();
        let began = Instant::now();
        let mut told = Vec::new();
        loop {
            let held = locks::held(&run_dir, &release.project, touched.iter().copied());
            if held.is_empty() {
                if !told.is_empty() {
                    self.say(release, sink, "update locks released");
                }
                return Ok(());
            }
            if force {
                self.say(
                    release,
                    sink,
                    &format!(
                        "update lock held by {}: overridden (--force)",
                        held.join(", ")
                    ),
                );
                return Ok(());
            }
            if held != told {
                let line = format!(
                    "waiting: {} hold(s) the update lock ({}/{} inside the container)",
                    held.join(", "),
                    locks::MOUNT,
                    locks::LOCK_FILE
                );
                self.record(&release.project, None, None, "update-locked", &line);
                sink(Event::Release { line });
                told = held.clone();
            }
            if began.elapsed() > LOCK_WAIT {
                return Err(format!(
                    "{} held the update lock for {} s; push again when it is released, or with --force",
                    held.join(", "),
                    LOCK_WAIT.as_secs()
                ));
            }
            tokio::time::sleep(LOCK_LOOK).await;
        }
    }

    /// The current release; for a project applied with `up` and never
    /// pushed, a release recorded from what runs now (`adopted`), so the
    /// first push can roll back to it.
    async fn current_or_adopted(&self, name: &str) -> Result<Option<Release>, Error> {
        if let Some(r) = self.store().current_release(name)? {
            return Ok(Some(r));
        }
        let pname: ProjectName = name
            .parse()
            .map_err(|e: turtle_compose::NameError| Error::Incomplete(e.to_string()))?;
        let Some(stored) = self.store().project(&pname)? else {
            return Ok(None);
        };
        let engine = &*self.handle().engine;
        let containers = engine
            .list_containers(&turtle_reconcile::names::project_filter(name))
            .await?;
        let mut images = std::collections::BTreeMap::new();
        for (service, s) in &stored.services {
            let reference = s.image.clone().unwrap_or_default();
            let running = containers.iter().find(|c| {
                c.labels
                    .get(turtle_reconcile::names::SERVICE)
                    .map(String::as_str)
                    == Some(service.as_str())
            });
            let id = match running {
                Some(c) => Some(c.image_id.clone()),
                None => engine.inspect_image(&reference).await?.map(|i| i.id),
            };
            let Some(id) = id else {
                // Nothing to return to for this service: no adoption.
                return Ok(None);
            };
            images.insert(
                service.to_string(),
                super::PinnedImage {
                    reference,
                    id,
                    repo_digest: None,
                },
            );
        }
        let mut r = Release {
            id: new_id(name),
            project: name.to_string(),
            seq: 0,
            version: "adopted".into(),
            notes: "what `turtle up` had applied before the first push".into(),
            created_ms: now_millis(),
            origin: Origin::Adopted,
            compose: stored,
            images,
            outcome: Outcome::Committed,
            reason: None,
            finished_ms: Some(now_millis()),
        };
        self.store().add_release(&mut r)?;
        Ok(Some(r))
    }

    /// An update cut short (the daemon was killed) is finished at the
    /// daemon's start, before any other.
    fn refuse_in_flight(&self, project: &str) -> Result<(), Error> {
        match self.store().journal(project)? {
            Some(j) => Err(Error::Incomplete(format!(
                "an update of {project} (release {}) is in flight; the daemon finishes it when it starts: start `turtle daemon`, or wait",
                j.release
            ))),
            None => Ok(()),
        }
    }

    /// The settle window: the push's, else the project's label (the
    /// longest), else the box's, else 30 s.
    fn settle_window(&self, project: &Project, asked: Option<Duration>) -> Duration {
        let label = project
            .services
            .values()
            .filter_map(|s| s.labels.get(SETTLE_LABEL))
            .filter_map(|v| v.parse::<turtle_units::Duration>().ok())
            .map(Duration::from)
            .max();
        asked
            .or(label)
            .or(self.config().releases.settle.map(Duration::from))
            .unwrap_or(DEFAULT_SETTLE)
    }

    /// After a commit: images that earlier releases pinned and neither
    /// this one nor the previous runs are removed.
    async fn collect_images(&self, release: &Release, previous: Option<&Release>) {
        let mut keep = release.image_ids();
        if let Some(p) = previous {
            keep.extend(p.image_ids());
        }
        let report = super::gc::remove_unused(
            &*self.handle().engine,
            self.store(),
            &release.project,
            &keep,
        )
        .await;
        if !report.removed.is_empty() {
            self.record(
                &release.project,
                None,
                None,
                "images-removed",
                &format!(
                    "removed image(s) no release needs: {}",
                    report.removed.join(", ")
                ),
            );
        }
    }

    /// Named volumes of the project that the committed release no longer
    /// uses are kept (their data is never removed by an update) and said.
    async fn list_unused_volumes(&self, release: &Release, sink: Sink<'_>) {
        let filter = turtle_reconcile::names::project_filter(&release.project);
        let Ok(volumes) = self.handle().engine.list_volumes(&filter).await else {
            return;
        };
        let used: Vec<&str> = release
            .compose
            .volumes
            .values()
            .map(|v| v.name.as_str())
            .collect();
        let unused: Vec<String> = volumes
            .into_iter()
            .map(|v| v.name)
            .filter(|n| !used.contains(&n.as_str()))
            .collect();
        if !unused.is_empty() {
            let line = format!(
                "volume(s) the release no longer uses, kept with their data: {} (`docker volume rm` removes one)",
                unused.join(", ")
            );
            self.record(&release.project, None, None, "volumes-unused", &line);
            sink(Event::Release { line });
        }
    }

    fn stored_release(&self, id: &str) -> Result<Release, Error> {
        self.store()
            .release(id)?
            .ok_or_else(|| Error::Incomplete(format!("release {id} vanished from the store")))
    }

    fn say(&self, release: &Release, sink: Sink<'_>, line: &str) {
        self.say_project(&release.project, sink, line);
    }

    /// Tells the caller and the event log (kind `release`) what the update
    /// is doing.
    fn say_project(&self, project: &str, sink: Sink<'_>, line: &str) {
        self.record(project, None, None, "release", line);
        sink(Event::Release {
            line: line.to_string(),
        });
    }
}

/// A service's update strategy, from its label.
pub fn strategy(service: &turtle_compose::Service) -> Result<Strategy, Error> {
    match service.labels.get(super::STRATEGY_LABEL) {
        None => Ok(Strategy::default()),
        Some(v) => v.parse().map_err(Error::Incomplete),
    }
}

/// Whether the push changes service `name`: new, configured differently, or
/// built (a build may change the image).
fn changes(project: &Project, previous: Option<&Release>, name: &str) -> bool {
    let new = &project.services[name];
    if new.build.is_some() {
        return true;
    }
    let Some(old) = previous.and_then(|p| p.compose.services.get(name)) else {
        return true;
    };
    old != new
}

/// A new release ID: 12 hex digits of a hash of the project, the time and
/// this process.
fn new_id(project: &str) -> String {
    use sha2::{Digest, Sha256};
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let digest = Sha256::digest(format!("{project}/{nanos}/{}/{n}", std::process::id()));
    hex::encode(&digest[..6])
}
