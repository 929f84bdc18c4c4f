//! The management API of Turtle's backend stack (axum on PostgreSQL).
//!
//! Runs as `turtle backend api`: every image of the stack carries the one
//! `turtle` executable.

/// Command-line arguments of `turtle backend api`.
#[derive(Debug, clap::Args)]
pub struct Args {}

/// Runs the service until SIGTERM.
pub async fn run(_args: Args) -> anyhow::Result<()> {
    anyhow::bail!("turtle backend api is not built yet")
}
