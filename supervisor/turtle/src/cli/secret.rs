//! `turtle secret`: print a secret the supervisor made for a project's
//! services (the stack's admin token, say), on the box, as root.

use clap::Args;

use super::context::{self, Failure};
use super::{GlobalArgs, ProjectArgs};
use turtle_compose::ProjectName;
use turtle_runtime::secrets::{SecretName, Secrets};

#[derive(Debug, Args)]
pub struct SecretArgs {
    /// The secret to print (e.g. admin-token); without it, list the project's secrets.
    pub name: Option<SecretName>,
    #[command(flatten)]
    pub project: ProjectArgs,
}

pub fn run(g: &GlobalArgs, a: SecretArgs) -> Result<(), Failure> {
    let secrets = Secrets::new(&g.state_dir);
    let project = which_project(&secrets, &a.project)?;
    match a.name {
        Some(name) => {
            let value = secrets.read(&project, &name).map_err(Failure::input)?;
            println!("{value}");
        }
        None => {
            for n in secrets.names(&project) {
                println!("{n}");
            }
        }
    }
    Ok(())
}

/// `-p`, else the compose file's project, else the only project with secrets.
fn which_project(secrets: &Secrets, args: &ProjectArgs) -> Result<ProjectName, Failure> {
    if args.project_name.is_some() {
        return context::project_name(args);
    }
    let with_secrets = secrets.projects();
    if (!args.files.is_empty() || with_secrets.len() != 1)
        && let Ok(name) = context::project_name(args)
    {
        return Ok(name);
    }
    match with_secrets.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(Failure::input(format!(
            "no project has secrets in {} (they are made at `turtle up`)",
            secrets.dir().display()
        ))),
        many => Err(Failure::input(format!(
            "several projects have secrets ({}): name one with -p",
            many.iter()
                .map(ProjectName::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
