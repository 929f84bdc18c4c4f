//! Rate limits: token buckets in memory, one per key (a device, a provisioning
//! key) or one for everything.
//!
//! A [`Rate`] is written `<amount>/<period>` (`60/m`, `12/1m`, `1MiB/m`): a
//! bucket holds `amount` tokens (the burst) and refills at `amount` per
//! `period`. A request takes its cost in tokens or is refused with the time
//! until enough are back (the `Retry-After` of a 429). The clock is an
//! argument, so the arithmetic is tested without waiting.
//!
//! The buckets live in the api's memory: a restart refills them, and two api
//! processes would each allow the rate (the stack runs one). A full bucket is
//! the same as none, so [`Limiter::prune`] drops full ones and the maps hold
//! only keys that spent something lately.
//!
//! Rejected design: buckets in PostgreSQL. Every limited request would write a
//! row, which is the very load (and disk churn) the limits are there to stop.

use std::collections::HashMap;
use std::fmt;
use std::hash::Hash;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use turtle_units::ByteSize;

/// `amount` per `period`, with a burst of `amount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    amount: u64,
    period: Duration,
    /// Whether `amount` is bytes (for messages: `1 MiB/1m` rather than `1048576/1m`).
    bytes: bool,
}

impl Rate {
    /// A rate of `amount` per `period` (both more than zero).
    pub fn new(amount: u64, period: Duration) -> Rate {
        assert!(amount > 0 && !period.is_zero(), "a rate is more than zero");
        Rate {
            amount,
            period,
            bytes: false,
        }
    }

    /// The burst: what a full bucket holds.
    pub fn burst(&self) -> u64 {
        self.amount
    }

    fn per_sec(&self) -> f64 {
        self.amount as f64 / self.period.as_secs_f64()
    }
}

/// `60/1m`, or `1 MiB/1m` for a rate in bytes.
impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let period = turtle_units::Duration::from_millis(self.period.as_millis() as u64);
        if self.bytes {
            write!(f, "{}/{period}", ByteSize(self.amount))
        } else {
            write!(f, "{}/{period}", self.amount)
        }
    }
}

/// `<amount>/<period>`: the amount a whole number or a size (`64k`, `1MiB`),
/// the period a duration (`1m`, `30s`) or a bare unit (`m` is `1m`).
impl FromStr for Rate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| {
            format!(
                "{s:?} is not a rate: {why}: write <amount>/<period>, such as 60/m, 12/1m or 1MiB/m"
            )
        };
        let (amount, period) = s.split_once('/').ok_or_else(|| bad("there is no '/'"))?;
        let amount = amount.trim();
        let (amount, bytes) = match amount.parse::<u64>() {
            Ok(n) => (n, false),
            Err(_) => (
                amount
                    .parse::<ByteSize>()
                    .map_err(|_| bad("the amount is not a number or a size"))?
                    .bytes(),
                true,
            ),
        };
        let period = period.trim();
        let period = if period.starts_with(|c: char| c.is_ascii_alphabetic()) {
            format!("1{period}")
        } else {
            period.to_string()
        };
        let period = period
            .parse::<turtle_units::Duration>()
            .map_err(|_| bad("the period is not a duration"))?
            .as_std();
        if amount == 0 || period.is_zero() {
            return Err(bad("the amount and the period must be more than zero"));
        }
        Ok(Rate {
            amount,
            period,
            bytes,
        })
    }
}

/// One bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: &Rate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.amount as f64,
            at: now,
        }
    }

    fn refill(&mut self, rate: &Rate, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate.per_sec()).min(rate.amount as f64);
        self.at = now;
    }
}

/// Why a request may not go now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Not enough tokens: enough are back after this long.
    Wait(Duration),
    /// The cost is more than a full bucket holds: it never fits.
    TooBig { cost: u64, burst: u64 },
}

impl Refusal {
    /// The `Retry-After` seconds of a wait: rounded up, at least 1.
    pub fn retry_after_secs(wait: Duration) -> u64 {
        wait.as_secs_f64().ceil().max(1.0) as u64
    }
}

