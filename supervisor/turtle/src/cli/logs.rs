//! `turtle logs`: the output of the project's containers.

use std::io::Write;

use clap::Args;
use futures_util::StreamExt;

use super::context::{self, Failure};
use super::{GlobalArgs, ProjectArgs};
use turtle_control::wire::LogsQuery;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Compose file(s) [default: compose.yaml or docker-compose.yml here]
    /// (no -f here: as in docker compose, `logs -f` follows).
    #[arg(long = "file")]
    pub files: Vec<std::path::PathBuf>,
    /// Project name [default: COMPOSE_PROJECT_NAME, the file's `name:`, or its directory's name].
    #[arg(short = 'p', long = "project-name")]
    pub project_name: Option<turtle_compose::ProjectName>,
    /// Keep following the output.
    #[arg(short, long)]
    pub follow: bool,
    /// Lines from the end of each container's output.
    #[arg(long)]
    pub tail: Option<u64>,
    /// Only these services.
    pub services: Vec<String>,
}

pub async fn run(g: &GlobalArgs, a: LogsArgs) -> Result<(), Failure> {
    let project = ProjectArgs {
        files: a.files.clone(),
        project_name: a.project_name.clone(),
        ..Default::default()
    };
    let name = context::project_name(&project)?;
    let target = context::target(g).await?;
    let query = LogsQuery {
        follow: a.follow,
        tail: a.tail,
        services: a.services.clone(),
    };
    let lines = target.control().logs(&name, &query).await?;
    print_lines(lines).await
}

/// Prints a daemon's log lines as they come (`turtle devices logs --vpn`
/// prints a device's the same way).
pub async fn print_lines(
    mut lines: turtle_control::BoxStream<turtle_control::Result<String>>,
) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    let mut print = |line: String| -> Result<(), Failure> {
        // A closed pipe (`| head`) ends the command quietly.
        writeln!(out, "{line}").map_err(|_| Failure {
            message: String::new(),
            code: 0,
        })
    };
    let mut result = Ok(());
    while let Some(l) = lines.next().await {
        result = print(l?);
        if result.is_err() {
            break;
        }
    }
    match result {
        Err(f) if f.code == 0 => Ok(()),
        r => r,
    }
}
