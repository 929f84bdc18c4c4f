//! The narrow handle the daemon's workers (shedding, announcing; next the
//! release watcher, the device agent, metrics) get: the engine, the applied
//! projects and the event log, and the project as deployed, nothing more.
//!
//! A worker runs as `run(handle, shutdown)`. The handle does not know the
//! [`crate::supervisor::Supervisor`] (which holds one), so no worker can
//! reach back into the supervisor's operations or its locks: a worker that
//! must change a project's containers does so through the engine and says
//! so in the event log.

use std::sync::Arc;

use tokio::sync::broadcast;
use turtle_compose::Project;
use turtle_engine::Engine;

use crate::config::MdnsSection;
use crate::device::Device;
use crate::error::Error;
use crate::secrets::Secrets;
use crate::store::{EventRecord, Store};
use crate::trust::{Injection, Trust};

/// What a worker may use of the supervisor. Cheap to clone.
pub struct Handle<E: Engine> {
    pub(crate) engine: Arc<E>,
    pub(crate) store: Arc<Store>,
    pub(crate) events: broadcast::Sender<EventRecord>,
    /// The CA and the trust injected into containers; `None` deploys
    /// projects exactly as written (the unit tests).
    pub(crate) trust: Option<Arc<Trust>>,
    /// What is injected into every service (the trust's, or a preview of
    /// it for a dry run before the CA exists); `None` injects nothing.
    pub(crate) injection: Option<Injection>,
    /// The box's profile; `None` deploys without budgets (the unit tests).
    pub(crate) device: Option<Arc<Device>>,
    /// The secrets made for services; `None` makes none (the unit tests).
    pub(crate) secrets: Option<Secrets>,
    /// What the daemon publishes over mDNS.
    pub(crate) mdns: MdnsSection,
    /// Where each service's update-lock and hand-over directory lives
    /// (see [`crate::release::locks`]); `None` mounts none (the unit tests).
    pub(crate) run_dir: Option<std::path::PathBuf>,
}

impl<E: Engine> Clone for Handle<E> {
    fn clone(&self) -> Self {
        Self {
            engine: Arc::clone(&self.engine),
            store: Arc::clone(&self.store),
            events: self.events.clone(),
            trust: self.trust.clone(),
            injection: self.injection.clone(),
            device: self.device.clone(),
            secrets: self.secrets.clone(),
            mdns: self.mdns.clone(),
            run_dir: self.run_dir.clone(),
        }
    }
}

impl<E: Engine> Handle<E> {
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The applied projects (as written) and the event log.
    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn trust(&self) -> Option<&Arc<Trust>> {
        self.trust.as_ref()
    }

    pub fn device(&self) -> Option<&Arc<Device>> {
        self.device.as_ref()
    }

    /// The `mdns` section of the supervisor's config.
    pub fn mdns(&self) -> &MdnsSection {
        &self.mdns
    }

    /// The project as deployed: with the trust and names the supervisor
    /// injects (see [`crate::trust`]), the secrets services list (see
    /// [`crate::secrets`]), the budgets of the box's profile (see
    /// [`crate::device`]), the run directories (see
    /// [`crate::release::locks`]) and the companions that hold the ports of
    /// hand-over services (see [`crate::handover`]).
    pub fn deployed(&self, project: &Project) -> Result<Project, Error> {
        let mut out = match &self.injection {
            Some(inj) => crate::trust::decorate(project, inj)?,
            None => project.clone(),
        };
        if let Some(s) = &self.secrets {
            out = s.decorate(&out)?;
        }
        if let Some(d) = &self.device {
            out = d.decorate(&out)?;
        }
        if let Some(dir) = &self.run_dir {
            out = crate::release::locks::decorate(&out, dir);
        }
        // Last: the companion that holds a hand-over service's ports gets
        // none of the above (it mounts its service's run directory).
        out = crate::handover::decorate(
            &out,
            &crate::handover::Forwarder::default(),
            self.run_dir.as_deref(),
        );
        Ok(out)
    }

    /// Live events as they are recorded.
    pub fn subscribe(&self) -> broadcast::Receiver<EventRecord> {
        self.events.subscribe()
    }

    /// Logs, stores and broadcasts an event. A store failure is logged, not
    /// fatal: the event log must never stop the supervisor.
    pub fn record(
        &self,
        project: &str,
        service: Option<&str>,
        container: Option<&str>,
        kind: &str,
        message: &str,
    ) {
        tracing::info!(project, service, container, kind, "{message}");
        match self
            .store
            .record_event(project, service, container, kind, message)
        {
            Ok(ev) => {
                let _ = self.events.send(ev);
            }
            Err(e) => tracing::warn!("cannot record event: {e}"),
        }
    }
}
