//! The image builder of Turtle's backend stack: build contexts in, pushed digests out.
//!
//! Runs as `turtle backend builder`: every image of the stack carries the one
//! `turtle` executable.

/// Command-line arguments of `turtle backend builder`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the service until SIGTERM.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("turtle backend builder is not built yet")
}
