//! `turtle up`: apply the project, then keep it alive.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use clap::Args;
use turtle_compose::Project;
use turtle_control::client::Client;
use turtle_control::wire::UpOptions;
use turtle_runtime::supervisor;

use super::context::{self, Failure, Target};
use super::output::Printer;
use super::{GlobalArgs, ProjectArgs};

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Print the plan and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Without a running daemon, start one in the background instead of
    /// supervising in the foreground.
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Output of --dry-run.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    pub format: String,
    /// Build the images of services with a build section even when they exist;
    /// only services whose image really changed are then recreated.
    #[arg(long)]
    pub build: bool,
    /// Return only once every service is running, and healthy where it has a
    /// healthcheck (finished one-shots count as ready).
    #[arg(long)]
    pub wait: bool,
    /// Seconds --wait waits before it fails.
    #[arg(long, default_value_t = 300, requires = "wait")]
    pub wait_timeout: u64,
}

pub async fn run(g: &GlobalArgs, a: UpArgs) -> Result<(), Failure> {
    let socket = g.socket_path();
    let daemon = Client::connect(&socket).await;
    // A daemon builds with its own executable: name images after it.
    let daemon_build = daemon.as_ref().map(|c| c.build_id().to_string());
    let project = context::load_project_built_by(&a.project, daemon_build)?;
    let opts = UpOptions {
        build: a.build,
        wait: a.wait.then(|| Duration::from_secs(a.wait_timeout)),
    };
    if a.dry_run {
        let target = match daemon {
            Some(c) => Target::Daemon(c),
            None => Target::Local(context::preview(g).await?),
        };
        let plan = target.control().plan(&project).await?;
        if a.format == "json" {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan).expect("plans serialize")
            );
        } else {
            print!("{plan}");
        }
        return Ok(());
    }
    up_project(g, &project, daemon, a.detach, &opts).await
}

/// Brings a loaded project up: through the daemon when one answers (or one
/// started with `detach`), else in-process, supervising in the foreground.
pub async fn up_project(
    g: &GlobalArgs,
    project: &Project,
    daemon: Option<Client>,
    detach: bool,
    opts: &UpOptions,
) -> Result<(), Failure> {
    let target = match daemon {
        Some(c) => Target::Daemon(c),
        None if detach => Target::Daemon(start_daemon(g, &g.socket_path()).await?),
        // No daemon: this process supervises, in the foreground.
        None => return foreground(g, project, opts).await,
    };
    let printer = Printer::new();
    let report = target
        .control()
        .up(project, opts, &|e| printer.event(e))
        .await?;
    eprintln!(
        "turtle: project {} is up ({} step(s))",
        report.project, report.steps_done
    );
    Ok(())
}

/// Starts `turtle daemon` in its own process group, logging to
/// STATE_DIR/daemon.log, and waits for its socket.
pub(super) async fn start_daemon(g: &GlobalArgs, socket: &Path) -> Result<Client, Failure> {
    use std::os::unix::process::CommandExt;
    std::fs::create_dir_all(&g.state_dir)
        .map_err(|e| Failure::op(format!("{}: {e}", g.state_dir.display())))?;
    let log_path = g.state_dir.join("daemon.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| Failure::op(format!("{}: {e}", log_path.display())))?;
    let exe = std::env::current_exe().map_err(Failure::op)?;
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("daemon")
        .arg("--state-dir")
        .arg(&g.state_dir)
        .arg("--socket")
        .arg(socket)
        .stdin(Stdio::null())
        .stdout(log.try_clone().map_err(Failure::op)?)
        .stderr(log)
        .process_group(0);
    if let Some(d) = &g.docker_socket {
        cmd.arg("--docker-socket").arg(d);
    }
    // The daemon must read the config this command read: without it, a
    // `--config` given here would be ignored there (and the default
    // /etc/turtle/turtle.yaml, or none, would decide on swap and zram).
    if let Some(c) = &g.config {
        cmd.arg("--config").arg(c);
    }
    let child = cmd
        .spawn()
        .map_err(|e| Failure::op(format!("cannot start the daemon: {e}")))?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(c) = Client::connect(socket).await {
            eprintln!(
                "turtle: daemon started (pid {}, log {})",
                child.id(),
                log_path.display()
            );
            return Ok(c);
        }
        if Instant::now() > deadline {
            return Err(Failure::op(format!(
                "the daemon did not answer on {} within 15s: see {}",
                socket.display(),
                log_path.display()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Applies the project in-process, then supervises until Ctrl-C or SIGTERM.
async fn foreground(g: &GlobalArgs, project: &Project, opts: &UpOptions) -> Result<(), Failure> {
    // What the supervisor does from now on (repairs, heals, crashes) is shown
    // as it happens.
    super::daemon::init_logging(false);
    let sup = context::local(g, supervisor::Config::default()).await?;
    // Bind the socket first so the CLI can reach this supervisor, and so a
    // second supervisor cannot start on the same state directory.
    let listener = turtle_control::server::bind(&g.socket_path())
        .map_err(|e| Failure::op(format!("{}: {e}", g.socket_path().display())))?;
    // This process is the box's supervisor for now: it serves remote
    // pushes too when the config says so.
    let remote = super::remote::listener(g, &context::supervisor_config(g)?, &sup)?;
    super::daemon::serve(
        sup,
        listener,
        remote,
        &g.socket_path(),
        Some((project, opts)),
        super::daemon::shutdown_signal(),
    )
    .await
}
