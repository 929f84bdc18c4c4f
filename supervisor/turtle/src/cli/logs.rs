//! `turtle logs`: the output of the project's containers.

use std::io::Write;

use clap::Args;
use futures_util::StreamExt;
use hyper::Method;

use super::context::{self, Failure, Target};
use super::{GlobalArgs, ProjectArgs};

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Compose file(s) [default: compose.yaml or docker-compose.yml here]
    /// (no -f here: as in docker compose, `logs -f` follows).
    #[arg(long = "file")]
    pub files: Vec<std::path::PathBuf>,
    /// Project name [default: COMPOSE_PROJECT_NAME, the file's `name:`, or its directory's name].
    #[arg(short = 'p', long = "project-name", env = "COMPOSE_PROJECT_NAME")]
    pub project_name: Option<String>,
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
    let mut out = std::io::stdout().lock();
    let mut print = |line: String| -> Result<(), Failure> {
        // A closed pipe (`| head`) ends the command quietly.
        writeln!(out, "{line}").map_err(|_| Failure {
            message: String::new(),
            code: 0,
        })
    };
    let result = match context::target(g).await? {
        Target::Daemon(c) => {
            let mut path = format!(
                "/v1/projects/{name}/logs?follow={}&services={}",
                a.follow,
                a.services.join(",")
            );
            if let Some(t) = a.tail {
                path.push_str(&format!("&tail={t}"));
            }
            let mut lines = Box::pin(c.lines(Method::GET, &path, None::<&()>).await?);
            let mut r = Ok(());
            while let Some(l) = lines.next().await {
                r = print(l?);
                if r.is_err() {
                    break;
                }
            }
            r
        }
        Target::Local(sup) => {
            let mut lines = crate::logs::lines(sup.engine(), &name, &a.services, a.follow, a.tail)
                .await
                .map_err(Failure::op)?;
            let mut r = Ok(());
            while let Some(l) = lines.next().await {
                r = print(l.map_err(Failure::op)?);
                if r.is_err() {
                    break;
                }
            }
            r
        }
    };
    match result {
        Err(f) if f.code == 0 => Ok(()),
        r => r,
    }
}