/// Buckets per key, at one rate.
#[derive(Debug)]
pub struct Limiter<K> {
    rate: Rate,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate: Rate) -> Limiter<K> {
        Limiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Takes `cost` tokens from `key`'s bucket, or says why not (taking none).
    pub fn take(&self, key: &K, cost: u64, now: Instant) -> Result<(), Refusal> {
        if cost > self.rate.amount {
            return Err(Refusal::TooBig {
                cost,
                burst: self.rate.amount,
            });
        }
        let mut buckets = self.buckets.lock().expect("a rate limiter's lock");
        let bucket = buckets
            .entry(key.clone())
            .or_insert_with(|| Bucket::full(&self.rate, now));
        bucket.refill(&self.rate, now);
        let cost = cost as f64;
        if bucket.tokens >= cost {
            bucket.tokens -= cost;
            Ok(())
        } else {
            let missing = cost - bucket.tokens;
            Err(Refusal::Wait(Duration::from_secs_f64(
                missing / self.rate.per_sec(),
            )))
        }
    }

    /// Forgets `key` (a deleted device).
    pub fn forget(&self, key: &K) {
        self.buckets
            .lock()
            .expect("a rate limiter's lock")
            .remove(key);
    }

    /// Drops the buckets that are full again (the same as no bucket).
    pub fn prune(&self, now: Instant) {
        let rate = self.rate;
        self.buckets
            .lock()
            .expect("a rate limiter's lock")
            .retain(|_, bucket| {
                bucket.refill(&rate, now);
                bucket.tokens < rate.amount as f64
            });
    }

    /// How many keys have a bucket.
    pub fn len(&self) -> usize {
        self.buckets.lock().expect("a rate limiter's lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_print() {
        let r: Rate = "60/m".parse().unwrap();
        assert_eq!(r, Rate::new(60, Duration::from_secs(60)));
        assert_eq!(r.to_string(), "60/1m");
        assert_eq!("12/1m".parse::<Rate>().unwrap().burst(), 12);
        assert_eq!("10/30s".parse::<Rate>().unwrap().to_string(), "10/30s");
        let bytes: Rate = "1MiB/m".parse().unwrap();
        assert_eq!(bytes.burst(), 1 << 20);
        assert_eq!(bytes.to_string(), "1 MiB/1m");
        for bad in ["60", "0/m", "60/0s", "x/m", "60/x", "/m", "60/"] {
            let e = bad.parse::<Rate>().unwrap_err();
            assert!(e.contains("<amount>/<period>"), "{bad}: {e}");
        }
    }

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = Limiter::new(Rate::new(10, Duration::from_secs(10)));
        let t0 = Instant::now();
        for _ in 0..10 {
            limiter.take(&"a", 1, t0).unwrap();
        }
        assert_eq!(
            limiter.take(&"a", 1, t0),
            Err(Refusal::Wait(Duration::from_secs(1)))
        );
        // Another key has its own bucket.
        limiter.take(&"b", 10, t0).unwrap();
        // One token a second comes back.
        let t1 = t0 + Duration::from_millis(1500);
        limiter.take(&"a", 1, t1).unwrap();
        assert_eq!(
            limiter.take(&"a", 1, t1),
            Err(Refusal::Wait(Duration::from_millis(500)))
        );
        // A refusal takes nothing, and a cost above the burst never fits.
        assert_eq!(
            limiter.take(&"a", 11, t1),
            Err(Refusal::TooBig {
                cost: 11,
                burst: 10
            })
        );
        // Never more than the burst, however long it waits.
        let later = t0 + Duration::from_secs(3600);
        limiter.take(&"a", 10, later).unwrap();
        assert!(limiter.take(&"a", 1, later).is_err());
        assert_eq!(Refusal::retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(Refusal::retry_after_secs(Duration::from_millis(1001)), 2);
    }

    #[test]
    fn full_buckets_are_pruned_and_deleted_keys_forgotten() {
        let limiter = Limiter::new(Rate::new(2, Duration::from_secs(2)));
        let t0 = Instant::now();
        limiter.take(&1, 2, t0).unwrap();
        limiter.take(&2, 1, t0).unwrap();
        assert_eq!(limiter.len(), 2);
        limiter.prune(t0 + Duration::from_secs(1));
        assert_eq!(limiter.len(), 1, "key 2 is full again after 1 s");
        limiter.forget(&1);
        assert!(limiter.is_empty());
        // A forgotten key starts full.
        limiter.take(&1, 2, t0 + Duration::from_secs(1)).unwrap();
    }
}
