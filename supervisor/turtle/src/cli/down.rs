//! `turtle down`: remove the project's containers and networks.

use super::context::{self, Failure};
use super::{GlobalArgs, ProjectArgs};
use clap::Args;

#[derive(Debug, Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Also remove the project's named volumes (their data is lost).
    #[arg(short = 'v', long)]
    pub volumes: bool,
}

pub async fn run(g: &GlobalArgs, a: DownArgs) -> Result<(), Failure> {
    let name = context::project_name(&a.project)?;
    let target = context::target(g).await?;
    let report = target.control().down(&name, a.volumes).await?;
    for c in &report.containers {
        eprintln!(" ✔ removed container {c}");
    }
    for n in &report.networks {
        eprintln!(" ✔ removed network {n}");
    }
    for v in &report.volumes {
        eprintln!(" ✔ removed volume {v}");
    }
    Ok(())
}
