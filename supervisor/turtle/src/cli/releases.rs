//! `turtle releases` (the history) and `turtle rollback`.

use clap::Args;

use super::context::{self, Failure};
use super::output::Printer;
use super::{GlobalArgs, ProjectArgs};

#[derive(Debug, Args)]
pub struct ReleasesArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Output format.
    #[arg(long, value_parser = ["text", "json"], default_value = "text")]
    pub format: String,
}

#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The release to return to: its ID or a unique prefix [default: the
    /// one before the current].
    pub release: Option<String>,
    #[command(flatten)]
    pub project: ProjectArgs,
    /// How long every service must run healthy before the rollback is
    /// committed [default: as for push].
    #[arg(long, value_parser = super::push::parse_duration)]
    pub settle: Option<std::time::Duration>,
    /// Go past update locks held by services.
    #[arg(long)]
    pub force: bool,
}

pub async fn list(g: &GlobalArgs, a: ReleasesArgs) -> Result<(), Failure> {
    let name = context::project_name(&a.project)?;
    let target = context::target(g).await?;
    let releases = target.control().releases(&name).await?;
    if a.format == "json" {
        println!(
            "{}",
            serde_json::to_string_pretty(&releases).expect("releases serialize")
        );
        return Ok(());
    }
    if releases.is_empty() {
        eprintln!("turtle: project {name} has no releases (turtle push makes one)");
        return Ok(());
    }
    let current = releases
        .iter()
        .find(|r| r.outcome == turtle_runtime::release::Outcome::Committed)
        .map(|r| r.id.clone());
    println!(
        "{:<3} {:<4} {:<12} {:<12} {:<20} {:<12} WHY / NOTES",
        "", "#", "ID", "VERSION", "CREATED", "OUTCOME"
    );
    for r in &releases {
        let mark = if Some(&r.id) == current.as_ref() {
            "*"
        } else {
            ""
        };
        let created = super::events::rfc3339(r.created_ms);
        let why = r.reason.clone().unwrap_or_else(|| r.notes.clone());
        println!(
            "{:<3} {:<4} {:<12} {:<12} {:<20} {:<12} {}",
            mark,
            r.seq,
            r.id,
            r.version,
            created,
            r.outcome.to_string(),
            why
        );
    }
    Ok(())
}

pub async fn rollback(g: &GlobalArgs, a: RollbackArgs) -> Result<(), Failure> {
    let name = context::project_name(&a.project)?;
    let target = context::target(g).await?;
    let printer = Printer::new();
    let opts = turtle_control::wire::PushOptions {
        settle: a.settle,
        force: a.force,
        ..Default::default()
    };
    let release = target
        .control()
        .rollback(&name, a.release.as_deref(), &opts, &|e| printer.event(e))
        .await?;
    super::push::decided(&release)
}
