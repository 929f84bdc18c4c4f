//! A fleet of simulated devices: what `turtle daemon` with a parent says to
//! the api, without its containers, for as many devices as the api can take.
//!
//! Each device follows the agent's steady state at a poll interval: a
//! conditional `GET /v1/device/target` (`If-None-Match` with the last ETag:
//! 304 while the fleet's target holds), a state report (`PUT
//! /v1/device/state`) every `report_every` polls (the agent's heartbeat is
//! ten intervals) and a batch of log lines (`POST /v1/device/logs`) after
//! every poll. Polls are spread over the interval and jittered by a tenth, as
//! the agent's are.
//!
//! The load is open: a device's polls are scheduled by the clock, not by the
//! last answer, and a poll's latency runs from when it was due to when its
//! answer arrived (a report or a batch, sent right after, from when it was
//! sent). Waiting for one of the `connections` (the connection cap a
//! proxy gives one source) counts, so a saturated api shows as latency, not
//! as a slower simulator (no coordinated omission).
//!
//! Devices are not registered through the api (registration is rate-limited
//! per provisioning key by design, and 100 000 devices would take hours):
//! [`seed_sql`] inserts their rows with keys the simulator derives
//! ([`device_key`]), which the api sees as any registered device's.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;
use turtle_fleet_api::{Client, Conditional, Credentials, Error, LogLineIn};

/// What the simulated fleet does.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Device `i`'s key is `key_prefix` followed by `i` ([`device_key`]).
    pub key_prefix: String,
    /// The first device's number.
    pub first: u64,
    /// How many devices.
    pub devices: u64,
    /// The poll interval.
    pub interval: Duration,
    /// Calls due before this (from the start) are made but not measured: the
    /// first poll of each device gets the whole target (200), and the
    /// connections are being opened.
    pub warmup: Duration,
    /// How long calls are measured after the warm-up.
    pub duration: Duration,
    /// Calls in flight at most (connections to the api).
    pub connections: usize,
    /// A state report every this many polls (0: none).
    pub report_every: u32,
    /// Log lines per batch, one batch after every poll (0: none).
    pub log_lines: usize,
}

/// Device `i`'s key.
pub fn device_key(prefix: &str, i: u64) -> String {
    format!("{prefix}{i}")
}

/// SQL that inserts devices `first..first + count` of fleet `fleet_id` with
/// the keys [`device_key`] gives (a device already there is kept).
pub fn seed_sql(fleet_id: i64, prefix: &str, first: u64, count: u64) -> anyhow::Result<String> {
    anyhow::ensure!(
        !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
        "the key prefix {prefix:?} must be letters, digits, - and _"
    );
    anyhow::ensure!(count > 0, "seed at least one device");
    let last = first + count - 1;
    Ok(format!(
        "INSERT INTO devices (fleet_id, name, key_sha256) \
         SELECT {fleet_id}, '{prefix}' || i, sha256(convert_to('{prefix}' || i, 'UTF8')) \
         FROM generate_series({first}::bigint, {last}::bigint) AS i \
         ON CONFLICT (key_sha256) DO NOTHING;"
    ))
}

/// The kinds of call a device makes.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Target,
    State,
    Logs,
}

const KINDS: [(Kind, &str); 3] = [
    (Kind::Target, "target"),
    (Kind::State, "state"),
    (Kind::Logs, "logs"),
];

/// The measured calls of one kind.
#[derive(Default)]
struct Samples {
    micros: Vec<u32>,
    not_modified: u64,
    errors: BTreeMap<String, u64>,
    messages: Vec<String>,
}

/// What every device's measured calls gave.
struct Recorder {
    from: Instant,
    until: Instant,
    kinds: [Mutex<Samples>; 3],
}

