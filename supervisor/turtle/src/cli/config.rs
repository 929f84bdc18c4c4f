//! `turtle config`: validate and print the normalized project.

use clap::Args;

use super::ProjectArgs;
use super::context::{self, Failure};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Only validate; print nothing and exit 0 when the files are good.
    #[arg(short, long)]
    pub quiet: bool,
    #[arg(long, value_parser = ["yaml", "json"], default_value = "yaml")]
    pub format: String,
    /// Print each service's config hash instead of the project.
    #[arg(long)]
    pub hash: bool,
}

pub fn run(a: ConfigArgs) -> Result<(), Failure> {
    let project = context::load_project(&a.project)?;
    if a.quiet {
        return Ok(());
    }
    if a.hash {
        for (name, s) in &project.services {
            println!("{name} {}", turtle_compose::service_hash(s));
        }
        return Ok(());
    }
    let text = if a.format == "json" {
        serde_json::to_string_pretty(&project).map_err(Failure::op)? + "\n"
    } else {
        serde_norway::to_string(&project).map_err(Failure::op)?
    };
    print!("{text}");
    Ok(())
}
