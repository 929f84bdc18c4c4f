//! `turtle names`: what the daemon publishes over mDNS, and conflicts.

use super::GlobalArgs;
use super::context::Failure;
use clap::Args;
use turtle_control::Control;
use turtle_control::client::Client;

#[derive(Debug, Args)]
pub struct NamesArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(g: &GlobalArgs, a: NamesArgs) -> Result<(), Failure> {
    // Only a daemon publishes: no in-process supervisor to fall back on.
    let Some(daemon) = Client::connect(&g.socket_path()).await else {
        return Err(Failure::op(format!(
            "no daemon answers on {}: names are published by the daemon (turtle daemon, or turtle up --detach)",
            g.socket_path().display()
        )));
    };
    let status = daemon.names().await?;
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&status).map_err(Failure::op)?
        );
        return Ok(());
    }
    if !status.publishing {
        println!(
            "not publishing {}: {}",
            status.domain,
            status.reason.as_deref().unwrap_or("unknown reason")
        );
        return Ok(());
    }
    let addresses: Vec<String> = status.addresses.iter().map(ToString::to_string).collect();
    println!(
        "publishing on {} as {}",
        status.interfaces.join(", "),
        addresses.join(", ")
    );
    for n in status.names.iter().chain(status.service.as_ref()) {
        let state = match (n.conflict, n.announced) {
            (true, _) => format!("CONFLICT: another host holds it; published as {}", n.held),
            (false, true) => "announced".to_string(),
            (false, false) => "probing".to_string(),
        };
        println!("  {:<40} {state}", n.name);
    }
    for e in &status.errors {
        println!("error: {e}");
    }
    Ok(())
}
