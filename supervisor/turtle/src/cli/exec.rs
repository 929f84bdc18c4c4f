//! `turtle exec SERVICE -- CMD...`: a command run in a service's running
//! container, its output printed and its exit code returned (no terminal,
//! no standard input: `docker compose exec -T`). `turtle devices exec`
//! runs the same verb on a device's daemon through the VPN.

use std::io::Write;

use clap::Args;
use turtle_control::wire::{ExecRequest, ExecResult};

use super::context::{self, Failure};
use super::{GlobalArgs, ProjectArgs};

/// What `exec` takes besides the project: shared with `turtle devices exec`.
#[derive(Debug, Args)]
pub struct ExecCommand {
    /// The service whose container runs the command.
    pub service: turtle_compose::ServiceName,
    /// Which replica (1-based) [default: the lowest running one].
    #[arg(long)]
    pub index: Option<u32>,
    /// Run as this user (name or uid[:gid]) [default: the container's].
    #[arg(short, long)]
    pub user: Option<String>,
    /// The working directory inside the container.
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Set an environment variable (KEY=value; repeatable).
    #[arg(short, long = "env", value_name = "KEY=VALUE")]
    pub env: Vec<String>,
    /// The command and its arguments (after `--`).
    #[arg(required = true, last = true)]
    pub command: Vec<String>,
}

impl ExecCommand {
    pub fn request(&self) -> Result<ExecRequest, Failure> {
        if let Some(bad) = self.env.iter().find(|e| !e.contains('=')) {
            return Err(Failure::input(format!("--env {bad:?}: give KEY=value")));
        }
        Ok(ExecRequest {
            command: self.command.clone(),
            index: self.index,
            user: self.user.clone(),
            workdir: self.workdir.clone(),
            env: self.env.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    #[command(flatten)]
    pub exec: ExecCommand,
}

pub async fn run(g: &GlobalArgs, a: ExecArgs) -> Result<(), Failure> {
    let name = context::project_name(&a.project)?;
    let request = a.exec.request()?;
    let target = context::target(g).await?;
    let result = target
        .control()
        .exec(&name, &a.exec.service, &request)
        .await?;
    finish(&result)
}

/// Prints the command's output (stdout to stdout, stderr to stderr) and
/// ends with its exit code.
pub fn finish(r: &ExecResult) -> Result<(), Failure> {
    // A closed pipe is not the command's failure: its exit code still counts.
    let _ = std::io::stdout().lock().write_all(r.stdout.as_bytes());
    let _ = std::io::stderr().lock().write_all(r.stderr.as_bytes());
    if r.truncated {
        eprintln!(
            "turtle: the output was cut at {} MiB a stream",
            turtle_runtime::supervisor::EXEC_OUTPUT_LIMIT >> 20
        );
    }
    match r.exit_code {
        0 => Ok(()),
        // Silent: the command said why, if anything.
        c => Err(Failure {
            message: String::new(),
            code: u8::try_from(c).ok().filter(|c| *c != 0).unwrap_or(1),
        }),
    }
}
