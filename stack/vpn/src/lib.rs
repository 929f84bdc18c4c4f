//! The userspace WireGuard service of Turtle's backend stack.
//!
//! Runs as `turtle backend vpn`: every image of the stack carries the one
//! `turtle` executable.

/// Command-line arguments of `turtle backend vpn`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the service until SIGTERM.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("turtle backend vpn is not built yet")
}
