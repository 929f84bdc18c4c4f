//! Numbers for BENCHMARKS.md, printed, never asserted. Run with
//!
//! ```sh
//! cargo test -p turtle-api --test api bench:: -- --ignored --nocapture --test-threads 1
//! ```
//!
//! - the database's growth while one device posts logs and state reports as
//!   fast as it can for a minute (it gets what its limits allow, 429 for the
//!   rest), measured with `pg_database_size` on the test's PostgreSQL;
//! - registrations refused past a provisioning key's use count: the issue's
//!   205 attempts with one key, with the default rate limits and with them
//!   lifted (so the use count alone refuses).

use std::time::{Duration, Instant};

use turtle_fleet_api::{Client, Error, LogLineIn, Registration};

use crate::fixture::Stack;

async fn database_size(stack: &Stack) -> i64 {
    let db = stack.pg.client().await;
    db.batch_execute("CHECKPOINT").await.unwrap();
    db.query_one("SELECT pg_database_size(current_database())", &[])
        .await
        .unwrap()
        .get(0)
}

/// `len` characters of letters and digits that do not compress (a xorshift
/// stream): PostgreSQL compresses long values, and repeated text would hide
/// what real logs cost.
fn noise(seed: u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            ALPHABET[(x % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

fn mib(bytes: i64) -> String {
    format!("{:.2} MiB", bytes as f64 / f64::from(1 << 20))
}

/// What happened to the calls of one kind.
#[derive(Default, Debug)]
struct Tally {
    accepted: u64,
    accepted_bytes: u64,
    limited: u64,
    other: Vec<String>,
}

impl Tally {
    fn count(&mut self, answer: Result<(), Error>, bytes: u64) {
        match answer {
            Ok(()) => {
                self.accepted += 1;
                self.accepted_bytes += bytes;
            }
            Err(e) if e.status() == Some(429) => self.limited += 1,
            Err(e) => self.other.push(e.to_string()),
        }
    }
}

#[tokio::test]
#[ignore = "a benchmark: a minute long, prints numbers"]
async fn bench_database_growth_from_one_device_at_its_limits() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("bench").await;
    let device = stack.device(fleet, None).await;
    let as_device = stack.as_device(&device);
    let before = database_size(&stack).await;

    // The largest lines the api keeps whole (4 KiB), 100 to a post: 400 KiB of
    // text a post, as the attack of issue 11 sent 2 MiB bodies.
    let batch: Vec<LogLineIn> = (0..100)
        .map(|i| LogLineIn {
            message: noise(i + 1, 4096),
            service: Some("web".into()),
            timestamp: None,
        })
        .collect();
    let batch_bytes: u64 = batch.iter().map(|l| l.message.len() as u64).sum();
    let report = serde_json::json!({"blob": noise(7, (64 << 10) - 20)});
    let report_bytes = report.to_string().len() as u64;

    let mut logs = Tally::default();
    let mut states = Tally::default();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        logs.count(as_device.post_logs(&batch).await, batch_bytes);
        states.count(as_device.report_state(&report).await, report_bytes);
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = database_size(&stack).await;
    let db = stack.pg.client().await;
    let rows: i64 = db
        .query_one("SELECT count(*) FROM device_logs", &[])
        .await
        .unwrap()
        .get(0);
    let table: i64 = db
        .query_one("SELECT pg_total_relation_size('device_logs')", &[])
        .await
        .unwrap()
        .get(0);

    println!(
        "one device at its limits for {elapsed:.1} s (defaults: --device-log-limit 1MiB/m, --device-state-limit 12/m):"
    );
    println!(
        "  log posts: {} accepted ({} of text), {} refused with 429, other failures {:?}",
        logs.accepted,
        mib(logs.accepted_bytes as i64),
        logs.limited,
        logs.other
    );
    println!(
        "  state reports of 64 KiB: {} accepted, {} refused with 429, other failures {:?}",
        states.accepted, states.limited, states.other
    );
    println!(
        "  log lines stored: {rows}; device_logs with indexes and TOAST: {}",
        mib(table)
    );
    println!(
        "  pg_database_size: {} before, {} after: grew {}",
        mib(before),
        mib(after),
        mib(after - before)
    );
}

/// Registers `attempts` times with one key; prints what came back.
async fn register_with_one_key(api: &Client, key: &str, attempts: usize) -> String {
    let body = Registration {
        name: None,
        provisioning_key: key.into(),
        wireguard_public_key: None,
        ..Default::default()
    };
    let start = Instant::now();
    let (mut created, mut used_up, mut limited, mut other) = (0, 0, 0, Vec::new());
    for _ in 0..attempts {
        match api.register(&body).await {
            Ok(_) => created += 1,
            Err(e) if e.status() == Some(401) && e.to_string().contains("used up") => used_up += 1,
            Err(e) if e.status() == Some(429) => limited += 1,
            Err(e) => other.push(e.to_string()),
        }
    }
    format!(
        "{attempts} attempts in {:.2} s: {created} registered, {used_up} refused as used up \
         (401), {limited} refused by a rate limit (429), other {other:?}",
        start.elapsed().as_secs_f64()
    )
}

#[tokio::test]
#[ignore = "a benchmark: prints numbers"]
async fn bench_registrations_past_a_keys_use_count() {
    let stack = Stack::start().await;
    let fleet = stack.fleet("bench").await;
    let key = stack.provisioning_key(fleet, 3600).await;
    println!(
        "one provisioning key (max_uses 1), default rate limits: {}",
        register_with_one_key(&stack.api, &key.key, 205).await
    );

    let lifted = Stack::start_with(&[
        "--registration-limit",
        "1000000/m",
        "--registration-key-limit",
        "1000000/m",
    ])
    .await;
    let fleet = lifted.fleet("bench").await;
    for uses in [1, 10] {
        let key = lifted.provisioning_key_for(fleet, 3600, uses).await;
        println!(
            "one provisioning key (max_uses {uses}), rate limits lifted: {}",
            register_with_one_key(&lifted.api, &key.key, 205).await
        );
    }
}
