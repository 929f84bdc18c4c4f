//! `turtle daemon`: serve the API and keep every applied project alive; on
//! its first start, apply the preload directory's bundles
//! ([`super::preload`]).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;

use turtle_compose::Project;
use turtle_control::remote::server::Listening;

use turtle_engine::docker::Docker;
use turtle_runtime::store::Store;
use turtle_runtime::supervisor::{self, Supervisor, UpOptions};

use super::GlobalArgs;
use super::context::Failure;
use super::output::Printer;

#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Seconds between two full resyncs of every project.
    #[arg(long, default_value_t = 30)]
    pub resync_interval: u64,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
}

pub async fn run(g: &GlobalArgs, a: DaemonArgs) -> Result<(), Failure> {
    init_logging(a.log_json);
    let config = supervisor::Config {
        resync_interval: Duration::from_secs(a.resync_interval.max(1)),
        ..Default::default()
    };
    // A bad config or state directory fails at once, before waiting; both
    // are read once.
    let file = super::context::supervisor_config(g)?;
    let sup = wait_for_engine(g, &file, config).await?;
    let listener = turtle_control::server::bind(&g.socket_path())
        .map_err(|e| Failure::op(format!("{}: {e}", g.socket_path().display())))?;
    let remote = super::remote::listener(g, &file, &sup)?;
    let pid_file = g.state_dir.join("daemon.pid");
    std::fs::write(&pid_file, format!("{}\n", std::process::id()))
        .map_err(|e| Failure::op(format!("{}: {e}", pid_file.display())))?;
    tracing::info!(socket = %g.socket_path().display(), state_dir = %g.state_dir.display(), "turtle daemon started");
    // With a provisioning config, the fleet agent, beside the API.
    let agent = tokio::spawn(crate::agent::run(
        Arc::clone(&sup),
        file.clone(),
        g.state_dir.clone(),
    ));
    // On the first start, the preload directory's bundles, beside the API.
    let preload = tokio::spawn(super::preload::run(
        Arc::clone(&sup),
        file,
        g.state_dir.clone(),
    ));
    let result = serve(
        sup,
        listener,
        remote,
        &g.socket_path(),
        None,
        shutdown_signal(),
    )
    .await;
    preload.abort();
    agent.abort();
    let _ = std::fs::remove_file(&pid_file);
    result
}

