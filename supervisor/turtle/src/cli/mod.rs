//! The `turtle` command line: one file per verb.
//!
//! Every verb works with or without a running daemon: when one answers on the
//! socket the CLI is its client, otherwise it does the work in-process against
//! the engine and the same state directory.
//!
//! Exit codes: 0 success, 1 the operation failed (engine, apply, daemon),
//! 2 bad input (usage, compose file).

mod backend;
mod base;
mod bundle;
mod ca;
mod child;
mod config;
mod context;
mod daemon;
mod device;
mod down;
pub(crate) mod events;
mod exec;
mod fleet;
mod logs;
mod names;
mod output;
mod preload;
mod ps;
mod push;
mod reach;
mod releases;
mod remote;
mod secret;
mod service;
mod up;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

pub use context::Failure;

/// Turtle: a platform on a device. Deploys a compose stack on the local
/// Docker engine and keeps it alive.
#[derive(Debug, Parser)]
#[command(name = "turtle", version, about, long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct GlobalArgs {
    /// Directory of the supervisor's state (SQLite database, API socket, daemon log).
    #[arg(
        long,
        global = true,
        env = "TURTLE_STATE_DIR",
        default_value = "/var/lib/turtle"
    )]
    pub state_dir: PathBuf,
    /// The daemon's API socket [default: STATE_DIR/turtle.sock].
    #[arg(long, global = true, env = "TURTLE_SOCKET")]
    pub socket: Option<PathBuf>,
    /// The Docker engine's socket [default: DOCKER_HOST or /var/run/docker.sock].
    #[arg(long, global = true, env = "TURTLE_DOCKER_SOCKET")]
    pub docker_socket: Option<String>,
    /// The supervisor's config file: domain, CA, trust injection, mDNS
    /// [default: /etc/turtle/turtle.yaml when it exists].
    #[arg(long, global = true, env = "TURTLE_CONFIG")]
    pub config: Option<PathBuf>,
}

impl GlobalArgs {
    pub fn socket_path(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| self.state_dir.join("turtle.sock"))
    }
}

