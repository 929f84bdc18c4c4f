//! What every verb needs: the failure type with its exit code, loading the
//! project, and reaching either the daemon or an in-process supervisor.

use std::sync::Arc;

use turtle_compose::{LoadOptions, Project, ProjectName};

use turtle_control::client::Client;
use turtle_control::{Control, ControlError};
use turtle_engine::Engine;
use turtle_engine::docker::Docker;
use turtle_runtime::config::Config;
use turtle_runtime::device::Device;
use turtle_runtime::store::Store;
use turtle_runtime::supervisor::{self, Supervisor};
use turtle_runtime::trust::Trust;

use super::{GlobalArgs, ProjectArgs};

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

impl From<ControlError> for Failure {
    fn from(e: ControlError) -> Self {
        Self::op(e)
    }
}

/// Loads the compose project; warnings go to stderr.
pub fn load_project(args: &ProjectArgs) -> Result<Project, Failure> {
    load_project_built_by(args, None)
}

/// Loads the compose project for the supervisor whose build id is given
/// (a daemon's; `None`: this process's), see [`turtle_runtime::images`].
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
            env.entry(turtle_runtime::images::BUILD_ID_VAR.to_string())
                .or_insert_with(|| build_id.unwrap_or_else(turtle_runtime::images::build_id));
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

/// The project name: `-p`, else `COMPOSE_PROJECT_NAME` (each a valid name
/// as it is, as compose wants them; the variable empty is unset), else the
/// compose file's.
pub fn project_name(args: &ProjectArgs) -> Result<ProjectName, Failure> {
    if let Some(n) = &args.project_name {
        return Ok(n.clone());
    }
    match std::env::var("COMPOSE_PROJECT_NAME") {
        Ok(v) if !v.is_empty() => v
            .parse()
            .map_err(|e| Failure::input(format!("COMPOSE_PROJECT_NAME: {e}"))),
        _ => Ok(load_project(args)?.name),
    }
}

/// Whom a verb drives: the daemon, or an in-process supervisor when none
/// answers. Either way the verb talks to a [`Control`].
pub enum Target {
    Daemon(Client),
    Local(Arc<Supervisor<Docker>>),
}

impl Target {
    pub fn control(&self) -> &dyn Control {
        match self {
            Target::Daemon(c) => c,
            Target::Local(sup) => &**sup,
        }
    }

    /// Whether a daemon answers (what only a running daemon does: follow
    /// events as they happen, publish names).
    pub fn is_daemon(&self) -> bool {
        matches!(self, Target::Daemon(_))
    }
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
    engine.ping().await.map_err(Failure::op)?;
    let file = supervisor_config(g)?;
    let store = Store::open(&g.state_dir).map_err(Failure::op)?;
    supervisor_on(g, &file, store, engine, config)
}

/// An in-process supervisor for `up --dry-run`, which must write nothing:
/// its store is in memory, and it injects what `up` would without making
/// the CA when none exists yet (a CA that exists is only read).
pub async fn preview(g: &GlobalArgs) -> Result<Arc<Supervisor<Docker>>, Failure> {
    let engine = Docker::connect(g.docker_socket.as_deref()).map_err(Failure::op)?;
    engine.ping().await.map_err(Failure::op)?;
    let file = supervisor_config(g)?;
    let store = Store::in_memory().map_err(Failure::op)?;
    if Trust::exists(&g.state_dir) {
        return supervisor_on(g, &file, store, engine, supervisor::Config::default());
    }
    let injection = Trust::preview(&g.state_dir, &file).map_err(Failure::input)?;
    let device = Device::open(&g.state_dir, &file).ok().map(Arc::new);
    Ok(Supervisor::with_box(
        Arc::new(engine),
        Arc::new(store),
        supervisor::Config::default(),
        supervisor::BoxParts {
            injection: Some(injection),
            device,
            secrets: Some(turtle_runtime::secrets::Secrets::new(&g.state_dir)),
            run_dir: Some(g.state_dir.join("run")),
            ..Default::default()
        },
    ))
}

/// The supervisor's config file (`--config`).
pub fn supervisor_config(g: &GlobalArgs) -> Result<Config, Failure> {
    Config::load(g.config.as_deref()).map_err(Failure::input)
}

/// A supervisor on `engine` with the state directory's store and CA, and
/// the config file read once by the caller.
pub fn supervisor_on(
    g: &GlobalArgs,
    file: &Config,
    store: Store,
    engine: Docker,
    mut config: supervisor::Config,
) -> Result<Arc<Supervisor<Docker>>, Failure> {
    config.mdns = file.mdns.clone();
    config.apply.base = file.images.base_settings();
    config.apply.probe = file.health.probe;
    config.releases = file.releases.clone();
    let trust =
        Trust::open(&g.state_dir, file, std::time::SystemTime::now()).map_err(Failure::op)?;
    // A box no profile fits still runs its stack, without budgets or shedding.
    let device = match Device::open(&g.state_dir, file) {
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
            injection: None,
            device,
            secrets: Some(turtle_runtime::secrets::Secrets::new(&g.state_dir)),
            run_dir: Some(g.state_dir.join("run")),
            engine_trust: Some(turtle_runtime::engine_trust::EngineTrust {
                certs_dir: file.engine.certs_dir.clone(),
                hosts_file: file.engine.hosts_file.clone(),
            }),
        },
    ))
}
