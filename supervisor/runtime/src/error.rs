//! What can go wrong in the supervisor's operations: every error of the
//! layers below, plus the supervisor's own.

use turtle_engine::EngineError;
use turtle_reconcile::plan::PlanError;

use crate::apply::ApplyError;
use crate::device::DeviceError;
use crate::engine_trust::EngineTrustError;
use crate::secrets::SecretError;
use crate::store::StoreError;
use crate::trust::TrustError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Device(#[from] DeviceError),
    #[error(transparent)]
    Secret(#[from] SecretError),
    #[error(transparent)]
    EngineTrust(#[from] EngineTrustError),
    #[error("no project named {0} is applied here (see turtle ps --all)")]
    UnknownProject(String),
    #[error("project {project} has no service {service}")]
    UnknownService { project: String, service: String },
    #[error("{0}")]
    Incomplete(String),
}
