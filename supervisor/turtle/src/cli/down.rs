//! `turtle down`: remove the project's containers and networks.

use clap::Args;
use hyper::Method;

use super::context::{self, Failure, Target};
use super::{GlobalArgs, ProjectArgs};
use crate::supervisor::DownReport;

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
    let report: DownReport = match context::target(g).await? {
        Target::Daemon(c) => {
            let path = format!("/v1/projects/{name}?volumes={}", a.volumes);
            c.json(Method::DELETE, &path, None::<&()>).await?
        }
        Target::Local(sup) => sup.down(&name, a.volumes).await?,
    };
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
