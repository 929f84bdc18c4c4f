//! `turtle-fleet-sim`: N simulated devices against a backend's api (see the
//! library's documentation, and `bench/fleet_scale.py`, which drives it).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use turtle_fleet_api::Client;
use turtle_fleet_sim::{Plan, run, seed_sql};

#[derive(Parser)]
#[command(
    about = "Simulated devices against a Turtle backend's api: ETag polls of the target, state \
             reports and log batches at a poll interval, with the latency of every call",
    after_help = "Seed the devices first: `turtle-fleet-sim seed-sql --fleet-id F --devices N | \
                  psql ...` on the backend's database, then `turtle-fleet-sim run` with the same \
                  prefix and count."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the SQL that inserts the devices (their keys derived from the prefix).
    SeedSql {
        /// The fleet's id (`turtle fleet ls`).
        #[arg(long)]
        fleet_id: i64,
        #[arg(long)]
        devices: u64,
        #[arg(long, default_value_t = 0)]
        first: u64,
        /// Device i's key is this prefix followed by i.
        #[arg(long, default_value = "sim-")]
        key_prefix: String,
    },
    /// Run the devices and print what was measured (JSON with --json).
    Run {
        /// The api, as devices call it: https://api.<domain>[:port].
        #[arg(long)]
        api: String,
        /// The backend's root CA (`turtle ca export`), for an https api.
        #[arg(long)]
        ca: Option<PathBuf>,
        #[arg(long)]
        devices: u64,
        #[arg(long, default_value_t = 0)]
        first: u64,
        #[arg(long, default_value = "sim-")]
        key_prefix: String,
        /// Seconds between a device's polls.
        #[arg(long, default_value_t = 60.0)]
        interval: f64,
        /// Seconds of calls not measured at the start [default: one interval].
        #[arg(long)]
        warmup: Option<f64>,
        /// Seconds of calls measured after the warm-up.
        #[arg(long, default_value_t = 120.0)]
        duration: f64,
        /// Calls in flight at most (the proxy allows one source 128 connections).
        #[arg(long, default_value_t = 100)]
        connections: usize,
        /// A state report every this many polls (the agent's heartbeat: 10).
        #[arg(long, default_value_t = 10)]
        report_every: u32,
        /// Log lines per batch, one batch per poll.
        #[arg(long, default_value_t = 5)]
        log_lines: usize,
        /// Seconds before a call counts as timed out.
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
        /// Print the summary as one JSON object.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::SeedSql {
            fleet_id,
            devices,
            first,
            key_prefix,
        } => {
            println!("{}", seed_sql(fleet_id, &key_prefix, first, devices)?);
            Ok(())
        }
        Command::Run {
            api,
            ca,
            devices,
            first,
            key_prefix,
            interval,
            warmup,
            duration,
            connections,
            report_every,
            log_lines,
            timeout,
            json,
        } => {
            let secs = |s: f64, what: &str| {
                Duration::try_from_secs_f64(s)
                    .with_context(|| format!("--{what} must be a number of seconds"))
            };
            let mut builder = Client::builder(api).timeout(secs(timeout, "timeout")?);
            if let Some(ca) = ca {
                builder = builder.root_ca_pem(
                    std::fs::read(&ca).with_context(|| format!("reading {}", ca.display()))?,
                );
            }
            let client = builder.build()?;
            let plan = Plan {
                key_prefix,
                first,
                devices,
                interval: secs(interval, "interval")?,
                warmup: secs(warmup.unwrap_or(interval), "warmup")?,
                duration: secs(duration, "duration")?,
                connections,
                report_every,
                log_lines,
            };
            let summary = tokio::runtime::Runtime::new()?.block_on(run(&client, plan));
            if json {
                println!("{}", serde_json::to_string(&summary)?);
            } else {
                println!(
                    "{} devices, {:.0} s measured: {} calls ({:.1}/s), {} failed; \
                     p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
                    summary.devices,
                    summary.window_secs,
                    summary.requests,
                    summary.requests_per_sec,
                    summary.errors,
                    summary.p50_ms,
                    summary.p99_ms,
                    summary.max_ms
                );
                for (name, k) in &summary.kinds {
                    println!(
                        "  {name:<7} {:>8} calls ({} not modified), p50 {:.1} ms, p90 {:.1} ms, \
                         p99 {:.1} ms, max {:.1} ms, failed {:?}",
                        k.count, k.not_modified, k.p50_ms, k.p90_ms, k.p99_ms, k.max_ms, k.errors
                    );
                }
                for m in &summary.error_messages {
                    println!("  failure: {m}");
                }
            }
            Ok(())
        }
    }
}
