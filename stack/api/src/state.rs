//! What every handler shares: the pool and the configuration.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use deadpool_postgres::Pool;

use crate::config::Config;

/// The handlers' state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    pub pool: Pool,
    pub config: Arc<Config>,
    /// The OpenAPI document as served (with this stack's public URL).
    pub openapi: Arc<String>,
    /// Whether the last health check passed (failures are logged on change only).
    pub healthy: Arc<AtomicBool>,
}