/// Which compose project a command is about.
#[derive(Debug, Args, Clone, Default)]
pub struct ProjectArgs {
    /// Compose file(s), merged in order [default: compose.yaml or docker-compose.yml here].
    #[arg(short = 'f', long = "file")]
    pub files: Vec<PathBuf>,
    /// Project name: lowercase letters, digits, '-' and '_', starting with a letter
    /// or digit [default: COMPOSE_PROJECT_NAME, the file's `name:`, or its directory's name].
    // COMPOSE_PROJECT_NAME is read by `context::project_name` and the loader,
    // not by clap: empty, it is unset (as in compose), not an invalid name.
    #[arg(short = 'p', long = "project-name")]
    pub project_name: Option<turtle_compose::ProjectName>,
    /// Enable services of this profile (repeatable).
    #[arg(long = "profile")]
    pub profiles: Vec<String>,
    /// Warn about compose keys Turtle does not support instead of refusing the file.
    #[arg(long)]
    pub allow_unknown_keys: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update the project's containers and keep them alive.
    ///
    /// With a daemon running, hands the project to it and returns once applied.
    /// Without one, supervises in the foreground (Ctrl-C stops supervising and
    /// leaves the containers running), or starts a daemon with --detach.
    Up(up::UpArgs),
    /// Push a new release of the project: build and pin its images, swap
    /// services by their update strategy, and commit it once every service
    /// ran healthy for the settle window, else roll back to the previous
    /// release by itself.
    Push(push::PushArgs),
    /// Return to an earlier release (default: the one before the current),
    /// through the same health gate.
    Rollback(releases::RollbackArgs),
    /// Show the project's releases: the current one (*), and each one's
    /// outcome and why.
    Releases(releases::ReleasesArgs),
    /// Stop and remove the project's containers and networks (volumes with --volumes).
    Down(down::DownArgs),
    /// Show the project's containers: state, health, restarts, crash loops.
    Ps(ps::PsArgs),
    /// Show the output of the project's containers.
    Logs(logs::LogsArgs),
    /// Run a command in a service's running container and print its output
    /// (no terminal, no standard input); exits with the command's code.
    Exec(exec::ExecArgs),
    /// Start the containers of services.
    Start(service::ServiceArgs),
    /// Stop the containers of services; the supervisor leaves them stopped until start or up.
    Stop(service::ServiceArgs),
    /// Restart the containers of services.
    Restart(service::ServiceArgs),
    /// Validate the compose files and print the normalized project.
    Config(config::ConfigArgs),
    /// Show the supervisor's event log.
    Events(events::EventsArgs),
    /// Run the supervisor daemon: serve the API and keep every applied project alive.
    Daemon(daemon::DaemonArgs),
    /// The box's certificate authority: export its root, show or issue certificates.
    Ca(ca::CaArgs),
    /// Show the names the daemon publishes over mDNS, and any conflict.
    Names(names::NamesArgs),
    /// Show the box's profile, swap, zram, temperatures and what is shed; `reset` undoes the tuning.
    Device(device::DeviceArgs),
    /// Make the Debian base of the stack's images: load a bundle, pull, or bootstrap it.
    Base(base::BaseArgs),
    /// Signed offline bundles: a project and its images in one file, for a
    /// box without a network (keygen, create, verify, apply).
    Bundle(bundle::BundleArgs),
    /// Print a secret the supervisor made for a project's services (e.g. admin-token).
    Secret(secret::SecretArgs),
    /// The backend's fleets (on the box that runs it): create, list,
    /// remove, provisioning configs, releases, pin, unpin, rollback.
    Fleet(fleet::FleetArgs),
    /// The backend's devices: fleet, release, last update, profile,
    /// temperature, last seen. (`turtle device` is this box.)
    Devices(fleet::DevicesArgs),
    /// Child devices on this box: each a container with its own Docker
    /// engine and turtle, provisioned into a fleet of this box's backend.
    Child(child::ChildArgs),
    /// Remote push to this box (`turtle push --to` on another machine):
    /// print or rotate the token it must present.
    Remote(remote::RemoteArgs),
    /// Run one service of the backend stack (api, builder, vpn) or a healthcheck probe;
    /// the stack's images run these.
    Backend(Box<backend::BackendArgs>),
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("turtle: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("turtle: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let g = cli.global;
    match cli.command {
        Command::Up(a) => up::run(&g, a).await,
        Command::Down(a) => down::run(&g, a).await,
        Command::Push(a) => push::run(&g, a).await,
        Command::Rollback(a) => releases::rollback(&g, a).await,
        Command::Releases(a) => releases::list(&g, a).await,
        Command::Ps(a) => ps::run(&g, a).await,
        Command::Logs(a) => logs::run(&g, a).await,
        Command::Exec(a) => exec::run(&g, a).await,
        Command::Start(a) => {
            service::run(&g, a, turtle_runtime::supervisor::ServiceAction::Start).await
        }
        Command::Stop(a) => {
            service::run(&g, a, turtle_runtime::supervisor::ServiceAction::Stop).await
        }
        Command::Restart(a) => {
            service::run(&g, a, turtle_runtime::supervisor::ServiceAction::Restart).await
        }
        Command::Config(a) => config::run(a),
        Command::Events(a) => events::run(&g, a).await,
        Command::Daemon(a) => daemon::run(&g, a).await,
        Command::Ca(a) => ca::run(&g, a),
        Command::Names(a) => names::run(&g, a).await,
        Command::Device(a) => device::run(&g, a).await,
        Command::Base(a) => base::run(&g, a).await,
        Command::Bundle(a) => bundle::run(&g, a).await,
        Command::Secret(a) => secret::run(&g, a),
        Command::Remote(a) => remote::run(&g, a),
        Command::Child(a) => child::run(&g, a).await,
        Command::Fleet(a) => fleet::run(&g, a).await,
        Command::Devices(a) => fleet::devices(&g, a).await,
        Command::Backend(a) => backend::run(*a).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
