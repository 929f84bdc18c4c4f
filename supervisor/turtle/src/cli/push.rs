//! `turtle push`: a stack update as a release, through the health gate,
//! rolled back by itself when it is unhealthy. With `--to`, the release
//! goes to another box as a signed bundle (`remote.rs`).

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use turtle_control::client::Client;
use turtle_control::wire::{PushOptions, Release};
use turtle_runtime::release::Outcome;

use super::context::{self, Failure, Target};
use super::output::Printer;
use super::{GlobalArgs, ProjectArgs};

#[derive(Debug, Args)]
pub struct PushArgs {
    /// The project's directory (its compose.yaml or docker-compose.yml);
    /// -f takes files instead [default: the working directory].
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The release's version [default: its number on this box].
    #[arg(long = "release-version", value_name = "VERSION")]
    pub version: Option<String>,
    /// Notes kept with the release (`turtle releases` shows them).
    #[arg(long)]
    pub notes: Option<String>,
    /// How long every service must run healthy before the release is
    /// committed (`30s`, `2m`) [default: the project's io.turtle.settle
    /// label, else releases.settle in turtle.yaml, else 30s].
    #[arg(long, value_parser = parse_duration)]
    pub settle: Option<Duration>,
    /// Go past update locks held by services.
    #[arg(long)]
    pub force: bool,
    /// Push to another box's daemon instead of this one
    /// (https://BOX[:PORT], port 7443 by default): a bundle of the project
    /// and its images from this engine (nothing is built; build first), or
    /// the --bundle file, is streamed to the box over TLS, which verifies it against its trusted
    /// keys, loads it and pushes it through its health gate. The box turns
    /// this on with remote.listen in its turtle.yaml.
    #[arg(long, value_name = "URL", conflicts_with = "watch")]
    pub to: Option<String>,
    /// With --to: the box's token (`turtle remote token` on the box);
    /// prefer the environment variable, which `ps` does not show.
    #[arg(long, env = "TURTLE_REMOTE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// With --to: the box's root certificate, the output of `turtle ca
    /// export` on the box; the box's TLS leaf must lead to it.
    #[arg(long, value_name = "ROOT_PEM", env = "TURTLE_REMOTE_CA")]
    pub ca: Option<PathBuf>,
    /// With --to: the secret key (from `turtle bundle keygen`) to sign the
    /// bundle with; the box must trust its public key (bundles.trusted_keys).
    #[arg(long, value_name = "SECRET_KEY", env = "TURTLE_BUNDLE_KEY")]
    pub key: Option<PathBuf>,
    /// With --to: send this bundle file (from `turtle bundle create`, made
    /// elsewhere) as it is, instead of making one from the project here.
    #[arg(long, value_name = "FILE", requires = "to")]
    pub bundle: Option<PathBuf>,
    /// Dev mode: push, then watch the services' build contexts and the
    /// compose files, and push again at each change, rebuilding only the
    /// services whose sources changed (Ctrl-C stops).
    #[arg(long)]
    pub watch: bool,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<turtle_units::Duration>()
        .map(Into::into)
        .map_err(|e| e.to_string())
}

impl PushArgs {
    pub fn options(&self) -> PushOptions {
        PushOptions {
            version: self.version.clone(),
            notes: self.notes.clone(),
            settle: self.settle,
            force: self.force,
            ..Default::default()
        }
    }

    /// The compose files: -f, else DIR's default file.
    pub fn project_args(&self) -> ProjectArgs {
        let mut p = self.project.clone();
        if p.files.is_empty()
            && let Some(dir) = &self.dir
        {
            p.files = compose_files_in(dir);
        }
        p
    }
}

/// DIR's compose file: the first of compose's default names there (or
/// `compose.yaml`, to be reported missing).
pub fn compose_files_in(dir: &std::path::Path) -> Vec<PathBuf> {
    let found = [
        "compose.yaml",
        "compose.yml",
        "docker-compose.yml",
        "docker-compose.yaml",
    ]
    .iter()
    .map(|f| dir.join(f))
    .find(|f| f.exists());
    vec![found.unwrap_or_else(|| dir.join("compose.yaml"))]
}

pub async fn run(g: &GlobalArgs, a: PushArgs) -> Result<(), Failure> {
    if let Some(url) = &a.to {
        return super::remote::push(g, &a, url).await;
    }
    let daemon = Client::connect(&g.socket_path()).await;
    let daemon_build = daemon.as_ref().map(|c| c.build_id().to_string());
    let project = context::load_project_built_by(&a.project_args(), daemon_build)?;
    let target = match daemon {
        Some(c) => Target::Daemon(c),
        None => {
            Target::Local(context::local(g, turtle_runtime::supervisor::Config::default()).await?)
        }
    };
    if a.watch {
        let build_id = match &target {
            Target::Daemon(c) => Some(c.build_id().to_string()),
            Target::Local(_) => None,
        };
        return super::watch::run(target.control(), &a, build_id).await;
    }
    let printer = Printer::new();
    let release = target
        .control()
        .push(&project, &a.options(), &|e| printer.event(e))
        .await?;
    decided(&release)
}

/// Says how a push or rollback ended; anything but committed fails.
pub fn decided(r: &Release) -> Result<(), Failure> {
    match r.outcome {
        Outcome::Committed => {
            eprintln!(
                "turtle: release {} (version {}) of {} is committed",
                r.id, r.version, r.project
            );
            Ok(())
        }
        other => Err(Failure::op(format!(
            "release {} (version {}) of {} {other}: {}",
            r.id,
            r.version,
            r.project,
            r.reason.as_deref().unwrap_or("no reason recorded")
        ))),
    }
}