impl Recorder {
    /// A call of the poll due at `due` (which decides whether it is
    /// measured), its latency counted from `since`.
    fn record<T>(
        &self,
        kind: Kind,
        due: Instant,
        since: Instant,
        answer: &Result<T, Error>,
        not_modified: bool,
    ) {
        if due < self.from || due >= self.until {
            return;
        }
        let micros = Instant::now()
            .duration_since(since)
            .as_micros()
            .min(u128::from(u32::MAX)) as u32;
        let mut s = self.kinds[kind as usize].lock().expect("samples lock");
        s.micros.push(micros);
        match answer {
            Ok(_) if not_modified => s.not_modified += 1,
            Ok(_) => {}
            Err(e) => {
                let what = match e {
                    Error::Timeout { .. } => "timeout".to_string(),
                    Error::Connect { .. } => "connect".to_string(),
                    e => e.status().map_or_else(|| "other".into(), |s| s.to_string()),
                };
                *s.errors.entry(what).or_default() += 1;
                if s.messages.len() < 3 {
                    s.messages.push(e.to_string());
                }
            }
        }
    }
}

/// The calls of one kind in the measured window.
#[derive(Debug, Serialize)]
pub struct KindSummary {
    pub count: u64,
    /// 304 answers (the target polls).
    pub not_modified: u64,
    /// Failed calls by status (or `timeout`, `connect`).
    pub errors: BTreeMap<String, u64>,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// What a run measured.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub devices: u64,
    pub interval_secs: f64,
    pub window_secs: f64,
    /// Calls due in the window, of every kind.
    pub requests: u64,
    pub requests_per_sec: f64,
    pub errors: u64,
    /// Over every kind.
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub kinds: BTreeMap<String, KindSummary>,
    /// A few failures as the client saw them.
    pub error_messages: Vec<String>,
}

/// The `p` quantile of sorted microseconds, in milliseconds.
fn quantile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

/// A small deterministic generator (xorshift): device `i`'s phase and
/// jitter are the same in every run.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The state report of a device running a three-service release: about the
/// size of the agent's (services, release, the box's facts).
fn report(i: u64) -> serde_json::Value {
    let release = serde_json::json!({"fleet_release": 1, "version": 3, "outcome": "committed"});
    let services: Vec<_> = ["web", "worker", "cache"]
        .map(|s| serde_json::json!({"service": s, "state": "running", "health": "healthy", "restarts": 0}))
        .into();
    serde_json::json!({
        "current_release": release,
        "target_release": {"id": 1, "version": 1},
        "last_update": release,
        "services": services,
        "device": {
            "profile": "raspberrypi3",
            "temperature_c": 48.5 + (i % 10) as f64,
            "swap": {"total_bytes": 1u64 << 30, "used_bytes": 12u64 << 20},
            "memory": {"total_bytes": 1u64 << 30, "available_bytes": 412u64 << 20},
            "pressure": {"memory_some_avg10": 0.4},
        },
        "vpn": null,
        "turtle": "0.1.0",
    })
}

/// A batch of `n` log lines of about 100 bytes.
fn log_batch(i: u64, n: usize) -> Vec<LogLineIn> {
    (0..n)
        .map(|k| LogLineIn {
            message: format!(
                "device {i} line {k}: GET /api/items 200 in 12 ms, cache hit, queue depth 0"
            ),
            service: Some("web".into()),
            timestamp: None,
        })
        .collect()
}

/// One device's calls until `end`.
async fn device(
    i: u64,
    client: Client,
    plan: Arc<Plan>,
    permits: Arc<Semaphore>,
    rec: Arc<Recorder>,
    start: Instant,
    end: Instant,
) {
    let mut rng = Rng::new(i);
    let mut due = start + plan.interval.mul_f64(rng.unit());
    let mut etag: Option<String> = None;
    let report = report(i);
    let lines = log_batch(i, plan.log_lines);
    let mut poll = i;
    while due < end {
        tokio::time::sleep_until(due).await;
        let answer = {
            let _permit = permits
                .acquire()
                .await
                .expect("the semaphore is never closed");
            client.target(etag.as_deref()).await
        };
        let not_modified = matches!(answer, Ok(Conditional::NotModified { .. }));
        rec.record(Kind::Target, due, due, &answer, not_modified);
        if let Ok(a) = &answer
            && let Some(tag) = a.etag()
        {
            etag = Some(tag.to_string());
        }
        if plan.report_every > 0 && poll.is_multiple_of(u64::from(plan.report_every)) {
            let now = Instant::now();
            let answer = {
                let _permit = permits
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                client.report_state(&report).await
            };
            rec.record(Kind::State, due, now, &answer, false);
        }
        if !lines.is_empty() {
            let now = Instant::now();
            let answer = {
                let _permit = permits
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                client.post_logs(&lines).await
            };
            rec.record(Kind::Logs, due, now, &answer, false);
        }
        poll += 1;
        // The agent's jitter: the interval give or take a tenth.
        due += plan.interval.mul_f64(0.9 + 0.2 * rng.unit());
    }
}

