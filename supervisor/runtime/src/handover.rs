//! The hand-over strategy (being written on branch `handover`).

use std::path::PathBuf;
use std::time::Duration;

use turtle_compose::Project;
use turtle_engine::Engine;

use crate::apply::{ApplyError, Event, Options};

pub struct HandOver {
    pub dir: Option<PathBuf>,
    pub timeout: Duration,
}

pub fn settings(
    project: &Project,
    service: &str,
    dir: Option<PathBuf>,
) -> Result<HandOver, String> {
    let _ = (project, service);
    Ok(HandOver {
        dir,
        timeout: Duration::from_secs(60),
    })
}

/// Until hand-over lands, the planner replaces the service as usual.
pub async fn replace<E: Engine>(
    engine: &E,
    project: &Project,
    service: &str,
    settings: &HandOver,
    opts: &Options,
    sink: &(dyn Fn(Event) + Send + Sync),
) -> Result<Vec<String>, ApplyError> {
    let _ = (engine, project, service, settings, opts, sink);
    Ok(Vec::new())
}
