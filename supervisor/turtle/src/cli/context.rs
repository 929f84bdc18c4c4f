//! What every verb needs: the failure type with its exit code, loading the
//! project, and reaching either the daemon or an in-process supervisor.

use std::sync::Arc;

use turtle_compose::{LoadOptions, Project};

use super::{GlobalArgs, ProjectArgs};
use crate::api::client::{Client, ClientError};
use crate::device::Device;
use crate::engine::docker::Docker;
use crate::store::Store;
use crate::supervisor::{self, Supervisor};
use crate::trust::Trust;

/// A failed command: the message to print and the exit code.
#[derive(Debug)]
pub struct Failure {
    pub message: String,
    pub code: u8,
}

impl Failure {
    /// The operation failed (exit 1).
    pub fn op(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            code: 1,
        }
    }
    /// The input was bad (exit 2).
    pub fn input(e: impl std::fmt::Display) -> Self {
        Self {
            message: e.to_string(),
            code: 2,
        }
    }
}

impl From<ClientError> for Failure {
    fn from(e: ClientError) -> Self {
        Self::op(e)
    }
}

impl From<supervisor::Error> for Failure {
    fn from(e: supervisor::Error) -> Self {
        Self::op(e)
    }
}

/// Loads the compose project; warnings go to stderr.
pub fn load_project(args: &ProjectArgs) -> Result<Project, Failure> {
    load_project_built_by(args, None)
}

/// Loads the compose project for the supervisor whose build id is given
/// (a daemon's; `None`: this process's), see [`crate::images`].
pub fn load_project_built_by(
    args: &ProjectArgs,
    build_id: Option<String>,
) -> Result<Project, Failure> {
    let cwd = std::env::current_dir().map_err(Failure::op)?;
    let opts = LoadOptions {
        files: args.files.clone(),
        project_name: args.project_name.clone(),
        profiles: args.profiles.clone(),
        env: {
            let mut env: std::collections::HashMap<String, String> = std::env::vars().collect();
            env.entry(crate::images::BUILD_ID_VAR.to_string())
                .or_insert_with(|| build_id.unwrap_or_else(crate::images::build_id));
            env
        },
        cwd,
        allow_unknown_keys: args.allow_unknown_keys,
    };
    let loaded = turtle_compose::load(&opts).map_err(Failure::input)?;
    for w in &loaded.warnings {
        eprintln!("turtle: warning: {w}");
    }
    Ok(loaded.project)
}

/// The project name: `-p` when given, else the compose file's.
pub fn project_name(args: &ProjectArgs) -> Result<String, Failure> {
    match &args.project_name {
        // Normalized as compose does, so `-p MyApp` finds `myapp`.
        Some(n) => Ok(turtle_compose::normalize::normalize_project_name(n)),
        None => Ok(load_project(args)?.name),
    }
}

/// The daemon, or an in-process supervisor when none answers.
pub enum Target {
    Daemon(Client),
    Local(Arc<Supervisor<Docker>>),
}

pub async fn target(g: &GlobalArgs) -> Result<Target, Failure> {
    if let Some(c) = Client::connect(&g.socket_path()).await {
        return Ok(Target::Daemon(c));
    }
    Ok(Target::Local(
        local(g, supervisor::Config::default()).await?,
    ))
}

/// An in-process supervisor on the engine and the state directory.
pub async fn local(
    g: &GlobalArgs,
    config: supervisor::Config,
) -> Result<Arc<Supervisor<Docker>>, Failure> {
    let engine = Docker::connect(g.docker_socket.as_deref()).map_err(Failure::op)?;
    use crate::engine::Engine;
    engine.ping().await.map_err(Failure::op)?;
    supervisor_on(g, engine, config)
}

/// The supervisor's config file (`--config`).
pub fn supervisor_config(g: &GlobalArgs) -> Result<crate::config::Config, Failure> {
    crate::config::Config::load(g.config.as_deref()).map_err(Failure::input)
}

/// A supervisor on `engine` with the state directory's store and CA.
pub fn supervisor_on(
    g: &GlobalArgs,
    engine: Docker,
    mut config: supervisor::Config,
) -> Result<Arc<Supervisor<Docker>>, Failure> {
    let file = supervisor_config(g)?;
    config.mdns = file.mdns.clone();
    config.apply.base = file.images.base_settings();
    let store = Store::open(&g.state_dir).map_err(Failure::op)?;
    let trust =
        Trust::open(&g.state_dir, &file, std::time::SystemTime::now()).map_err(Failure::op)?;
    // A box no profile fits still runs its stack, without budgets or shedding.
    let device = match Device::open(&g.state_dir, &file) {
        Ok(d) => Some(Arc::new(d)),
        Err(e) => {
            eprintln!("turtle: warning: {e}; running without device tuning, budgets or shedding");
            None
        }
    };
    Ok(Supervisor::with_box(
        Arc::new(engine),
        Arc::new(store),
        config,
        supervisor::BoxParts {
            trust: Some(Arc::new(trust)),
            device,
            secrets: Some(crate::secrets::Secrets::new(&g.state_dir)),
            engine_trust: Some(crate::engine_trust::EngineTrust {
                certs_dir: file.engine.certs_dir.clone(),
                hosts_file: file.engine.hosts_file.clone(),
            }),
        },
    ))
}
