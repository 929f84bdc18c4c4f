//! `turtle events`: the supervisor's event log.

use clap::Args;
use futures_util::StreamExt;
use hyper::Method;

use super::GlobalArgs;
use super::context::{self, Failure, Target};
use crate::store::EventRecord;

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// Keep printing new events (needs a running daemon).
    #[arg(short, long)]
    pub follow: bool,
    /// How many past events to show.
    #[arg(short = 'n', long, default_value_t = 50)]
    pub limit: i64,
    /// Print JSON lines.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(g: &GlobalArgs, a: EventsArgs) -> Result<(), Failure> {
    let show = |e: &EventRecord| {
        if a.json {
            println!("{}", serde_json::to_string(e).expect("events serialize"));
        } else {
            println!(
                "{} {} {} {} {}",
                e.time,
                e.project,
                e.service.as_deref().unwrap_or("-"),
                e.kind,
                e.message
            );
        }
    };
    match context::target(g).await? {
        Target::Daemon(c) => {
            let path = format!("/v1/events?follow={}&limit={}", a.follow, a.limit);
            let mut lines = Box::pin(c.lines(Method::GET, &path, None::<&()>).await?);
            while let Some(l) = lines.next().await {
                if let Ok(e) = serde_json::from_str::<EventRecord>(&l?) {
                    show(&e);
                }
            }
        }
        Target::Local(sup) => {
            if a.follow {
                return Err(Failure::op(
                    "events --follow needs a running daemon (turtle daemon or turtle up)",
                ));
            }
            for e in sup.store().recent_events(a.limit).map_err(Failure::op)? {
                show(&e);
            }
        }
    }
    Ok(())
}
