//! `turtle ps`: the project's containers.

use clap::Args;
use hyper::Method;

use super::context::{self, Failure, Target};
use super::{GlobalArgs, ProjectArgs};
use crate::supervisor::{Error, ProjectStatus};

#[derive(Debug, Args)]
pub struct PsArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Every project Turtle manages on this engine.
    #[arg(short, long)]
    pub all: bool,
    #[arg(long, value_parser = ["table", "json"], default_value = "table")]
    pub format: String,
}

pub async fn run(g: &GlobalArgs, a: PsArgs) -> Result<(), Failure> {
    let name = if a.all {
        None
    } else {
        Some(context::project_name(&a.project)?)
    };
    let statuses: Vec<ProjectStatus> = match (context::target(g).await?, &name) {
        (Target::Daemon(c), Some(n)) => vec![
            c.json(Method::GET, &format!("/v1/projects/{n}"), None::<&()>)
                .await?,
        ],
        (Target::Daemon(c), None) => c.json(Method::GET, "/v1/projects", None::<&()>).await?,
        (Target::Local(sup), Some(n)) => vec![sup.status(n).await?],
        (Target::Local(sup), None) => {
            let mut out = Vec::new();
            for n in sup.project_names().await? {
                match sup.status(&n).await {
                    Ok(s) => out.push(s),
                    Err(Error::UnknownProject(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            out
        }
    };
    if a.format == "json" {
        let v = if name.is_some() {
            serde_json::to_string_pretty(&statuses[0])
        } else {
            serde_json::to_string_pretty(&statuses)
        };
        println!("{}", v.expect("statuses serialize"));
        return Ok(());
    }
    println!(
        "{:<28} {:<16} {:<22} {:<10} {:>8}  STARTED",
        "NAME", "SERVICE", "STATE", "HEALTH", "RESTARTS"
    );
    for s in &statuses {
        for c in &s.containers {
            let mut state = c.state.as_str().to_string();
            if let Some(code) = c.exit_code {
                state = format!("{state} ({code})");
            }
            if c.crash_loop {
                state.push_str(" crash-loop");
            }
            if c.held {
                state.push_str(" held");
            }
            let health = c
                .health
                .map(|h| format!("{h:?}").to_lowercase())
                .unwrap_or_else(|| "-".into());
            println!(
                "{:<28} {:<16} {:<22} {:<10} {:>8}  {}",
                c.name,
                c.service,
                state,
                health,
                c.restarts,
                c.started_at.as_deref().unwrap_or("-")
            );
        }
    }
    Ok(())
}
