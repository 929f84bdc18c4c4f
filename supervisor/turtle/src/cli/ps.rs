//! `turtle ps`: the project's containers.

use super::context::{self, Failure};
use super::{GlobalArgs, ProjectArgs};
use clap::Args;
use turtle_control::wire::ProjectStatus;

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
    let target = context::target(g).await?;
    let statuses: Vec<ProjectStatus> = match &name {
        Some(n) => vec![target.control().status(n).await?],
        None => target.control().projects().await?,
    };
    print(&statuses, a.format == "json", name.is_some())
}

/// Prints projects' containers as a table, or as JSON (one project's
/// status alone when `one`). `turtle devices ps` prints a device's so.
pub fn print(statuses: &[ProjectStatus], json: bool, one: bool) -> Result<(), Failure> {
    if json {
        let v = if one {
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
    for s in statuses {
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
