//! `turtle events`: the supervisor's event log.

use clap::Args;
use futures_util::StreamExt;

use super::GlobalArgs;
use super::context::{self, Failure};
use turtle_control::wire::{EventRecord, EventsQuery};

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
    /// Only events of this project.
    #[arg(short = 'p', long = "project-name")]
    pub project: Option<String>,
}

pub async fn run(g: &GlobalArgs, a: EventsArgs) -> Result<(), Failure> {
    let show = |e: &EventRecord| {
        if a.project.as_ref().is_some_and(|p| *p != e.project) {
            return;
        }
        if a.json {
            println!("{}", serde_json::to_string(e).expect("events serialize"));
        } else {
            println!(
                "{} {} {} {} {}",
                rfc3339(e.time),
                e.project,
                e.service.as_deref().unwrap_or("-"),
                e.kind,
                e.message
            );
        }
    };
    let target = context::target(g).await?;
    if a.follow && !target.is_daemon() {
        return Err(Failure::op(
            "events --follow needs a running daemon (turtle daemon or turtle up)",
        ));
    }
    let query = EventsQuery {
        follow: a.follow,
        after: None,
        limit: Some(a.limit),
    };
    let mut events = target.control().events(&query).await?;
    while let Some(e) = events.next().await {
        show(&e?);
    }
    Ok(())
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SS.mmmZ` (UTC).
pub fn rfc3339(ms: i64) -> String {
    let (secs, millis) = (ms.div_euclid(1000), ms.rem_euclid(1000));
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_795_323_767_658),
            "2026-11-22T05:02:47.658Z"
        );
        assert_eq!(super::rfc3339(951_782_400_001), "2000-02-29T00:00:00.001Z");
    }
}
