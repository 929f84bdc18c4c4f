//! `turtle device`: the box's profile, swap, zram, temperatures and what is
//! being shed; `turtle device reset` undoes the tuning.

use super::GlobalArgs;
use super::context::{Failure, supervisor_config};
use clap::{Args, Subcommand};
use turtle_control::Control;
use turtle_control::client::Client;
use turtle_control::wire::DeviceReport;
use turtle_runtime::device::Device;
use turtle_runtime::shed::Shedder;

#[derive(Debug, Args)]
pub struct DeviceArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Option<DeviceCommand>,
}

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Undo what Turtle set up: swap off and delete its swap file, remove its
    /// zram device, restore the sysctls it changed. A daemon sets them up
    /// again at its next start unless the config says `device: {tune: false}`.
    Reset,
}

pub async fn run(g: &GlobalArgs, a: DeviceArgs) -> Result<(), Failure> {
    let config = supervisor_config(g)?;
    if let Some(DeviceCommand::Reset) = a.command {
        let report = Device::reset(&g.state_dir, &config).map_err(Failure::op)?;
        if report.changes.is_empty() {
            println!("nothing to undo: Turtle has set nothing up on this box");
        }
        for c in &report.changes {
            println!("{c}");
        }
        return Ok(());
    }
    // The daemon knows what it sheds; without one, a fresh sample (a
    // shedder that does not run reports no shedding).
    let report: DeviceReport = match Client::connect(&g.socket_path()).await {
        Some(daemon) => daemon.device().await?,
        None => {
            let device = Device::open(&g.state_dir, &config).map_err(Failure::op)?;
            Shedder::new(std::sync::Arc::new(device)).report()
        }
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(Failure::op)?
        );
    } else {
        print!("{}", render(&report));
    }
    Ok(())
}

fn render(r: &DeviceReport) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(out, "profile   {} ({})", r.profile, r.description);
    let _ = writeln!(out, "          {}", r.reason);
    for s in &r.system.swaps {
        let ours = if s.ours { " (Turtle's)" } else { "" };
        let _ = writeln!(
            out,
            "swap      {} {} {} used, priority {}{ours}",
            s.path.display(),
            turtle_units::ByteSize(s.size_bytes),
            turtle_units::ByteSize(s.used_bytes),
            s.priority
        );
    }
    if r.system.swaps.is_empty() {
        let _ = writeln!(out, "swap      none");
    }
    for s in &r.system.sysctls {
        let now = s.current.as_deref().unwrap_or("?");
        let _ = writeln!(out, "sysctl    {} = {now} (Turtle sets {})", s.key, s.set);
    }
    for p in &r.system.problems {
        let _ = writeln!(out, "problem   {p}");
    }
    let temp =
        |m: Option<i64>| m.map_or("-".to_string(), |m| format!("{:.1} °C", m as f64 / 1000.0));
    let _ = writeln!(
        out,
        "thermal   {} (hottest {})",
        r.thermal.level,
        temp(r.thermal.hottest)
    );
    for z in &r.thermal.zones {
        let what = match (&z.millideg, &z.error) {
            (Some(m), _) => temp(Some(*m)),
            (None, Some(e)) => format!("unreadable: {e}"),
            (None, None) => "-".to_string(),
        };
        let _ = writeln!(
            out,
            "  {:<16} {:<16} {what}",
            z.zone,
            z.kind.as_deref().unwrap_or("")
        );
    }
    match &r.memory_pressure {
        Some(p) => {
            let _ = writeln!(out, "memory    pressure {:.2}% (some, avg10)", p.some_avg10);
        }
        None => {
            let _ = writeln!(
                out,
                "memory    no pressure information (kernel without PSI)"
            );
        }
    }
    match &r.shedding {
        Some(s) if s.shed.is_empty() => {
            let _ = writeln!(out, "shedding  nothing ({})", s.reason);
        }
        Some(s) => {
            let shed: Vec<String> = s.shed.iter().map(|a| format!("{a:?}")).collect();
            let _ = writeln!(out, "shedding  {} ({})", shed.join(", "), s.reason);
        }
        None => {
            let _ = writeln!(out, "shedding  only a running daemon sheds load");
        }
    }
    out
}