/// The daemon waits for the engine (it may start before dockerd on boot),
/// retrying with backoff; a bad state directory or any other error fails at once.
async fn wait_for_engine(
    g: &GlobalArgs,
    file: &turtle_runtime::config::Config,
    config: supervisor::Config,
) -> Result<Arc<Supervisor<Docker>>, Failure> {
    use turtle_engine::{Engine, EngineError};
    let store = Store::open(&g.state_dir).map_err(Failure::op)?;
    let mut backoff = Duration::from_millis(500);
    let engine = loop {
        let attempt = match Docker::connect(g.docker_socket.as_deref()) {
            Ok(engine) => engine.ping().await.map(|()| engine),
            Err(e) => Err(e),
        };
        match attempt {
            Ok(engine) => break engine,
            Err(e @ EngineError::Unreachable { .. }) => {
                tracing::warn!("{e}; retrying in {backoff:?}");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            Err(e) => return Err(Failure::op(e)),
        }
    };
    super::context::supervisor_on(g, file, store, engine, config)
}

pub(super) fn init_logging(json: bool) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

/// Runs the API and the keep-alive loop, and the workers (shedding,
/// announcing), and the remote listener when configured, until `shutdown`
/// resolves, then removes the socket.
/// Containers keep running. With `initial`, applies that project first
/// (printing progress), with the API already answering, so other commands
/// see this supervisor while it works.
pub async fn serve(
    sup: Arc<Supervisor<Docker>>,
    listener: tokio::net::UnixListener,
    remote: Option<Listening<Docker>>,
    socket: &Path,
    initial: Option<(&Project, &UpOptions)>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Failure> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let api = tokio::spawn(turtle_control::server::serve(
        listener,
        Arc::clone(&sup),
        stopped(stop_rx.clone()),
    ));
    let remote = remote.map(|r| tokio::spawn(r.run(stopped(stop_rx.clone()))));
    if let Some((project, opts)) = initial {
        let printer = Printer::new();
        match sup.up(project, opts, &|e| printer.event(e)).await {
            Ok(report) => eprintln!(
                "turtle: project {} is up ({} step(s)); supervising it, Ctrl-C stops supervising and leaves the containers running",
                report.project, report.steps_done
            ),
            Err(e) => {
                let _ = stop_tx.send(true);
                let _ = tokio::time::timeout(Duration::from_secs(2), api).await;
                if let Some(remote) = remote {
                    let _ = remote.await;
                }
                let _ = std::fs::remove_file(socket);
                return Err(Failure::op(e));
            }
        }
    }
    // Updates a killed daemon left half done are finished before the
    // keep-alive repairs anything: it would repair towards whichever
    // release the store held at the kill.
    match sup
        .recover(&|e| {
            if let turtle_runtime::apply::Event::Release { line } = e {
                tracing::info!("recovery: {line}");
            }
        })
        .await
    {
        Ok(ended) => {
            for r in ended {
                tracing::warn!(
                    project = %r.project,
                    "an update cut short by a stop was finished: release {} ({}) {}{}",
                    r.seq,
                    r.id,
                    r.outcome,
                    r.reason.map(|w| format!(": {w}")).unwrap_or_default()
                );
            }
        }
        Err(e) => tracing::error!("cannot finish the updates a stop cut short: {e}"),
    }
    let keep_alive = tokio::spawn(Arc::clone(&sup).run(stopped(stop_rx.clone())));
    tune_device(&sup);
    // The workers get the narrow handle, not the supervisor.
    let shed = sup
        .shedder()
        .filter(|_| sup.device().is_some_and(|d| d.config().shed))
        .map(|shedder| {
            tokio::spawn(Arc::clone(shedder).run(sup.handle(), stopped(stop_rx.clone())))
        });
    let announce =
        tokio::spawn(Arc::clone(sup.announcer()).run(sup.handle(), stopped(stop_rx.clone())));
    shutdown.await;
    tracing::info!("stopping; containers keep running");
    let _ = stop_tx.send(true);
    let _ = keep_alive.await;
    if let Some(shed) = shed {
        let _ = shed.await;
    }
    // Goodbye packets, so the LAN forgets the names now rather than at TTL.
    let _ = announce.await;
    // Streams (logs -f, events --follow) may hold the API open: don't wait long.
    let _ = tokio::time::timeout(Duration::from_secs(2), api).await;
    if let Some(remote) = remote {
        // It stops accepting at once; connections in flight are not waited for.
        let _ = remote.await;
    }
    let _ = std::fs::remove_file(socket);
    Ok(())
}

/// Sets up the profile's swap file, zram and sysctls, when the config says
/// so, on a blocking thread (a swap file may be written with zeros) while the
/// daemon serves. A failure (too little disk for the swap file, no zram) is
/// logged and the daemon carries on: the stack matters more than the tuning.
fn tune_device(sup: &Supervisor<Docker>) {
    let Some(device) = sup.device().cloned() else {
        return;
    };
    let profile = device.profile().name.clone();
    tracing::info!(profile, reason = %device.detected().reason, "device profile");
    if !device.config().tune {
        return;
    }
    tokio::task::spawn_blocking(move || tune_now(&device, &profile));
}

fn tune_now(device: &turtle_runtime::device::Device, profile: &str) {
    match device.tune() {
        Ok(report) if report.changes.is_empty() => {
            tracing::info!(profile, "the device already matches its profile");
        }
        Ok(report) => {
            for c in &report.changes {
                tracing::info!(profile, "device: {c}");
            }
        }
        Err(e) => tracing::error!(profile, "cannot tune the device: {e}"),
    }
}

/// SIGINT or SIGTERM.
pub(super) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("installing a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
