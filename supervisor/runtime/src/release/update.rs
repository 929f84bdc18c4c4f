//! `push` and `rollback`: the update driver (being written).

use turtle_compose::{Project, ProjectName};
use turtle_engine::Engine;

use super::{PushOptions, Release};
use crate::error::Error;
use crate::supervisor::Supervisor;

type Sink<'a> = &'a (dyn Fn(crate::apply::Event) + Send + Sync);

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
        let _ = (project, opts, sink);
        Err(Error::Incomplete("push is being written".into()))
    }

    /// Returns to release `to` (default: the one before the current).
    pub async fn rollback(
        &self,
        project: &ProjectName,
        to: Option<&str>,
        opts: &PushOptions,
        sink: Sink<'_>,
    ) -> Result<Release, Error> {
        let _ = (project, to, opts, sink);
        Err(Error::Incomplete("rollback is being written".into()))
    }

    /// The project's releases, newest first.
    pub fn releases(&self, project: &ProjectName) -> Result<Vec<Release>, Error> {
        Ok(self.store().releases(project.as_str())?)
    }
}