/// Runs the fleet against `api` (a client whose connections and trust the
/// devices share) and sums up the measured window.
pub async fn run(api: &Client, plan: Plan) -> Summary {
    let plan = Arc::new(plan);
    let start = Instant::now();
    let from = start + plan.warmup;
    let until = from + plan.duration;
    let rec = Arc::new(Recorder {
        from,
        until,
        kinds: Default::default(),
    });
    let permits = Arc::new(Semaphore::new(plan.connections.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for i in plan.first..plan.first + plan.devices {
        let client = api.with_credentials(Credentials::Device {
            uuid: String::new(),
            key: device_key(&plan.key_prefix, i),
        });
        tasks.spawn(device(
            i,
            client,
            plan.clone(),
            permits.clone(),
            rec.clone(),
            start,
            until,
        ));
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("a device task does not panic");
    }
    summarize(&plan, &rec)
}

fn summarize(plan: &Plan, rec: &Recorder) -> Summary {
    let mut all = Vec::new();
    let mut kinds = BTreeMap::new();
    let mut errors = 0;
    let mut error_messages = Vec::new();
    for (kind, name) in KINDS {
        let mut s = rec.kinds[kind as usize].lock().expect("samples lock");
        s.micros.sort_unstable();
        all.extend_from_slice(&s.micros);
        errors += s.errors.values().sum::<u64>();
        error_messages.extend(s.messages.iter().cloned());
        kinds.insert(
            name.to_string(),
            KindSummary {
                count: s.micros.len() as u64,
                not_modified: s.not_modified,
                errors: s.errors.clone(),
                p50_ms: quantile(&s.micros, 0.50),
                p90_ms: quantile(&s.micros, 0.90),
                p99_ms: quantile(&s.micros, 0.99),
                max_ms: quantile(&s.micros, 1.0),
            },
        );
    }
    all.sort_unstable();
    let window = plan.duration.as_secs_f64();
    Summary {
        devices: plan.devices,
        interval_secs: plan.interval.as_secs_f64(),
        window_secs: window,
        requests: all.len() as u64,
        requests_per_sec: all.len() as f64 / window,
        errors,
        p50_ms: quantile(&all, 0.50),
        p99_ms: quantile(&all, 0.99),
        max_ms: quantile(&all, 1.0),
        kinds,
        error_messages,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_ranks_of_the_sorted_samples() {
        let v: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        assert_eq!(quantile(&v, 0.5), 50.0);
        assert_eq!(quantile(&v, 0.99), 99.0);
        assert_eq!(quantile(&v, 1.0), 100.0);
        assert_eq!(quantile(&[7000], 0.99), 7.0);
        assert_eq!(quantile(&[], 0.99), 0.0);
    }

    #[test]
    fn seeding_refuses_a_prefix_that_is_not_a_plain_word() {
        assert!(
            seed_sql(1, "sim-1_", 0, 10)
                .unwrap()
                .contains("generate_series(0::bigint, 9::bigint)")
        );
        assert!(seed_sql(1, "x'; DROP TABLE devices; --", 0, 10).is_err());
        assert!(seed_sql(1, "", 0, 10).is_err());
        assert!(seed_sql(1, "sim", 0, 0).is_err());
    }

    #[test]
    fn phases_spread_over_the_interval() {
        let mut buckets = [0u32; 10];
        for i in 0..10_000 {
            buckets[(Rng::new(i).unit() * 10.0) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&b| (800..1200).contains(&b)),
            "{buckets:?}"
        );
    }
}
