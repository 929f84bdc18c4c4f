//! The fleet-scale simulator at its smallest honest size, against this api and
//! a real PostgreSQL: seeded devices hold the agent's conversation (ETag polls,
//! state reports, log batches) and every call of every device must land. The
//! numbers come from `bench/fleet_scale.py` (BENCHMARKS.md); nothing here is
//! timed.

use std::time::Duration;

use turtle_fleet_sim::{Plan, run, seed_sql};

use crate::fixture::Stack;

const DEVICES: u64 = 100;

#[tokio::test]
async fn simulated_devices_poll_report_and_ship_logs_through_the_real_routes() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("sim").await;
    let db = stack.pg.client().await;
    db.batch_execute(&seed_sql(fleet, "sim-", 0, DEVICES).unwrap())
        .await
        .unwrap();

    let summary = run(
        &stack.api,
        Plan {
            key_prefix: "sim-".into(),
            first: 0,
            devices: DEVICES,
            interval: Duration::from_secs(1),
            warmup: Duration::from_secs(1),
            duration: Duration::from_secs(3),
            connections: 16,
            report_every: 2,
            log_lines: 3,
        },
    )
    .await;

    assert_eq!(summary.errors, 0, "{:#?}", summary.error_messages);
    let target = &summary.kinds["target"];
    // Every device's polls are due every 0.9-1.1 s, three in the window or
    // so, and each is made however late the answers come (the load is open).
    assert!(target.count >= 2 * DEVICES, "{summary:#?}");
    // Each device's first poll (in the warm-up) took the target and its ETag:
    // every measured poll is a 304.
    assert_eq!(target.not_modified, target.count, "{summary:#?}");
    assert!(summary.kinds["state"].count >= DEVICES, "{summary:#?}");
    // A report every other poll, a log batch after every poll.
    assert!(summary.kinds["logs"].count >= 2 * DEVICES, "{summary:#?}");

    // What the api kept: every device seen, reported and logged.
    let row = db
        .query_one(
            "SELECT count(*) FILTER (WHERE last_seen IS NOT NULL),
                    count(*) FILTER (WHERE state->'device'->>'profile' = 'raspberrypi3'),
                    (SELECT count(DISTINCT device_uuid) FROM device_logs)
             FROM devices WHERE fleet_id = $1",
            &[&fleet],
        )
        .await
        .unwrap();
    let (seen, reported, logged): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    let all = DEVICES as i64;
    assert_eq!((seen, reported, logged), (all, all, all));

    // A key the seed did not make is refused, as any unknown device is.
    let stranger = run(
        &stack.api,
        Plan {
            key_prefix: "sim-".into(),
            first: DEVICES,
            devices: 1,
            interval: Duration::from_millis(200),
            warmup: Duration::ZERO,
            duration: Duration::from_millis(500),
            connections: 1,
            report_every: 0,
            log_lines: 0,
        },
    )
    .await;
    assert!(stranger.kinds["target"].count > 0);
    assert_eq!(
        stranger.kinds["target"].errors.get("401"),
        Some(&stranger.kinds["target"].count)
    );
}
