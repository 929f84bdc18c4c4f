//! `turtle base`: make the Debian base of the stack's images by hand
//! (`turtle up` makes it when a build needs it). See [`turtle_runtime::base`].

use std::path::PathBuf;

use clap::Args;

use super::GlobalArgs;
use super::context::{self, Failure};
use turtle_engine::Engine;
use turtle_engine::docker::Docker;

#[derive(Debug, Args)]
pub struct BaseArgs {
    /// The base to make.
    #[arg(default_value = "turtle-debian:bookworm")]
    pub reference: String,
    /// Debian mirror to bootstrap from [default: images.debian_mirror in the config, else deb.debian.org].
    #[arg(long, env = "TURTLE_DEBIAN_MIRROR")]
    pub mirror: Option<String>,
    /// Load the base from this `docker save` archive (a bundle carried to an air-gapped site).
    #[arg(long)]
    pub load: Option<PathBuf>,
    /// Make it again even when the engine has it.
    #[arg(long)]
    pub rebuild: bool,
}

pub async fn run(g: &GlobalArgs, a: BaseArgs) -> Result<(), Failure> {
    let file = context::supervisor_config(g)?;
    let mut settings = file.images.base_settings();
    if let Some(m) = a.mirror {
        settings.mirror = m;
    }
    if let Some(l) = a.load {
        if !l.is_file() {
            return Err(Failure::input(format!("{}: no such file", l.display())));
        }
        settings.bundle = Some(l);
    }
    let engine = Docker::connect(g.docker_socket.as_deref()).map_err(Failure::op)?;
    engine.ping().await.map_err(Failure::op)?;
    let log = |l: String| eprintln!("turtle: {l}");
    let outcome = turtle_runtime::base::ensure(&engine, &a.reference, &settings, a.rebuild, &log)
        .await
        .map_err(|e| match e {
            turtle_runtime::base::BaseError::NotOurs(_) => Failure::input(e),
            _ => Failure::op(e),
        })?;
    eprintln!("turtle: {}: {outcome}", a.reference);
    println!("{}", a.reference);
    Ok(())
}
