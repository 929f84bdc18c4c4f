//! Device log lines in the database, and what bounds them: the per-device row
//! cap (applied at every post, in the post's transaction), the retention
//! (applied to every device by a sweep every `--log-sweep-interval`, and once
//! at start with the cap, for a cap lowered since the last run), and the clamp
//! of the times devices send.
//!
//! Decided: the cap at insert, the retention by a sweep. The cap is what a
//! chatty device hits, so holding it at once at every post means no device is
//! ever over it after a post commits; a device's posts take its row lock, so
//! two posts cannot both trim before either inserts. The retention is about
//! time, not posts, so a silent device's old lines must go without a post.
//! Which lines go: the oldest received (by id), never by the device's own
//! timestamps.
//!
//! A device's time for a line is moved into [arrival - retention, arrival]: a
//! line cannot have been written after it arrived (a clock ahead, or a line
//! dated 9999 to sit at the top of "the last N lines"), and one older than the
//! retention would be kept past it.

use std::time::{Duration, Instant};

use deadpool_postgres::{Object, Pool};
use time::OffsetDateTime;

use crate::config::LogPolicy;
use crate::error::ApiResult;
use crate::state::AppState;

/// Lines deleted per statement by the sweep (so one statement never holds a
/// huge delete).
const SWEEP_BATCH: i64 = 10_000;

/// Lines to store, in order, already cleaned.
#[derive(Debug, Default)]
pub struct Batch {
    pub times: Vec<Option<OffsetDateTime>>,
    pub services: Vec<Option<String>>,
    pub messages: Vec<String>,
}

/// Stores `batch` for the device and trims its lines to the cap. `false` when
/// the device no longer exists (deleted since its key was checked).
pub async fn insert(
    client: &mut Object,
    uuid: &str,
    batch: &Batch,
    policy: &LogPolicy,
) -> ApiResult<bool> {
    let tx = client.transaction().await?;
    let exists = tx
        .query_opt(
            "SELECT 1 FROM devices WHERE uuid = $1::text::uuid FOR NO KEY UPDATE",
            &[&uuid],
        )
        .await?
        .is_some();
    if !exists {
        return Ok(false);
    }
    let retention_ms = retention_ms(policy);
    tx.execute(
        "INSERT INTO device_logs (device_uuid, at, service, message)
         SELECT $1::text::uuid,
                LEAST(GREATEST(COALESCE(t, statement_timestamp()),
                               statement_timestamp() - $5::bigint * interval '1 millisecond'),
                      statement_timestamp()),
                s, m
         FROM unnest($2::timestamptz[], $3::text[], $4::text[]) WITH ORDINALITY AS l (t, s, m, n)
         ORDER BY n",
        &[
            &uuid,
            &batch.times,
            &batch.services,
            &batch.messages,
            &retention_ms,
        ],
    )
    .await?;
    tx.execute(
        "DELETE FROM device_logs WHERE device_uuid = $1::text::uuid AND id <= (
             SELECT id FROM device_logs WHERE device_uuid = $1::text::uuid
             ORDER BY id DESC OFFSET $2 LIMIT 1)",
        &[&uuid, &policy.max_lines],
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

fn retention_ms(policy: &LogPolicy) -> i64 {
    i64::try_from(policy.retention.as_millis()).unwrap_or(i64::MAX)
}

/// Deletes the lines past the retention, in batches; returns how many.
pub async fn sweep(pool: &Pool, policy: &LogPolicy) -> ApiResult<u64> {
    let client = pool.get().await?;
    let retention_ms = retention_ms(policy);
    let mut deleted = 0;
    loop {
        let n = client
            .execute(
                "DELETE FROM device_logs WHERE id IN (
                     SELECT id FROM device_logs
                     WHERE received_at < now() - $1::bigint * interval '1 millisecond'
                     LIMIT $2)",
                &[&retention_ms, &SWEEP_BATCH],
            )
            .await?;
        deleted += n;
        if n < SWEEP_BATCH as u64 {
            return Ok(deleted);
        }
    }
}

/// Trims every device's lines to the cap; returns how many went.
pub async fn trim_all(pool: &Pool, policy: &LogPolicy) -> ApiResult<u64> {
    let client = pool.get().await?;
    Ok(client
        .execute(
            "DELETE FROM device_logs l USING (
                 SELECT d.uuid, (SELECT x.id FROM device_logs x WHERE x.device_uuid = d.uuid
                                 ORDER BY x.id DESC OFFSET $1 LIMIT 1) AS edge
                 FROM devices d
             ) e
             WHERE l.device_uuid = e.uuid AND l.id <= e.edge",
            &[&policy.max_lines],
        )
        .await?)
}

/// The background task of the api: the retention sweep (and at start the cap
/// for every device), and dropping full rate-limit buckets. Stops when
/// dropped.
pub struct Maintenance(tokio::task::JoinHandle<()>);

impl Drop for Maintenance {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Starts the maintenance task.
pub fn maintain(state: AppState) -> Maintenance {
    Maintenance(tokio::spawn(async move {
        let policy = state.config.logs;
        let mut first = true;
        loop {
            if first {
                match trim_all(&state.pool, &policy).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(
                        "deleted {n} log lines past --log-max-lines {}",
                        policy.max_lines
                    ),
                    Err(e) => tracing::warn!("trimming logs to --log-max-lines: {e}"),
                }
                first = false;
            }
            match sweep(&state.pool, &policy).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    "deleted {n} log lines older than --log-retention {}",
                    turtle_units::Duration::from_millis(policy.retention.as_millis() as u64)
                ),
                Err(e) => tracing::warn!(
                    "the log retention sweep failed (next in {} s): {e}",
                    policy.sweep_interval.as_secs()
                ),
            }
            state.limiters.prune(Instant::now());
            tokio::time::sleep(policy.sweep_interval.max(Duration::from_millis(10))).await;
        }
    }))
}
