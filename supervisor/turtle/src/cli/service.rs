//! `turtle start|stop|restart SERVICE...`.

use super::context::{self, Failure};
use super::{GlobalArgs, ProjectArgs};
use clap::Args;
use turtle_control::wire::ServiceAction;

#[derive(Debug, Args)]
pub struct ServiceArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// Services to act on.
    #[arg(required = true)]
    pub services: Vec<turtle_compose::ServiceName>,
}

pub async fn run(g: &GlobalArgs, a: ServiceArgs, action: ServiceAction) -> Result<(), Failure> {
    let name = context::project_name(&a.project)?;
    let target = context::target(g).await?;
    let verb = match action {
        ServiceAction::Start => "start",
        ServiceAction::Stop => "stop",
        ServiceAction::Restart => "restart",
    };
    for service in &a.services {
        let done = target
            .control()
            .service_action(&name, service, action)
            .await?;
        for c in done {
            eprintln!(" ✔ {verb} {c}");
        }
    }
    Ok(())
}
